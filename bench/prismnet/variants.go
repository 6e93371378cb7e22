package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/photoncloud/photon/bench/internal/pairbench"
	"github.com/photoncloud/photon/services/prismnet"
	"github.com/photoncloud/photon/services/prismnet/dataplane"
)

// variant is one change to the lab, made on top of the ones before it, to
// find what the VXLAN path's throughput goes to (--variants; not judged).
// The agents do not undo the changes: with --variants they reconcile only
// when ChainFire changes, and nothing does meanwhile.
type variant struct {
	name string
	cmds func(l *lab) [][]string
	// veth, when set, changes the plain veth instead, and the variant's
	// figure is that veth's against the unchanged one.
	veth bool
}

// The second plain veth's addresses.
const direct1A, direct1B = "192.168.251.1", "192.168.251.2"

var variantList = []variant{
	{name: "as built (control)", cmds: func(*lab) [][]string { return nil }},
	{name: "nftables ruleset flushed on both hosts", cmds: func(l *lab) [][]string {
		return [][]string{{"ip", "netns", "exec", l.h1, "nft", "flush", "ruleset"}, {"ip", "netns", "exec", l.h2, "nft", "flush", "ruleset"}}
	}},
	{name: "+ bridge-nf-call-iptables=0 (no br_netfilter)", cmds: func(l *lab) [][]string {
		return [][]string{{"ip", "netns", "exec", l.h1, "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=0"},
			{"ip", "netns", "exec", l.h2, "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=0"}}
	}},
	{name: "a second plain veth, MTU 1450, vs the first", veth: true, cmds: func(l *lab) [][]string {
		return [][]string{
			{"ip", "link", "add", "direct1", "netns", l.ia, "type", "veth", "peer", "name", "direct1", "netns", l.ib},
			{"ip", "-n", l.ia, "addr", "add", direct1A + "/24", "dev", "direct1"},
			{"ip", "-n", l.ib, "addr", "add", direct1B + "/24", "dev", "direct1"},
			{"ip", "-n", l.ia, "link", "set", "direct1", "mtu", "1450", "up"},
			{"ip", "-n", l.ib, "link", "set", "direct1", "mtu", "1450", "up"},
		}
	}},
}

// offloads is what ethtool says of the offloads that matter for a
// tunnelled TCP stream on each device of the VXLAN path.
func offloads(ctx context.Context, l *lab) []string {
	keys := []string{"tx-checksumming", "scatter-gather", "tcp-segmentation-offload", "generic-segmentation-offload",
		"generic-receive-offload", "tx-udp_tnl-segmentation", "rx-udp-gro-forwarding"}
	short := []string{"csum", "sg", "tso", "gso", "gro", "udp_tnl", "udp-gro-fwd"}
	var out []string
	for _, d := range [][2]string{{l.ia, "eth0"}, {l.h1, "tap-a"}, {l.h1, dataplane.BridgeName(l.vni)}, {l.h1, dataplane.VXLANName(l.vni)}, {l.h1, "ul0"}, {l.ia, "direct0"}} {
		k := pairbench.Output(ctx, "ip", "netns", "exec", d[0], "ethtool", "-k", d[1])
		var f []string
		for i, key := range keys {
			v := "?"
			for _, line := range strings.Split(k, "\n") {
				if name, val, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && name == key {
					v = strings.Fields(val)[0]
				}
			}
			f = append(f, short[i]+"="+v)
		}
		out = append(out, fmt.Sprintf("%-12s %s", d[1], strings.Join(f, " ")))
	}
	return out
}

// runVariants measures each variant against the plain veth, opt.runs pairs
// each, and prints the table. It changes the lab for good: it runs last.
func runVariants(ctx context.Context, opt options, l *lab, b prismnet.Port, w, stderr io.Writer) error {
	fmt.Fprintf(w, "\ndiagnostics (--variants; not judged): each change is made on top of the ones above it\n")
	if _, err := sh(ctx, "ethtool", "--version"); err == nil {
		for _, line := range offloads(ctx, l) {
			fmt.Fprintf(w, "    %s\n", line)
		}
	}
	for _, v := range variantList {
		for _, c := range v.cmds(l) {
			if _, err := sh(ctx, c...); err != nil {
				return err
			}
		}
		fmt.Fprintf(stderr, "variant: %s\n", v.name)
		dst := b.IP
		if v.veth {
			dst = direct1B
		}
		o := opt
		runs, err := throughputTo(ctx, o, l, dst, stderr)
		if err != nil {
			return fmt.Errorf("variant %q: %w", v.name, err)
		}
		var base, alt []float64
		for _, r := range runs {
			if r.path == "veth" {
				base = append(base, r.bps/1e9)
			} else {
				alt = append(alt, r.bps/1e9)
			}
		}
		label := "vxlan"
		if v.veth {
			label = "veth1450"
		}
		fmt.Fprintf(w, "    %-48s  veth %5.2f  %s %5.2f Gbit/s  ratio %.3f\n", v.name, pairbench.Median(base), label, pairbench.Median(alt),
			pairbench.Median(alt)/pairbench.Median(base))
	}
	return nil
}
