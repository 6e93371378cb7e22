package dataplane

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

func fwPrefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

var fwAnywhere = fwPrefixes("0.0.0.0/0")

func TestFirewallRenderRules(t *testing.T) {
	tests := []struct {
		name  string
		rules []Rule
		want  []string // text as an ingress chain renders it
		err   bool
	}{
		{name: "none", rules: nil, want: nil},
		{name: "tcp port from anywhere", rules: []Rule{{Protocol: "tcp", PortMin: 22, PortMax: 22, Remote: fwAnywhere}},
			want: []string{"meta l4proto tcp th dport 22"}},
		{name: "port max 0 means the single port", rules: []Rule{{Protocol: "udp", PortMin: 53, Remote: fwAnywhere}},
			want: []string{"meta l4proto udp th dport 53"}},
		{name: "port range", rules: []Rule{{Protocol: "tcp", PortMin: 8000, PortMax: 8100, Remote: fwPrefixes("10.0.0.0/8")}},
			want: []string{"meta l4proto tcp th dport 8000-8100 ip saddr 10.0.0.0/8"}},
		{name: "0/0 and full range mean every port", rules: []Rule{
			{Protocol: "tcp", Remote: fwAnywhere},
			{Protocol: "udp", PortMin: 0, PortMax: 65535, Remote: fwAnywhere},
		}, want: []string{"meta l4proto tcp", "meta l4proto udp"}},
		{name: "any ignores ports", rules: []Rule{{Protocol: "any", PortMin: 22, PortMax: 22, Remote: fwPrefixes("192.0.2.7/32")}},
			want: []string{"ip saddr 192.0.2.7/32"}},
		{name: "icmp ignores ports", rules: []Rule{{Protocol: "icmp", PortMin: 8, Remote: fwAnywhere}},
			want: []string{"meta l4proto icmp"}},
		{name: "empty remote skipped", rules: []Rule{
			{Protocol: "tcp", PortMin: 22, PortMax: 22},
			{Protocol: "icmp", Remote: fwPrefixes("2001:db8::/32")}, // no IPv4 left
			{Protocol: "udp", PortMin: 53, PortMax: 53, Remote: fwPrefixes("10.1.0.0/16")},
		}, want: []string{"meta l4proto udp th dport 53 ip saddr 10.1.0.0/16"}},
		{name: "remote group becomes a set of /32s", rules: []Rule{{Protocol: "tcp", PortMin: 5432, PortMax: 5432,
			Remote: fwPrefixes("10.44.0.9/32", "10.44.0.3/32", "10.44.0.9/32")}},
			want: []string{"meta l4proto tcp th dport 5432 ip saddr { 10.44.0.3/32, 10.44.0.9/32 }"}},
		{name: "prefixes masked, nested dropped, /0 wins", rules: []Rule{
			{Protocol: "tcp", PortMin: 1, PortMax: 1, Remote: fwPrefixes("10.1.2.3/16", "10.1.9.0/24", "172.16.0.0/12")},
			{Protocol: "tcp", PortMin: 2, PortMax: 2, Remote: fwPrefixes("10.0.0.1/32", "0.0.0.0/0")},
		}, want: []string{
			"meta l4proto tcp th dport 1 ip saddr { 10.1.0.0/16, 172.16.0.0/12 }",
			"meta l4proto tcp th dport 2",
		}},
		{name: "duplicates merged and order canonical", rules: []Rule{
			{Protocol: "udp", Remote: fwAnywhere},
			{Protocol: "any", Remote: fwAnywhere},
			{Protocol: "udp", Remote: fwAnywhere},
		}, want: []string{"", "meta l4proto udp"}},
		{name: "unknown protocol", rules: []Rule{{Protocol: "sctp", Remote: fwAnywhere}}, err: true},
		{name: "reversed range", rules: []Rule{{Protocol: "tcp", PortMin: 90, PortMax: 80, Remote: fwAnywhere}}, err: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := fwRenderRules(tc.rules)
			if tc.err {
				if err == nil {
					t.Fatalf("fwRenderRules = %v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var texts []string
			for _, r := range got {
				texts = append(texts, r.text("ip saddr"))
			}
			if strings.Join(texts, "\n") != strings.Join(tc.want, "\n") || len(texts) != len(tc.want) {
				t.Errorf("rules:\n%q\nwant:\n%q", texts, tc.want)
			}
		})
	}
}

func TestFirewallRenderPlan(t *testing.T) {
	a := netip.MustParseAddr("10.44.0.2")
	b := netip.MustParseAddr("10.44.0.3")
	plan := &Plan{VPCs: []VPC{
		{VNI: 8, Ports: []Port{{ID: "c", IP: a, Egress: []Rule{{Protocol: "any", Remote: fwAnywhere}}}}},
		{VNI: 7, Ports: []Port{
			{ID: "b", IP: b, Ingress: []Rule{{Protocol: "tcp", PortMin: 22, PortMax: 22, Remote: fwAnywhere}}},
			{ID: "a", IP: a, Egress: []Rule{{Protocol: "icmp", Remote: fwPrefixes("10.44.0.0/24")}}},
		}},
	}}
	want := `chain prerouting
  iifname "pnb-000007" ct zone set 7
  iifname "pnb-000008" ct zone set 8
chain forward
  iifname "pnb-000007" ip saddr 10.44.0.2 jump eg_7_0
  iifname "pnb-000007" ip saddr 10.44.0.3 jump eg_7_1
  iifname "pnb-000008" ip saddr 10.44.0.2 jump eg_8_0
  oifname "pnb-000007" ip daddr 10.44.0.2 jump in_7_0
  oifname "pnb-000007" ip daddr 10.44.0.3 jump in_7_1
  oifname "pnb-000008" ip daddr 10.44.0.2 jump in_8_0
chain eg_7_0
  meta l4proto icmp ip daddr 10.44.0.0/24 return
  drop
chain in_7_0
  drop
chain eg_7_1
  drop
chain in_7_1
  meta l4proto tcp th dport 22 accept
  drop
chain eg_8_0
  return
  drop
chain in_8_0
  drop
`
	spec, err := fwRender(plan)
	if err != nil {
		t.Fatal(err)
	}
	if got := spec.String(); got != want {
		t.Errorf("rendered:\n%s\nwant:\n%s", got, want)
	}

	// The order the agent lists things in does not change the fingerprint;
	// a changed rule does.
	shuffled := &Plan{VPCs: []VPC{plan.VPCs[1], plan.VPCs[0]}}
	shuffled.VPCs[0].Ports = []Port{plan.VPCs[1].Ports[1], plan.VPCs[1].Ports[0]}
	spec2, err := fwRender(shuffled)
	if err != nil {
		t.Fatal(err)
	}
	if spec2.fingerprint() != spec.fingerprint() {
		t.Errorf("fingerprint depends on plan order:\n%s\n%s", spec, spec2)
	}
	changed := &Plan{VPCs: []VPC{plan.VPCs[0], plan.VPCs[1]}}
	changed.VPCs[1].Ports = []Port{plan.VPCs[1].Ports[0], plan.VPCs[1].Ports[1]}
	changed.VPCs[1].Ports[0].Ingress = []Rule{{Protocol: "tcp", PortMin: 23, PortMax: 23, Remote: fwAnywhere}}
	spec3, err := fwRender(changed)
	if err != nil {
		t.Fatal(err)
	}
	if spec3.fingerprint() == spec.fingerprint() {
		t.Error("a changed rule kept the fingerprint")
	}
	if fp := spec.fingerprint(); !strings.HasPrefix(fp, "fp_") || len(fp) > 64 {
		t.Errorf("fingerprint %q is not a short fp_ chain name", fp)
	}
}

func TestFirewallRenderErrors(t *testing.T) {
	a := netip.MustParseAddr("10.44.0.2")
	tests := map[string]*Plan{
		"duplicate IP in a VPC": {VPCs: []VPC{{VNI: 7, Ports: []Port{{ID: "a", IP: a}, {ID: "b", IP: a}}}}},
		"IPv6 port":             {VPCs: []VPC{{VNI: 7, Ports: []Port{{ID: "a", IP: netip.MustParseAddr("fd00::1")}}}}},
		"no port IP":            {VPCs: []VPC{{VNI: 7, Ports: []Port{{ID: "a"}}}}},
		"conntrack zone clash":  {VPCs: []VPC{{VNI: 7}, {VNI: 7 + 1<<16}}},
		"bad rule":              {VPCs: []VPC{{VNI: 7, Ports: []Port{{ID: "a", IP: a, Egress: []Rule{{Protocol: "gre", Remote: fwAnywhere}}}}}}},
	}
	for name, p := range tests {
		t.Run(name, func(t *testing.T) {
			if spec, err := fwRender(p); err == nil {
				t.Errorf("fwRender = %s, want an error", spec)
			}
		})
	}
	// The same IP in two VPCs is fine: they are told apart by bridge.
	if _, err := fwRender(&Plan{VPCs: []VPC{{VNI: 7, Ports: []Port{{IP: a}}}, {VNI: 8, Ports: []Port{{IP: a}}}}}); err != nil {
		t.Error(err)
	}
}

func TestFirewallIntervals(t *testing.T) {
	els := fwIntervals(fwPrefixes("10.0.0.0/8", "11.0.0.0/8", "12.1.0.0/16", "240.0.0.0/4"))
	var got []string
	for _, e := range els {
		s := netip.AddrFrom4([4]byte(e.Key)).String()
		if e.IntervalEnd {
			s = "end " + s
		}
		got = append(got, s)
	}
	want := "10.0.0.0,end 12.0.0.0,12.1.0.0,end 12.2.0.0,240.0.0.0"
	if strings.Join(got, ",") != want {
		t.Errorf("intervals %v, want %s", got, want)
	}
}

// --- root tests: real namespaces, bridges, veths and traffic ---

func fwNeedRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, nftables)")
	}
}

