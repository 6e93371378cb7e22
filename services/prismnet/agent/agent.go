// Package agent is PrismNET's per-node agent: it registers the node, watches
// PrismNET's state in ChainFire, and makes the node's kernel match it
// through the data plane, reporting each bound port's status back.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/photoncloud/photon/internal/state"
	"github.com/photoncloud/photon/services/prismnet"
	"github.com/photoncloud/photon/services/prismnet/dataplane"
)

// Config is one node's agent. Zero fields are filled by Defaults.
type Config struct {
	// Node names this host in port bindings (default: the hostname).
	Node string
	// VTEP is the underlay address other nodes send this node's VXLAN
	// traffic to (default: the first global IPv4 address in NetNS, else
	// 127.0.0.1, enough for one node).
	VTEP string
	// NetNS is the node's network namespace path ("" = this process's).
	NetNS string
	// MTU is the VPCs' MTU, handed to instances (default: the VTEP's
	// device's MTU less VXLAN's 50 bytes, at most 1500; 1450 on loopback).
	// Every node must end up with the same.
	MTU int
	// Resync is how often the agent reconciles without being told to.
	Resync time.Duration
	// Version is published with the node's record.
	Version string
}

// Defaults fills unset fields.
func (c *Config) Defaults() error {
	if c.Node == "" {
		h, err := os.Hostname()
		if err != nil {
			return err
		}
		c.Node = h
	}
	if c.Resync == 0 {
		c.Resync = 5 * time.Second
	}
	return nil
}

// Agent runs one node's data plane.
type Agent struct {
	cfg  Config
	cli  *clientv3.Client
	dp   *dataplane.Dataplane
	vtep netip.Addr
	log  *slog.Logger

	kick   chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	lastRev  int64
	lastErr  error
	lastAt   time.Time
	stopOnce sync.Once
}

// Supported reports whether this process can program the kernel (root);
// without it PrismNET runs its control plane only.
func Supported() bool { return os.Geteuid() == 0 }

// New prepares an agent over cli; Start runs it.
func New(cfg Config, cli *clientv3.Client) (*Agent, error) {
	if err := cfg.Defaults(); err != nil {
		return nil, err
	}
	a := &Agent{cfg: cfg, cli: cli, kick: make(chan struct{}, 1),
		log: slog.Default().With("service", "prismnet-agent", "node", cfg.Node)}
	var err error
	var underlay int
	if a.vtep, underlay, err = resolveVTEP(cfg); err != nil {
		return nil, err
	}
	mtu := cfg.MTU
	if mtu == 0 {
		mtu = min(underlay-dataplane.VXLANHeader, dataplane.MaxMTU)
	}
	a.dp, err = dataplane.New(dataplane.Config{NetNS: cfg.NetNS, RouterNSPrefix: "pn-" + cfg.Node + "-", VTEP: a.vtep, MTU: mtu, Log: a.log})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// resolveVTEP is the configured VTEP, or the first global IPv4 address of
// the node's namespace that is not one of the data plane's devices; with
// the MTU of the device holding it (1500 for loopback or an address found
// on no device: VXLAN to other nodes then crosses a 1500-byte network).
func resolveVTEP(cfg Config) (netip.Addr, int, error) {
	var want netip.Addr
	if cfg.VTEP != "" {
		a, err := netip.ParseAddr(cfg.VTEP)
		if err != nil || !a.Is4() {
			return netip.Addr{}, 0, fmt.Errorf("prismnet agent: vtep %q is not an IPv4 address", cfg.VTEP)
		}
		want = a
	}
	h := &netlink.Handle{}
	if cfg.NetNS != "" {
		ns, err := netns.GetFromPath(cfg.NetNS)
		if err != nil {
			return netip.Addr{}, 0, err
		}
		defer ns.Close()
		if h, err = netlink.NewHandleAt(ns); err != nil {
			return netip.Addr{}, 0, err
		}
		defer h.Close()
	}
	links, err := h.LinkList()
	if err != nil {
		return netip.Addr{}, 0, err
	}
	for _, l := range links {
		if dataplane.ReservedIfName(l.Attrs().Name) || l.Attrs().Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := h.AddrList(l, netlink.FAMILY_V4)
		if err != nil {
			continue
		}
		for _, ad := range addrs {
			a, ok := netip.AddrFromSlice(ad.IP.To4())
			if ok && (a == want || !want.IsValid() && a.IsGlobalUnicast()) {
				return a, l.Attrs().MTU, nil
			}
		}
	}
	if want.IsValid() {
		return want, 1500, nil
	}
	return netip.MustParseAddr("127.0.0.1"), 1500, nil
}

// Node is this agent's node name.
func (a *Agent) Node() string { return a.cfg.Node }

// Start registers the node and begins reconciling.
func (a *Agent) Start(ctx context.Context) error {
	run, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	node := prismnet.Node{Name: a.cfg.Node, VTEP: a.vtep.String(), Version: a.cfg.Version, StartedAt: time.Now().UTC()}
	presence, err := state.NewPresence(ctx, a.cli, prismnet.NodeTTL(), func(ctx context.Context, lease clientv3.LeaseID) error {
		return prismnet.RegisterNode(ctx, a.cli, node, lease)
	})
	if err != nil {
		cancel()
		return fmt.Errorf("prismnet agent: %w", err)
	}
	a.wg.Add(4)
	go func() { defer a.wg.Done(); presence.Keep(run, a.trigger) }()
	go func() { defer a.wg.Done(); state.WatchKick(run, a.cli, prismnet.KeyPrefix, a.trigger) }()
	go func() { defer a.wg.Done(); a.watchLinks(run) }()
	go func() { defer a.wg.Done(); a.loop(run) }()
	a.log.Info("prismnet agent started", "vtep", a.vtep)
	return nil
}

// watchLinks kicks the loop on every link change in the node's namespace
// (a device created for a port that is already bound).
func (a *Agent) watchLinks(ctx context.Context) {
	links := make(chan netlink.LinkUpdate, 64)
	var opts netlink.LinkSubscribeOptions
	if a.cfg.NetNS != "" {
		if ns, err := netns.GetFromPath(a.cfg.NetNS); err == nil {
			defer ns.Close()
			opts.Namespace = &ns
		}
	}
	done := make(chan struct{})
	defer close(done)
	opts.ErrorCallback = func(err error) {
		if ctx.Err() == nil {
			a.log.Debug("prismnet agent: link updates stopped; resync still runs", "err", err)
		}
	}
	if err := netlink.LinkSubscribeWithOptions(links, done, opts); err != nil {
		a.log.Warn("prismnet agent: no link updates; relying on resync", "err", err)
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-links:
			if !ok {
				<-ctx.Done()
				return
			}
			a.trigger()
		}
	}
}

