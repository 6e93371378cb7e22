package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/photoncloud/photon/internal/testutil"
)

// pnNet is the machines of the data-plane test: two host namespaces joined
// by an underlay, and instance namespaces hanging off them.
type pnNet struct {
	t      *testing.T
	prefix string
	token  string
}

func (n *pnNet) ns(name string) string {
	n.t.Helper()
	full := n.prefix + name
	n.ip("netns", "add", full)
	n.t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", full).Run() })
	n.ip("-n", full, "link", "set", "lo", "up")
	return full
}

func (n *pnNet) ip(args ...string) {
	n.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		n.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func (n *pnNet) in(ns string, args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	return string(out), err
}

// api calls PrismNET in host h with curl, as the bootstrap admin, and
// returns the envelope's data (failing unless the status is want).
func (n *pnNet) api(h string, want int, method, path, body string) map[string]any {
	n.t.Helper()
	return n.apiAt(h, "8087", want, method, path, body)
}

// apiAt is api against the service on port in host h.
func (n *pnNet) apiAt(h, port string, want int, method, path, body string) map[string]any {
	n.t.Helper()
	args := []string{"curl", "-s", "-o", "-", "-w", "\n%{http_code}", "-X", method, "http://127.0.0.1:" + port + path}
	if n.token != "" {
		args = append(args, "-H", "Authorization: Bearer "+n.token)
	}
	if body != "" {
		args = append(args, "-H", "Content-Type: application/json", "-d", body)
	}
	out, err := n.in(h, args...)
	if err != nil {
		n.t.Fatalf("curl %s %s: %v: %s", method, path, err, out)
	}
	i := strings.LastIndexByte(out, '\n')
	if got := strings.TrimSpace(out[i+1:]); got != fmt.Sprint(want) {
		n.t.Fatalf("%s %s: HTTP %s, want %d: %s", method, path, got, want, out[:i])
	}
	var env struct {
		Data map[string]any `json:"data"`
	}
	if err := json.Unmarshal([]byte(out[:i]), &env); err != nil {
		n.t.Fatalf("%s %s: %v: %s", method, path, err, out)
	}
	return env.Data
}

// TestPrismNETDataplaneTwoNodes runs the binary as users would on two
// hosts: `photon up` with its agent on host 1 (ChainFire's gRPC on the
// underlay), `photon serve prismnet-agent` on host 2; an instance on each
// host gets its port's address by DHCP and reaches the other over VXLAN.
func TestPrismNETDataplaneTwoNodes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the data plane needs root")
	}
	for _, tool := range []string{"ip", "curl", "busybox"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (scripts/install-deps.sh installs it)", tool)
		}
	}
	n := &pnNet{t: t, prefix: fmt.Sprintf("pne%d", os.Getpid()%100000)}
	h1, h2 := n.ns("h1"), n.ns("h2")
	t.Cleanup(func() { removeRouterNSes(h1, h2) })
	n.ip("link", "add", "ul0", "netns", h1, "type", "veth", "peer", "name", "ul0", "netns", h2)
	for i, h := range []string{h1, h2} {
		n.ip("-n", h, "addr", "add", fmt.Sprintf("10.251.0.%d/24", i+1), "dev", "ul0")
		n.ip("-n", h, "link", "set", "ul0", "up")
	}

	bin := testutil.PhotonBinary(t)
	data := t.TempDir()
	up := startUp(t, exec.Command("ip", "netns", "exec", h1, bin, "up", "--data-dir", data,
		"--node-name", h1, "--vtep-ip", "10.251.0.1", "--chainfire-grpc-addr", "10.251.0.1:50051", "--resync", "1s"),
		func(p *upProcess) bool { return strings.Contains(p.stdout.String(), "admin token in ") })
	if !strings.Contains(up.stdout.String(), "data plane on node "+h1) {
		t.Errorf("banner does not say the data plane runs:\n%s", up.stdout)
	}
	tok, err := os.ReadFile(filepath.Join(data, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	n.token = strings.TrimSpace(string(tok))
	agent2 := startUp(t, exec.Command("ip", "netns", "exec", h2, bin, "serve", "prismnet-agent",
		"--chainfire-endpoints", "10.251.0.1:50051", "--node-name", h2, "--vtep-ip", "10.251.0.2", "--resync", "1s"),
		func(p *upProcess) bool { return strings.Contains(p.stdout.String(), "PrismNET agent: node "+h2) })

	health := n.api(h1, 200, "GET", "/health", "")
	info, _ := health["info"].(map[string]any)
	if info["dataplane"] != "enabled" || info["node"] != h1 || info["vtep"] != "10.251.0.1" {
		t.Errorf("/health info: %v", info)
	}
	nodes := n.api(h1, 200, "GET", "/api/v1/nodes", "")
	if got := fmt.Sprint(nodes["nodes"]); !strings.Contains(got, h1) || !strings.Contains(got, h2) {
		t.Fatalf("nodes: %v", got)
	}

	vpc := n.api(h1, 201, "POST", "/api/v1/vpcs", `{"name":"e2e","org_id":"org-e2e","project_id":"project-e2e","cidr_block":"10.80.0.0/16"}`)
	sub := n.api(h1, 201, "POST", "/api/v1/subnets", fmt.Sprintf(`{"name":"s","vpc_id":"%s","cidr_block":"10.80.1.0/24"}`, vpc["id"]))
	var ips []string
	var insts []string
	for i, h := range []string{h1, h2} {
		p := n.api(h1, 201, "POST", "/api/v1/ports", fmt.Sprintf(`{"subnet_id":"%s","device_owner":"vm"}`, sub["id"]))
		inst := n.ns(fmt.Sprintf("i%d", i+1))
		dev := fmt.Sprintf("vm%d", i+1)
		n.ip("link", "add", dev, "netns", h, "type", "veth", "peer", "name", "eth0", "netns", inst)
		n.ip("-n", inst, "link", "set", "eth0", "address", p["mac_address"].(string), "up")
		n.ip("-n", h, "link", "set", dev, "up")
		bound := n.api(h1, 200, "POST", "/api/v1/ports/"+p["id"].(string)+"/bind",
			fmt.Sprintf(`{"host":"%s","interface_type":"veth","ifname":"%s"}`, h, dev))
		if bound["status"] != "BUILD" {
			t.Errorf("bound port: status %v", bound["status"])
		}
		n.waitActive(h1, p["id"].(string))
		if got := n.dhcp(inst); got != p["ip"] {
			t.Fatalf("instance %d got %q by DHCP, its port has %v", i+1, got, p["ip"])
		}
		ips, insts = append(ips, p["ip"].(string)), append(insts, inst)
	}
	if out, err := n.in(insts[0], "busybox", "ping", "-c", "2", "-W", "2", ips[1]); err != nil {
		t.Fatalf("instance 1 → 2 over VXLAN: %v\n%s", err, out)
	}
	if out, err := n.in(insts[1], "busybox", "ping", "-c", "1", "-W", "2", sub["gateway_ip"].(string)); err != nil {
		t.Fatalf("instance 2 → its gateway: %v\n%s", err, out)
	}

	// The second node's agent stops cleanly and its node goes.
	agent2.stop(t)
	if got := fmt.Sprint(n.api(h1, 200, "GET", "/api/v1/nodes", "")["nodes"]); strings.Contains(got, h2) {
		t.Errorf("node %s still listed after its agent stopped: %v", h2, got)
	}
}

// waitActive polls the port until it is ACTIVE.
func (n *pnNet) waitActive(h, id string) {
	n.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		p := n.api(h, 200, "GET", "/api/v1/ports/"+id, "")
		if p["status"] == "ACTIVE" {
			return
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("port %s: %v (%v)", id, p["status"], p["status_reason"])
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// dhcp runs busybox udhcpc in inst and returns the address it was given
// (which its script also configures, with the default route).
func (n *pnNet) dhcp(inst string) string {
	n.t.Helper()
	dir := n.t.TempDir()
	script, out := filepath.Join(dir, "script"), filepath.Join(dir, "ip")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n[ \"$1\" = bound ] || exit 0\n"+
		"busybox ip addr add $ip/$mask dev $interface\nbusybox ip route add default via $router\necho -n $ip > "+out+"\n"), 0o755); err != nil {
		n.t.Fatal(err)
	}
	if o, err := n.in(inst, "busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-f", "-t", "5", "-T", "1", "-s", script); err != nil {
		n.t.Fatalf("udhcpc in %s: %v\n%s", inst, err, o)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		n.t.Fatal(err)
	}
	return string(b)
}

// removeRouterNSes deletes the router namespaces the agents of nodes made
// (an agent that stops leaves its kernel state, by design).
func removeRouterNSes(nodes ...string) {
	ents, _ := os.ReadDir("/var/run/netns")
	for _, e := range ents {
		for _, node := range nodes {
			if strings.HasPrefix(e.Name(), "pn-"+node+"-") {
				_ = exec.Command("ip", "netns", "del", e.Name()).Run()
			}
		}
	}
}
