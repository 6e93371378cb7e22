package prismnet_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/testutil"
	"github.com/photoncloud/photon/services/prismnet"
)

// Port binding without a data plane: no agent runs in these tests, so a
// bound port stays BUILD unless a test reports a status as an agent would
// (prismnet.ReportPortStatus), and nodes are registered straight into the
// store as an agent registers itself.

// registerNode publishes a node as its agent would, on lease (0: none).
func (e *pnEnv) registerNode(t *testing.T, name string, lease clientv3.LeaseID) prismnet.Node {
	t.Helper()
	n := prismnet.Node{Name: name, VTEP: "10.0.0.1", Version: "test", StartedAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	if err := prismnet.RegisterNode(t.Context(), e.etcd, n, lease); err != nil {
		t.Fatalf("register node %s: %v", name, err)
	}
	return n
}

func (e *pnEnv) bind(t *testing.T, id, token string, body any) testutil.Answer {
	t.Helper()
	return e.do(t, req{method: "POST", path: "/api/v1/ports/" + id + "/bind", token: token, body: body})
}

func (e *pnEnv) unbind(t *testing.T, id, token string) testutil.Answer {
	t.Helper()
	return e.do(t, req{method: "POST", path: "/api/v1/ports/" + id + "/unbind", token: token})
}

func (e *pnEnv) getPort(t *testing.T, id string) prismnet.Port {
	t.Helper()
	return ok[prismnet.Port](t, e.do(t, req{method: "GET", path: "/api/v1/ports/" + id}), http.StatusOK)
}

// stored is the value of key (relative to PrismNET's prefix), "" when
// there is none.
func (e *pnEnv) stored(t *testing.T, key string) string {
	t.Helper()
	resp, err := e.etcd.Get(t.Context(), pnPrefix+key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	if len(resp.Kvs) == 0 {
		return ""
	}
	return string(resp.Kvs[0].Value)
}

// claimOf is the port id the device claim host/ifname names, "" when the
// device is unclaimed.
func (e *pnEnv) claimOf(t *testing.T, host, ifname string) string {
	t.Helper()
	v := e.stored(t, "bindings/"+host+"/"+ifname)
	if v == "" {
		return ""
	}
	var r struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(v), &r); err != nil || r.ID == "" {
		t.Fatalf("claim %s/%s holds %q", host, ifname, v)
	}
	return r.ID
}

// claims is every device claim: host/ifname → port id.
func (e *pnEnv) claims(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for k, v := range e.snapshot(t) {
		rest, isClaim := strings.CutPrefix(k, pnPrefix+"bindings/")
		if !isClaim {
			continue
		}
		_, val, _ := strings.Cut(v, " ") // "<mod revision> <value>"
		var r struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal([]byte(val), &r); err != nil {
			t.Fatalf("claim %s holds %q", k, val)
		}
		out[rest] = r.ID
	}
	return out
}

type bindFixture struct {
	*pnEnv
	v  prismnet.VPC
	sn prismnet.Subnet
}

// startBinding is a stack with nodes node-a and node-b (no lease) and a
// VPC and subnet of org-1/proj-a to make ports in.
func startBinding(t *testing.T) *bindFixture {
	t.Helper()
	e := startPN(t)
	e.registerNode(t, "node-a", 0)
	e.registerNode(t, "node-b", 0)
	v := e.vpc(t, "org-1", "proj-a", "10.0.0.0/16")
	return &bindFixture{pnEnv: e, v: v, sn: e.subnet(t, v.ID, "10.0.1.0/24")}
}

func binding(host, ifType, ifname string) map[string]any {
	return map[string]any{"host": host, "interface_type": ifType, "ifname": ifname}
}

// wantBound fails unless p is bound as asked and BUILD (no agent runs).
func wantBound(t *testing.T, p prismnet.Port, host, ifType, ifname string) {
	t.Helper()
	b := p.Binding
	if b == nil || b.Host != host || b.InterfaceType != ifType || b.IfName != ifname || b.BoundAt.IsZero() ||
		p.Status != prismnet.PortBuild || p.StatusReason != "" {
		t.Fatalf("port %s: binding %+v status %q (%q), want %s %s on %s in BUILD", p.ID, b, p.Status, p.StatusReason, ifType, ifname, host)
	}
}

// TestBindPort: a bind answers the port in BUILD with its binding, is
// idempotent, refuses rebinding elsewhere, device sharing and unknown
// hosts, and validates every field — changing nothing when it refuses.
func TestBindPort(t *testing.T) {
	e := startBinding(t)
	p1 := e.port(t, e.sn.ID, nil)
	p2 := e.port(t, e.sn.ID, nil)
	p3 := e.port(t, e.sn.ID, nil)
	if p1.Status != prismnet.PortDown || p1.Binding != nil {
		t.Fatalf("a new port is %+v, want DOWN and unbound", p1)
	}

	a := e.bind(t, p1.ID, "", binding("node-a", "tap", "tap-p1"))
	var bound prismnet.Port
	if a.Status != http.StatusOK {
		t.Fatalf("bind: %s", a)
	}
	testutil.StrictData(t, "bind", a.Data, &bound)
	wantBound(t, bound, "node-a", "tap", "tap-p1")
	if bound.ID != p1.ID || bound.IP != p1.IP || bound.MACAddress != p1.MACAddress || !slices.Equal(bound.SecurityGroupIDs, p1.SecurityGroupIDs) {
		t.Fatalf("bound %+v, was %+v", bound, p1)
	}
	if got := e.getPort(t, p1.ID); got.Binding == nil || *got.Binding != *bound.Binding || got.Status != prismnet.PortBuild {
		t.Fatalf("read back %+v, bound %+v", got, bound)
	}
	if c := e.claimOf(t, "node-a", "tap-p1"); c != p1.ID {
		t.Fatalf("device claim names %q, want %s", c, p1.ID)
	}

	// The agent's view: one topology with the binding, node and VNI.
	topo, err := prismnet.ReadTopology(t.Context(), e.etcd)
	if err != nil {
		t.Fatal(err)
	}
	if tp := topo.Ports[p1.ID]; tp.Binding == nil || tp.Binding.IfName != "tap-p1" || topo.Nodes["node-a"].VTEP != "10.0.0.1" ||
		topo.VPCs[e.v.ID].VNI != e.v.VNI || topo.Subnets[e.sn.ID].VPCID != e.v.ID || topo.Revision == 0 {
		t.Fatalf("topology %+v", topo)
	}

	e.unchanged(t, "binding again the same way", func() {
		again := ok[prismnet.Port](t, e.bind(t, p1.ID, "", binding("node-a", "tap", "tap-p1")), http.StatusOK)
		if again.Binding == nil || *again.Binding != *bound.Binding || again.Status != prismnet.PortBuild {
			t.Fatalf("rebound %+v, first %+v", again, bound)
		}
	})

	for _, c := range []struct {
		name string
		body map[string]any
	}{
		{"another ifname", binding("node-a", "tap", "tap-other")},
		{"another host", binding("node-b", "tap", "tap-p1")},
		{"another interface type", binding("node-a", "veth", "tap-p1")},
	} {
		t.Run("bound port to "+c.name, func(t *testing.T) {
			e.unchanged(t, c.name, func() {
				d := fails(t, e.bind(t, p1.ID, "", c.body), apierr.CodeFailedPrecondition)
				if d["id"] != p1.ID || d["host"] != "node-a" || d["ifname"] != "tap-p1" {
					t.Fatalf("details %v", d)
				}
			})
		})
	}

	t.Run("a device of another port", func(t *testing.T) {
		for _, ifType := range []string{"tap", "veth"} {
			e.unchanged(t, "a claimed device", func() {
				d := fails(t, e.bind(t, p2.ID, "", binding("node-a", ifType, "tap-p1")), apierr.CodeAlreadyExists)
				if d["field"] != "ifname" || d["host"] != "node-a" || d["ifname"] != "tap-p1" {
					t.Fatalf("details %v", d)
				}
			})
		}
		// Device names are per host: the same name on another node is
		// another device.
		wantBound(t, ok[prismnet.Port](t, e.bind(t, p2.ID, "", binding("node-b", "veth", "tap-p1")), http.StatusOK), "node-b", "veth", "tap-p1")
	})

	t.Run("unknown host", func(t *testing.T) {
		for _, h := range []string{"node-z", "NODE-A", "node-a.lab"} {
			e.unchanged(t, "host "+h, func() {
				d := fails(t, e.bind(t, p3.ID, "", binding(h, "tap", "tap-p3")), apierr.CodeFailedPrecondition)
				if d["field"] != "host" || d["host"] != h {
					t.Fatalf("details %v", d)
				}
			})
		}
	})

	t.Run("unknown port", func(t *testing.T) {
		for _, id := range []string{"port-nowhere", e.v.ID, e.sn.ID} {
			e.unchanged(t, "binding "+id, func() {
				fails(t, e.bind(t, id, "", binding("node-a", "tap", "tap-x")), apierr.CodeNotFound)
			})
		}
		e.unchanged(t, "binding a port named under another project", func() {
			a := e.do(t, req{method: "POST", path: "/api/v1/ports/" + p3.ID + "/bind?project_id=proj-b", body: binding("node-a", "tap", "tap-x")})
			fails(t, a, apierr.CodeNotFound)
		})
	})

	long := strings.Repeat("h", 64)
	validation := []struct {
		name       string
		body       any
		field      string
		constraint apierr.Constraint
	}{
		{"missing host", `{"interface_type":"tap","ifname":"tap0"}`, "host", apierr.Required},
		{"missing interface_type", `{"host":"node-a","ifname":"tap0"}`, "interface_type", apierr.Enum},
		{"missing ifname", `{"host":"node-a","interface_type":"tap"}`, "ifname", apierr.Required},
		{"empty object", `{}`, "host", apierr.Required},
		{"no body", "", "host", apierr.Required},
		{"macvlan", binding("node-a", "macvlan", "tap0"), "interface_type", apierr.Enum},
		{"upper-case TAP", binding("node-a", "TAP", "tap0"), "interface_type", apierr.Enum},
		{"ifname of 16", binding("node-a", "tap", "abcdefghijklmnop"), "ifname", apierr.MaxLength},
		{"ifname with slash", binding("node-a", "tap", "tap/0"), "ifname", apierr.Format},
		{"ifname with colon", binding("node-a", "tap", "eth0:1"), "ifname", apierr.Format},
		{"ifname with space", binding("node-a", "tap", "tap 0"), "ifname", apierr.Format},
		{"ifname with tab", binding("node-a", "tap", "tap\t0"), "ifname", apierr.Format},
		{"ifname with NUL", binding("node-a", "tap", "tap\x000"), "ifname", apierr.Format},
		{"ifname non-ASCII", binding("node-a", "tap", "täp0"), "ifname", apierr.Format},
		{"ifname dot", binding("node-a", "tap", "."), "ifname", apierr.Format},
		{"ifname dot dot", binding("node-a", "tap", ".."), "ifname", apierr.Format},
		{"reserved pnb-", binding("node-a", "tap", "pnb-000001"), "ifname", apierr.Format},
		{"reserved pnx-", binding("node-a", "veth", "pnx-000001"), "ifname", apierr.Format},
		{"reserved pnr-", binding("node-a", "veth", "pnr-000001"), "ifname", apierr.Format},
		{"reserved pnq-", binding("node-a", "tap", "pnq-x"), "ifname", apierr.Format},
		{"host of 64", binding(long, "tap", "tap0"), "host", apierr.MaxLength},
		{"host starting with -", binding("-node", "tap", "tap0"), "host", apierr.Format},
		{"host starting with .", binding(".node", "tap", "tap0"), "host", apierr.Format},
		{"host starting with _", binding("_node", "tap", "tap0"), "host", apierr.Format},
		{"host with space", binding("node a", "tap", "tap0"), "host", apierr.Format},
		{"host with slash", binding("node/a", "tap", "tap0"), "host", apierr.Format},
		{"host with colon", binding("node:1", "tap", "tap0"), "host", apierr.Format},
		{"host non-ASCII", binding("nöde", "tap", "tap0"), "host", apierr.Format},
		// Fields are checked in order: host, interface_type, ifname.
		{"everything wrong", binding("", "macvlan", "pnb-1"), "host", apierr.Required},
		{"unknown field", `{"host":"node-a","interface_type":"tap","ifname":"tap0","status":"ACTIVE"}`, "status", apierr.Unknown},
		{"wrong type", `{"host":"node-a","interface_type":"tap","ifname":7}`, "ifname", apierr.Type},
	}
	for _, c := range validation {
		t.Run(c.name, func(t *testing.T) {
			// Both an unbound and a bound port: validation comes first.
			for _, id := range []string{p3.ID, p1.ID} {
				e.unchanged(t, c.name, func() {
					d := fails(t, e.bind(t, id, "", c.body), apierr.CodeValidation)
					if d["field"] != c.field || d["constraint"] != string(c.constraint) {
						t.Fatalf("details %v, want field %s constraint %s", d, c.field, c.constraint)
					}
				})
			}
		})
	}
	e.unchanged(t, "bad JSON and bad queries", func() {
		fails(t, e.bind(t, p3.ID, "", `{"host":`), apierr.CodeInvalidJSON)
		fails(t, e.bind(t, p3.ID, "", `[]`), apierr.CodeInvalidJSON)
		fails(t, e.bind(t, p3.ID, "", `{"host":"node-a","interface_type":"tap","ifname":"tap0"} {}`), apierr.CodeInvalidJSON)
		fails(t, e.do(t, req{method: "POST", path: "/api/v1/ports/" + p3.ID + "/bind?bogus=1", body: binding("node-a", "tap", "tap0")}), apierr.CodeValidation)
		fails(t, e.do(t, req{method: "GET", path: "/api/v1/ports/" + p3.ID + "/bind"}), apierr.CodeMethodNotAllowed)
	})

	t.Run("edges that are valid", func(t *testing.T) {
		host := "N0de_1.lab-" + strings.Repeat("x", 52) // 63 characters
		e.registerNode(t, host, 0)
		for i, ifname := range []string{"abcdefghijklmno", "pnb", "pn-x", "PNB-1", "tap.0_x-y@z"} {
			p := e.port(t, e.sn.ID, nil)
			wantBound(t, ok[prismnet.Port](t, e.bind(t, p.ID, "", binding(host, []string{"tap", "veth"}[i%2], ifname)), http.StatusOK),
				host, []string{"tap", "veth"}[i%2], ifname)
			if c := e.claimOf(t, host, ifname); c != p.ID {
				t.Fatalf("claim of %s names %q, want %s", ifname, c, p.ID)
			}
		}
	})
}

// TestConcurrentBinds: racing binds of one device give it to exactly one
// port, and racing binds of one port bind it exactly once.
func TestConcurrentBinds(t *testing.T) {
	e := startBinding(t)
	const n = 8
	ports := make([]prismnet.Port, n)
	for i := range ports {
		ports[i] = e.port(t, e.sn.ID, nil)
	}
	race := func(body func(i int) (string, map[string]any)) map[string]int {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		defer cancel()
		type result struct {
			status int
			raw    []byte
			err    error
		}
		results := make([]result, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id, b := body(i)
				st, raw, err := e.send(ctx, req{method: "POST", path: "/api/v1/ports/" + id + "/bind", body: b})
				results[i] = result{st, raw, err}
			}()
		}
		wg.Wait()
		out := map[string]int{}
		for _, r := range results {
			if r.err != nil {
				t.Fatal(r.err)
			}
			var env struct {
				Error *struct {
					Code string `json:"code"`
				} `json:"error"`
			}
			if err := json.Unmarshal(r.raw, &env); err != nil {
				t.Fatalf("%v: %s", err, r.raw)
			}
			k := strconv.Itoa(r.status)
			if env.Error != nil {
				k += " " + env.Error.Code
			}
			out[k]++
		}
		return out
	}

	got := race(func(i int) (string, map[string]any) { return ports[i].ID, binding("node-a", "tap", "tap-shared") })
	if want := map[string]int{"200": 1, "409 ALREADY_EXISTS": n - 1}; !maps.Equal(got, want) {
		t.Fatalf("%d ports binding one device: %v, want %v", n, got, want)
	}
	winner := e.claimOf(t, "node-a", "tap-shared")
	for _, p := range ports {
		bound := e.getPort(t, p.ID).Binding != nil
		if bound != (p.ID == winner) {
			t.Fatalf("port %s bound=%v, the claim names %s", p.ID, bound, winner)
		}
	}

	loser := ports[0]
	if loser.ID == winner {
		loser = ports[1]
	}
	got = race(func(i int) (string, map[string]any) {
		return loser.ID, binding("node-b", "veth", "veth-"+strconv.Itoa(i))
	})
	if want := map[string]int{"200": 1, "409 FAILED_PRECONDITION": n - 1}; !maps.Equal(got, want) {
		t.Fatalf("one port binding %d devices: %v, want %v", n, got, want)
	}
	b := e.getPort(t, loser.ID).Binding
	if b == nil {
		t.Fatal("the racing port is not bound")
	}
	want := map[string]string{"node-a/tap-shared": winner, "node-b/" + b.IfName: loser.ID}
	if c := e.claims(t); !maps.Equal(c, want) {
		t.Fatalf("claims %v, want %v", c, want)
	}
}