// fwInNS runs f on a locked thread switched into ns. Sockets f creates
// stay in ns; the thread is retired if it cannot switch back.
func fwInNS(t *testing.T, ns netns.NsHandle, f func()) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			done <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			done <- err
			return
		}
		f()
		if err := netns.Set(orig); err != nil {
			done <- err
			return
		}
		runtime.UnlockOSThread()
		done <- nil
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// fwNewNS creates the named namespace fw<pid><tag>, deleted at cleanup
// (which also deletes the links and nft tables in it).
func fwNewNS(t *testing.T, tag string) (netns.NsHandle, string) {
	t.Helper()
	name := fmt.Sprintf("fw%d%s", os.Getpid(), tag)
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			done <- err
			return
		}
		defer orig.Close()
		ns, err := netns.NewNamed(name)
		if err == nil {
			ns.Close()
		}
		if serr := netns.Set(orig); serr != nil {
			done <- errors.Join(err, serr)
			return
		}
		runtime.UnlockOSThread()
		done <- err
	}()
	if err := <-done; err != nil {
		t.Fatalf("netns %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := netns.DeleteNamed(name); err != nil {
			t.Errorf("delete netns %s: %v", name, err)
		}
	})
	ns, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns, name
}

func fwHandle(t *testing.T, ns netns.NsHandle) *netlink.Handle {
	t.Helper()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// fwAddBridge creates VPC vni's bridge in the node namespace.
func fwAddBridge(t *testing.T, node *netlink.Handle, vni uint32) {
	t.Helper()
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: BridgeName(vni)}}
	if err := node.LinkAdd(br); err != nil {
		t.Fatalf("bridge: %v", err)
	}
	if err := node.LinkSetUp(br); err != nil {
		t.Fatal(err)
	}
}

