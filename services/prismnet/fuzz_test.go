package prismnet_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/testutil"
	"github.com/photoncloud/photon/services/prismnet"
)

// The fuzz targets below drive one in-process stack (ChainFire + IAM +
// CreditService + PrismNET) per target over real HTTP as a tokenless
// loopback client, the bootstrap admin. Whatever the body, the answer is the
// seed's envelope with a code of apierr's table (and SUBNET_FULL) at its
// status, never a 5xx; an error changes nothing under /photon/prismnet/; a
// success is exactly what was asked, and the IPAM and MAC records stay
// consistent with the ports.
//
// Bodies may name the fixture's resources, whose ids are random, by
// placeholders ($VPC, $SUBNET, $SG, ...) that each target replaces before
// sending, so that seeds (and the fuzzer's mutations of them) reach past
// NOT_FOUND.

const (
	fuzzOrg     = "fuzz-org"
	fuzzProject = "fuzz-proj"
	fuzzOther   = "fuzz-other" // another project of fuzzOrg
	fuzzMaxBody = 1 << 20
	fuzzPrefix  = "/photon/prismnet/"
)

// fuzzEnv is a target's stack.
type fuzzEnv struct {
	base string // PrismNET's /api/v1
	hc   *http.Client
	cli  *clientv3.Client
}