// TestUnbindPort: unbinding makes the port DOWN, releases its device for
// another port, and is idempotent; deleting a bound port releases its
// device too.
func TestUnbindPort(t *testing.T) {
	e := startBinding(t)
	p1 := e.port(t, e.sn.ID, nil)
	p2 := e.port(t, e.sn.ID, nil)
	p3 := e.port(t, e.sn.ID, nil)

	wantBound(t, ok[prismnet.Port](t, e.bind(t, p1.ID, "", binding("node-a", "tap", "tap-x")), http.StatusOK), "node-a", "tap", "tap-x")
	// An agent found trouble: unbinding clears the reason too.
	bound := e.getPort(t, p1.ID)
	if err := prismnet.ReportPortStatus(t.Context(), e.etcd, bound, "node-a", prismnet.PortError, "no device tap-x"); err != nil {
		t.Fatal(err)
	}
	a := e.unbind(t, p1.ID, "")
	var un prismnet.Port
	if a.Status != http.StatusOK {
		t.Fatalf("unbind: %s", a)
	}
	testutil.StrictData(t, "unbind", a.Data, &un)
	if un.Status != prismnet.PortDown || un.Binding != nil || un.StatusReason != "" || un.ID != p1.ID || un.IP != p1.IP {
		t.Fatalf("unbound %+v", un)
	}
	if strings.Contains(string(a.Data), `"binding"`) || strings.Contains(string(a.Data), `"status_reason"`) {
		t.Fatalf("an unbound port answers %s", a.Data)
	}
	if got := e.getPort(t, p1.ID); got.Status != prismnet.PortDown || got.Binding != nil {
		t.Fatalf("read back %+v", got)
	}
	if c := e.claimOf(t, "node-a", "tap-x"); c != "" {
		t.Fatalf("the device is still claimed by %s", c)
	}

	// The device is free for another port.
	wantBound(t, ok[prismnet.Port](t, e.bind(t, p2.ID, "", binding("node-a", "veth", "tap-x")), http.StatusOK), "node-a", "veth", "tap-x")

	e.unchanged(t, "unbinding an unbound port", func() {
		for _, body := range []any{nil, "{}", " "} {
			again := ok[prismnet.Port](t, e.do(t, req{method: "POST", path: "/api/v1/ports/" + p1.ID + "/unbind", body: body}), http.StatusOK)
			if again.Status != prismnet.PortDown || again.Binding != nil {
				t.Fatalf("unbound again: %+v", again)
			}
		}
	})
	e.unchanged(t, "bad unbinds", func() {
		fails(t, e.unbind(t, "port-nowhere", ""), apierr.CodeNotFound)
		fails(t, e.unbind(t, e.v.ID, ""), apierr.CodeNotFound)
		fails(t, e.unbind(t, "Port-X", ""), apierr.CodeValidation)
		d := fails(t, e.do(t, req{method: "POST", path: "/api/v1/ports/" + p2.ID + "/unbind", body: `{"host":"node-a"}`}), apierr.CodeValidation)
		if d["field"] != "host" || d["constraint"] != string(apierr.Unknown) {
			t.Fatalf("details %v", d)
		}
		fails(t, e.do(t, req{method: "POST", path: "/api/v1/ports/" + p2.ID + "/unbind", body: `{`}), apierr.CodeInvalidJSON)
		fails(t, e.do(t, req{method: "POST", path: "/api/v1/ports/" + p2.ID + "/unbind?bogus=1"}), apierr.CodeValidation)
		fails(t, e.do(t, req{method: "POST", path: "/api/v1/ports/" + p2.ID + "/unbind?project_id=proj-b"}), apierr.CodeNotFound)
	})

	// The unbound port may bind elsewhere now.
	wantBound(t, ok[prismnet.Port](t, e.bind(t, p1.ID, "", binding("node-b", "tap", "tap-y")), http.StatusOK), "node-b", "tap", "tap-y")

	// Deleting a bound port releases its device as well as its address.
	ok[prismnet.Deleted](t, e.do(t, req{method: "DELETE", path: "/api/v1/ports/" + p2.ID}), http.StatusOK)
	if c := e.claimOf(t, "node-a", "tap-x"); c != "" {
		t.Fatalf("a deleted port still claims its device: %s", c)
	}
	wantBound(t, ok[prismnet.Port](t, e.bind(t, p3.ID, "", binding("node-a", "tap", "tap-x")), http.StatusOK), "node-a", "tap", "tap-x")
	if c := e.claims(t); !maps.Equal(c, map[string]string{"node-a/tap-x": p3.ID, "node-b/tap-y": p1.ID}) {
		t.Fatalf("claims %v", c)
	}
	fails(t, e.unbind(t, p2.ID, ""), apierr.CodeNotFound)
}