// fwInstance is a namespace standing in for an instance.
type fwInstance struct {
	ns   netns.NsHandle
	name string
	ip   netip.Addr
}

// fwAddInstance creates an instance namespace whose eth0 (ip/24) is the
// peer of hostIf, attached to VPC vni's bridge in the node namespace.
func fwAddInstance(t *testing.T, node *netlink.Handle, vni uint32, tag, hostIf, ip string) fwInstance {
	t.Helper()
	ns, name := fwNewNS(t, tag)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: hostIf}, PeerName: "eth0", PeerNamespace: netlink.NsFd(ns)}
	if err := node.LinkAdd(veth); err != nil {
		t.Fatalf("veth %s: %v", hostIf, err)
	}
	br, err := node.LinkByName(BridgeName(vni))
	if err != nil {
		t.Fatal(err)
	}
	if err := node.LinkSetMaster(veth, br); err != nil {
		t.Fatal(err)
	}
	if err := node.LinkSetUp(veth); err != nil {
		t.Fatal(err)
	}
	h := fwHandle(t, ns)
	eth, err := h.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	addr, err := netlink.ParseAddr(ip + "/24")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.AddrAdd(eth, addr); err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"lo", "eth0"} {
		link, err := h.LinkByName(l)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.LinkSetUp(link); err != nil {
			t.Fatal(err)
		}
	}
	return fwInstance{ns: ns, name: name, ip: netip.MustParseAddr(ip)}
}

