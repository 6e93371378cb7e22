package agent_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/photoncloud/photon/services/prismnet"
	"github.com/photoncloud/photon/services/prismnet/dataplane"
)

// Instances of one subnet reach each other; across two subnets of a VPC
// they reach each other through the VPC's router; the default security
// group lets members in and everything out.
func TestSameSubnetAndRouted(t *testing.T) {
	l := newLab(t)
	h := l.host("h1")
	l.startAgent(h, "")
	vpc := l.vpc("project-a", "10.20.0.0/16")
	s1, s2 := l.subnet(vpc.ID, "10.20.1.0/24"), l.subnet(vpc.ID, "10.20.2.0/24")
	a, b, c := l.port(s1.ID), l.port(s1.ID), l.port(s2.ID)
	ia := l.instance("a", h, "tap-a", a, a.IP+"/24", s1.GatewayIP)
	ib := l.instance("b", h, "tap-b", b, b.IP+"/24", s1.GatewayIP)
	ic := l.instance("c", h, "tap-c", c, c.IP+"/24", s2.GatewayIP)
	for _, x := range []struct {
		p   prismnet.Port
		dev string
	}{{a, "tap-a"}, {b, "tap-b"}, {c, "tap-c"}} {
		l.bind(x.p, h, x.dev)
	}
	for _, p := range []prismnet.Port{a, b, c} {
		got := l.waitStatus(p, prismnet.PortActive)
		if got.Binding == nil || got.Binding.Host != h {
			t.Fatalf("port %s: binding %+v", p.ID, got.Binding)
		}
	}
	l.wantPing(ia, b.IP, true)
	l.wantPing(ib, a.IP, true)
	l.wantPing(ia, s1.GatewayIP, true)
	l.wantPing(ia, c.IP, true) // routed: 10.20.1.x → 10.20.2.x
	l.wantPing(ic, a.IP, true)

	// Unbinding takes the device off the bridge: the instance is cut off.
	must[prismnet.Port](l, 200, "POST", "/api/v1/ports/"+b.ID+"/unbind", nil)
	l.waitDetached(h, "tap-b")
	l.wantPing(ia, b.IP, false)
}

// Two VPCs with the same CIDR are isolated, even on one host.
func TestVPCsIsolated(t *testing.T) {
	l := newLab(t)
	h := l.host("h1")
	l.startAgent(h, "")
	v1, v2 := l.vpc("project-a", "10.30.0.0/16"), l.vpc("project-b", "10.30.0.0/16")
	if v1.VNI == v2.VNI || v1.VNI == 0 {
		t.Fatalf("VNIs %d and %d", v1.VNI, v2.VNI)
	}
	s1, s2 := l.subnet(v1.ID, "10.30.1.0/24"), l.subnet(v2.ID, "10.30.1.0/24")
	a1 := l.port(s1.ID)
	a2, b2 := l.port(s2.ID), l.port(s2.ID)
	if a1.IP != a2.IP {
		t.Fatalf("the same first address was expected in both VPCs: %s, %s", a1.IP, a2.IP)
	}
	ia1 := l.instance("a1", h, "tap-a1", a1, a1.IP+"/24", s1.GatewayIP)
	ia2 := l.instance("a2", h, "tap-a2", a2, a2.IP+"/24", s2.GatewayIP)
	l.instance("b2", h, "tap-b2", b2, b2.IP+"/24", s2.GatewayIP)
	l.bind(a1, h, "tap-a1")
	l.bind(a2, h, "tap-a2")
	l.bind(b2, h, "tap-b2")
	for _, p := range []prismnet.Port{a1, a2, b2} {
		l.waitStatus(p, prismnet.PortActive)
	}
	l.wantPing(ia2, b2.IP, true)  // within VPC 2
	l.wantPing(ia1, b2.IP, false) // VPC 1 cannot reach VPC 2's instance
}