// TestReportPortStatus: an agent's report changes a port only while it is
// bound to that agent's host and device.
func TestReportPortStatus(t *testing.T) {
	e := startBinding(t)
	p := e.port(t, e.sn.ID, nil)
	ok[prismnet.Port](t, e.bind(t, p.ID, "", binding("node-a", "tap", "tap-r")), http.StatusOK)
	bound := e.getPort(t, p.ID)
	report := func(p prismnet.Port, host, status, reason string) {
		t.Helper()
		if err := prismnet.ReportPortStatus(t.Context(), e.etcd, p, host, status, reason); err != nil {
			t.Fatalf("report %s %s from %s: %v", p.ID, status, host, err)
		}
	}
	wantStatus := func(status, reason string) {
		t.Helper()
		if got := e.getPort(t, p.ID); got.Status != status || got.StatusReason != reason || got.Binding == nil {
			t.Fatalf("port is %q (%q), binding %+v; want %q (%q)", got.Status, got.StatusReason, got.Binding, status, reason)
		}
	}

	report(bound, "node-a", prismnet.PortActive, "")
	wantStatus(prismnet.PortActive, "")
	e.unchanged(t, "reporting the status it has", func() { report(bound, "node-a", prismnet.PortActive, "") })
	report(bound, "node-a", prismnet.PortError, "device tap-r not found")
	wantStatus(prismnet.PortError, "device tap-r not found")

	otherDevice := bound
	ob := *bound.Binding
	ob.IfName = "tap-other"
	otherDevice.Binding = &ob
	unbound := bound
	unbound.Binding = nil
	e.unchanged(t, "reports that are not the binding's", func() {
		report(bound, "node-b", prismnet.PortActive, "")
		report(bound, "node-a.lab", prismnet.PortActive, "")
		report(otherDevice, "node-a", prismnet.PortActive, "")
		report(unbound, "node-a", prismnet.PortActive, "")
	})
	wantStatus(prismnet.PortError, "device tap-r not found")

	// Rebinding (after an unbind) starts over in BUILD without a reason.
	ok[prismnet.Port](t, e.unbind(t, p.ID, ""), http.StatusOK)
	e.unchanged(t, "a stale report after the unbind", func() { report(bound, "node-a", prismnet.PortActive, "") })
	wantBound(t, ok[prismnet.Port](t, e.bind(t, p.ID, "", binding("node-a", "tap", "tap-r")), http.StatusOK), "node-a", "tap", "tap-r")
	report(bound, "node-a", prismnet.PortActive, "")
	wantStatus(prismnet.PortActive, "")

	// An agent may report on a port deleted meanwhile: no error, and it
	// must not bring the port back.
	ok[prismnet.Deleted](t, e.do(t, req{method: "DELETE", path: "/api/v1/ports/" + p.ID}), http.StatusOK)
	e.unchanged(t, "a report for a deleted port", func() { report(bound, "node-a", prismnet.PortError, "gone") })
	fails(t, e.do(t, req{method: "GET", path: "/api/v1/ports/" + p.ID}), apierr.CodeNotFound)
}