// fwServeTCP listens on port in the instance and echoes each connection.
func fwServeTCP(t *testing.T, in fwInstance, port int) {
	t.Helper()
	var ln net.Listener
	var err error
	fwInNS(t, in.ns, func() { ln, err = net.Listen("tcp4", fmt.Sprintf(":%d", port)) })
	if err != nil {
		t.Fatal(err)
	}
	// Cleanup closes the accepted connections itself: their peers' FINs
	// may be dropped (a connection opened without the table is invalid in
	// its zone once the table is there).
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); defer c.Close(); io.Copy(c, c) }()
		}
	}()
}

// fwDial connects from the instance; the firewall drops rather than
// rejects, so a blocked port shows as a timeout (a refusal would mean no
// listener, which these tests never set up).
func fwDial(t *testing.T, from fwInstance, to netip.Addr, port int) (net.Conn, error) {
	t.Helper()
	var c net.Conn
	var err error
	fwInNS(t, from.ns, func() {
		c, err = net.DialTimeout("tcp4", netip.AddrPortFrom(to, uint16(port)).String(), time.Second)
	})
	if c != nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

func fwWantConnect(t *testing.T, from fwInstance, to netip.Addr, port int) {
	t.Helper()
	if _, err := fwDial(t, from, to, port); err != nil {
		t.Errorf("%v → %v:%d: %v, want a connection", from.ip, to, port, err)
	}
}

func fwWantBlocked(t *testing.T, from fwInstance, to netip.Addr, port int) {
	t.Helper()
	_, err := fwDial(t, from, to, port)
	var ne net.Error
	if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("%v → %v:%d: %v, want a timeout (dropped)", from.ip, to, port, err)
	}
}

func fwPing(from fwInstance, to netip.Addr) error {
	out, err := exec.Command("ip", "netns", "exec", from.name, "busybox", "ping", "-c1", "-W1", to.String()).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	return nil
}

func fwNftList(t *testing.T, node string) string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", node, "nft", "list", "ruleset").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list ruleset: %v: %s", err, out)
	}
	return string(out)
}

func fwApply(t *testing.T, f *firewall, p *Plan, wantChanged bool) {
	t.Helper()
	changed, err := f.Apply(p)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if changed != wantChanged {
		t.Fatalf("Apply changed = %v, want %v", changed, wantChanged)
	}
}

