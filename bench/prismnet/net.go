package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/photoncloud/photon/internal/platform"
	"github.com/photoncloud/photon/services/prismnet"
	"github.com/photoncloud/photon/services/prismnet/agent"
	"github.com/photoncloud/photon/services/prismnet/dataplane"
)

// lab is the data-plane part's machines: two host namespaces joined by an
// underlay veth, each with an agent, and two instance namespaces, a on h1
// and b on h2, that are also joined directly by a plain veth. Close removes
// all of it.
type lab struct {
	prefix     string
	h1, h2     string
	ia, ib     string
	vni        uint32
	namespaces []string
	agents     []*agent.Agent
	resync     time.Duration // 0: the agent's default
	stderr     io.Writer
	// underlayMTU is ul0's; the agents give the VPC 50 less (at most
	// 1500), and the instances are set to the same.
	underlayMTU int
}

// vpcMTU is the MTU the agents derive from the underlay's.
func (l *lab) vpcMTU() int { return min(l.underlayMTU-50, 1500) }

// Addresses of the plain veth between the instances (outside the VPC's
// CIDR, so the two paths never mix).
const (
	directA, directB = "192.168.250.1", "192.168.250.2"
	vpcCIDR          = "10.65.0.0/16"
	subnetCIDR       = "10.65.1.0/24"
)

// sh runs a command, returning its combined output in the error.
func sh(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

func (l *lab) netns(ctx context.Context, name string) (string, error) {
	if _, err := sh(ctx, "ip", "netns", "add", name); err != nil {
		return "", err
	}
	l.namespaces = append(l.namespaces, name)
	_, err := sh(ctx, "ip", "-n", name, "link", "set", "lo", "up")
	return name, err
}

// startAgent runs an agent for host, whose node name is the namespace's.
func (l *lab) startAgent(ctx context.Context, st *platform.Stack, host, vtep string) error {
	a, err := agent.New(agent.Config{Node: host, VTEP: vtep, NetNS: dataplane.NamedNSDir + "/" + host, Resync: l.resync}, st.ChainFire.Client())
	if err != nil {
		return err
	}
	if err := a.Start(ctx); err != nil {
		return err
	}
	l.agents = append(l.agents, a)
	return nil
}

// build makes the lab, binds ports a and b (of one subnet, default
// security group) to the instances' devices and waits until both are
// ACTIVE. On error the caller still calls Close.
func (l *lab) build(ctx context.Context, st *platform.Stack, api rest) (a, b prismnet.Port, err error) {
	if l.h1, err = l.netns(ctx, l.prefix+"h1"); err != nil {
		return
	}
	if l.h2, err = l.netns(ctx, l.prefix+"h2"); err != nil {
		return
	}
	for _, c := range [][]string{
		{"ip", "link", "add", "ul0", "netns", l.h1, "type", "veth", "peer", "name", "ul0", "netns", l.h2},
		{"ip", "-n", l.h1, "addr", "add", "10.250.0.1/24", "dev", "ul0"},
		{"ip", "-n", l.h2, "addr", "add", "10.250.0.2/24", "dev", "ul0"},
		{"ip", "-n", l.h1, "link", "set", "ul0", "mtu", fmt.Sprint(l.underlayMTU), "up"},
		{"ip", "-n", l.h2, "link", "set", "ul0", "mtu", fmt.Sprint(l.underlayMTU), "up"},
	} {
		if _, err = sh(ctx, c...); err != nil {
			return
		}
	}
	if err = l.startAgent(ctx, st, l.h1, "10.250.0.1"); err != nil {
		return
	}
	if err = l.startAgent(ctx, st, l.h2, "10.250.0.2"); err != nil {
		return
	}
	v, err := api.vpc(ctx, "bench-net", vpcCIDR)
	if err != nil {
		return
	}
	l.vni = v.VNI
	s, err := api.subnet(ctx, v.ID, subnetCIDR)
	if err != nil {
		return
	}
	if a, err = api.port(ctx, s.ID); err != nil {
		return
	}
	if b, err = api.port(ctx, s.ID); err != nil {
		return
	}
	if l.ia, err = l.instance(ctx, "a", l.h1, "tap-a", a, s.GatewayIP); err != nil {
		return
	}
	if l.ib, err = l.instance(ctx, "b", l.h2, "tap-b", b, s.GatewayIP); err != nil {
		return
	}
	for _, c := range [][]string{
		{"ip", "link", "add", "direct0", "netns", l.ia, "type", "veth", "peer", "name", "direct0", "netns", l.ib},
		{"ip", "-n", l.ia, "addr", "add", directA + "/24", "dev", "direct0"},
		{"ip", "-n", l.ib, "addr", "add", directB + "/24", "dev", "direct0"},
		{"ip", "-n", l.ia, "link", "set", "direct0", "up"},
		{"ip", "-n", l.ib, "link", "set", "direct0", "up"},
	} {
		if _, err = sh(ctx, c...); err != nil {
			return
		}
	}
	if err = api.bind(ctx, a.ID, l.h1, "tap-a"); err != nil {
		return
	}
	if err = api.bind(ctx, b.ID, l.h2, "tap-b"); err != nil {
		return
	}
	for _, p := range []*prismnet.Port{&a, &b} {
		if *p, err = api.waitActive(ctx, p.ID, 30*time.Second); err != nil {
			return
		}
	}
	return a, b, nil
}

// instance makes an instance namespace whose eth0 has the port's MAC, the
// VPC's MTU and the port's address; its peer, ifname, is in
// host, where the agent attaches it to the VPC's bridge.
func (l *lab) instance(ctx context.Context, name, host, ifname string, p prismnet.Port, gw string) (string, error) {
	ns, err := l.netns(ctx, l.prefix+name)
	if err != nil {
		return "", err
	}
	for _, c := range [][]string{
		{"ip", "link", "add", ifname, "netns", host, "type", "veth", "peer", "name", "eth0", "netns", ns},
		{"ip", "-n", ns, "link", "set", "eth0", "address", p.MACAddress, "mtu", fmt.Sprint(l.vpcMTU()), "up"},
		{"ip", "-n", host, "link", "set", ifname, "up"},
		{"ip", "-n", ns, "addr", "add", p.IP + "/24", "dev", "eth0"},
		{"ip", "-n", ns, "route", "add", "default", "via", gw},
	} {
		if _, err := sh(ctx, c...); err != nil {
			return ns, err
		}
	}
	return ns, nil
}

// Close tears the agents' data planes down and deletes every namespace the
// lab made (which takes their links with them), then waits until they are
// gone.
func (l *lab) Close() error {
	var errs []error
	for _, a := range l.agents {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		if err := a.Teardown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("agent teardown: %w", err))
		}
		cancel()
	}
	// Router namespaces a failed teardown left behind go too.
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && (strings.HasPrefix(f[0], "pn-"+l.h1+"-") || strings.HasPrefix(f[0], "pn-"+l.h2+"-")) && l.h1 != "" {
			l.namespaces = append(l.namespaces, f[0])
		}
	}
	for _, ns := range l.namespaces {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("ip netns del %s: %v: %s", ns, err, strings.TrimSpace(string(out))))
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, ns := range l.namespaces {
		for {
			if _, err := os.Stat(dataplane.NamedNSDir + "/" + ns); errors.Is(err, os.ErrNotExist) {
				break
			}
			if time.Now().After(deadline) {
				errs = append(errs, fmt.Errorf("namespace %s still exists", ns))
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return errors.Join(errs...)
}

// iperfRun is one iperf3 client run's result.
type iperfRun struct {
	path        string // "veth" or "vxlan"
	bps         float64
	retransmits int
	cpuSender   float64 // % of one core, as iperf3 reports it (host_total)
	cpuReceiver float64
}

// iperf runs `iperf3 -c dst -t secs -O 1 -J` in ns and parses its report.
func iperf(ctx context.Context, ns, dst string, secs int) (iperfRun, error) {
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "iperf3", "-c", dst,
		"-t", fmt.Sprint(secs), "-O", "1", "-J").Output()
	var rep struct {
		End struct {
			SumSent struct {
				Retransmits int `json:"retransmits"`
			} `json:"sum_sent"`
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
			CPU struct {
				HostTotal   float64 `json:"host_total"`
				RemoteTotal float64 `json:"remote_total"`
			} `json:"cpu_utilization_percent"`
		} `json:"end"`
		Error string `json:"error"`
	}
	if jerr := json.Unmarshal(out, &rep); jerr != nil {
		if err == nil {
			err = jerr
		}
		return iperfRun{}, fmt.Errorf("iperf3 -c %s in %s: %w: %s", dst, ns, err, strings.TrimSpace(string(out)))
	}
	if rep.Error != "" || err != nil {
		return iperfRun{}, fmt.Errorf("iperf3 -c %s in %s: %v %s", dst, ns, err, rep.Error)
	}
	return iperfRun{bps: rep.End.SumReceived.BitsPerSecond, retransmits: rep.End.SumSent.Retransmits,
		cpuSender: rep.End.CPU.HostTotal, cpuReceiver: rep.End.CPU.RemoteTotal}, nil
}

// iperfServer starts `iperf3 -s` in ns; stop kills it.
func iperfServer(ns string) (stop func(), err error) {
	cmd := exec.Command("ip", "netns", "exec", ns, "iperf3", "-s")
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }, nil
}