func (a *Agent) trigger() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// loop reconciles on every kick (coalesced) and every Resync.
func (a *Agent) loop(ctx context.Context) {
	t := time.NewTicker(a.cfg.Resync)
	defer t.Stop()
	a.reconcile(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.kick:
			// Let a burst of changes (a port and its indexes) settle.
			select {
			case <-ctx.Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		case <-t.C:
		}
		a.reconcile(ctx)
	}
}

// reconcile reads the topology, applies this node's plan and reports its
// ports' statuses.
func (a *Agent) reconcile(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	topo, err := prismnet.ReadTopology(rctx, a.cli)
	if err != nil {
		a.done(0, err)
		return
	}
	plan := PlanFor(topo, a.cfg.Node)
	states, applyErr := a.dp.Apply(plan)
	if applyErr != nil {
		a.log.Warn("prismnet agent: reconcile incomplete", "err", applyErr)
	}
	var errs []error
	for _, p := range topo.Ports {
		if p.Binding == nil || p.Binding.Host != a.cfg.Node {
			continue
		}
		st, ok := states[p.ID]
		status, reason := prismnet.PortActive, ""
		switch {
		case !ok:
			status, reason = prismnet.PortError, "not in this node's plan (its VPC has no VNI)"
		case !st.Ready:
			status, reason = prismnet.PortError, st.Reason
		}
		if err := prismnet.ReportPortStatus(rctx, a.cli, p, a.cfg.Node, status, reason); err != nil {
			errs = append(errs, err)
		}
	}
	a.done(topo.Revision, errors.Join(append(errs, applyErr)...))
}

func (a *Agent) done(rev int64, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if rev != 0 {
		a.lastRev = rev
	}
	a.lastErr, a.lastAt = err, time.Now()
}

// Info is the agent's state for /health.
func (a *Agent) Info() map[string]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string]string{"dataplane": "enabled", "node": a.cfg.Node, "vtep": a.vtep.String(),
		"reconciled_revision": strconv.FormatInt(a.lastRev, 10)}
	if !a.lastAt.IsZero() {
		out["reconciled_at"] = a.lastAt.UTC().Format(time.RFC3339Nano)
	}
	if a.lastErr != nil {
		out["last_error"] = a.lastErr.Error()
	}
	return out
}

// Reconciled is the store revision of the last complete read the kernel
// was made to match (0 before the first).
func (a *Agent) Reconciled() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lastRev
}

// Stop stops reconciling and removes the node's record; the kernel keeps
// what was programmed, so that instances keep their network across an
// agent restart. A second call does nothing.
func (a *Agent) Stop(ctx context.Context) error {
	return a.stop(false)
}

// Teardown stops the agent and removes everything it programmed on this
// node (decommissioning a node; tests).
func (a *Agent) Teardown(ctx context.Context) error {
	return a.stop(true)
}

func (a *Agent) stop(teardown bool) error {
	var err error
	a.stopOnce.Do(func() {
		if a.cancel != nil {
			a.cancel()
		}
		a.wg.Wait()
		if teardown {
			err = a.dp.Teardown()
		}
		err = errors.Join(err, a.dp.Close())
	})
	return err
}