func TestFirewallSecurityGroups(t *testing.T) {
	fwNeedRoot(t)
	nodeNS, nodeName := fwNewNS(t, "n")
	node := fwHandle(t, nodeNS)
	fwAddBridge(t, node, 7)
	a := fwAddInstance(t, node, 7, "a", "fwa", "10.44.0.2")
	b := fwAddInstance(t, node, 7, "b", "fwb", "10.44.0.3")
	for _, in := range []fwInstance{a, b} {
		fwServeTCP(t, in, 22)
		fwServeTCP(t, in, 8080)
	}
	// Apply must turn br_netfilter on, or bridged traffic bypasses nft.
	if out, err := exec.Command("ip", "netns", "exec", nodeName, "sh", "-c",
		"echo 0 > /proc/sys/net/bridge/bridge-nf-call-iptables").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}

	egressAny := []Rule{{Protocol: "any", Remote: fwAnywhere}}
	plan := func(bIngress []Rule) *Plan {
		return &Plan{VPCs: []VPC{{ID: "vpc", VNI: 7, Ports: []Port{
			{ID: "a", IfName: "fwa", IP: a.ip, Egress: egressAny,
				Ingress: []Rule{{Protocol: "tcp", PortMin: 8080, PortMax: 8080, Remote: fwAnywhere}}},
			{ID: "b", IfName: "fwb", IP: b.ip, Egress: egressAny, Ingress: bIngress},
		}}}}
	}
	// icmp from a remote group (a set) that holds A.
	icmp := Rule{Protocol: "icmp", Remote: fwPrefixes("10.44.0.2/32", "10.44.0.9/32", "192.0.2.0/24")}
	ssh := Rule{Protocol: "tcp", PortMin: 22, PortMax: 22, Remote: fwAnywhere}
	p1 := plan([]Rule{ssh, icmp})

	fw := newFirewall(nodeNS)
	fwApply(t, fw, p1, true)
	out, err := exec.Command("ip", "netns", "exec", nodeName, "cat", "/proc/sys/net/bridge/bridge-nf-call-iptables").Output()
	if err != nil || strings.TrimSpace(string(out)) != "1" {
		t.Fatalf("bridge-nf-call-iptables = %q (%v), want 1", out, err)
	}

	fwWantConnect(t, a, b.ip, 22)
	fwWantBlocked(t, a, b.ip, 8080)
	if err := fwPing(a, b.ip); err != nil {
		t.Errorf("ping A → B: %v", err)
	}
	// The other way: A's ingress allows only 8080 and no icmp.
	fwWantConnect(t, b, a.ip, 8080)
	fwWantBlocked(t, b, a.ip, 22)
	if err := fwPing(b, a.ip); err == nil {
		t.Error("ping B → A passed; A allows no icmp")
	}

	// Idempotent, also for a fresh firewall (a restarted agent) and a plan
	// listing the same ports in another order.
	fwApply(t, fw, p1, false)
	fwApply(t, newFirewall(nodeNS), p1, false)
	reordered := plan([]Rule{icmp, ssh})
	reordered.VPCs[0].Ports[0], reordered.VPCs[0].Ports[1] = reordered.VPCs[0].Ports[1], reordered.VPCs[0].Ports[0]
	fwApply(t, newFirewall(nodeNS), reordered, false)

	// Removing the rule blocks new connections as soon as Apply returns;
	// an established one survives the table's replacement.
	est, err := fwDial(t, a, b.ip, 22)
	if err != nil {
		t.Fatal(err)
	}
	fwApply(t, fw, plan([]Rule{icmp}), true)
	fwWantBlocked(t, a, b.ip, 22)
	if err := fwEcho(est); err != nil {
		t.Errorf("established connection after the rule's removal: %v", err)
	}
	if err := fwPing(a, b.ip); err != nil {
		t.Errorf("ping A → B after an unrelated change: %v", err)
	}

	// The table holds exactly the chains of the plan, and one fingerprint.
	ruleset := fwNftList(t, nodeName)
	for _, want := range []string{"table inet photon_prismnet", "ct zone set 7", "jump eg_7_0", "jump in_7_1",
		"ip saddr { 10.44.0.2, 10.44.0.9, 192.0.2.0/24 }"} {
		if !strings.Contains(ruleset, want) {
			t.Errorf("ruleset lacks %q:\n%s", want, ruleset)
		}
	}
	if n := strings.Count(ruleset, "chain fp_"); n != 1 {
		t.Errorf("%d fingerprint chains:\n%s", n, ruleset)
	}

	// Remove deletes the table: everything passes again.
	if err := fw.Remove(); err != nil {
		t.Fatal(err)
	}
	if err := fw.Remove(); err != nil {
		t.Fatalf("Remove of an absent table: %v", err)
	}
	if ruleset := fwNftList(t, nodeName); strings.Contains(ruleset, "photon_prismnet") {
		t.Errorf("table left after Remove:\n%s", ruleset)
	}
	fwWantConnect(t, a, b.ip, 8080)
	// And a later Apply recreates it (the fingerprint went with the table).
	fwApply(t, fw, p1, true)
}

