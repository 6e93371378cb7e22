// Package hypervisor is PlasmaVMC's node agent: it registers the node's
// capacity in ChainFire, runs a QEMU process for every VM placed on the
// node that its owner wants running, and writes back each VM's state. QEMU
// processes outlive the agent; a new agent re-attaches to them.
package hypervisor

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/photoncloud/photon/internal/state"
	"github.com/photoncloud/photon/services/plasmavmc"
	"github.com/photoncloud/photon/services/plasmavmc/images"
	"github.com/photoncloud/photon/services/plasmavmc/qemu"
)

// Config is one node's agent. Zero fields are filled by Defaults.
type Config struct {
	// Node names this host (default: the hostname).
	Node string
	// DataDir holds one runtime dir per VM (QMP socket, serial log, pid).
	DataDir string
	// QEMU is the emulator binary.
	QEMU string
	// Accel is auto, kvm or tcg (qemu.DetectAccel).
	Accel string
	// CPUAllocationRatio and RAMAllocationRatio scale what the node offers
	// (1 = no overcommit).
	CPUAllocationRatio, RAMAllocationRatio float64
	// StopGrace is how long an ACPI power-down may take before the VM is
	// stopped hard.
	StopGrace time.Duration
	// Resync is how often the agent reconciles without being told to.
	Resync  time.Duration
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
	if c.QEMU == "" {
		c.QEMU = "qemu-system-x86_64"
	}
	if c.Accel == "" {
		c.Accel = "auto"
	}
	if c.CPUAllocationRatio == 0 {
		c.CPUAllocationRatio = 1
	}
	if c.RAMAllocationRatio == 0 {
		c.RAMAllocationRatio = 1
	}
	if c.StopGrace == 0 {
		c.StopGrace = 30 * time.Second
	}
	if c.Resync == 0 {
		c.Resync = 2 * time.Second
	}
	return nil
}

// Agent runs one node's VMs.
type Agent struct {
	cfg   Config
	cli   *clientv3.Client
	accel string
	node  plasmavmc.Node
	log   *slog.Logger

	kick   chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	mu       sync.Mutex
	procs    map[string]*qemu.Process // by VM id
	stopping map[string]stopKind      // a stop is under way (a deliberate exit)
	starting map[string]bool          // a start is under way
	run      context.Context          // the agent's life, for work that outlasts a reconcile
}

// New prepares an agent over cli; Start runs it.
func New(cfg Config, cli *clientv3.Client) (*Agent, error) {
	if err := cfg.Defaults(); err != nil {
		return nil, err
	}
	if cfg.DataDir == "" {
		return nil, errors.New("hypervisor: no data dir")
	}
	accel, err := qemu.DetectAccel(cfg.Accel)
	if err != nil {
		return nil, err
	}
	cpus, mem, err := capacity()
	if err != nil {
		return nil, err
	}
	vcpus := int(float64(cpus) * cfg.CPUAllocationRatio)
	return &Agent{cfg: cfg, cli: cli, accel: accel, kick: make(chan struct{}, 1),
		node: plasmavmc.Node{Name: cfg.Node, VCPUs: vcpus, MemoryMiB: int(float64(mem) * cfg.RAMAllocationRatio),
			Accel: accel, MaxVCPUs: vcpus, StartedAt: time.Now().UTC()},
		log:   slog.Default().With("service", "plasmavmc-agent", "node", cfg.Node),
		procs: map[string]*qemu.Process{}, stopping: map[string]stopKind{}, starting: map[string]bool{}}, nil
}

// capacity is the host's CPUs and memory in MiB (/proc/meminfo).
func capacity() (int, int, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "MemTotal:" {
			kb, err := strconv.Atoi(f[1])
			if err != nil {
				return 0, 0, err
			}
			return runtime.NumCPU(), kb / 1024, nil
		}
	}
	return 0, 0, errors.New("hypervisor: no MemTotal in /proc/meminfo")
}

// Node is what this agent registers.
func (a *Agent) Node() plasmavmc.Node { return a.node }