// TestVNIs: every VPC has its own VNI within the 16 bits the data plane's
// conntrack zones allow, claimed in the store until the VPC goes.
func TestVNIs(t *testing.T) {
	e := startPN(t)
	const n = 24
	seen := map[uint32]string{}
	var vpcs []prismnet.VPC
	for i := range n {
		v := e.vpc(t, "org-1", "proj-"+strconv.Itoa(i%3), "10.0.0.0/16")
		// The documented range (OpenAPI, vpcs.go's maxVNI), inside VXLAN's
		// 24 bits.
		if v.VNI < 1 || v.VNI > 65535 {
			t.Fatalf("vpc %s has vni %d", v.ID, v.VNI)
		}
		if other, dup := seen[v.VNI]; dup {
			t.Fatalf("vpcs %s and %s share vni %d", other, v.ID, v.VNI)
		}
		seen[v.VNI] = v.ID
		if got := ok[prismnet.VPC](t, e.do(t, req{method: "GET", path: "/api/v1/vpcs/" + v.ID}), http.StatusOK); got.VNI != v.VNI {
			t.Fatalf("vpc %s created with vni %d, reads %d", v.ID, v.VNI, got.VNI)
		}
		vpcs = append(vpcs, v)
	}
	vniKey := func(v prismnet.VPC) string { return "vnis/" + strconv.FormatUint(uint64(v.VNI), 10) }
	for _, v := range vpcs {
		if got := e.stored(t, vniKey(v)); !strings.Contains(got, `"`+v.ID+`"`) {
			t.Fatalf("vni key of %s holds %q", v.ID, got)
		}
	}
	vniKeys := 0
	for k := range e.snapshot(t) {
		if strings.HasPrefix(k, pnPrefix+"vnis/") {
			vniKeys++
		}
	}
	if vniKeys != n {
		t.Fatalf("%d vni keys for %d vpcs", vniKeys, n)
	}

	// A VPC that refuses to go keeps its VNI; one that goes frees it.
	busy := vpcs[0]
	sub := e.subnet(t, busy.ID, "10.0.1.0/24")
	e.unchanged(t, "deleting a vpc with subnets", func() {
		fails(t, e.do(t, req{method: "DELETE", path: "/api/v1/vpcs/" + busy.ID}), apierr.CodeFailedPrecondition)
	})
	ok[prismnet.Deleted](t, e.do(t, req{method: "DELETE", path: "/api/v1/subnets/" + sub.ID}), http.StatusOK)
	for _, v := range vpcs[:4] {
		ok[prismnet.Deleted](t, e.do(t, req{method: "DELETE", path: "/api/v1/vpcs/" + v.ID}), http.StatusOK)
		if got := e.stored(t, vniKey(v)); got != "" {
			t.Fatalf("deleted vpc %s, its vni key still holds %q", v.ID, got)
		}
	}
	for _, v := range vpcs[4:] {
		if e.stored(t, vniKey(v)) == "" {
			t.Fatalf("vpc %s lost its vni key", v.ID)
		}
	}
}