// waitTCP waits until a short iperf3 run from ns to dst succeeds: the
// server is up and the path forwards.
func waitTCP(ctx context.Context, ns, dst string) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "iperf3", "-c", dst, "-t", "1", "-J").Output()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("no iperf3 connection from %s to %s: %w", ns, dst, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// throughput runs opt.runs pairs of iperf3 runs from a to b, one over the
// plain veth and one across the VPC, the pair's order alternating (veth
// first, then vxlan first, ...), so drifting machine load hits both paths
// alike.
func throughput(ctx context.Context, opt options, l *lab, b prismnet.Port, stderr io.Writer) ([]iperfRun, error) {
	return throughputTo(ctx, opt, l, b.IP, stderr)
}

// throughputTo is throughput with the "vxlan" runs going to dst (the
// diagnostics point them at a changed path).
func throughputTo(ctx context.Context, opt options, l *lab, dst string, stderr io.Writer) ([]iperfRun, error) {
	stop, err := iperfServer(l.ib)
	if err != nil {
		return nil, err
	}
	defer stop()
	for _, d := range []string{directB, dst} {
		if err := waitTCP(ctx, l.ia, d); err != nil {
			return nil, err
		}
	}
	var runs []iperfRun
	for i := range opt.runs {
		order := []string{"veth", "vxlan"}
		if i%2 == 1 {
			order = []string{"vxlan", "veth"}
		}
		for _, path := range order {
			to := directB
			if path == "vxlan" {
				to = dst
			}
			r, err := iperf(ctx, l.ia, to, opt.secs)
			if err != nil {
				return nil, err
			}
			r.path = path
			fmt.Fprintf(stderr, "run %d %-5s %6.2f Gbit/s  %d retransmits\n", i+1, path, r.bps/1e9, r.retransmits)
			runs = append(runs, r)
		}
	}
	return runs, nil
}