// fwEcho checks that c still carries data both ways.
func fwEcho(c net.Conn) error {
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != "ping\n" {
		return fmt.Errorf("echo %q", buf)
	}
	return nil
}

// Two VPCs with the same CIDR on one node: rules are per bridge, and
// conntrack is per VPC, so a packet in one VPC cannot pass as the reply of
// a connection in the other.
func TestFirewallVPCsSameCIDR(t *testing.T) {
	fwNeedRoot(t)
	nodeNS, nodeName := fwNewNS(t, "n")
	node := fwHandle(t, nodeNS)
	fwAddBridge(t, node, 7)
	fwAddBridge(t, node, 8)
	a7 := fwAddInstance(t, node, 7, "a7", "fwa7", "10.44.0.2")
	b7 := fwAddInstance(t, node, 7, "b7", "fwb7", "10.44.0.3")
	a8 := fwAddInstance(t, node, 8, "a8", "fwa8", "10.44.0.2")
	b8 := fwAddInstance(t, node, 8, "b8", "fwb8", "10.44.0.3")
	for _, in := range []fwInstance{b7, b8} {
		fwServeTCP(t, in, 22)
	}
	egressAny := []Rule{{Protocol: "any", Remote: fwAnywhere}}
	p := &Plan{VPCs: []VPC{
		{VNI: 7, Ports: []Port{
			{ID: "a7", IfName: "fwa7", IP: a7.ip, Egress: egressAny},
			{ID: "b7", IfName: "fwb7", IP: b7.ip, Egress: egressAny, Ingress: []Rule{
				{Protocol: "tcp", PortMin: 22, PortMax: 22, Remote: fwAnywhere},
				{Protocol: "udp", PortMin: 5353, PortMax: 5353, Remote: fwAnywhere},
			}},
		}},
		{VNI: 8, Ports: []Port{
			{ID: "a8", IfName: "fwa8", IP: a8.ip, Egress: egressAny,
				Ingress: []Rule{{Protocol: "icmp", Remote: fwAnywhere}}},
			{ID: "b8", IfName: "fwb8", IP: b8.ip, Egress: egressAny},
		}},
	}}
	fwApply(t, newFirewall(nodeNS), p, true)

	fwWantConnect(t, a7, b7.ip, 22)
	fwWantBlocked(t, a8, b8.ip, 22)

	// A7 sends udp 40000 → B7:5353 (allowed); B7 answers from 5353, which
	// passes as the reply. B8 sends the very same packet to A8 in VPC 8:
	// it must be a new, unallowed flow there.
	sock := func(in fwInstance, port int) *net.UDPConn {
		t.Helper()
		var c *net.UDPConn
		var err error
		fwInNS(t, in.ns, func() { c, err = net.ListenUDP("udp4", &net.UDPAddr{Port: port}) })
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	send := func(c *net.UDPConn, to netip.Addr, port int) {
		t.Helper()
		if _, err := c.WriteToUDPAddrPort([]byte("x"), netip.AddrPortFrom(to, uint16(port))); err != nil {
			t.Fatal(err)
		}
	}
	got := func(c *net.UDPConn) bool {
		c.SetReadDeadline(time.Now().Add(time.Second))
		_, _, err := c.ReadFrom(make([]byte, 16))
		return err == nil
	}
	a7c, b7c := sock(a7, 40000), sock(b7, 5353)
	a8c, b8c := sock(a8, 40000), sock(b8, 5353)
	send(a7c, b7.ip, 5353)
	if !got(b7c) {
		t.Fatal("B7 did not get A7's udp/5353")
	}
	send(b8c, a8.ip, 40000)
	if got(a8c) {
		t.Error("B8's packet reached A8: VPC 8 shared VPC 7's conntrack entry")
	}
	send(b7c, a7.ip, 40000)
	if !got(a7c) {
		t.Error("B7's reply did not reach A7")
	}

	// The entries live in zones 7 and 8.
	if err := fwPing(b8, a8.ip); err != nil {
		t.Errorf("ping B8 → A8: %v", err)
	}
	ct, err := exec.Command("ip", "netns", "exec", nodeName, "cat", "/proc/net/nf_conntrack").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"zone=7", "zone=8"} {
		if !strings.Contains(string(ct), want) {
			t.Errorf("no conntrack entry with %s:\n%s", want, ct)
		}
	}
}