// TestNodes: GET /api/v1/nodes lists the registered nodes to operators
// only, and a node on a lease goes with it.
func TestNodes(t *testing.T) {
	e := startPN(t)
	empty := e.do(t, req{method: "GET", path: "/api/v1/nodes"})
	var none prismnet.NodeList
	if empty.Status != http.StatusOK {
		t.Fatalf("nodes: %s", empty)
	}
	testutil.StrictData(t, "nodes", empty.Data, &none)
	if none.Nodes == nil || len(none.Nodes) != 0 {
		t.Fatalf("no nodes answer %s, want an empty list", empty.Data)
	}

	a := e.registerNode(t, "node-a", 0)
	lease, err := e.etcd.Grant(t.Context(), 300)
	if err != nil {
		t.Fatal(err)
	}
	b := e.registerNode(t, "node-b", lease.ID)

	list := ok[prismnet.NodeList](t, e.do(t, req{method: "GET", path: "/api/v1/nodes"}), http.StatusOK)
	if len(list.Nodes) != 2 || list.Nodes[0].Name != "node-a" || list.Nodes[1].Name != "node-b" ||
		!list.Nodes[0].StartedAt.Equal(a.StartedAt) || list.Nodes[0].VTEP != a.VTEP || list.Nodes[1].Version != b.Version {
		t.Fatalf("nodes %+v", list.Nodes)
	}

	member := e.token(t, "u", "proj-a", "member")
	viewer := e.token(t, "v", "proj-a", "viewer")
	e.unchanged(t, "refused node lists", func() {
		fails(t, e.do(t, req{method: "GET", path: "/api/v1/nodes", token: member}), apierr.CodeForbidden)
		fails(t, e.do(t, req{method: "GET", path: "/api/v1/nodes", token: viewer}), apierr.CodeForbidden)
		fails(t, e.do(t, req{method: "GET", path: "/api/v1/nodes", token: "garbage"}), apierr.CodeUnauthenticated)
		fails(t, e.do(t, req{method: "GET", path: "/api/v1/nodes?limit=1"}), apierr.CodeValidation)
	})

	// The agent of node-b stops: its lease ends and so does its record, and
	// nothing binds to it any more.
	if _, err := e.etcd.Revoke(t.Context(), lease.ID); err != nil {
		t.Fatal(err)
	}
	list = ok[prismnet.NodeList](t, e.do(t, req{method: "GET", path: "/api/v1/nodes"}), http.StatusOK)
	if len(list.Nodes) != 1 || list.Nodes[0].Name != "node-a" {
		t.Fatalf("after node-b's lease ended: %+v", list.Nodes)
	}
	v := e.vpc(t, "org-1", "proj-a", "10.0.0.0/16")
	p := e.port(t, e.subnet(t, v.ID, "10.0.1.0/24").ID, nil)
	e.unchanged(t, "binding to a node that went", func() {
		fails(t, e.bind(t, p.ID, "", binding("node-b", "tap", "tap0")), apierr.CodeFailedPrecondition)
	})
	ok[prismnet.Port](t, e.bind(t, p.ID, "", binding("node-a", "tap", "tap0")), http.StatusOK)
}