// Start registers the node, re-attaches to the QEMU processes of its VMs
// and begins reconciling.
func (a *Agent) Start(ctx context.Context) error {
	if err := os.MkdirAll(a.cfg.DataDir, 0o700); err != nil {
		return err
	}
	presence, err := state.NewPresence(ctx, a.cli, nodeTTL, func(ctx context.Context, lease clientv3.LeaseID) error {
		return plasmavmc.RegisterNode(ctx, a.cli, a.node, lease)
	})
	if err != nil {
		return fmt.Errorf("plasmavmc agent: %w", err)
	}
	if err := a.reattach(ctx); err != nil {
		return err
	}
	run, cancel := context.WithCancel(context.Background())
	a.cancel, a.run = cancel, run
	a.wg.Add(3)
	go func() { defer a.wg.Done(); presence.Keep(run, nil) }()
	go func() { defer a.wg.Done(); state.WatchKick(run, a.cli, plasmavmc.KeyPrefix+"vms/", a.trigger) }()
	go func() { defer a.wg.Done(); a.loop(run) }()
	a.log.Info("plasmavmc agent started", "accel", a.accel, "vcpus", a.node.VCPUs, "memory_mib", a.node.MemoryMiB)
	return nil
}

// nodeTTL is how long the node's record outlives its agent's last
// keepalive.
const nodeTTL = 10 * time.Second

// runDir is a VM's runtime dir.
func (a *Agent) runDir(id string) string { return filepath.Join(a.cfg.DataDir, id) }

// reattach finds the QEMU processes of this node's VMs (a previous agent
// started them). A VM shown Running whose QEMU is gone becomes Failed: it
// is never shown Running without a process.
func (a *Agent) reattach(ctx context.Context) error {
	vms, err := plasmavmc.NodeVMs(ctx, a.cli, a.cfg.Node)
	if err != nil {
		return err
	}
	for _, it := range vms {
		vm := it.Value
		p, err := qemu.Attach(ctx, a.runDir(vm.ID))
		if err == nil {
			a.adopt(vm.ID, p)
			a.log.Info("re-attached", "vm", vm.ID, "pid", p.Pid())
			continue
		}
		if vm.State == plasmavmc.StateRunning || vm.State == plasmavmc.StateStopping {
			a.failed(ctx, it, "QEMU exited while PlasmaVMC's agent was down")
		}
	}
	return nil
}

// adopt tracks p and watches it exit.
func (a *Agent) adopt(id string, p *qemu.Process) {
	a.mu.Lock()
	a.procs[id] = p
	a.mu.Unlock()
	events, cancel := p.Events()
	go func() {
		defer cancel()
		// A guest that powers itself off makes QEMU say so (SHUTDOWN with
		// "guest": true) before it exits: that VM is Stopped, not Failed.
		guestOff := false
		for {
			select {
			case ev := <-events:
				var d struct {
					Guest bool `json:"guest"`
				}
				if ev.Name == "SHUTDOWN" && json.Unmarshal(ev.Data, &d) == nil && d.Guest {
					guestOff = true
				}
				continue
			case <-p.Exited():
			}
			break
		}
		a.mu.Lock()
		deliberate := a.stopping[id] != notStopping
		if a.procs[id] == p {
			delete(a.procs, id)
		}
		delete(a.stopping, id)
		a.mu.Unlock()
		if !deliberate {
			a.exitedOnItsOwn(id, p.Pid(), guestOff)
		}
		a.trigger()
	}()
}

// exitedOnItsOwn records that a VM's QEMU went away without being asked:
// the guest powered off (Stopped), or QEMU was killed or crashed (Failed);
// either way off, so that the agent does not start it again by itself.
func (a *Agent) exitedOnItsOwn(id string, pid int, guestOff bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	vms, err := plasmavmc.NodeVMs(ctx, a.cli, a.cfg.Node)
	if err != nil {
		a.log.Error("reading vms", "err", err)
		return
	}
	for _, it := range vms {
		if it.Value.ID != id || it.Value.Deleting {
			continue
		}
		if guestOff {
			a.report(ctx, it, func(vm *plasmavmc.VM) bool {
				vm.State, vm.Power, vm.PID, vm.LastError = plasmavmc.StateStopped, plasmavmc.PowerOff, 0, ""
				return true
			})
			continue
		}
		a.failed(ctx, it, fmt.Sprintf("QEMU (pid %d) exited while the VM was to run", pid))
	}
}

