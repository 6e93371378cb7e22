package prismnet_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/testutil"
	"github.com/photoncloud/photon/services/prismnet"
)

// fuzzNodes are the nodes FuzzBindPort registers; fuzzHeld is a device
// of fuzzNodes[0] that the fixture's other port holds.
var fuzzNodes = []string{"node-a", "Node-B.lab_1"}

const fuzzHeld = "tap-held"

// fuzzBindError is the first field a bind request gets wrong, checked in
// the service's order (host, interface_type, ifname), and how; "" when
// the request is valid. It restates the rules of the OpenAPI file rather
// than calling the service's, so that a change to either shows.
func fuzzBindError(r prismnet.BindPortRequest) (field string, c apierr.Constraint) {
	switch h := r.Host; {
	case h == "":
		return "host", apierr.Required
	case len(h) > 63:
		return "host", apierr.MaxLength
	default:
		for i := 0; i < len(h); i++ {
			ch := h[i]
			alnum := ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9'
			if !alnum && (i == 0 || strings.IndexByte("-._", ch) < 0) {
				return "host", apierr.Format
			}
		}
	}
	if r.InterfaceType != "tap" && r.InterfaceType != "veth" {
		return "interface_type", apierr.Enum
	}
	switch n := r.IfName; {
	case n == "":
		return "ifname", apierr.Required
	case len(n) > 15:
		return "ifname", apierr.MaxLength
	case n == "." || n == "..":
		return "ifname", apierr.Format
	default:
		for i := 0; i < len(n); i++ {
			if ch := n[i]; ch <= ' ' || ch > '~' || ch == '/' || ch == ':' {
				return "ifname", apierr.Format
			}
		}
		for _, p := range []string{"pnb-", "pnx-", "pnr-", "pnq-"} {
			if strings.HasPrefix(n, p) {
				return "ifname", apierr.Format
			}
		}
	}
	return "", ""
}

// fuzzClaim is the port id the device claim host/ifname names ("" for
// none), read straight from ChainFire.
func (e *fuzzEnv) claim(t testing.TB, host, ifname string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := e.cli.Get(ctx, fuzzPrefix+"bindings/"+host+"/"+ifname)
	if err != nil {
		t.Fatalf("reading the claim of %s/%s: %v", host, ifname, err)
	}
	if len(resp.Kvs) == 0 {
		return ""
	}
	var r fuzzRef
	if err := json.Unmarshal(resp.Kvs[0].Value, &r); err != nil || r.ID == "" {
		t.Fatalf("the claim of %s/%s holds %q", host, ifname, resp.Kvs[0].Value)
	}
	return r.ID
}

