package dhcp

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// topology is a router namespace whose veth end gw0 holds the gateways of
// two subnets, a switch namespace with a bridge, and two instance
// namespaces whose eth0 hangs off that bridge.
type topology struct {
	router, i, j string // namespace names
}

const (
	macI = "02:aa:00:00:00:01" // macA in the unit tests
	macJ = "02:aa:00:00:00:99" // unknown until SetLeases adds it
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	if _, err := exec.LookPath("busybox"); err != nil {
		t.Skip("needs busybox (udhcpc): apt-get install busybox")
	}
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func newTopology(t *testing.T) topology {
	t.Helper()
	prefix := fmt.Sprintf("dhcp%d", os.Getpid())
	top := topology{router: prefix + "-r", i: prefix + "-i", j: prefix + "-j"}
	sw := prefix + "-s"
	for _, ns := range []string{top.router, sw, top.i, top.j} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() {
			// Deleting the namespaces destroys every link in them.
			if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
				t.Errorf("ip netns del %s: %v %s", ns, err, out)
			}
		})
	}
	run(t, "ip", "-n", sw, "link", "add", "br0", "type", "bridge")
	run(t, "ip", "-n", sw, "link", "set", "br0", "up")
	run(t, "ip", "-n", top.router, "link", "add", "gw0", "type", "veth", "peer", "name", "up0", "netns", sw)
	run(t, "ip", "-n", top.router, "addr", "add", "10.77.1.1/24", "dev", "gw0")
	run(t, "ip", "-n", top.router, "addr", "add", "10.77.2.1/24", "dev", "gw0")
	run(t, "ip", "-n", top.router, "link", "set", "gw0", "up")
	run(t, "ip", "-n", sw, "link", "set", "up0", "master", "br0", "up")
	for k, inst := range map[string]string{top.i: macI, top.j: macJ} {
		port := "p-" + k[len(k)-1:]
		run(t, "ip", "-n", sw, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", k)
		run(t, "ip", "-n", sw, "link", "set", port, "master", "br0", "up")
		run(t, "ip", "-n", k, "link", "set", "eth0", "address", inst, "up")
		run(t, "ip", "-n", k, "link", "set", "lo", "up")
	}
	return top
}

func startServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve returned %v after Close", err)
		}
	})
	return s
}

// udhcpcScript configures the interface the way a distribution's default
// script does and records each event's variables in dir/<event>.
func udhcpcScript(t *testing.T) (script, dir string) {
	t.Helper()
	dir = t.TempDir()
	script = filepath.Join(dir, "script.sh")
	body := `#!/bin/sh
out='` + dir + `'
case "$1" in
deconfig)
	ip -4 addr flush dev "$interface"
	ip link set "$interface" up
	;;
bound|renew)
	ip -4 addr flush dev "$interface"
	ip addr add "$ip/${mask:-$subnet}" dev "$interface"
	[ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
	[ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
	{
		echo "ip=$ip"; echo "subnet=$subnet"; echo "router=$router"; echo "dns=$dns"
		echo "mtu=$mtu"; echo "lease=$lease"; echo "serverid=$serverid"; echo "hostname=$hostname"
	} > "$out/$1.tmp"
	mv "$out/$1.tmp" "$out/$1"
	;;
esac
exit 0
`
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script, dir
}

func readEnv(t *testing.T, path string) (map[string]string, bool) {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		env[k] = v
	}
	return env, true
}

// udhcpc runs busybox udhcpc once (-n -q) in ns and returns the variables
// of its bound event, or ok=false when it got no lease.
func udhcpc(t *testing.T, ns string, tries int) (env map[string]string, ok bool) {
	t.Helper()
	script, dir := udhcpcScript(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "busybox", "udhcpc",
		"-i", "eth0", "-n", "-q", "-f", "-t", fmt.Sprint(tries), "-T", "1", "-s", script)
	out, err := cmd.CombinedOutput()
	env, bound := readEnv(t, filepath.Join(dir, "bound"))
	if (err == nil) != bound {
		t.Fatalf("udhcpc exit %v but bound event %v:\n%s", err, bound, out)
	}
	t.Logf("udhcpc in %s: exit %v\n%s", ns, err, out)
	return env, bound
}