// A security group allowing tcp/22 but not tcp/8080 is enforced in both
// directions, and removing its rule takes effect within 2 s.
func TestSecurityGroupsEnforced(t *testing.T) {
	l := newLab(t)
	h := l.host("h1")
	l.startAgent(h, "")
	vpc := l.vpc("project-a", "10.40.0.0/16")
	s := l.subnet(vpc.ID, "10.40.1.0/24")
	sg := must[prismnet.SecurityGroup](l, 201, "POST", "/api/v1/security-groups",
		map[string]any{"name": "ssh", "org_id": "org-lab", "project_id": "project-a"})
	rule := must[prismnet.Rule](l, 201, "POST", "/api/v1/security-groups/"+sg.ID+"/rules",
		map[string]any{"direction": "ingress", "protocol": "tcp", "port_range_min": 22, "port_range_max": 22, "remote_cidr": "10.40.0.0/16"})
	must[prismnet.Rule](l, 201, "POST", "/api/v1/security-groups/"+sg.ID+"/rules",
		map[string]any{"direction": "egress", "protocol": "any"})
	a, b := l.port(s.ID, sg.ID), l.port(s.ID, sg.ID)
	ia := l.instance("a", h, "tap-a", a, a.IP+"/24", s.GatewayIP)
	ib := l.instance("b", h, "tap-b", b, b.IP+"/24", s.GatewayIP)
	l.bind(a, h, "tap-a")
	l.bind(b, h, "tap-b")
	l.waitStatus(a, prismnet.PortActive)
	l.waitStatus(b, prismnet.PortActive)
	for _, ns := range []string{ia, ib} {
		l.listen(ns, 22)
		l.listen(ns, 8080)
	}
	time.Sleep(200 * time.Millisecond) // the listeners start
	l.wantConnect(ia, b.IP, 22, true)
	l.wantConnect(ia, b.IP, 8080, false)
	l.wantConnect(ib, a.IP, 22, true)
	l.wantConnect(ib, a.IP, 8080, false)
	l.wantPing(ia, b.IP, false) // no icmp rule

	must[map[string]any](l, 200, "DELETE", "/api/v1/security-groups/"+sg.ID+"/rules/"+rule.ID, nil)
	removed := time.Now()
	for {
		// A connection attempt refused (it times out: the rule drops)
		// counts from when it started.
		tried := time.Now()
		if !l.connects(ia, b.IP, 22) {
			t.Logf("rule removal took effect within %v", tried.Sub(removed))
			break
		}
		if time.Since(removed) > 2*time.Second {
			t.Fatalf("tcp/22 still allowed %v after its rule was removed", time.Since(removed))
		}
		time.Sleep(20 * time.Millisecond)
	}
	l.wantConnect(ib, a.IP, 22, false) // a's ingress lost the rule too
}

