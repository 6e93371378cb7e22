package main

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/photoncloud/photon/bench/internal/pairbench"
	"github.com/photoncloud/photon/services/prismnet/dataplane"
)

// pathInfo is what the report says about the two paths: devices, MTUs and
// the host's filtering, read from the kernel after the agents programmed it.
type pathInfo struct {
	lines []string
}

// describePaths reads the devices of both paths from the kernel.
func describePaths(ctx context.Context, l *lab) pathInfo {
	var p pathInfo
	link := func(ns, dev string) string {
		out, err := exec.CommandContext(ctx, "ip", "-n", ns, "-d", "link", "show", dev).Output()
		if err != nil {
			return dev + " ?"
		}
		f := strings.Fields(string(out))
		get := func(k string) string {
			if i := slices.Index(f, k); i >= 0 && i+1 < len(f) {
				return f[i+1]
			}
			return "?"
		}
		return fmt.Sprintf("%s mtu %s gso_max_size %s gro_max_size %s", dev, get("mtu"), get("gso_max_size"), get("gro_max_size"))
	}
	br, vx := dataplane.BridgeName(l.vni), dataplane.VXLANName(l.vni)
	p.lines = append(p.lines,
		"veth   a "+link(l.ia, "direct0")+" ↔ b direct0 (one veth pair)",
		"vxlan  a "+link(l.ia, "eth0")+" → h1 tap-a → "+link(l.h1, br)+" → "+link(l.h1, vx)+" → ul0 → h2 (the same in reverse) → b eth0")
	nf := pairbench.Output(ctx, "ip", "netns", "exec", l.h1, "sysctl", "-n", "net.bridge.bridge-nf-call-iptables")
	rules := pairbench.Output(ctx, "ip", "netns", "exec", l.h1, "nft", "list", "ruleset")
	n := 0
	for _, line := range strings.Split(rules, "\n") {
		t := strings.TrimSpace(line)
		if t != "" && !strings.HasSuffix(t, "{") && t != "}" && !strings.HasPrefix(t, "type ") && !strings.HasPrefix(t, "policy ") && !strings.HasPrefix(t, "elements") {
			n++
		}
	}
	p.lines = append(p.lines, fmt.Sprintf("host   h1: bridge-nf-call-iptables=%s, nftables ruleset of about %d statement lines (default security group on both ports)", nf, n))
	return p
}

func report(w io.Writer, opt options, e pairbench.Env, pr portsResult, runs []iperfRun, paths pathInfo) {
	fmt.Fprintf(w, "PrismNET benchmark — %s\n\n", e.Date.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "command   %s\n", e.Command)
	fmt.Fprintf(w, "machine   %d CPUs (%s), %s, %s\n", e.CPUs, e.CPUModel, e.Memory, e.Kernel)
	fmt.Fprintf(w, "load avg  %s at start, %s at end (shared machine)\n", e.LoadStart, e.LoadEnd)
	fmt.Fprintf(w, "versions  photon at commit %s plus the working tree, %s, %s; %s\n", e.Commit, e.GoVersion, opt.gogc,
		pairbench.Output(context.Background(), "sh", "-c", "iperf3 --version | head -1"))
	fmt.Fprintf(w, "data      %s (%s), fsync on\n", e.Dir, e.FSType)
	fmt.Fprintf(w, "run time  %s\n\n", e.Elapsed.Round(time.Second))

	c := pr.create
	fmt.Fprintf(w, "(a) port creation: POST /api/v1/ports, %d clients (keep-alive HTTP, loopback trust), one %s subnet,\n", opt.conc, pr.subnetCIDR)
	fmt.Fprintf(w, "    %d ports timed after %d untimed; no data-plane agent running yet\n", opt.ports, pr.warm)
	fmt.Fprintf(w, "    %-8s %6s  %9s  %8s  %8s  %8s  %10s  %6s  %s\n", "op", "n", "ops/s", "p50", "p99", "max", "CPU/op*", "others", "errs")
	for _, row := range []struct {
		name string
		ph   phase
	}{{"create", c}, {"delete", pr.delete}} {
		ph := row.ph
		fmt.Fprintf(w, "    %-8s %6d  %9.0f  %8s  %8s  %8s  %10s  %6.1f  %d\n", row.name, ph.n, ph.perSec(),
			pairbench.Latency(pairbench.Percentile(ph.lats, 0.5)), pairbench.Latency(pairbench.Percentile(ph.lats, 0.99)),
			pairbench.Latency(ph.lats[len(ph.lats)-1]), (ph.cpu / time.Duration(max(ph.n, 1))).Round(time.Microsecond), ph.others, ph.errs)
	}
	var steps []string
	for _, s := range pr.steps {
		steps = append(steps, fmt.Sprintf("%.0f", s.perSec()))
	}
	fmt.Fprintf(w, "    * CPU/op: this process (server and clients); others: cores the rest of the machine used meanwhile\n")
	fmt.Fprintf(w, "    creates/s in each third of the run (the subnet filling): %s\n", strings.Join(steps, " → "))
	fmt.Fprintf(w, "    %d ports: %d distinct IPs, %d distinct MACs, all in the project's default group: %v\n",
		opt.ports+pr.warm, pr.distinctIPs, pr.distinctMACs, pr.defaultSG)
	fmt.Fprintf(w, "    peer: none in the run (OpenStack Neutron is not installable here), so no ratio and no target\n\n")

	fmt.Fprintf(w, "(b) TCP throughput a→b, iperf3 -t %d -O 1 (one stream), %d run(s) per path, pairs alternating veth-first / vxlan-first\n", opt.secs, opt.runs)
	for _, l := range paths.lines {
		fmt.Fprintf(w, "    %s\n", l)
	}
	fmt.Fprintf(w, "    %-5s  %-24s  %12s  %s\n", "path", "Gbit/s per run", "median", "retransmits, CPU % sender/receiver per run")
	med := map[string]float64{}
	for _, path := range []string{"veth", "vxlan"} {
		var g []float64
		var gs, extra []string
		for _, r := range runs {
			if r.path == path {
				g = append(g, r.bps/1e9)
				gs = append(gs, fmt.Sprintf("%.2f", r.bps/1e9))
				extra = append(extra, fmt.Sprintf("%d %.0f/%.0f", r.retransmits, r.cpuSender, r.cpuReceiver))
			}
		}
		med[path] = pairbench.Median(g)
		fmt.Fprintf(w, "    %-5s  %-24s  %12.2f  %s\n", path, strings.Join(gs, " "), med[path], strings.Join(extra, ", "))
	}
	var per []string
	for i := 0; i+1 < len(runs); i += 2 {
		v, x := runs[i], runs[i+1]
		if v.path != "veth" {
			v, x = x, v
		}
		per = append(per, fmt.Sprintf("%.3f", x.bps/v.bps))
	}
	ratio := med["vxlan"] / med["veth"]
	verdict := "PASS"
	if ratio < targetRatio {
		verdict = "BELOW"
	}
	fmt.Fprintf(w, "    vxlan/veth = %.3f (median over median; per pair %s)  %s  (target ≥ %.1f)\n", ratio, strings.Join(per, " "), verdict, targetRatio)
}