func (a *Agent) failed(ctx context.Context, it state.Item[plasmavmc.VM], reason string) {
	a.report(ctx, it, func(vm *plasmavmc.VM) bool {
		if vm.Deleting {
			return false
		}
		vm.State, vm.Power, vm.PID, vm.LastError = plasmavmc.StateFailed, plasmavmc.PowerOff, 0, reason
		return true
	})
}

func (a *Agent) report(ctx context.Context, it state.Item[plasmavmc.VM], fn func(*plasmavmc.VM) bool) {
	if _, err := plasmavmc.Report(ctx, a.cli, it, func(vm *plasmavmc.VM) bool {
		if !fn(vm) {
			return false
		}
		vm.UpdatedAt = time.Now().UTC()
		return true
	}); err != nil {
		a.log.Warn("reporting vm state", "vm", it.Value.ID, "err", err)
	}
}

func (a *Agent) trigger() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

func (a *Agent) loop(ctx context.Context) {
	t := time.NewTicker(a.cfg.Resync)
	defer t.Stop()
	for {
		a.reconcile(ctx)
		select {
		case <-ctx.Done():
			return
		case <-a.kick:
		case <-t.C:
		}
	}
}

// reconcile makes every VM of the node as its owner wants it.
func (a *Agent) reconcile(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	vms, err := plasmavmc.NodeVMs(rctx, a.cli, a.cfg.Node)
	if err != nil {
		a.log.Warn("reading vms", "err", err)
		return
	}
	for _, it := range vms {
		a.step(rctx, it)
	}
	a.collectVolumes(rctx)
}

// step moves one VM toward what its owner wants.
func (a *Agent) step(ctx context.Context, it state.Item[plasmavmc.VM]) {
	vm := it.Value
	a.mu.Lock()
	p := a.procs[vm.ID]
	stopping := a.stopping[vm.ID]
	a.mu.Unlock()
	switch {
	case vm.Deleting:
		if p != nil {
			if stopping != forced {
				a.stop(p, vm.ID, true)
			}
			return // the exit brings the next step
		}
		for _, n := range vm.NICs {
			if err := qemu.DeleteTap(n.Tap); err != nil {
				a.log.Warn("removing tap", "vm", vm.ID, "tap", n.Tap, "err", err)
			}
		}
		if err := os.RemoveAll(a.runDir(vm.ID)); err != nil {
			a.log.Error("removing runtime dir", "vm", vm.ID, "err", err)
			return
		}
		if err := plasmavmc.FinishDelete(ctx, a.cli, it); err != nil {
			a.log.Warn("finishing delete", "vm", vm.ID, "err", err)
		}
	case vm.State == plasmavmc.StateCreating:
		if err := a.prepare(ctx, vm); err != nil {
			a.failed(ctx, it, "preparing the VM: "+err.Error())
			return
		}
		a.report(ctx, it, func(v *plasmavmc.VM) bool {
			if v.State != plasmavmc.StateCreating {
				return false
			}
			v.State, v.Accel = plasmavmc.StateStopped, a.accel
			if v.Power == plasmavmc.PowerOn {
				v.State = plasmavmc.StateStarting
			}
			return true
		})
	case vm.Power == plasmavmc.PowerOn && p == nil:
		// Each start in its own goroutine: QEMU takes a while to answer
		// QMP, and the node's other VMs need not wait for it.
		a.mu.Lock()
		busy := a.starting[vm.ID]
		a.starting[vm.ID] = true
		a.mu.Unlock()
		if busy {
			return
		}
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			sctx, cancel := context.WithTimeout(a.run, time.Minute)
			defer cancel()
			a.start(sctx, it)
			a.mu.Lock()
			delete(a.starting, vm.ID)
			a.mu.Unlock()
		}()
	case vm.Power == plasmavmc.PowerOn:
		if vm.RebootSeq > vm.RebootsDone {
			if err := p.Reset(ctx); err != nil {
				a.log.Warn("reboot", "vm", vm.ID, "err", err)
				return
			}
		}
		a.report(ctx, it, func(v *plasmavmc.VM) bool {
			if v.Power != plasmavmc.PowerOn || (v.State == plasmavmc.StateRunning && v.RebootsDone == v.RebootSeq && v.PID == p.Pid()) {
				return false
			}
			v.State, v.RebootsDone, v.PID = plasmavmc.StateRunning, v.RebootSeq, p.Pid()
			return true
		})
	case p != nil: // power off, still running
		if stopping == notStopping || (vm.ForceStop && stopping == graceful) {
			a.stop(p, vm.ID, vm.ForceStop)
		}
	default: // power off, no process
		a.report(ctx, it, func(v *plasmavmc.VM) bool {
			if v.Power != plasmavmc.PowerOff || v.Deleting || v.State == plasmavmc.StateStopped || v.State == plasmavmc.StateFailed {
				return false
			}
			v.State, v.PID = plasmavmc.StateStopped, 0
			return true
		})
	}
}

