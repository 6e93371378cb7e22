package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/photoncloud/photon/bench/internal/pairbench"
	"github.com/photoncloud/photon/services/prismnet"
)

// rest is a tokenless (loopback trust) client of PrismNET's REST API.
type rest struct {
	hc   *http.Client
	base string
}

// call sends body as JSON (nil for none) and decodes the envelope's data
// into out (nil to discard); any status but want is an error.
func (c rest) call(ctx context.Context, method, path string, body any, want int, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: status %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(b))
	}
	if out == nil {
		return nil
	}
	env := struct {
		Data any `json:"data"`
	}{out}
	return json.Unmarshal(b, &env)
}

func (c rest) vpc(ctx context.Context, project, cidr string) (prismnet.VPC, error) {
	var v prismnet.VPC
	err := c.call(ctx, http.MethodPost, "/api/v1/vpcs", prismnet.CreateVPCRequest{Name: "bench", OrgID: "bench", ProjectID: project, CIDRBlock: cidr}, http.StatusCreated, &v)
	return v, err
}

func (c rest) subnet(ctx context.Context, vpc, cidr string) (prismnet.Subnet, error) {
	var s prismnet.Subnet
	err := c.call(ctx, http.MethodPost, "/api/v1/subnets", prismnet.CreateSubnetRequest{Name: "bench", VPCID: vpc, CIDRBlock: cidr}, http.StatusCreated, &s)
	return s, err
}

func (c rest) port(ctx context.Context, subnet string) (prismnet.Port, error) {
	var p prismnet.Port
	err := c.call(ctx, http.MethodPost, "/api/v1/ports", prismnet.CreatePortRequest{SubnetID: subnet, DeviceOwner: "vm"}, http.StatusCreated, &p)
	return p, err
}

func (c rest) getPort(ctx context.Context, id string) (prismnet.Port, error) {
	var p prismnet.Port
	err := c.call(ctx, http.MethodGet, "/api/v1/ports/"+url.PathEscape(id), nil, http.StatusOK, &p)
	return p, err
}

func (c rest) deletePort(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodDelete, "/api/v1/ports/"+url.PathEscape(id), nil, http.StatusOK, nil)
}

func (c rest) bind(ctx context.Context, id, host, ifname string) error {
	return c.call(ctx, http.MethodPost, "/api/v1/ports/"+url.PathEscape(id)+"/bind",
		prismnet.BindPortRequest{Host: host, InterfaceType: "veth", IfName: ifname}, http.StatusOK, nil)
}

// waitActive polls the port until the agent reports it ACTIVE.
func (c rest) waitActive(ctx context.Context, id string, within time.Duration) (prismnet.Port, error) {
	deadline := time.Now().Add(within)
	for {
		p, err := c.getPort(ctx, id)
		if err != nil {
			return p, err
		}
		if p.Status == prismnet.PortActive {
			return p, nil
		}
		if time.Now().After(deadline) {
			return p, fmt.Errorf("port %s: status %s (%s) after %s, want %s", id, p.Status, p.StatusReason, within, prismnet.PortActive)
		}
		select {
		case <-ctx.Done():
			return p, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// phase is one batch of REST calls by conc clients: how long it took and
// each call's latency.
type phase struct {
	n, errs  int
	firstErr error
	elapsed  time.Duration
	lats     []time.Duration // sorted
	ends     []time.Duration // each call's completion, from the start, sorted
	cpu      time.Duration   // this process (server and clients)
	others   float64         // cores the rest of the machine used
}

func (p phase) perSec() float64 { return float64(p.n) / p.elapsed.Seconds() }

// runPhase makes n calls of op(i) from conc closed-loop clients, each
// taking the next index until n are taken.
func runPhase(ctx context.Context, n, conc int, op func(ctx context.Context, i int) error) phase {
	var next atomic.Int64
	lats := make([]time.Duration, n)
	ends := make([]time.Duration, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	c0 := pairbench.SampleCPU(0)
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t := time.Now()
				errs[i] = op(ctx, i)
				lats[i] = time.Since(t)
				ends[i] = time.Since(start)
			}
		}()
	}
	wg.Wait()
	ph := phase{n: n, elapsed: time.Since(start)}
	cpu := pairbench.SampleCPU(0).Sub(c0)
	ph.cpu = cpu.Self
	ph.others = max(0, (cpu.Machine-cpu.Self).Seconds()/ph.elapsed.Seconds())
	for _, err := range errs {
		if err != nil {
			ph.errs++
			if ph.firstErr == nil {
				ph.firstErr = err
			}
		}
	}
	ph.lats, ph.ends = lats, ends
	slices.Sort(ph.lats)
	slices.Sort(ph.ends)
	return ph
}

// portsResult is part (a): the creation phase (and its thousands, since
// each allocation reads the subnet's taken addresses), then the deletes.
type portsResult struct {
	subnetCIDR     string
	warm           int
	create, delete phase
	steps          []phase // creation split into consecutive chunks, by index
	distinctIPs    int
	distinctMACs   int
	defaultSG      bool
}

// benchPorts creates opt.ports ports in one subnet from opt.conc clients,
// checks their IPs and MACs are distinct, then deletes them all (so the
// data-plane part starts with an empty control plane).
func benchPorts(ctx context.Context, opt options, api rest) (portsResult, error) {
	r := portsResult{subnetCIDR: "10.64.0.0/16", warm: opt.warm}
	v, err := api.vpc(ctx, "bench-ports", "10.64.0.0/16")
	if err != nil {
		return r, err
	}
	s, err := api.subnet(ctx, v.ID, r.subnetCIDR)
	if err != nil {
		return r, err
	}
	total := opt.warm + opt.ports
	ports := make([]prismnet.Port, total)
	create := func(ctx context.Context, i int) error {
		p, err := api.port(ctx, s.ID)
		ports[i] = p
		return err
	}
	// Warm-up: connections, the default group (made by the first port).
	w := runPhase(ctx, opt.warm, opt.conc, create)
	if w.errs > 0 {
		return r, fmt.Errorf("warm-up: %d errors, first: %w", w.errs, w.firstErr)
	}
	r.create = runPhase(ctx, opt.ports, opt.conc, func(ctx context.Context, i int) error {
		return create(ctx, opt.warm+i)
	})
	if ctx.Err() != nil {
		return r, ctx.Err()
	}
	// The rate in each third of the completions: does it fall as the
	// subnet fills?
	var from time.Duration
	for k := range 3 {
		hi := (k + 1) * opt.ports / 3
		if hi == 0 || hi <= k*opt.ports/3 {
			continue
		}
		to := r.create.ends[hi-1]
		r.steps = append(r.steps, phase{n: hi - k*opt.ports/3, elapsed: to - from})
		from = to
	}
	ips, macs := map[string]bool{}, map[string]bool{}
	r.defaultSG = true
	for _, p := range ports {
		if p.ID == "" {
			continue
		}
		ips[p.IP], macs[p.MACAddress] = true, true
		if len(p.SecurityGroupIDs) != 1 || p.SecurityGroupIDs[0] != ports[0].SecurityGroupIDs[0] {
			r.defaultSG = false
		}
	}
	r.distinctIPs, r.distinctMACs = len(ips), len(macs)
	r.delete = runPhase(ctx, total, opt.conc, func(ctx context.Context, i int) error {
		if ports[i].ID == "" {
			return nil
		}
		return api.deletePort(ctx, ports[i].ID)
	})
	return r, nil
}