// The interval sets the encoding builds are accepted by the kernel and
// mean what the rendering says, including a range that ends at the top of
// the address space.
func TestFirewallEncodeSets(t *testing.T) {
	fwNeedRoot(t)
	nodeNS, nodeName := fwNewNS(t, "n")
	p := &Plan{VPCs: []VPC{{VNI: 9, Ports: []Port{{ID: "p", IP: netip.MustParseAddr("10.9.0.2"),
		Ingress: []Rule{{Protocol: "udp", PortMin: 1000, PortMax: 2000,
			Remote: fwPrefixes("10.0.0.0/8", "11.0.0.0/8", "192.0.2.7/32", "240.0.0.0/4")}},
		Egress: []Rule{{Protocol: "tcp", PortMin: 443, PortMax: 443, Remote: fwPrefixes("198.51.100.0/24")}},
	}}}}}
	fw := newFirewall(nodeNS)
	fwApply(t, fw, p, true)
	ruleset := fwNftList(t, nodeName)
	for _, want := range []string{
		"udp dport 1000-2000 ip saddr { 10.0.0.0/7, 192.0.2.7, 240.0.0.0/4 } accept",
		"tcp dport 443 ip daddr 198.51.100.0/24 return",
		`iifname "pnb-000009" ct zone set 9`,
	} {
		if !strings.Contains(ruleset, want) {
			t.Errorf("ruleset lacks %q:\n%s", want, ruleset)
		}
	}
	// Something else in the namespace's nftables is left alone.
	c, err := nftables.New(nftables.WithNetNSFd(int(nodeNS)))
	if err != nil {
		t.Fatal(err)
	}
	other := c.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: "other"})
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	p.VPCs[0].Ports[0].Egress = nil
	fwApply(t, fw, p, true)
	if err := fw.Remove(); err != nil {
		t.Fatal(err)
	}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		t.Fatal(err)
	}
	if len(tables) != 1 || tables[0].Name != other.Name {
		t.Errorf("tables after Remove: %v, want only %q", tables, other.Name)
	}
}