// rootDisk is a VM's root disk: a qcow2 overlay on its image, or blank.
func (a *Agent) rootDisk(id string) string { return filepath.Join(a.runDir(id), "root.qcow2") }

// prepare makes a new VM's runtime dir and root disk: an overlay of its
// disk image (grown to disk_size_gb), or a blank disk of disk_size_gb.
func (a *Agent) prepare(ctx context.Context, vm plasmavmc.VM) error {
	if err := os.MkdirAll(a.runDir(vm.ID), 0o700); err != nil {
		return err
	}
	// The taps exist from creation on, so that PrismNET's agent can put
	// them on their VPC's bridge before the VM first starts.
	for _, n := range vm.NICs {
		if err := ensureTap(n.Tap); err != nil {
			return fmt.Errorf("tap %s: %w", n.Tap, err)
		}
	}
	root := a.rootDisk(vm.ID)
	if _, err := os.Stat(root); err == nil {
		return nil // prepared before a restart
	}
	size := int64(vm.DiskSizeGB) << 30
	tmp := root + ".tmp"
	var err error
	switch b := vm.Boot; {
	case b != nil && b.Format != plasmavmc.FormatKernel:
		err = images.Overlay(ctx, b.Disk, b.Format, tmp, size)
	case size > 0:
		err = images.Blank(ctx, tmp, size)
	default:
		return nil
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, root)
}

// volumesDir holds the node's volumes' disks.
func (a *Agent) volumesDir() string { return filepath.Join(a.cfg.DataDir, ".volumes") }

// volumeDisk is a volume's disk on this node, made (blank) the first time.
func (a *Agent) volumeDisk(ctx context.Context, project, id string) (string, error) {
	v, err := plasmavmc.VolumeOf(ctx, a.cli, project, id)
	if err != nil {
		return "", err
	}
	path := filepath.Join(a.volumesDir(), id+".qcow2")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(a.volumesDir(), 0o700); err != nil {
		return "", err
	}
	tmp := path + ".tmp"
	if err := images.Blank(ctx, tmp, int64(v.SizeGB)<<30); err != nil {
		_ = os.Remove(tmp)
		return "", err
	}
	return path, os.Rename(tmp, path)
}

// collectVolumes removes the disks of volumes that no longer exist.
func (a *Agent) collectVolumes(ctx context.Context) {
	ents, err := os.ReadDir(a.volumesDir())
	if err != nil {
		return
	}
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".qcow2")
		if !ok {
			continue
		}
		if plasmavmc.VolumeGone(ctx, a.cli, id) {
			if err := os.Remove(filepath.Join(a.volumesDir(), e.Name())); err == nil {
				a.log.Info("volume disk removed", "volume", id)
			}
		}
	}
}

// ensureTap makes the tap unless it exists.
func ensureTap(name string) error {
	if _, err := os.Stat(filepath.Join("/sys/class/net", name)); err == nil {
		return nil
	}
	return qemu.CreateTap(name)
}