// TestBindTenancy: another project's port is as missing for binds as for
// reads, and a viewer may read a port but not bind it.
func TestBindTenancy(t *testing.T) {
	e := startBinding(t) // org-1/proj-a
	pa := e.port(t, e.sn.ID, nil)
	other := e.vpc(t, "org-1", "proj-b", "10.0.0.0/16")
	pb := e.port(t, e.subnet(t, other.ID, "10.0.1.0/24").ID, nil)
	memberA := e.token(t, "ua", "proj-a", "member")
	memberB := e.token(t, "ub", "proj-b", "member")
	viewerA := e.token(t, "va", "proj-a", "viewer")

	e.unchanged(t, "binds outside the caller's reach", func() {
		fails(t, e.do(t, req{method: "GET", path: "/api/v1/ports/" + pa.ID, token: memberB}), apierr.CodeNotFound)
		fails(t, e.bind(t, pa.ID, memberB, binding("node-a", "tap", "tap-a")), apierr.CodeNotFound)
		fails(t, e.unbind(t, pa.ID, memberB), apierr.CodeNotFound)
		ok[prismnet.Port](t, e.do(t, req{method: "GET", path: "/api/v1/ports/" + pa.ID, token: viewerA}), http.StatusOK)
		fails(t, e.bind(t, pa.ID, viewerA, binding("node-a", "tap", "tap-a")), apierr.CodeForbidden)
		fails(t, e.unbind(t, pa.ID, viewerA), apierr.CodeForbidden)
		fails(t, e.bind(t, pa.ID, "garbage", binding("node-a", "tap", "tap-a")), apierr.CodeUnauthenticated)
	})

	// Its own project's member binds and unbinds it.
	wantBound(t, ok[prismnet.Port](t, e.bind(t, pa.ID, memberA, binding("node-a", "tap", "tap-a")), http.StatusOK), "node-a", "tap", "tap-a")
	e.unchanged(t, "unbinds outside the caller's reach", func() {
		fails(t, e.unbind(t, pa.ID, memberB), apierr.CodeNotFound)
		fails(t, e.unbind(t, pa.ID, viewerA), apierr.CodeForbidden)
		// A device claimed by another project's port answers as any
		// claimed device: the caller learns it is taken, not by what.
		d := fails(t, e.bind(t, pb.ID, memberB, binding("node-a", "veth", "tap-a")), apierr.CodeAlreadyExists)
		if _, leaks := d["id"]; leaks {
			t.Fatalf("details name the other port: %v", d)
		}
	})
	ok[prismnet.Port](t, e.unbind(t, pa.ID, memberA), http.StatusOK)
}

// TestHealthDataplane: a stack without an agent says so in /health.
func TestHealthDataplane(t *testing.T) {
	e := startPN(t)
	h := ok[struct {
		Status string            `json:"status"`
		Info   map[string]string `json:"info"`
	}](t, e.do(t, req{method: "GET", path: "/health"}), http.StatusOK)
	if h.Status != "ok" || !maps.Equal(h.Info, map[string]string{"dataplane": "disabled"}) {
		t.Fatalf("health %+v", h)
	}
}