// FuzzBindPort sends any body to POST /api/v1/ports/{id}/bind for an
// unbound port of fuzzProject. Nodes fuzzNodes run agents (registered
// without a lease); another port holds fuzzHeld on fuzzNodes[0]. A success
// is the port in BUILD with exactly the binding asked for and its device
// claimed; binding it again the same way changes nothing; it is then
// unbound, which leaves the store as it was.
func FuzzBindPort(f *testing.F) {
	for _, s := range []string{
		`{"host":"node-a","interface_type":"tap","ifname":"tap0"}`,
		`{"host":"node-a","interface_type":"veth","ifname":"veth-vm-1"}`,
		`{"host":"Node-B.lab_1","interface_type":"tap","ifname":"tap-held"}`,
		`{"host":"node-a","interface_type":"tap","ifname":"tap-held"}`,
		`{"host":"node-a","interface_type":"veth","ifname":"tap-held"}`,
		`{"host":"node-c","interface_type":"tap","ifname":"tap0"}`,
		`{"host":"NODE-A","interface_type":"tap","ifname":"tap0"}`,
		`{"host":"node-a","interface_type":"macvlan","ifname":"tap0"}`,
		`{"host":"node-a","interface_type":"TAP","ifname":"tap0"}`,
		`{"host":"node-a","interface_type":"tap","ifname":"abcdefghijklmno"}`,
		`{"host":"node-a","interface_type":"tap","ifname":"abcdefghijklmnop"}`,
		`{"host":"node-a","interface_type":"tap","ifname":"tap/0"}`,
		`{"host":"node-a","interface_type":"tap","ifname":"eth0:1"}`,
		`{"host":"node-a","interface_type":"tap","ifname":"tap 0"}`,
		`{"host":"node-a","interface_type":"tap","ifname":"t\u00e4p"}`,
		`{"host":"node-a","interface_type":"tap","ifname":"\u0000"}`,
		`{"host":"node-a","interface_type":"tap","ifname":".."}`,
		`{"host":"node-a","interface_type":"tap","ifname":"..."}`,
		`{"host":"node-a","interface_type":"tap","ifname":"pnb-000001"}`,
		`{"host":"node-a","interface_type":"tap","ifname":"pnx-1"}`,
		`{"host":"node-a","interface_type":"tap","ifname":"pnr-1"}`,
		`{"host":"node-a","interface_type":"tap","ifname":"pnq-1"}`,
		`{"host":"node-a","interface_type":"tap","ifname":"pnb"}`,
		`{"host":"node-a","interface_type":"tap","ifname":"%~!#$"}`,
		`{"host":"-node-a","interface_type":"tap","ifname":"tap0"}`,
		`{"host":"node a","interface_type":"tap","ifname":"tap0"}`,
		`{"host":"node/a","interface_type":"tap","ifname":"tap0"}`,
		`{"host":"` + strings.Repeat("h", 64) + `","interface_type":"tap","ifname":"tap0"}`,
		`{"host":"","interface_type":"","ifname":""}`,
		`{"interface_type":"tap","ifname":"tap0"}`, `{"host":"node-a","ifname":"tap0"}`, `{"host":"node-a","interface_type":"tap"}`,
		`{"HOST":"node-a","Interface_Type":"tap","IFNAME":"tap0"}`,
		`{"host":"node-c","host":"node-a","interface_type":"tap","ifname":"tap0"}`,
		`{"host":"node-a","interface_type":"tap","ifname":"tap0","status":"ACTIVE"}`,
		`{"host":"node-a","interface_type":"tap","ifname":0}`, `{"host":["node-a"],"interface_type":"tap","ifname":"tap0"}`,
		`{"host":"node-a","interface_type":"tap","ifname":"tap0"} {}`,
		``, `null`, `[]`, `{`, `{}`, `"node-a"`,
	} {
		f.Add([]byte(s))
	}
	e := fuzzStack(f)
	nodes := map[string]bool{}
	for _, n := range fuzzNodes {
		if err := prismnet.RegisterNode(context.Background(), e.cli, prismnet.Node{Name: n, VTEP: "10.0.0.1", StartedAt: time.Now().UTC()}, 0); err != nil {
			f.Fatalf("registering %s: %v", n, err)
		}
		nodes[n] = true
	}
	var vpc prismnet.VPC
	var sn prismnet.Subnet
	var port, holder prismnet.Port
	e.must(f, "POST", "/vpcs", map[string]any{"name": "v", "org_id": fuzzOrg, "project_id": fuzzProject, "cidr_block": "10.2.0.0/16"}, http.StatusCreated, &vpc)
	e.must(f, "POST", "/subnets", map[string]any{"name": "s", "vpc_id": vpc.ID, "cidr_block": "10.2.0.0/28"}, http.StatusCreated, &sn)
	e.must(f, "POST", "/ports", map[string]any{"subnet_id": sn.ID}, http.StatusCreated, &port)
	e.must(f, "POST", "/ports", map[string]any{"subnet_id": sn.ID}, http.StatusCreated, &holder)
	e.must(f, "POST", "/ports/"+holder.ID+"/bind", map[string]any{"host": fuzzNodes[0], "interface_type": "tap", "ifname": fuzzHeld}, http.StatusOK, nil)
	path := "/ports/" + port.ID

	f.Fuzz(func(t *testing.T, body []byte) {
		const what = "POST /api/v1/ports/{id}/bind"
		var p0 prismnet.Port
		e.must(t, "GET", path, nil, http.StatusOK, &p0)
		if p0.Binding != nil || p0.Status != prismnet.PortDown {
			t.Fatalf("%s: the port starts bound: %+v", what, p0)
		}
		before := e.state(t)
		a := e.do(t, "POST", path+"/bind", body)
		if a.Err != nil {
			e.unchanged(t, what, before, a)
		}
		req, ok := testutil.RequestOf[prismnet.BindPortRequest](t, what, body, fuzzMaxBody, a)
		if !ok {
			return
		}
		if field, c := fuzzBindError(req); field != "" {
			if !a.Is(apierr.CodeValidation) || a.Err.Details["field"] != field || a.Err.Details["constraint"] != string(c) {
				t.Fatalf("%s: %q answered %s (%s), want VALIDATION_ERROR on %s (%s)", what, body, a, a.Raw, field, c)
			}
			return
		}
		if !nodes[req.Host] {
			fuzzAnyOf(t, what, a, "a host without an agent", apierr.CodeFailedPrecondition)
			return
		}
		if req.Host == fuzzNodes[0] && req.IfName == fuzzHeld {
			fuzzAnyOf(t, what, a, "a device another port holds", apierr.CodeAlreadyExists)
			return
		}
		if a.Status != http.StatusOK {
			t.Fatalf("%s: a valid binding %q answered %s, want 200", what, body, a)
		}
		var p prismnet.Port
		testutil.StrictData(t, what, a.Data, &p)
		b := p.Binding
		if b == nil || b.Host != req.Host || b.InterfaceType != req.InterfaceType || b.IfName != req.IfName || b.BoundAt.IsZero() ||
			p.Status != prismnet.PortBuild || p.StatusReason != "" || p.ID != port.ID || p.IP != port.IP || p.MACAddress != port.MACAddress {
			t.Fatalf("%s: bound %s for %q", what, a.Data, body)
		}
		if c := e.claim(t, req.Host, req.IfName); c != port.ID {
			t.Fatalf("%s: bound %s to %s/%s, the claim names %q", what, port.ID, req.Host, req.IfName, c)
		}
		var got prismnet.Port
		e.must(t, "GET", path, nil, http.StatusOK, &got)
		if got.Binding == nil || *got.Binding != *b || got.Status != prismnet.PortBuild {
			t.Fatalf("%s: bound %+v, read back %+v", what, b, got.Binding)
		}
		mid := e.state(t)
		again := e.do(t, "POST", path+"/bind", body)
		if again.Status != http.StatusOK {
			t.Fatalf("%s: binding %q again answered %s", what, body, again)
		}
		e.unchanged(t, what+" again", mid, again)

		var un prismnet.Port
		e.must(t, "POST", path+"/unbind", nil, http.StatusOK, &un)
		if un.Binding != nil || un.Status != prismnet.PortDown {
			t.Fatalf("%s: unbound %+v", what, un)
		}
		if c := e.claim(t, req.Host, req.IfName); c != "" {
			t.Fatalf("%s: unbound %s, yet %s/%s is claimed by %q", what, port.ID, req.Host, req.IfName, c)
		}
		if after := e.state(t); after.count != before.count {
			t.Fatalf("%s: bound and unbound, PrismNET's keys went from %d to %d", what, before.count, after.count)
		}
		if c := e.claim(t, fuzzNodes[0], fuzzHeld); c != holder.ID {
			t.Fatalf("%s: the held device's claim names %q, want %s", what, c, holder.ID)
		}
	})
}