// stopKind is how a stop under way was asked for.
type stopKind int

const (
	notStopping stopKind = iota
	graceful
	forced
)

// start launches the VM's QEMU and reports it Running, or Failed.
func (a *Agent) start(ctx context.Context, it state.Item[plasmavmc.VM]) {
	vm := it.Value
	dir := a.runDir(vm.ID)
	// Again if it failed before: a VM never boots without its disk.
	if err := a.prepare(ctx, vm); err != nil {
		a.failed(ctx, it, "preparing the VM: "+err.Error())
		return
	}
	spec := qemu.Spec{Name: vm.ID, Dir: dir, VCPUs: vm.VCPUs, MemoryMiB: vm.MemoryMiB, Accel: a.accel}
	if b := vm.Boot; b != nil && b.Format == plasmavmc.FormatKernel {
		spec.Kernel, spec.Initrd, spec.Append = b.Kernel, b.Initrd, b.Cmdline
	}
	if _, err := os.Stat(a.rootDisk(vm.ID)); err == nil {
		spec.Disks = []qemu.Disk{{Path: a.rootDisk(vm.ID), Format: "qcow2"}}
	}
	for _, id := range vm.Volumes {
		path, err := a.volumeDisk(ctx, vm.ProjectID, id)
		if err != nil {
			a.failed(ctx, it, "volume "+id+": "+err.Error())
			return
		}
		spec.Disks = append(spec.Disks, qemu.Disk{Path: path, Format: "qcow2"})
	}
	for _, n := range vm.NICs {
		if err := ensureTap(n.Tap); err != nil {
			a.failed(ctx, it, "creating tap "+n.Tap+": "+err.Error())
			return
		}
		spec.NICs = append(spec.NICs, qemu.NIC{Tap: n.Tap, MAC: n.MAC})
	}
	p, err := qemu.Start(ctx, a.cfg.QEMU, spec)
	if err != nil {
		a.failed(ctx, it, "starting QEMU: "+err.Error())
		return
	}
	a.adopt(vm.ID, p)
	now := time.Now().UTC()
	a.report(ctx, it, func(v *plasmavmc.VM) bool {
		v.State, v.PID, v.Accel, v.StartedAt, v.LastError, v.RebootsDone = plasmavmc.StateRunning, p.Pid(), a.accel, &now, "", v.RebootSeq
		return true
	})
	a.log.Info("vm started", "vm", vm.ID, "pid", p.Pid())
}

// stop stops the VM's QEMU in the background (a graceful stop can take
// StopGrace); force quits at once, also a graceful stop under way.
func (a *Agent) stop(p *qemu.Process, id string, force bool) {
	a.mu.Lock()
	a.stopping[id] = graceful
	if force {
		a.stopping[id] = forced
	}
	a.mu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), a.cfg.StopGrace+30*time.Second)
		defer cancel()
		if err := p.Stop(ctx, force, a.cfg.StopGrace); err != nil && !errors.Is(err, qemu.ErrNotRunning) {
			a.log.Warn("stopping vm", "vm", id, "err", err)
		}
	}()
}

// Console reads the tail of a VM's serial console on this node.
func (a *Agent) Console(ctx context.Context, vm plasmavmc.VM, n int) ([]byte, error) {
	if vm.Node != a.cfg.Node {
		return nil, fmt.Errorf("vm %s runs on node %s, not %s", vm.ID, vm.Node, a.cfg.Node)
	}
	b, err := qemu.ConsoleTail(a.runDir(vm.ID), n)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// Stop stops reconciling and leaves the node; the VMs' QEMU processes keep
// running, for the next agent to re-attach. A second call does nothing.
func (a *Agent) Stop(ctx context.Context) error {
	a.once.Do(func() {
		if a.cancel != nil {
			a.cancel()
		}
		a.wg.Wait()
		a.mu.Lock()
		defer a.mu.Unlock()
		for _, p := range a.procs {
			_ = p.Close()
		}
	})
	return nil
}
