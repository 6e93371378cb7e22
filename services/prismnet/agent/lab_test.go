// The agent's tests run real nodes: network namespaces stand in for hosts
// (each with its own agent, joined by an underlay veth) and for instances
// (a veth whose host end is the port's device), over an in-process
// PhotonCloud stack reached through PrismNET's REST API.
package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/photoncloud/photon/internal/platform"
	"github.com/photoncloud/photon/internal/testutil"
	"github.com/photoncloud/photon/services/prismnet"
	"github.com/photoncloud/photon/services/prismnet/agent"
	"github.com/photoncloud/photon/services/prismnet/dataplane"
)

// lab is one test's machines: a stack, host namespaces with agents, and
// instance namespaces. Everything it makes goes in t.Cleanup.
type lab struct {
	t      *testing.T
	prefix string // unique per test: every namespace and node name starts with it
	st     *platform.Stack
	pn     string
	hc     *http.Client
	agents map[string]*agent.Agent
}

var labSeq int

func newLab(t *testing.T) *lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the data plane needs root")
	}
	for _, tool := range []string{"ip", "busybox"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (scripts/install-deps.sh installs it)", tool)
		}
	}
	labSeq++
	l := &lab{t: t, prefix: fmt.Sprintf("pt%d%d", os.Getpid()%100000, labSeq), hc: &http.Client{Timeout: 10 * time.Second},
		agents: map[string]*agent.Agent{}}
	l.st = testutil.StartStack(t, "")
	l.pn = "http://" + l.st.PrismNET.HTTPAddr()
	t.Cleanup(l.hc.CloseIdleConnections)
	return l
}

// run runs a command and fails the test if it fails.
func (l *lab) run(args ...string) string {
	l.t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		l.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// in runs a command inside namespace ns, returning its error.
func (l *lab) in(ns string, args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	return string(out), err
}

func (l *lab) netns(name string) string {
	l.t.Helper()
	l.run("ip", "netns", "add", name)
	l.t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	l.run("ip", "-n", name, "link", "set", "lo", "up")
	return name
}

// host makes a host namespace with an address on an underlay and an
// agent in it; hosts made with the same underlay are joined by a bridge
// in the first host... kept simple: the underlay is a veth pair per
// couple of hosts (see joinHosts).
func (l *lab) host(name string) string {
	l.t.Helper()
	return l.netns(l.prefix + name)
}

// joinHosts joins two host namespaces with an underlay veth: a gets
// 10.250.0.1, b 10.250.0.2.
func (l *lab) joinHosts(a, b string) {
	l.t.Helper()
	l.run("ip", "link", "add", "ul0", "netns", a, "type", "veth", "peer", "name", "ul0", "netns", b)
	for i, h := range []string{a, b} {
		l.run("ip", "-n", h, "addr", "add", fmt.Sprintf("10.250.0.%d/24", i+1), "dev", "ul0")
		l.run("ip", "-n", h, "link", "set", "ul0", "up")
	}
}

// startAgent runs an agent for host (its node name is the namespace's).
func (l *lab) startAgent(host, vtep string) *agent.Agent {
	l.t.Helper()
	a, err := agent.New(agent.Config{Node: host, VTEP: vtep, NetNS: dataplane.NamedNSDir + "/" + host, Resync: time.Second},
		l.st.ChainFire.Client())
	if err != nil {
		l.t.Fatal(err)
	}
	if err := a.Start(testutil.Context(l.t)); err != nil {
		l.t.Fatal(err)
	}
	l.agents[host] = a
	l.t.Cleanup(func() {
		if err := a.Teardown(context.Background()); err != nil {
			l.t.Errorf("teardown of %s: %v", host, err)
		}
		// Whatever a failed teardown left behind goes too.
		out, _ := exec.Command("ip", "netns", "list").Output()
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], "pn-"+host+"-") {
				_ = exec.Command("ip", "netns", "del", f[0]).Run()
			}
		}
	})
	return a
}

// instance makes an instance namespace whose eth0 has the port's MAC, and
// whose other end, ifname, is in host. With addr (cidr) and gw set it is
// configured statically; else it is left for DHCP.
func (l *lab) instance(name, host, ifname string, p prismnet.Port, addr, gw string) string {
	l.t.Helper()
	ns := l.netns(l.prefix + name)
	l.run("ip", "link", "add", ifname, "netns", host, "type", "veth", "peer", "name", "eth0", "netns", ns)
	l.run("ip", "-n", ns, "link", "set", "eth0", "address", p.MACAddress, "mtu", "1450", "up")
	l.run("ip", "-n", host, "link", "set", ifname, "up")
	if addr != "" {
		l.run("ip", "-n", ns, "addr", "add", addr, "dev", "eth0")
		l.run("ip", "-n", ns, "route", "add", "default", "via", gw)
	}
	return ns
}