// fuzzStack starts a stack for f, stopped when f ends.
func fuzzStack(f *testing.F) *fuzzEnv {
	f.Helper()
	st := testutil.StartStack(f, "")
	return &fuzzEnv{
		base: "http://" + st.PrismNET.HTTPAddr() + "/api/v1",
		hc: &http.Client{Timeout: 20 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		cli: st.ChainFire.Client(),
	}
}

// fuzzCodes is what PrismNET may answer: apierr's table and SUBNET_FULL.
func fuzzCodes() map[apierr.Code]bool {
	c := testutil.ErrorCodes()
	c[apierr.CodeSubnetFull] = true
	return c
}

// do sends body (for any method but GET and DELETE) as application/json
// and checks the answer is an envelope.
func (e *fuzzEnv) do(t testing.TB, method, path string, body []byte) testutil.Answer {
	t.Helper()
	var rd io.Reader
	if method != "GET" && method != "DELETE" {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, e.base+path, rd)
	if err != nil {
		t.Fatalf("request %s %s: %v", method, path, err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	what := method + " /api/v1" + path
	resp, err := e.hc.Do(req)
	if err != nil {
		if len(body) > fuzzMaxBody {
			t.Skipf("%s with a %d-byte body: %v", what, len(body), err)
		}
		t.Fatalf("%s: %v", what, err)
	}
	defer resp.Body.Close()
	return testutil.CheckEnvelope(t, what, resp, testutil.EnvelopeRules{Codes: fuzzCodes()})
}

// must sends v (nil for none) and fails unless the status is want; it
// decodes the data into out when out is not nil.
func (e *fuzzEnv) must(t testing.TB, method, path string, v any, want int, out any) {
	t.Helper()
	var b []byte
	if v != nil {
		var err error
		if b, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	a := e.do(t, method, path, b)
	if a.Status != want {
		t.Fatalf("%s %s: %s, want status %d", method, path, a, want)
	}
	if out != nil {
		testutil.StrictData(t, method+" "+path, a.Data, out)
	}
}

// fuzzFill replaces the placeholders in body with the fixture's ids.
// Longer placeholders go first, so that $SG does not eat $SG2's prefix.
func fuzzFill(body []byte, ids map[string]string) []byte {
	keys := slices.SortedFunc(maps.Keys(ids), func(a, b string) int { return len(b) - len(a) })
	for _, k := range keys {
		body = bytes.ReplaceAll(body, []byte(k), []byte(ids[k]))
	}
	return body
}

// fuzzValidID is the service's rule for ids (internal/ids.Check).
func fuzzValidID(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && strings.IndexByte("-_.:", c) >= 0) {
			return false
		}
	}
	return true
}

// fuzzCIDR parses s as the service must accept it: IPv4, bits from min to
// max, host bits zero.
func fuzzCIDR(s string, min, max int) (netip.Prefix, bool) {
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() || p.Bits() < min || p.Bits() > max || p.Masked() != p {
		return netip.Prefix{}, false
	}
	return p, true
}

// fuzzBounds is p's network and broadcast address.
func fuzzBounds(p netip.Prefix) (netip.Addr, netip.Addr) {
	b := p.Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= host
	return p.Addr(), netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// fuzzState is what the store holds under /photon/prismnet/: the number of
// keys and the newest change.
type fuzzState struct{ count, newest int64 }

func (e *fuzzEnv) state(t testing.TB) fuzzState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := e.cli.Get(ctx, fuzzPrefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatalf("reading PrismNET's keys: %v", err)
	}
	var s fuzzState
	for _, kv := range resp.Kvs {
		s.count++
		s.newest = max(s.newest, kv.ModRevision)
	}
	return s
}

// unchanged fails if the store moved from before.
func (e *fuzzEnv) unchanged(t testing.TB, what string, before fuzzState, a testutil.Answer) {
	t.Helper()
	if after := e.state(t); after != before {
		t.Fatalf("%s: answered %s, yet PrismNET's keys moved from %+v to %+v", what, a, before, after)
	}
}

// fuzzList reads every value under prefix (relative to /photon/prismnet/)
// straight from ChainFire, keyed by the rest of its key.
func fuzzList[T any](t testing.TB, e *fuzzEnv, prefix string) map[string]T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := e.cli.Get(ctx, fuzzPrefix+prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatalf("reading %s: %v", prefix, err)
	}
	out := map[string]T{}
	for _, kv := range resp.Kvs {
		var v T
		if err := json.Unmarshal(kv.Value, &v); err != nil {
			t.Fatalf("stored %s: %v: %s", kv.Key, err, kv.Value)
		}
		out[strings.TrimPrefix(string(kv.Key), fuzzPrefix+prefix)] = v
	}
	return out
}

// fuzzAnyOf fails unless a is an error with one of codes.
func fuzzAnyOf(t testing.TB, what string, a testutil.Answer, why string, codes ...apierr.Code) {
	t.Helper()
	if a.Err == nil || !slices.Contains(codes, a.Err.Code) {
		t.Fatalf("%s: %s answered %s, want one of %v", what, why, a, codes)
	}
}

// FuzzCreateVPC sends any body to POST /api/v1/vpcs.
func FuzzCreateVPC(f *testing.F) {
	for _, s := range []string{
		`{"name":"production-vpc","org_id":"org-123","project_id":"proj-456","cidr_block":"10.0.0.0/16"}`, // the seed's
		`{"name":"staging-vpc","org_id":"org-123","project_id":"proj-456","cidr_block":"172.16.0.0/16","description":"Staging environment VPC"}`,
		`{"name":"invalid"}`, // the seed's error example
		`{"name":"v","org_id":"o","project_id":"p","cidr_block":"10.0.0.0/8"}`,
		`{"name":"v","org_id":"o","project_id":"p","cidr_block":"10.0.0.0/7"}`,
		`{"name":"v","org_id":"o","project_id":"p","cidr_block":"10.0.0.0/28"}`,
		`{"name":"v","org_id":"o","project_id":"p","cidr_block":"10.0.0.0/29"}`,
		`{"name":"v","org_id":"o","project_id":"p","cidr_block":"10.0.0.1/16"}`,
		`{"name":"v","org_id":"o","project_id":"p","cidr_block":"10.0.0.0/08"}`,
		`{"name":"v","org_id":"o","project_id":"p","cidr_block":"010.0.0.0/8"}`,
		`{"name":"v","org_id":"o","project_id":"p","cidr_block":"10.0.0.0"}`,
		`{"name":"v","org_id":"o","project_id":"p","cidr_block":" 10.0.0.0/16"}`,
		`{"name":"v","org_id":"o","project_id":"p","cidr_block":"fd00::/8"}`,
		`{"name":"v","org_id":"o","project_id":"p","cidr_block":"::ffff:10.0.0.0/104"}`,
		`{"name":"v","org_id":"o","project_id":"p","cidr_block":"0.0.0.0/8"}`,
		`{"name":"v","org_id":"o","project_id":"p","cidr_block":"255.255.255.240/28"}`,
		`{"name":"","org_id":"o","project_id":"p","cidr_block":"10.0.0.0/16"}`,
		`{"name":"` + strings.Repeat("n", 256) + `","org_id":"o","project_id":"p","cidr_block":"10.0.0.0/16"}`,
		`{"name":"v","org_id":"o","project_id":"p","cidr_block":"10.0.0.0/16","description":"` + strings.Repeat("d", 1025) + `"}`,
		`{"name":"v","org_id":"O","project_id":"p","cidr_block":"10.0.0.0/16"}`,
		`{"name":"v","project_id":"p","cidr_block":"10.0.0.0/16"}`,
		`{"name":"v","org_id":"o","project_id":"p","cidr_block":"10.0.0.0/16","status":"active"}`,
		`{"name":"v","org_id":"o","project_id":"p","cidr_block":16}`,
		``, `null`, `[]`, `{`, `{}`, `{}{}`,
	} {
		f.Add([]byte(s))
	}
	e := fuzzStack(f)

	f.Fuzz(func(t *testing.T, body []byte) {
		const what = "POST /api/v1/vpcs"
		before := e.state(t)
		a := e.do(t, "POST", "/vpcs", body)
		if a.Err != nil {
			e.unchanged(t, what, before, a)
		}
		req, ok := testutil.RequestOf[prismnet.CreateVPCRequest](t, what, body, fuzzMaxBody, a)
		if !ok {
			return
		}
		_, cidrOK := fuzzCIDR(req.CIDRBlock, 8, 28)
		if req.CIDRBlock == "" {
			// The seed's error example: exactly this.
			if !a.Is(apierr.CodeValidation) || a.Err.Details["field"] != "cidr_block" || a.Err.Details["constraint"] != "required" {
				t.Fatalf("%s: no cidr_block answered %s (%s), want VALIDATION_ERROR cidr_block required", what, a, a.Raw)
			}
			return
		}
		if !cidrOK || req.Name == "" || len(req.Name) > 255 || !fuzzValidID(req.OrgID) || !fuzzValidID(req.ProjectID) || len(req.Description) > 1024 {
			fuzzAnyOf(t, what, a, "an invalid request", apierr.CodeValidation)
			return
		}
		if a.Status != http.StatusCreated {
			t.Fatalf("%s: a valid VPC answered %s, want 201", what, a)
		}
		var v prismnet.VPC
		testutil.StrictData(t, what, a.Data, &v)
		p, err := netip.ParsePrefix(v.CIDRBlock)
		if err != nil || p.String() != v.CIDRBlock || p.Bits() < 8 || p.Bits() > 28 || p.Masked() != p || v.CIDRBlock != req.CIDRBlock {
			t.Fatalf("%s: asked for %q, got cidr_block %q", what, req.CIDRBlock, v.CIDRBlock)
		}
		if !strings.HasPrefix(v.ID, "vpc-") || v.Name != req.Name || v.OrgID != req.OrgID || v.ProjectID != req.ProjectID ||
			v.Description != req.Description || v.Status != prismnet.StatusActive || v.CreatedAt.IsZero() {
			t.Fatalf("%s: created %s for %s", what, a.Data, body)
		}
		var got prismnet.VPC
		e.must(t, "GET", "/vpcs/"+v.ID, nil, http.StatusOK, &got)
		if !got.CreatedAt.Equal(v.CreatedAt) || got.ID != v.ID || got.CIDRBlock != v.CIDRBlock || got.Name != v.Name {
			t.Fatalf("%s: created %+v, read back %+v", what, v, got)
		}
		// Delete it again, so that the store stays small.
		e.must(t, "DELETE", "/vpcs/"+v.ID, nil, http.StatusOK, nil)
		if g := e.do(t, "GET", "/vpcs/"+v.ID, nil); !g.Is(apierr.CodeNotFound) {
			t.Fatalf("%s: deleted %s, reading it answered %s", what, v.ID, g)
		}
	})
}

// FuzzCreateSubnet sends any body to POST /api/v1/subnets. $VPC is a
// 10.0.0.0/16 of fuzzProject holding 10.0.1.0/24 and 10.0.128.0/20; $VPC2
// a 192.168.0.0/24 of fuzzOther with none. What a success creates is
// deleted again.
func FuzzCreateSubnet(f *testing.F) {
	for _, s := range []string{
		`{"name":"web-subnet","vpc_id":"$VPC","cidr_block":"10.0.2.0/24","description":"Web tier subnet"}`,
		`{"name":"s","vpc_id":"$VPC","cidr_block":"10.0.1.0/24"}`,
		`{"name":"s","vpc_id":"$VPC","cidr_block":"10.0.1.128/25"}`,
		`{"name":"s","vpc_id":"$VPC","cidr_block":"10.0.0.0/16"}`,
		`{"name":"s","vpc_id":"$VPC","cidr_block":"10.0.0.0/8"}`,
		`{"name":"s","vpc_id":"$VPC","cidr_block":"10.0.0.0/24"}`,
		`{"name":"s","vpc_id":"$VPC","cidr_block":"10.0.130.0/24"}`,
		`{"name":"s","vpc_id":"$VPC","cidr_block":"10.0.144.0/20"}`,
		`{"name":"s","vpc_id":"$VPC","cidr_block":"10.0.255.248/29"}`,
		`{"name":"s","vpc_id":"$VPC","cidr_block":"10.0.255.252/30"}`,
		`{"name":"s","vpc_id":"$VPC","cidr_block":"10.1.0.0/24"}`,
		`{"name":"s","vpc_id":"$VPC","cidr_block":"10.0.2.1/24"}`,
		`{"name":"s","vpc_id":"$VPC","cidr_block":"10.0.2.0/24","gateway_ip":"10.0.2.254"}`,
		`{"name":"s","vpc_id":"$VPC","cidr_block":"10.0.2.0/24","gateway_ip":"10.0.2.0"}`,
		`{"name":"s","vpc_id":"$VPC","cidr_block":"10.0.2.0/24","gateway_ip":"10.0.2.255"}`,
		`{"name":"s","vpc_id":"$VPC","cidr_block":"10.0.2.0/24","gateway_ip":"10.0.3.1"}`,
		`{"name":"s","vpc_id":"$VPC","cidr_block":"10.0.2.0/24","gateway_ip":"::1"}`,
		`{"name":"s","vpc_id":"$VPC","cidr_block":"10.0.2.0/24","dns_servers":["8.8.8.8","2001:4860:4860::8888"],"dhcp_enabled":false}`,
		`{"name":"s","vpc_id":"$VPC","cidr_block":"10.0.2.0/24","dns_servers":["fe80::1%eth0"]}`,
		`{"name":"s","vpc_id":"$VPC","cidr_block":"10.0.2.0/24","dns_servers":["1.1.1.1","1.1.1.2","1.1.1.3","1.1.1.4","1.1.1.5","1.1.1.6","1.1.1.7","1.1.1.8","1.1.1.9"]}`,
		`{"name":"s","vpc_id":"$VPC","cidr_block":"10.0.2.0/24","dns_servers":null,"dhcp_enabled":null}`,
		`{"name":"s","vpc_id":"$VPC2","cidr_block":"192.168.0.0/25"}`,
		`{"name":"s","vpc_id":"$VPC2","cidr_block":"10.0.2.0/24"}`,
		`{"name":"s","vpc_id":"vpc-nope","cidr_block":"10.0.2.0/24"}`,
		`{"name":"s","vpc_id":"subnet-x","cidr_block":"10.0.2.0/24"}`,
		`{"name":"","vpc_id":"$VPC","cidr_block":"10.0.2.0/24"}`,
		`{"vpc_id":"$VPC"}`, `{"name":"s","vpc_id":"$VPC","cidr_block":"10.0.2.0/24","org_id":"x"}`,
		``, `null`, `[]`, `{`, `{}`,
	} {
		f.Add([]byte(s))
	}
	e := fuzzStack(f)
	var vpc, vpc2 prismnet.VPC
	e.must(f, "POST", "/vpcs", map[string]any{"name": "v", "org_id": fuzzOrg, "project_id": fuzzProject, "cidr_block": "10.0.0.0/16"}, http.StatusCreated, &vpc)
	e.must(f, "POST", "/vpcs", map[string]any{"name": "v2", "org_id": fuzzOrg, "project_id": fuzzOther, "cidr_block": "192.168.0.0/24"}, http.StatusCreated, &vpc2)
	for _, c := range []string{"10.0.1.0/24", "10.0.128.0/20"} {
		e.must(f, "POST", "/subnets", map[string]any{"name": "fixed", "vpc_id": vpc.ID, "cidr_block": c}, http.StatusCreated, nil)
	}
	ids := map[string]string{"$VPC2": vpc2.ID, "$VPC": vpc.ID}
	vpcs := map[string]prismnet.VPC{vpc.ID: vpc, vpc2.ID: vpc2}

	// subnets reads the subnets of id from the store and checks them
	// against the VPC's record of them.
	subnets := func(t *testing.T, what string, v prismnet.VPC) map[string]prismnet.Subnet {
		t.Helper()
		out := map[string]prismnet.Subnet{}
		for _, sn := range fuzzList[prismnet.Subnet](t, e, "subnets/"+v.ProjectID+"/") {
			if sn.VPCID == v.ID {
				out[sn.ID] = sn
			}
		}
		recs := fuzzList[struct {
			Subnets map[string]string `json:"subnets"`
		}](t, e, "vpcs/"+v.ProjectID+"/"+v.ID)
		rec := recs[""]
		if len(rec.Subnets) != len(out) {
			t.Fatalf("%s: vpc %s records subnets %v, the store holds %d", what, v.ID, rec.Subnets, len(out))
		}
		for id, sn := range out {
			if rec.Subnets[id] != sn.CIDRBlock {
				t.Fatalf("%s: vpc %s records %s as %q, the subnet says %q", what, v.ID, id, rec.Subnets[id], sn.CIDRBlock)
			}
		}
		return out
	}

	f.Fuzz(func(t *testing.T, body []byte) {
		const what = "POST /api/v1/subnets"
		body = fuzzFill(body, ids)
		prior := map[string]map[string]prismnet.Subnet{vpc.ID: subnets(t, what, vpc), vpc2.ID: subnets(t, what, vpc2)}
		before := e.state(t)
		a := e.do(t, "POST", "/subnets", body)
		if a.Err != nil {
			e.unchanged(t, what, before, a)
		}
		req, ok := testutil.RequestOf[prismnet.CreateSubnetRequest](t, what, body, fuzzMaxBody, a)
		if !ok {
			return
		}
		p, cidrOK := fuzzCIDR(req.CIDRBlock, 8, 29)
		invalid := !cidrOK || req.Name == "" || len(req.Name) > 255 || !fuzzValidID(req.VPCID) || len(req.Description) > 1024 || len(req.DNSServers) > 8
		var gw netip.Addr
		if cidrOK {
			network, broadcast := fuzzBounds(p)
			gw = network.Next()
			if req.GatewayIP != "" {
				var err error
				gw, err = netip.ParseAddr(req.GatewayIP)
				if err != nil || !gw.Is4() || !p.Contains(gw) || gw == network || gw == broadcast {
					invalid = true
				}
			}
		}
		var dns []string
		for _, d := range req.DNSServers {
			da, err := netip.ParseAddr(d)
			if err != nil || da.Zone() != "" {
				invalid = true
			}
			dns = append(dns, da.String())
		}
		if invalid {
			fuzzAnyOf(t, what, a, "an invalid request", apierr.CodeValidation)
			return
		}
		v, known := vpcs[req.VPCID]
		if !known {
			fuzzAnyOf(t, what, a, "an unknown vpc", apierr.CodeNotFound)
			return
		}
		vp := netip.MustParsePrefix(v.CIDRBlock)
		others := prior[v.ID]
		switch {
		case !vp.Contains(p.Addr()) || p.Bits() < vp.Bits():
			fuzzAnyOf(t, what, a, "a subnet outside its vpc", apierr.CodeValidation)
			return
		case slices.ContainsFunc(slices.Collect(maps.Values(others)), func(o prismnet.Subnet) bool {
			return netip.MustParsePrefix(o.CIDRBlock).Overlaps(p)
		}):
			fuzzAnyOf(t, what, a, fmt.Sprintf("a subnet %s overlapping one of %v", p, others), apierr.CodeConflict)
			return
		case a.Status != http.StatusCreated:
			t.Fatalf("%s: a valid subnet answered %s, want 201", what, a)
		}
		var sn prismnet.Subnet
		testutil.StrictData(t, what, a.Data, &sn)
		sp, err := netip.ParsePrefix(sn.CIDRBlock)
		if err != nil || sn.CIDRBlock != req.CIDRBlock || !vp.Contains(sp.Addr()) || sp.Bits() < vp.Bits() {
			t.Fatalf("%s: asked for %q in %s, got %q", what, req.CIDRBlock, v.CIDRBlock, sn.CIDRBlock)
		}
		for id, o := range others {
			if netip.MustParsePrefix(o.CIDRBlock).Overlaps(sp) {
				t.Fatalf("%s: created %s, which overlaps %s (%s)", what, sn.CIDRBlock, id, o.CIDRBlock)
			}
		}
		network, broadcast := fuzzBounds(sp)
		g, err := netip.ParseAddr(sn.GatewayIP)
		if err != nil || !sp.Contains(g) || g == network || g == broadcast || g != gw {
			t.Fatalf("%s: subnet %s has gateway %q (want %s)", what, sn.CIDRBlock, sn.GatewayIP, gw)
		}
		dhcp := req.DHCPEnabled == nil || *req.DHCPEnabled
		if !strings.HasPrefix(sn.ID, "subnet-") || sn.Name != req.Name || sn.VPCID != v.ID || sn.OrgID != v.OrgID || sn.ProjectID != v.ProjectID ||
			sn.Description != req.Description || sn.DHCPEnabled != dhcp || sn.Status != prismnet.StatusActive ||
			sn.DNSServers == nil || !slices.Equal(sn.DNSServers, append([]string{}, dns...)) {
			t.Fatalf("%s: created %s for %s", what, a.Data, body)
		}
		if now := subnets(t, what, v); len(now) != len(others)+1 || now[sn.ID].CIDRBlock != sn.CIDRBlock {
			t.Fatalf("%s: created %s, the store holds %v", what, sn.ID, now)
		}
		e.must(t, "DELETE", "/subnets/"+sn.ID, nil, http.StatusOK, nil)
		if now := subnets(t, what, v); len(now) != len(others) {
			t.Fatalf("%s: deleted %s, the store holds %v", what, sn.ID, now)
		}
	})
}

// fuzzRef is an index or address record's value.
type fuzzRef struct {
	ID string `json:"id"`
}

// fuzzMAC reports whether s is a locally administered unicast MAC.
func fuzzMAC(s string) bool {
	var b [6]byte
	if len(s) != 17 {
		return false
	}
	for i := range b {
		if i > 0 && s[3*i-1] != ':' {
			return false
		}
		var v byte
		for _, c := range []byte(s[3*i : 3*i+2]) {
			switch {
			case c >= '0' && c <= '9':
				v = v<<4 | (c - '0')
			case c >= 'a' && c <= 'f':
				v = v<<4 | (c - 'a' + 10)
			default:
				return false
			}
		}
		b[i] = v
	}
	return b[0]&0x02 != 0 && b[0]&0x01 == 0
}

// FuzzCreatePort sends any body to POST /api/v1/ports. $SUBNET is the /28
// 10.1.0.0/28 (gateway .1, a fixture port on .14) and $SUBNET2 10.1.0.16/28
// with gateway .30, both of one VPC ($VPC) of fuzzProject; $SG and $DEFSG
// (the default group) are fuzzProject's groups, $OTHERSG fuzzOther's. A
// subnet the inputs have filled is emptied again after a few more inputs.
func FuzzCreatePort(f *testing.F) {
	for _, s := range []string{
		`{"subnet_id":"$SUBNET"}`,
		`{"subnet_id":"$SUBNET","name":"web-1","device_id":"vm-1","device_owner":"vm","security_group_ids":["$SG"]}`,
		`{"subnet_id":"$SUBNET","ip":"10.1.0.2"}`, `{"subnet_id":"$SUBNET","ip":"10.1.0.13"}`,
		`{"subnet_id":"$SUBNET","ip":"10.1.0.14"}`, `{"subnet_id":"$SUBNET","ip":"10.1.0.1"}`,
		`{"subnet_id":"$SUBNET","ip":"10.1.0.0"}`, `{"subnet_id":"$SUBNET","ip":"10.1.0.15"}`,
		`{"subnet_id":"$SUBNET","ip":"10.1.0.16"}`, `{"subnet_id":"$SUBNET","ip":"10.1.0.02"}`,
		`{"subnet_id":"$SUBNET","ip":"::ffff:10.1.0.3"}`, `{"subnet_id":"$SUBNET","ip":"10.1.0.3/28"}`,
		`{"subnet_id":"$SUBNET2"}`, `{"subnet_id":"$SUBNET2","ip":"10.1.0.30"}`, `{"subnet_id":"$SUBNET2","ip":"10.1.0.17"}`,
		`{"subnet_id":"$SUBNET2","ip":"10.1.0.2"}`, `{"subnet_id":"$SUBNET2","ip":"10.1.0.31"}`,
		`{"subnet_id":"$SUBNET","security_group_ids":["$SG","$SG","$DEFSG"]}`,
		`{"subnet_id":"$SUBNET","security_group_ids":[]}`, `{"subnet_id":"$SUBNET","security_group_ids":null}`,
		`{"subnet_id":"$SUBNET","security_group_ids":["$OTHERSG"]}`, `{"subnet_id":"$SUBNET","security_group_ids":["sg-nope"]}`,
		`{"subnet_id":"$SUBNET","security_group_ids":["Bad"]}`,
		`{"subnet_id":"$SUBNET","security_group_ids":["$SG","$SG","$SG","$SG","$SG","$SG","$SG","$SG","$SG","$SG","$SG","$SG","$SG","$SG","$SG","$SG","$SG"]}`,
		`{"subnet_id":"$SUBNET","device_id":"Bad ID"}`, `{"subnet_id":"$SUBNET","device_owner":"` + strings.Repeat("o", 65) + `"}`,
		`{"subnet_id":"$SUBNET","name":"` + strings.Repeat("n", 256) + `"}`,
		`{"subnet_id":"$VPC"}`, `{"subnet_id":"subnet-nope"}`, `{"subnet_id":""}`, `{"subnet_id":"$SUBNET","status":"ACTIVE"}`,
		`{"subnet_id":"$SUBNET","ip":5}`, ``, `null`, `[]`, `{`, `{}`,
	} {
		f.Add([]byte(s))
	}
	e := fuzzStack(f)
	var vpc prismnet.VPC
	var sn1, sn2 prismnet.Subnet
	var sg, other prismnet.SecurityGroup
	var fixture prismnet.Port
	e.must(f, "POST", "/vpcs", map[string]any{"name": "v", "org_id": fuzzOrg, "project_id": fuzzProject, "cidr_block": "10.1.0.0/16"}, http.StatusCreated, &vpc)
	e.must(f, "POST", "/subnets", map[string]any{"name": "s1", "vpc_id": vpc.ID, "cidr_block": "10.1.0.0/28"}, http.StatusCreated, &sn1)
	e.must(f, "POST", "/subnets", map[string]any{"name": "s2", "vpc_id": vpc.ID, "cidr_block": "10.1.0.16/28", "gateway_ip": "10.1.0.30"}, http.StatusCreated, &sn2)
	e.must(f, "POST", "/security-groups", map[string]any{"name": "web", "org_id": fuzzOrg, "project_id": fuzzProject}, http.StatusCreated, &sg)
	e.must(f, "POST", "/security-groups", map[string]any{"name": "o", "org_id": fuzzOrg, "project_id": fuzzOther}, http.StatusCreated, &other)
	e.must(f, "POST", "/ports", map[string]any{"subnet_id": sn1.ID, "ip": "10.1.0.14"}, http.StatusCreated, &fixture)
	if len(fixture.SecurityGroupIDs) != 1 {
		f.Fatalf("the fixture port has groups %v, want the default one", fixture.SecurityGroupIDs)
	}
	def := fixture.SecurityGroupIDs[0]
	ids := map[string]string{"$SUBNET2": sn2.ID, "$SUBNET": sn1.ID, "$VPC": vpc.ID, "$SG": sg.ID, "$DEFSG": def, "$OTHERSG": other.ID}
	subnets := map[string]prismnet.Subnet{sn1.ID: sn1, sn2.ID: sn2}
	groups := map[string]bool{sg.ID: true, def: true}
	full := map[string]int{}

	// ports reads fuzzProject's ports from the store and checks them
	// against the address, MAC and index records.
	ports := func(t *testing.T, what string) map[string]prismnet.Port {
		t.Helper()
		out := map[string]prismnet.Port{}
		for _, p := range fuzzList[prismnet.Port](t, e, "ports/"+fuzzProject+"/") {
			out[p.ID] = p
		}
		ipam := fuzzList[fuzzRef](t, e, "ipam/")
		macs := fuzzList[fuzzRef](t, e, "macs/")
		subnetPorts := fuzzList[fuzzRef](t, e, "index/subnet-ports/")
		sgPorts := fuzzList[fuzzRef](t, e, "index/sg-ports/")
		if len(ipam) != len(out) || len(macs) != len(out) || len(subnetPorts) != len(out) {
			t.Fatalf("%s: %d ports, but %d ip, %d mac and %d subnet-index records", what, len(out), len(ipam), len(macs), len(subnetPorts))
		}
		nsg := 0
		for id, p := range out {
			sn, ok := subnets[p.SubnetID]
			if !ok {
				t.Fatalf("%s: port %s is in subnet %s", what, id, p.SubnetID)
			}
			sp := netip.MustParsePrefix(sn.CIDRBlock)
			network, broadcast := fuzzBounds(sp)
			ip, err := netip.ParseAddr(p.IP)
			if err != nil || !sp.Contains(ip) || ip == network || ip == broadcast || p.IP == sn.GatewayIP {
				t.Fatalf("%s: port %s has ip %q in %s (gateway %s)", what, id, p.IP, sn.CIDRBlock, sn.GatewayIP)
			}
			if !fuzzMAC(p.MACAddress) {
				t.Fatalf("%s: port %s has MAC %q, not a locally administered unicast one", what, id, p.MACAddress)
			}
			if ipam[p.SubnetID+"/"+p.IP].ID != id || macs[p.MACAddress].ID != id {
				t.Fatalf("%s: port %s (%s, %s) is not what its address records name: %v %v", what, id, p.IP, p.MACAddress, ipam[p.SubnetID+"/"+p.IP], macs[p.MACAddress])
			}
			if _, ok := subnetPorts[p.SubnetID+"/"+id]; !ok {
				t.Fatalf("%s: port %s is missing from its subnet's index", what, id)
			}
			for _, g := range p.SecurityGroupIDs {
				if _, ok := sgPorts[g+"/"+id]; !ok {
					t.Fatalf("%s: port %s is missing from group %s's index", what, id, g)
				}
				nsg++
			}
		}
		if nsg != len(sgPorts) {
			t.Fatalf("%s: ports name %d groups, the group index holds %d", what, nsg, len(sgPorts))
		}
		return out
	}

	f.Fuzz(func(t *testing.T, body []byte) {
		const what = "POST /api/v1/ports"
		body = fuzzFill(body, ids)
		all := ports(t, what)
		before := e.state(t)
		a := e.do(t, "POST", "/ports", body)
		if a.Err != nil {
			e.unchanged(t, what, before, a)
		}
		defer func() {
			// Empty a subnet that has been full for a few inputs.
			now := ports(t, what)
			for id, sn := range subnets {
				n := 0
				for _, p := range now {
					if p.SubnetID == id {
						n++
					}
				}
				if n < 13 { // a /28: 16 − network, broadcast, gateway
					continue
				}
				if full[id]++; full[id] < 4 {
					continue
				}
				full[id] = 0
				for pid, p := range now {
					if p.SubnetID == id && pid != fixture.ID {
						e.must(t, "DELETE", "/ports/"+pid, nil, http.StatusOK, nil)
					}
				}
				n = 0
				for _, p := range ports(t, what) {
					if p.SubnetID == id {
						n++
					}
				}
				if want := map[bool]int{true: 1, false: 0}[sn.ID == sn1.ID]; n != want {
					t.Fatalf("%s: emptied %s, yet it holds %d ports, want %d", what, id, n, want)
				}
			}
		}()
		req, ok := testutil.RequestOf[prismnet.CreatePortRequest](t, what, body, fuzzMaxBody, a)
		if !ok {
			return
		}
		invalid := !fuzzValidID(req.SubnetID) || len(req.Name) > 255 || (req.DeviceID != "" && !fuzzValidID(req.DeviceID)) ||
			len(req.DeviceOwner) > 64 || len(req.SecurityGroupIDs) > 16 || slices.ContainsFunc(req.SecurityGroupIDs, func(s string) bool { return !fuzzValidID(s) })
		var fixed netip.Addr
		if req.IP != "" {
			var err error
			if fixed, err = netip.ParseAddr(req.IP); err != nil || !fixed.Is4() {
				invalid = true
			}
		}
		if invalid {
			fuzzAnyOf(t, what, a, "an invalid request", apierr.CodeValidation)
			return
		}
		sn, known := subnets[req.SubnetID]
		if !known {
			fuzzAnyOf(t, what, a, "an unknown subnet", apierr.CodeNotFound)
			return
		}
		sp := netip.MustParsePrefix(sn.CIDRBlock)
		network, broadcast := fuzzBounds(sp)
		gw := netip.MustParseAddr(sn.GatewayIP)
		var why []apierr.Code
		if fixed.IsValid() && (!sp.Contains(fixed) || fixed == network || fixed == broadcast || fixed == gw) {
			why = append(why, apierr.CodeValidation)
		}
		if slices.ContainsFunc(req.SecurityGroupIDs, func(s string) bool { return !groups[s] }) {
			why = append(why, apierr.CodeNotFound)
		}
		if len(why) > 0 {
			fuzzAnyOf(t, what, a, "a request the subnet or groups refuse", why...)
			return
		}
		taken := map[netip.Addr]bool{gw: true}
		for _, p := range all {
			if p.SubnetID == sn.ID {
				taken[netip.MustParseAddr(p.IP)] = true
			}
		}
		want := fixed
		if !want.IsValid() {
			for c := network.Next(); c != broadcast; c = c.Next() {
				if !taken[c] {
					want = c
					break
				}
			}
		}
		switch {
		case fixed.IsValid() && taken[fixed]:
			fuzzAnyOf(t, what, a, "a taken ip", apierr.CodeAlreadyExists)
			return
		case !want.IsValid():
			fuzzAnyOf(t, what, a, "a full subnet", apierr.CodeSubnetFull)
			return
		case a.Status != http.StatusCreated:
			t.Fatalf("%s: a port that fits answered %s, want 201", what, a)
		}
		var p prismnet.Port
		testutil.StrictData(t, what, a.Data, &p)
		wantSGs := []string{}
		for _, g := range req.SecurityGroupIDs {
			if !slices.Contains(wantSGs, g) {
				wantSGs = append(wantSGs, g)
			}
		}
		if len(wantSGs) == 0 {
			wantSGs = []string{def}
		}
		if p.IP != want.String() {
			t.Fatalf("%s: got ip %s in %s with %v taken, want %s", what, p.IP, sn.CIDRBlock, taken, want)
		}
		if !strings.HasPrefix(p.ID, "port-") || p.Name != req.Name || p.SubnetID != sn.ID || p.VPCID != vpc.ID || p.OrgID != fuzzOrg ||
			p.ProjectID != fuzzProject || p.DeviceID != req.DeviceID || p.DeviceOwner != req.DeviceOwner || p.Status != prismnet.PortDown ||
			!slices.Equal(p.SecurityGroupIDs, wantSGs) || !fuzzMAC(p.MACAddress) {
			t.Fatalf("%s: created %s for %s", what, a.Data, body)
		}
		now := ports(t, what)
		if len(now) != len(all)+1 || now[p.ID].IP != p.IP || now[p.ID].MACAddress != p.MACAddress {
			t.Fatalf("%s: created %s, the store holds %d ports (had %d)", what, p.ID, len(now), len(all))
		}
		for id, o := range all {
			if o.MACAddress == p.MACAddress || (o.SubnetID == p.SubnetID && o.IP == p.IP) {
				t.Fatalf("%s: created %s with %s %s, which port %s already has", what, p.ID, p.IP, p.MACAddress, id)
			}
		}
	})
}

// FuzzSecurityGroupRule sends any body to POST
// /api/v1/security-groups/$SG/rules, then deletes the rule it added. $SG2
// and $DEFSG (the default group) are groups of $SG's project, $OTHERSG one
// of another project.
func FuzzSecurityGroupRule(f *testing.F) {
	for _, s := range []string{
		`{"direction":"ingress","protocol":"tcp","port_range_min":22,"port_range_max":22,"remote_cidr":"0.0.0.0/0","description":"ssh"}`,
		`{"direction":"ingress","protocol":"tcp","port_range_min":1,"port_range_max":65535}`,
		`{"direction":"egress","protocol":"udp","port_range_min":53,"port_range_max":53,"remote_cidr":"10.0.0.0/8"}`,
		`{"direction":"ingress","protocol":"icmp"}`, `{"direction":"egress","protocol":"any"}`,
		`{"direction":"ingress","protocol":"any","remote_group_id":"$SG"}`,
		`{"direction":"ingress","protocol":"tcp","remote_group_id":"$SG2"}`,
		`{"direction":"ingress","protocol":"tcp","remote_group_id":"$DEFSG"}`,
		`{"direction":"ingress","protocol":"tcp","remote_group_id":"$OTHERSG"}`,
		`{"direction":"ingress","protocol":"tcp","remote_group_id":"sg-nope"}`,
		`{"direction":"ingress","protocol":"tcp","remote_group_id":"Bad"}`,
		`{"direction":"ingress","protocol":"tcp","remote_group_id":"$SG2","remote_cidr":"10.0.0.0/8"}`,
		`{"direction":"ingress","protocol":"tcp","remote_cidr":"10.0.0.1/8"}`,
		`{"direction":"ingress","protocol":"tcp","remote_cidr":"10.0.0.1/32"}`,
		`{"direction":"ingress","protocol":"tcp","remote_cidr":"10.0.0.1"}`,
		`{"direction":"ingress","protocol":"tcp","remote_cidr":"::/0"}`,
		`{"direction":"ingress","protocol":"tcp","port_range_min":0,"port_range_max":22}`,
		`{"direction":"ingress","protocol":"tcp","port_range_min":22,"port_range_max":65536}`,
		`{"direction":"ingress","protocol":"tcp","port_range_min":80,"port_range_max":22}`,
		`{"direction":"ingress","protocol":"tcp","port_range_min":22}`,
		`{"direction":"ingress","protocol":"tcp","port_range_min":-1,"port_range_max":-1}`,
		`{"direction":"ingress","protocol":"tcp","port_range_min":22,"port_range_max":9223372036854775808}`,
		`{"direction":"ingress","protocol":"icmp","port_range_min":8,"port_range_max":8}`,
		`{"direction":"ingress","protocol":"any","port_range_max":8}`,
		`{"direction":"ingress","protocol":"TCP"}`, `{"direction":"in","protocol":"tcp"}`,
		`{"protocol":"tcp"}`, `{"direction":"ingress"}`,
		`{"direction":"ingress","protocol":"tcp","description":"` + strings.Repeat("d", 1025) + `"}`,
		`{"direction":"ingress","protocol":"tcp","id":"sgr-x"}`, `{"direction":"ingress","protocol":"tcp","port_range_min":2.5,"port_range_max":3}`,
		``, `null`, `[]`, `{`, `{}`,
	} {
		f.Add([]byte(s))
	}
	e := fuzzStack(f)
	var sg, sg2, other prismnet.SecurityGroup
	e.must(f, "POST", "/security-groups", map[string]any{"name": "web", "org_id": fuzzOrg, "project_id": fuzzProject}, http.StatusCreated, &sg)
	e.must(f, "POST", "/security-groups", map[string]any{"name": "db", "org_id": fuzzOrg, "project_id": fuzzProject}, http.StatusCreated, &sg2)
	e.must(f, "POST", "/security-groups", map[string]any{"name": "o", "org_id": fuzzOrg, "project_id": fuzzOther}, http.StatusCreated, &other)
	var list prismnet.SecurityGroupList
	e.must(f, "GET", "/security-groups?org_id="+fuzzOrg+"&project_id="+fuzzProject, nil, http.StatusOK, &list)
	def := ""
	for _, g := range list.SecurityGroups {
		if g.IsDefault {
			def = g.ID
		}
	}
	if def == "" || len(list.SecurityGroups) != 3 {
		f.Fatalf("%s's groups are %+v, want web, db and the default one", fuzzProject, list.SecurityGroups)
	}
	ids := map[string]string{"$SG2": sg2.ID, "$SG": sg.ID, "$DEFSG": def, "$OTHERSG": other.ID}
	groups := map[string]bool{sg.ID: true, sg2.ID: true, def: true}
	path := "/security-groups/" + sg.ID

	f.Fuzz(func(t *testing.T, body []byte) {
		const what = "POST /api/v1/security-groups/{id}/rules"
		body = fuzzFill(body, ids)
		var g0 prismnet.SecurityGroup
		e.must(t, "GET", path, nil, http.StatusOK, &g0)
		before := e.state(t)
		a := e.do(t, "POST", path+"/rules", body)
		if a.Err != nil {
			e.unchanged(t, what, before, a)
		}
		req, ok := testutil.RequestOf[prismnet.CreateRuleRequest](t, what, body, fuzzMaxBody, a)
		if !ok {
			return
		}
		invalid := req.Direction != prismnet.Ingress && req.Direction != prismnet.Egress
		lo, hi := req.PortRangeMin, req.PortRangeMax
		switch req.Protocol {
		case prismnet.ProtoTCP, prismnet.ProtoUDP:
			if (lo == nil) != (hi == nil) || lo != nil && (*lo < 1 || *lo > 65535 || *hi < 1 || *hi > 65535 || *lo > *hi) {
				invalid = true
			}
		case prismnet.ICMP, prismnet.ProtoAny:
			invalid = invalid || lo != nil || hi != nil
		default:
			invalid = true
		}
		cidr := req.RemoteCIDR
		if req.RemoteCIDR != "" {
			p, ok := fuzzCIDR(req.RemoteCIDR, 0, 32)
			invalid = invalid || !ok || req.RemoteGroupID != ""
			cidr = p.String()
		} else if req.RemoteGroupID == "" {
			cidr = "0.0.0.0/0"
		}
		if invalid || (req.RemoteGroupID != "" && !fuzzValidID(req.RemoteGroupID)) || len(req.Description) > 1024 {
			fuzzAnyOf(t, what, a, "an invalid rule", apierr.CodeValidation)
			return
		}
		if req.RemoteGroupID != "" && !groups[req.RemoteGroupID] {
			fuzzAnyOf(t, what, a, "a remote group outside the project", apierr.CodeNotFound)
			return
		}
		if a.Status != http.StatusCreated {
			t.Fatalf("%s: a valid rule answered %s, want 201", what, a)
		}
		var r prismnet.Rule
		testutil.StrictData(t, what, a.Data, &r)
		same := func(x, y *int) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
		if !strings.HasPrefix(r.ID, "sgr-") || r.Direction != req.Direction || r.Protocol != req.Protocol || !same(r.PortRangeMin, lo) ||
			!same(r.PortRangeMax, hi) || r.RemoteCIDR != cidr || r.RemoteGroupID != req.RemoteGroupID || r.Description != req.Description {
			t.Fatalf("%s: added %s for %s", what, a.Data, body)
		}
		if req.RemoteCIDR != "" && r.RemoteCIDR != req.RemoteCIDR {
			t.Fatalf("%s: asked for remote_cidr %q, got %q", what, req.RemoteCIDR, r.RemoteCIDR)
		}
		var g1 prismnet.SecurityGroup
		e.must(t, "GET", path, nil, http.StatusOK, &g1)
		if len(g1.Rules) != len(g0.Rules)+1 || g1.Rules[len(g0.Rules)].ID != r.ID {
			t.Fatalf("%s: added %s to %d rules, the group now has %+v", what, r.ID, len(g0.Rules), g1.Rules)
		}
		e.must(t, "DELETE", path+"/rules/"+r.ID, nil, http.StatusOK, nil)
		if d := e.do(t, "DELETE", path+"/rules/"+r.ID, nil); !d.Is(apierr.CodeNotFound) {
			t.Fatalf("%s: deleting rule %s twice answered %s", what, r.ID, d)
		}
		var g2 prismnet.SecurityGroup
		e.must(t, "GET", path, nil, http.StatusOK, &g2)
		if len(g2.Rules) != len(g0.Rules) {
			t.Fatalf("%s: deleted %s, the group has %+v", what, r.ID, g2.Rules)
		}
	})
}