func wantEnv(t *testing.T, env map[string]string, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if env[k] != v {
			t.Errorf("udhcpc %s=%q, want %q (all: %v)", k, env[k], v, env)
		}
	}
}

func wantConfigured(t *testing.T, ns, cidr, gw string) {
	t.Helper()
	if addrs := run(t, "ip", "-n", ns, "-4", "-o", "addr", "show", "dev", "eth0"); !strings.Contains(addrs, " "+cidr+" ") {
		t.Errorf("%s eth0 addresses %q, want %s", ns, addrs, cidr)
	}
	if routes := run(t, "ip", "-n", ns, "route", "show", "default"); !strings.Contains(routes, "via "+gw+" ") {
		t.Errorf("%s default route %q, want via %s", ns, routes, gw)
	}
	// The gateway answers from the instance's new address.
	run(t, "ip", "netns", "exec", ns, "busybox", "ping", "-c", "1", "-W", "2", gw)
}

func lease(mac, ip, subnet, gw string) Lease {
	hw, err := net.ParseMAC(mac)
	if err != nil {
		panic(err)
	}
	return Lease{MAC: hw, IP: netip.MustParseAddr(ip), Subnet: netip.MustParsePrefix(subnet), Gateway: netip.MustParseAddr(gw)}
}

func TestServeBusyboxUdhcpc(t *testing.T) {
	needRoot(t)
	top := newTopology(t)
	srv := startServer(t, Config{NetNS: "/var/run/netns/" + top.router, IfName: "gw0"})

	a := lease(macI, "10.77.1.10", "10.77.1.0/24", "10.77.1.1")
	a.DNS = []netip.Addr{netip.MustParseAddr("10.77.1.2"), netip.MustParseAddr("10.77.1.3")}
	a.MTU = 1450
	a.Hostname = "vm-a"
	srv.SetLeases([]Lease{a})

	t.Run("known MAC gets its lease", func(t *testing.T) {
		env, ok := udhcpc(t, top.i, 5)
		if !ok {
			t.Fatal("no lease for a known MAC")
		}
		wantEnv(t, env, map[string]string{
			"ip": "10.77.1.10", "subnet": "255.255.255.0", "router": "10.77.1.1", "dns": "10.77.1.2 10.77.1.3",
			"mtu": "1450", "lease": "3600", "serverid": "10.77.1.1", "hostname": "vm-a",
		})
		wantConfigured(t, top.i, "10.77.1.10/24", "10.77.1.1")
	})
	t.Run("unknown MAC gets nothing", func(t *testing.T) {
		if env, ok := udhcpc(t, top.j, 2); ok {
			t.Fatalf("unknown MAC got a lease: %v", env)
		}
	})

	// Move the first instance to the second subnet and admit the second.
	b := lease(macI, "10.77.2.50", "10.77.2.0/24", "10.77.2.1")
	c := lease(macJ, "10.77.1.20", "10.77.1.0/24", "10.77.1.1")
	srv.SetLeases([]Lease{b, c})

	t.Run("SetLeases moves a client to the second subnet", func(t *testing.T) {
		env, ok := udhcpc(t, top.i, 5)
		if !ok {
			t.Fatal("no lease after SetLeases")
		}
		wantEnv(t, env, map[string]string{"ip": "10.77.2.50", "subnet": "255.255.255.0", "router": "10.77.2.1", "serverid": "10.77.2.1", "dns": "", "mtu": ""})
		wantConfigured(t, top.i, "10.77.2.50/24", "10.77.2.1")
	})
	t.Run("SetLeases admits a new MAC", func(t *testing.T) {
		env, ok := udhcpc(t, top.j, 5)
		if !ok {
			t.Fatal("no lease for a MAC added by SetLeases")
		}
		wantEnv(t, env, map[string]string{"ip": "10.77.1.20", "router": "10.77.1.1"})
	})
	t.Run("replies come from the lease's gateway", func(t *testing.T) {
		// 10.77.2.1 is gw0's secondary address: without IP_PKTINFO the
		// kernel would pick 10.77.1.1 for both replies.
		conn := clientConn(t, top.i)
		for _, tc := range []struct {
			typ    uint8
			ciaddr string
		}{{Discover, "0.0.0.0"}, {Inform, "10.77.2.50"}} {
			req := newRequest(tc.typ, macA, nil)
			req.CIAddr = netip.MustParseAddr(tc.ciaddr)
			req.XID = uint32(tc.typ)
			dst := netip.MustParseAddrPort("255.255.255.255:67")
			if tc.typ == Inform {
				dst = netip.MustParseAddrPort("10.77.2.1:67")
			}
			if _, err := conn.WriteToUDPAddrPort(Encode(req), dst); err != nil {
				t.Fatal(err)
			}
			m, from := readReply(t, conn, req.XID)
			if from.Addr() != netip.MustParseAddr("10.77.2.1") {
				t.Errorf("type %d: reply from %v, want 10.77.2.1", tc.typ, from)
			}
			if want := map[uint8]uint8{Discover: Offer, Inform: Ack}[tc.typ]; m.Type() != want {
				t.Errorf("type %d: reply type %d, want %d", tc.typ, m.Type(), want)
			}
		}
	})
	t.Run("renewal is unicast to the client", func(t *testing.T) {
		script, dir := udhcpcScript(t)
		cmd := exec.Command("ip", "netns", "exec", top.i, "busybox", "udhcpc",
			"-i", "eth0", "-f", "-t", "5", "-T", "1", "-s", script)
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
			t.Logf("udhcpc:\n%s", out.String())
		})
		waitFile(t, filepath.Join(dir, "bound"))
		// SIGUSR1 makes udhcpc renew now: a REQUEST with ciaddr set,
		// unicast to the server identifier, answered by unicast.
		if err := cmd.Process.Signal(syscall.SIGUSR1); err != nil {
			t.Fatal(err)
		}
		waitFile(t, filepath.Join(dir, "renew"))
		env, _ := readEnv(t, filepath.Join(dir, "renew"))
		wantEnv(t, env, map[string]string{"ip": "10.77.2.50", "router": "10.77.2.1", "serverid": "10.77.2.1"})
	})
}

// clientConn is a UDP socket on port 68 bound to eth0 inside ns.
func clientConn(t *testing.T, ns string) *net.UDPConn {
	t.Helper()
	fd, _, err := openInNetNS("/var/run/netns/"+ns, "eth0", ClientPort)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "client")
	pc, err := net.FilePacketConn(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc.(*net.UDPConn)
}

func readReply(t *testing.T, conn *net.UDPConn, xid uint32) (*Message, netip.AddrPort) {
	t.Helper()
	buf := make([]byte, 1500)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("waiting for reply %x: %v", xid, err)
		}
		if m, err := Decode(buf[:n]); err == nil && m.Op == OpReply && m.XID == xid {
			return m, from
		}
	}
}

func waitFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never appeared", path)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestListenErrors(t *testing.T) {
	needRoot(t)
	for _, cfg := range []Config{
		{},
		{IfName: "does-not-exist0"},
		{NetNS: "/var/run/netns/does-not-exist", IfName: "lo"},
		{IfName: "lo", LeaseTime: -time.Second},
	} {
		if s, err := Listen(cfg); err == nil {
			s.Close()
			t.Errorf("Listen(%+v) succeeded", cfg)
		}
	}
}