// call is one REST call to PrismNET as the loopback admin; it returns the
// status and the envelope's data.
func (l *lab) call(method, path string, body any) (int, json.RawMessage) {
	l.t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	r, _ := http.NewRequest(method, l.pn+path, rd)
	r.Header.Set("Content-Type", "application/json")
	resp, err := l.hc.Do(r)
	if err != nil {
		l.t.Fatal(err)
	}
	defer resp.Body.Close()
	var env struct {
		Data  json.RawMessage `json:"data"`
		Error json.RawMessage `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		l.t.Fatalf("%s %s: %v", method, path, err)
	}
	if env.Error != nil {
		return resp.StatusCode, env.Error
	}
	return resp.StatusCode, env.Data
}

// must is call that must answer want; it decodes the data into out.
func must[T any](l *lab, want int, method, path string, body any) T {
	l.t.Helper()
	code, data := l.call(method, path, body)
	if code != want {
		l.t.Fatalf("%s %s: %d, want %d: %s", method, path, code, want, data)
	}
	var out T
	if err := json.Unmarshal(data, &out); err != nil {
		l.t.Fatalf("%s %s: %v", method, path, err)
	}
	return out
}

func (l *lab) vpc(project, cidr string) prismnet.VPC {
	return must[prismnet.VPC](l, 201, "POST", "/api/v1/vpcs",
		map[string]any{"name": "v", "org_id": "org-lab", "project_id": project, "cidr_block": cidr})
}

func (l *lab) subnet(vpc, cidr string) prismnet.Subnet {
	return must[prismnet.Subnet](l, 201, "POST", "/api/v1/subnets", map[string]any{"name": "s", "vpc_id": vpc, "cidr_block": cidr})
}

func (l *lab) port(subnet string, sgs ...string) prismnet.Port {
	body := map[string]any{"subnet_id": subnet}
	if sgs != nil {
		body["security_group_ids"] = sgs
	}
	return must[prismnet.Port](l, 201, "POST", "/api/v1/ports", body)
}

func (l *lab) bind(p prismnet.Port, host, ifname string) {
	l.t.Helper()
	must[prismnet.Port](l, 200, "POST", "/api/v1/ports/"+p.ID+"/bind",
		map[string]any{"host": host, "interface_type": "veth", "ifname": ifname})
}

// waitStatus polls the port until its status is want.
func (l *lab) waitStatus(p prismnet.Port, want string) prismnet.Port {
	l.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := must[prismnet.Port](l, 200, "GET", "/api/v1/ports/"+p.ID, nil)
		if got.Status == want {
			return got
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("port %s: status %s (%s), want %s", p.ID, got.Status, got.StatusReason, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ping reports whether ns reaches ip (two tries, a second each).
func (l *lab) ping(ns, ip string) bool {
	_, err := l.in(ns, "busybox", "ping", "-c", "1", "-W", "1", ip)
	if err == nil {
		return true
	}
	_, err = l.in(ns, "busybox", "ping", "-c", "1", "-W", "1", ip)
	return err == nil
}

func (l *lab) wantPing(from, ip string, ok bool) {
	l.t.Helper()
	if got := l.ping(from, ip); got != ok {
		l.t.Errorf("ping from %s to %s: reached=%v, want %v", from, ip, got, ok)
	}
}

// listen starts a TCP listener on port in ns (busybox nc, restarted after
// each connection) until the test ends.
func (l *lab) listen(ns string, port int) {
	l.t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, "busybox", "nc", "-ll", "-p", fmt.Sprint(port), "-e", "/bin/true")
	if err := cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
}

// connects reports whether a TCP connection from ns to ip:port succeeds
// within a second (dialled from a thread switched into ns).
func (l *lab) connects(ns, ip string, port int) bool {
	l.t.Helper()
	h, err := netns.GetFromName(ns)
	if err != nil {
		l.t.Fatal(err)
	}
	defer h.Close()
	ok := make(chan bool)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := netns.Set(h); err != nil {
			ok <- false
			return
		}
		c, err := net.DialTimeout("tcp", net.JoinHostPort(ip, fmt.Sprint(port)), time.Second)
		if err == nil {
			c.Close()
		}
		ok <- err == nil
	}()
	return <-ok
}

func (l *lab) wantConnect(from, ip string, port int, ok bool) {
	l.t.Helper()
	if got := l.connects(from, ip, port); got != ok {
		l.t.Errorf("tcp from %s to %s:%d: connected=%v, want %v", from, ip, port, got, ok)
	}
}