// A DHCP client in the instance gets exactly its port's address, the
// subnet's gateway and the VPC's MTU.
func TestDHCP(t *testing.T) {
	l := newLab(t)
	h := l.host("h1")
	l.startAgent(h, "")
	vpc := l.vpc("project-a", "10.50.0.0/16")
	s := must[prismnet.Subnet](l, 201, "POST", "/api/v1/subnets",
		map[string]any{"name": "s", "vpc_id": vpc.ID, "cidr_block": "10.50.8.0/22", "dns_servers": []string{"10.50.8.53"}})
	must[prismnet.Port](l, 201, "POST", "/api/v1/ports", map[string]any{"subnet_id": s.ID}) // the lowest address is taken
	p := must[prismnet.Port](l, 201, "POST", "/api/v1/ports", map[string]any{"subnet_id": s.ID, "ip": "10.50.9.77"})
	ns := l.instance("d", h, "tap-d", p, "", "")
	l.bind(p, h, "tap-d")
	l.waitStatus(p, prismnet.PortActive)

	dir := t.TempDir()
	script := filepath.Join(dir, "udhcpc.sh")
	out := filepath.Join(dir, "lease")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"+
		`[ "$1" = bound ] || exit 0`+"\n"+
		`echo "ip=$ip subnet=$subnet router=$router dns=$dns mtu=$mtu" > `+out+"\n"+
		`busybox ip addr add $ip/$mask dev $interface`+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if o, err := l.in(ns, "busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-f", "-t", "5", "-T", "1", "-s", script); err != nil {
		t.Fatalf("udhcpc: %v\n%s", err, o)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want := "ip=10.50.9.77 subnet=255.255.252.0 router=10.50.8.1 dns=10.50.8.53 mtu=1450"
	if strings.TrimSpace(string(got)) != want {
		t.Fatalf("lease: %q, want %q", strings.TrimSpace(string(got)), want)
	}
	l.wantPing(ns, s.GatewayIP, true)
}

// Two hosts, each with its agent, joined by an underlay: instances of one
// VPC on different hosts reach each other over VXLAN, in one subnet and
// across subnets; and an agent restarted over a correct kernel changes
// nothing.
func TestTwoHostsOverVXLAN(t *testing.T) {
	l := newLab(t)
	h1, h2 := l.host("h1"), l.host("h2")
	l.joinHosts(h1, h2)
	l.startAgent(h1, "10.250.0.1")
	l.startAgent(h2, "10.250.0.2")
	vpc := l.vpc("project-a", "10.60.0.0/16")
	s1, s2 := l.subnet(vpc.ID, "10.60.1.0/24"), l.subnet(vpc.ID, "10.60.2.0/24")
	a, b, c := l.port(s1.ID), l.port(s1.ID), l.port(s2.ID)
	ia := l.instance("a", h1, "tap-a", a, a.IP+"/24", s1.GatewayIP)
	ib := l.instance("b", h2, "tap-b", b, b.IP+"/24", s1.GatewayIP)
	ic := l.instance("c", h2, "tap-c", c, c.IP+"/24", s2.GatewayIP)
	l.bind(a, h1, "tap-a")
	l.bind(b, h2, "tap-b")
	l.bind(c, h2, "tap-c")
	for _, p := range []prismnet.Port{a, b, c} {
		l.waitStatus(p, prismnet.PortActive)
	}
	l.wantPing(ia, b.IP, true) // same subnet, across hosts
	l.wantPing(ib, a.IP, true)
	l.wantPing(ia, c.IP, true) // across subnets and hosts
	l.wantPing(ic, a.IP, true)

	// Restart h1's agent: nothing already right is recreated.
	before := l.snapshot(h1)
	if err := l.agents[h1].Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	delete(l.agents, h1)
	a2 := l.startAgent(h1, "10.250.0.1")
	l.waitReconciled(a2)
	if after := l.snapshot(h1); after != before {
		t.Errorf("restarted agent changed the kernel:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	l.wantPing(ia, b.IP, true)
}

// snapshot is what a host namespace holds that the data plane made:
// devices with their indexes (recreated devices get new ones), VXLAN
// forwarding entries and the nftables ruleset.
func (l *lab) snapshot(host string) string {
	l.t.Helper()
	var b strings.Builder
	b.WriteString(l.run("ip", "-n", host, "-o", "link", "show"))
	b.WriteString(l.run("ip", "netns", "exec", host, "bridge", "fdb", "show"))
	b.WriteString(l.run("ip", "netns", "exec", host, "nft", "list", "ruleset"))
	// Link state counters change while traffic flows: keep the names and
	// indexes only.
	var keep []string
	for _, line := range strings.Split(b.String(), "\n") {
		if f := strings.Fields(line); len(f) > 2 && strings.HasSuffix(f[0], ":") {
			keep = append(keep, f[0]+" "+f[1])
			continue
		}
		keep = append(keep, line)
	}
	return strings.Join(keep, "\n")
}

// waitReconciled waits for the agent's first complete reconcile.
func (l *lab) waitReconciled(a interface{ Reconciled() int64 }) {
	l.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for a.Reconciled() == 0 {
		if time.Now().After(deadline) {
			l.t.Fatal("the agent never reconciled")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitDetached waits until ifname is on no bridge in host.
func (l *lab) waitDetached(host, ifname string) {
	l.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for strings.Contains(l.run("ip", "-n", host, "-o", "link", "show", ifname), " master ") {
		if time.Now().After(deadline) {
			l.t.Fatalf("%s is still on a bridge", ifname)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Deleting a VPC's last bound port removes the VPC from the host: its
// bridge, VXLAN device and router namespace.
func TestStaleRemoved(t *testing.T) {
	l := newLab(t)
	h := l.host("h1")
	l.startAgent(h, "")
	vpc := l.vpc("project-a", "10.70.0.0/16")
	s := l.subnet(vpc.ID, "10.70.1.0/24")
	p := l.port(s.ID)
	l.instance("a", h, "tap-a", p, p.IP+"/24", s.GatewayIP)
	l.bind(p, h, "tap-a")
	l.waitStatus(p, prismnet.PortActive)
	router := "pn-" + h + "-" + strings.TrimPrefix(dataplane.BridgeName(vpc.VNI), "pnb-")
	if _, err := os.Stat(filepath.Join(dataplane.NamedNSDir, router)); err != nil {
		t.Fatalf("router namespace: %v", err)
	}
	must[map[string]any](l, 200, "DELETE", "/api/v1/ports/"+p.ID, nil)
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, errBr := exec.Command("ip", "-n", h, "link", "show", dataplane.BridgeName(vpc.VNI)).CombinedOutput()
		_, errNS := os.Stat(filepath.Join(dataplane.NamedNSDir, router))
		if errBr != nil && os.IsNotExist(errNS) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("VPC still on the host: bridge err=%v, router ns err=%v", errBr, errNS)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A port cannot send as another: not with another address, not with
// another MAC, and not over IPv6 (which the security groups do not filter).
func TestSpoofingDropped(t *testing.T) {
	l := newLab(t)
	h := l.host("h1")
	l.startAgent(h, "")
	vpc := l.vpc("project-a", "10.90.0.0/16")
	s := l.subnet(vpc.ID, "10.90.1.0/24")
	// Open to icmp from anywhere, so that only the guard stops a forged
	// source address.
	sg := must[prismnet.SecurityGroup](l, 201, "POST", "/api/v1/security-groups",
		map[string]any{"name": "open", "org_id": "org-lab", "project_id": "project-a"})
	for _, dir := range []string{"ingress", "egress"} {
		must[prismnet.Rule](l, 201, "POST", "/api/v1/security-groups/"+sg.ID+"/rules", map[string]any{"direction": dir, "protocol": "any"})
	}
	a, b := l.port(s.ID, sg.ID), l.port(s.ID, sg.ID)
	ia := l.instance("a", h, "tap-a", a, a.IP+"/24", s.GatewayIP)
	ib := l.instance("b", h, "tap-b", b, b.IP+"/24", s.GatewayIP)
	l.bind(a, h, "tap-a")
	l.bind(b, h, "tap-b")
	l.waitStatus(a, prismnet.PortActive)
	l.waitStatus(b, prismnet.PortActive)
	l.wantPing(ia, b.IP, true)

	// Another address of the subnet, not a's.
	l.run("ip", "-n", ia, "addr", "add", "10.90.1.200/24", "dev", "eth0")
	if _, err := l.in(ia, "busybox", "ping", "-c", "1", "-W", "1", "-I", "10.90.1.200", b.IP); err == nil {
		t.Error("a reached b with a forged source address")
	}
	l.run("ip", "-n", ia, "addr", "del", "10.90.1.200/24", "dev", "eth0")
	l.wantPing(ia, b.IP, true)

	// Another MAC.
	l.run("ip", "-n", ia, "link", "set", "eth0", "address", "fa:16:3e:00:00:99")
	l.run("ip", "-n", ia, "neigh", "flush", "all")
	l.wantPing(ia, b.IP, false)
	l.run("ip", "-n", ia, "link", "set", "eth0", "address", a.MACAddress)
	l.wantPing(ia, b.IP, true)

	// IPv6 between the instances.
	l.run("ip", "-n", ia, "addr", "add", "fd00:90::1/64", "dev", "eth0", "nodad")
	l.run("ip", "-n", ib, "addr", "add", "fd00:90::2/64", "dev", "eth0", "nodad")
	if _, err := l.in(ia, "busybox", "ping", "-6", "-c", "1", "-W", "1", "fd00:90::2"); err == nil {
		t.Error("IPv6 passed between ports")
	}
}
