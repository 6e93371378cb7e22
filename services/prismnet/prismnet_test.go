package prismnet_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/testutil"
	"github.com/photoncloud/photon/services/prismnet"
)

// TestSeedExamples runs the seed's section 7 requests, Example 1 steps 1–2
// and its Error Response Example.
func TestSeedExamples(t *testing.T) {
	e := startPN(t)

	t.Run("error response example", func(t *testing.T) {
		e.unchanged(t, "the seed's invalid VPC", func() {
			a := e.do(t, req{method: "POST", path: "/api/v1/vpcs", body: `{"name": "invalid"}`})
			d := fails(t, a, apierr.CodeValidation)
			if a.Status != http.StatusBadRequest || a.Err.Message != "cidr_block is required" ||
				!reflect.DeepEqual(d, map[string]any{"field": "cidr_block", "constraint": "required"}) {
				t.Fatalf("got %s", a.Raw)
			}
		})
	})

	staging := ok[prismnet.VPC](t, e.do(t, req{method: "POST", path: "/api/v1/vpcs", body: `{
"name": "staging-vpc",
"org_id": "org-123",
"project_id": "proj-456",
"cidr_block": "172.16.0.0/16",
"description": "Staging environment VPC"
}`}), http.StatusCreated)
	if staging.Name != "staging-vpc" || staging.CIDRBlock != "172.16.0.0/16" || staging.Status != "active" ||
		staging.OrgID != "org-123" || staging.ProjectID != "proj-456" || staging.Description != "Staging environment VPC" || len(staging.ID) < 5 || staging.ID[:4] != "vpc-" {
		t.Fatalf("created %+v", staging)
	}

	// Example 1, steps 1 and 2.
	app := ok[prismnet.VPC](t, e.do(t, req{method: "POST", path: "/api/v1/vpcs", body: `{
"name": "app-vpc",
"org_id": "org-123",
"project_id": "proj-456",
"cidr_block": "10.100.0.0/16"
}`}), http.StatusCreated)
	appSubnet := ok[prismnet.Subnet](t, e.do(t, req{method: "POST", path: "/api/v1/subnets", body: `{
"name": "app-subnet",
"vpc_id": "` + app.ID + `",
"cidr_block": "10.100.1.0/24",
"gateway_ip": "10.100.1.1"
}`}), http.StatusCreated)
	if appSubnet.VPCID != app.ID || appSubnet.GatewayIP != "10.100.1.1" || appSubnet.Status != "active" || !appSubnet.DHCPEnabled ||
		appSubnet.OrgID != "org-123" || appSubnet.ProjectID != "proj-456" {
		t.Fatalf("subnet %+v", appSubnet)
	}

	list := ok[prismnet.VPCList](t, e.do(t, req{method: "GET", path: "/api/v1/vpcs?org_id=org-123&project_id=proj-456"}), http.StatusOK)
	if len(list.VPCs) != 2 {
		t.Fatalf("list: %+v", list)
	}
	got := ok[prismnet.VPC](t, e.do(t, req{method: "GET", path: "/api/v1/vpcs/" + staging.ID + "?org_id=org-123&project_id=proj-456"}), http.StatusOK)
	if got != staging {
		t.Fatalf("get %+v, want %+v", got, staging)
	}
	fails(t, e.do(t, req{method: "GET", path: "/api/v1/vpcs/" + staging.ID + "?org_id=org-123&project_id=proj-other"}), apierr.CodeNotFound)

	// The seed's subnet listing: web and db subnets of a production VPC.
	prod := e.vpc(t, "org-123", "proj-456", "10.0.0.0/16")
	for _, b := range []string{
		`{"name":"web-subnet","vpc_id":"` + prod.ID + `","cidr_block":"10.0.1.0/24","gateway_ip":"10.0.1.1","description":"Web tier subnet"}`,
		`{"name":"db-subnet","vpc_id":"` + prod.ID + `","cidr_block":"10.0.2.0/24","gateway_ip":"10.0.2.1","description":"Database tier subnet"}`,
	} {
		ok[prismnet.Subnet](t, e.do(t, req{method: "POST", path: "/api/v1/subnets", body: b}), http.StatusCreated)
	}
	subs := ok[prismnet.SubnetList](t, e.do(t, req{method: "GET", path: "/api/v1/subnets?vpc_id=" + prod.ID + "&org_id=org-123&project_id=proj-456"}), http.StatusOK)
	if len(subs.Subnets) != 2 || subs.Subnets[0].Name != "web-subnet" || subs.Subnets[1].GatewayIP != "10.0.2.1" {
		t.Fatalf("subnets %+v", subs)
	}

	del := ok[prismnet.Deleted](t, e.do(t, req{method: "DELETE", path: "/api/v1/vpcs/" + staging.ID + "?org_id=org-123&project_id=proj-456"}), http.StatusOK)
	if !del.Deleted || del.ID != staging.ID {
		t.Fatalf("delete %+v", del)
	}
	fails(t, e.do(t, req{method: "GET", path: "/api/v1/vpcs/" + staging.ID}), apierr.CodeNotFound)
}

// TestVPCValidation checks CIDRs and fields; no bad input changes anything.
func TestVPCValidation(t *testing.T) {
	e := startPN(t)
	e.vpc(t, "org-1", "proj-1", "10.0.0.0/16")
	// Two projects may use the same range.
	e.vpc(t, "org-1", "proj-2", "10.0.0.0/16")
	cases := []struct {
		name, body       string
		code             apierr.Code
		field, canonical string
	}{
		{"missing cidr", `{"name":"a","org_id":"o","project_id":"p"}`, apierr.CodeValidation, "cidr_block", ""},
		{"ipv6", `{"name":"a","org_id":"o","project_id":"p","cidr_block":"fd00::/48"}`, apierr.CodeValidation, "cidr_block", ""},
		{"not a cidr", `{"name":"a","org_id":"o","project_id":"p","cidr_block":"10.0.0.0"}`, apierr.CodeValidation, "cidr_block", ""},
		{"garbage", `{"name":"a","org_id":"o","project_id":"p","cidr_block":"banana"}`, apierr.CodeValidation, "cidr_block", ""},
		{"too big", `{"name":"a","org_id":"o","project_id":"p","cidr_block":"10.0.0.0/7"}`, apierr.CodeValidation, "cidr_block", ""},
		{"too small", `{"name":"a","org_id":"o","project_id":"p","cidr_block":"10.0.0.0/29"}`, apierr.CodeValidation, "cidr_block", ""},
		{"host bits", `{"name":"a","org_id":"o","project_id":"p","cidr_block":"10.0.0.1/16"}`, apierr.CodeValidation, "cidr_block", "10.0.0.0/16"},
		{"missing name", `{"org_id":"o","project_id":"p","cidr_block":"10.0.0.0/16"}`, apierr.CodeValidation, "name", ""},
		{"missing org", `{"name":"a","project_id":"p","cidr_block":"10.0.0.0/16"}`, apierr.CodeValidation, "org_id", ""},
		{"missing project", `{"name":"a","org_id":"o","cidr_block":"10.0.0.0/16"}`, apierr.CodeValidation, "project_id", ""},
		{"bad project", `{"name":"a","org_id":"o","project_id":"P!","cidr_block":"10.0.0.0/16"}`, apierr.CodeValidation, "project_id", ""},
		{"unknown field", `{"name":"a","org_id":"o","project_id":"p","cidr_block":"10.0.0.0/16","x":1}`, apierr.CodeValidation, "", ""},
		{"wrong type", `{"name":1,"org_id":"o","project_id":"p","cidr_block":"10.0.0.0/16"}`, apierr.CodeValidation, "", ""},
		{"bad json", `{"name":`, apierr.CodeInvalidJSON, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.unchanged(t, c.name, func() {
				a := e.do(t, req{method: "POST", path: "/api/v1/vpcs", body: c.body})
				if !a.Is(c.code) {
					// Strict decoding's codes are the rest package's; only the class matters here.
					if a.Status != http.StatusBadRequest {
						t.Fatalf("want 400: got %s", a)
					}
					return
				}
				if c.field != "" && a.Err.Details["field"] != c.field {
					t.Fatalf("field: got %s", a.Raw)
				}
				if c.canonical != "" && a.Err.Details["canonical"] != c.canonical {
					t.Fatalf("canonical: got %s", a.Raw)
				}
			})
		})
	}
	// Paging over every project (the admin's scope), one at a time.
	first := ok[prismnet.VPCList](t, e.do(t, req{method: "GET", path: "/api/v1/vpcs?limit=1"}), http.StatusOK)
	if len(first.VPCs) != 1 || first.NextPageToken == "" {
		t.Fatalf("first page %+v", first)
	}
	second := ok[prismnet.VPCList](t, e.do(t, req{method: "GET", path: "/api/v1/vpcs?limit=1&page_token=" + first.NextPageToken}), http.StatusOK)
	if len(second.VPCs) != 1 || second.VPCs[0].ID == first.VPCs[0].ID {
		t.Fatalf("second page %+v", second)
	}
	e.unchanged(t, "bad reads", func() {
		fails(t, e.do(t, req{method: "GET", path: "/api/v1/vpcs/vpc-nowhere"}), apierr.CodeNotFound)
		fails(t, e.do(t, req{method: "DELETE", path: "/api/v1/vpcs/vpc-nowhere"}), apierr.CodeNotFound)
		fails(t, e.do(t, req{method: "GET", path: "/api/v1/vpcs?bogus=1"}), apierr.CodeValidation)
		fails(t, e.do(t, req{method: "GET", path: "/api/v1/vpcs?limit=0"}), apierr.CodeValidation)
	})
}

// TestSubnetsAndDeletes checks subnet ranges, gateways, and that a VPC with
// subnets and a subnet with ports refuse to go.
func TestSubnetsAndDeletes(t *testing.T) {
	e := startPN(t)
	v := e.vpc(t, "org-1", "proj-1", "10.0.0.0/16")
	s1 := e.subnet(t, v.ID, "10.0.1.0/24")
	if s1.GatewayIP != "10.0.1.1" || !s1.DHCPEnabled || s1.DNSServers == nil {
		t.Fatalf("defaults: %+v", s1)
	}
	bad := []struct {
		name string
		body map[string]any
		code apierr.Code
	}{
		{"overlap", map[string]any{"name": "x", "vpc_id": v.ID, "cidr_block": "10.0.1.128/25"}, apierr.CodeConflict},
		{"overlap bigger", map[string]any{"name": "x", "vpc_id": v.ID, "cidr_block": "10.0.0.0/22"}, apierr.CodeConflict},
		{"outside vpc", map[string]any{"name": "x", "vpc_id": v.ID, "cidr_block": "10.1.0.0/24"}, apierr.CodeValidation},
		{"bigger than vpc", map[string]any{"name": "x", "vpc_id": v.ID, "cidr_block": "10.0.0.0/15"}, apierr.CodeValidation},
		{"host bits", map[string]any{"name": "x", "vpc_id": v.ID, "cidr_block": "10.0.2.1/24"}, apierr.CodeValidation},
		{"gateway outside", map[string]any{"name": "x", "vpc_id": v.ID, "cidr_block": "10.0.2.0/24", "gateway_ip": "10.0.3.1"}, apierr.CodeValidation},
		{"gateway network", map[string]any{"name": "x", "vpc_id": v.ID, "cidr_block": "10.0.2.0/24", "gateway_ip": "10.0.2.0"}, apierr.CodeValidation},
		{"gateway broadcast", map[string]any{"name": "x", "vpc_id": v.ID, "cidr_block": "10.0.2.0/24", "gateway_ip": "10.0.2.255"}, apierr.CodeValidation},
		{"bad dns", map[string]any{"name": "x", "vpc_id": v.ID, "cidr_block": "10.0.2.0/24", "dns_servers": []string{"dns.google"}}, apierr.CodeValidation},
		{"no vpc", map[string]any{"name": "x", "vpc_id": "vpc-nowhere", "cidr_block": "10.0.2.0/24"}, apierr.CodeNotFound},
		{"missing vpc", map[string]any{"name": "x", "cidr_block": "10.0.2.0/24"}, apierr.CodeValidation},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			e.unchanged(t, c.name, func() { fails(t, e.do(t, req{method: "POST", path: "/api/v1/subnets", body: c.body}), c.code) })
		})
	}
	s2 := ok[prismnet.Subnet](t, e.do(t, req{method: "POST", path: "/api/v1/subnets", body: map[string]any{"name": "y", "vpc_id": v.ID,
		"cidr_block": "10.0.2.0/24", "gateway_ip": "10.0.2.254", "dns_servers": []string{"1.1.1.1"}, "dhcp_enabled": false}}), http.StatusCreated)
	if s2.GatewayIP != "10.0.2.254" || s2.DHCPEnabled || len(s2.DNSServers) != 1 {
		t.Fatalf("s2 %+v", s2)
	}

	e.unchanged(t, "deleting a vpc with subnets", func() {
		fails(t, e.do(t, req{method: "DELETE", path: "/api/v1/vpcs/" + v.ID}), apierr.CodeFailedPrecondition)
	})
	p := e.port(t, s1.ID, nil)
	e.unchanged(t, "deleting a subnet with ports", func() {
		fails(t, e.do(t, req{method: "DELETE", path: "/api/v1/subnets/" + s1.ID}), apierr.CodeFailedPrecondition)
	})
	ok[prismnet.Deleted](t, e.do(t, req{method: "DELETE", path: "/api/v1/ports/" + p.ID}), http.StatusOK)
	for _, s := range []prismnet.Subnet{s1, s2} {
		ok[prismnet.Deleted](t, e.do(t, req{method: "DELETE", path: "/api/v1/subnets/" + s.ID}), http.StatusOK)
	}
	// The range is free again.
	s3 := e.subnet(t, v.ID, "10.0.1.0/24")
	ok[prismnet.Deleted](t, e.do(t, req{method: "DELETE", path: "/api/v1/subnets/" + s3.ID}), http.StatusOK)
	ok[prismnet.Deleted](t, e.do(t, req{method: "DELETE", path: "/api/v1/vpcs/" + v.ID}), http.StatusOK)
	// Only the project's default security group is left.
	for k := range e.snapshot(t) {
		rest := strings.TrimPrefix(k, pnPrefix)
		if !strings.HasPrefix(rest, "security-groups/proj-1/sg-") && rest != "default-sg/proj-1" && !strings.HasPrefix(rest, "owners/sg-") {
			t.Errorf("left behind: %s", k)
		}
	}
}

// TestConcurrentPorts: 64 clients allocating in one /26 get 61 distinct
// addresses (64 minus network, broadcast and gateway), the rest SUBNET_FULL.
func TestConcurrentPorts(t *testing.T) {
	e := startPN(t)
	v := e.vpc(t, "org-1", "proj-1", "10.9.0.0/16")
	s := e.subnet(t, v.ID, "10.9.0.64/26")
	const n = 64
	type result struct {
		status int
		raw    []byte
		err    error
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, raw, err := e.send(ctx, req{method: "POST", path: "/api/v1/ports", body: map[string]any{"subnet_id": s.ID, "device_owner": "vm"}})
			results[i] = result{st, raw, err}
		}()
	}
	wg.Wait()
	ips := map[string]bool{}
	macs := map[string]bool{}
	full := 0
	prefix := netip.MustParsePrefix(s.CIDRBlock)
	for _, r := range results {
		if r.err != nil {
			t.Fatal(r.err)
		}
		var env struct {
			Data  prismnet.Port `json:"data"`
			Error *struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		if err := json.Unmarshal(r.raw, &env); err != nil {
			t.Fatalf("%v: %s", err, r.raw)
		}
		switch {
		case r.status == http.StatusCreated:
			a := netip.MustParseAddr(env.Data.IP)
			if ips[env.Data.IP] || !prefix.Contains(a) || env.Data.IP == s.GatewayIP || env.Data.IP == "10.9.0.64" || env.Data.IP == "10.9.0.127" {
				t.Errorf("bad or duplicate ip %s", env.Data.IP)
			}
			if macs[env.Data.MACAddress] {
				t.Errorf("duplicate mac %s", env.Data.MACAddress)
			}
			if env.Data.Status != "DOWN" || len(env.Data.SecurityGroupIDs) != 1 {
				t.Errorf("port %+v", env.Data)
			}
			ips[env.Data.IP], macs[env.Data.MACAddress] = true, true
		case r.status == http.StatusConflict && env.Error != nil && env.Error.Code == "SUBNET_FULL":
			full++
		default:
			t.Errorf("unexpected answer %d %s", r.status, r.raw)
		}
	}
	if len(ips) != 61 || full != 3 {
		t.Fatalf("%d addresses, %d SUBNET_FULL; want 61 and 3", len(ips), full)
	}
	e.unchanged(t, "a port in a full subnet", func() {
		fails(t, e.do(t, req{method: "POST", path: "/api/v1/ports", body: map[string]any{"subnet_id": s.ID}}), apierr.CodeSubnetFull)
	})
	list := ok[prismnet.PortList](t, e.do(t, req{method: "GET", path: "/api/v1/ports?subnet_id=" + s.ID + "&limit=1000"}), http.StatusOK)
	if len(list.Ports) != 61 {
		t.Fatalf("listed %d ports", len(list.Ports))
	}
	// Deleting one frees exactly its address.
	freed := list.Ports[10]
	ok[prismnet.Deleted](t, e.do(t, req{method: "DELETE", path: "/api/v1/ports/" + freed.ID}), http.StatusOK)
	if p := e.port(t, s.ID, nil); p.IP != freed.IP {
		t.Fatalf("got %s, want the freed %s", p.IP, freed.IP)
	}
}

// TestFixedIP checks fixed addresses: inside the subnet, a host address,
// and never one already taken.
func TestFixedIP(t *testing.T) {
	e := startPN(t)
	v := e.vpc(t, "org-1", "proj-1", "10.0.0.0/16")
	s := e.subnet(t, v.ID, "10.0.5.0/24")
	p := e.port(t, s.ID, map[string]any{"ip": "10.0.5.10", "name": "web", "device_id": "vm-1", "device_owner": "vm"})
	if p.IP != "10.0.5.10" || p.MACAddress[:9] != "fa:16:3e:" {
		t.Fatalf("port %+v", p)
	}
	e.unchanged(t, "a taken ip", func() {
		d := fails(t, e.do(t, req{method: "POST", path: "/api/v1/ports", body: map[string]any{"subnet_id": s.ID, "ip": "10.0.5.10"}}), apierr.CodeAlreadyExists)
		if d["ip"] != "10.0.5.10" {
			t.Fatalf("details %v", d)
		}
	})
	for _, ip := range []string{"10.0.6.1", "10.0.5.0", "10.0.5.255", "10.0.5.1", "fd00::1", "nope"} {
		e.unchanged(t, "ip "+ip, func() {
			d := fails(t, e.do(t, req{method: "POST", path: "/api/v1/ports", body: map[string]any{"subnet_id": s.ID, "ip": ip}}), apierr.CodeValidation)
			if d["field"] != "ip" {
				t.Fatalf("details %v", d)
			}
		})
	}
	e.unchanged(t, "bad ports", func() {
		fails(t, e.do(t, req{method: "POST", path: "/api/v1/ports", body: map[string]any{"subnet_id": "subnet-nowhere"}}), apierr.CodeNotFound)
		fails(t, e.do(t, req{method: "POST", path: "/api/v1/ports", body: map[string]any{}}), apierr.CodeValidation)
		fails(t, e.do(t, req{method: "POST", path: "/api/v1/ports", body: map[string]any{"subnet_id": s.ID, "security_group_ids": []string{"sg-nowhere"}}}), apierr.CodeNotFound)
	})
	// The automatic allocator skips the fixed address.
	got := map[string]bool{}
	for range 12 {
		got[e.port(t, s.ID, nil).IP] = true
	}
	if got["10.0.5.10"] || got["10.0.5.1"] || !got["10.0.5.2"] || !got["10.0.5.13"] {
		t.Fatalf("allocated %v", got)
	}
	ok[prismnet.Deleted](t, e.do(t, req{method: "DELETE", path: "/api/v1/ports/" + p.ID}), http.StatusOK)
	e.port(t, s.ID, map[string]any{"ip": "10.0.5.10"})
}

// TestLowestFreeAddress: the allocator hands out the lowest free address,
// also one freed by a delete, and never one a fixed port or another
// replica took behind its back (ChainFire, not its hint, decides).
func TestLowestFreeAddress(t *testing.T) {
	e := startPN(t)
	v := e.vpc(t, "org-1", "proj-1", "10.0.0.0/16")
	s := e.subnet(t, v.ID, "10.0.7.0/24")
	var ports []prismnet.Port
	for range 5 {
		ports = append(ports, e.port(t, s.ID, nil)) // .2 … .6
	}
	ok[prismnet.Deleted](t, e.do(t, req{method: "DELETE", path: "/api/v1/ports/" + ports[1].ID}), http.StatusOK) // frees .3
	if got := e.port(t, s.ID, nil).IP; got != "10.0.7.3" {
		t.Fatalf("after freeing .3: got %s", got)
	}
	e.port(t, s.ID, map[string]any{"ip": "10.0.7.7"})
	// An address taken without this replica knowing (as another replica
	// would): its IPAM key written straight into ChainFire.
	testutil.PutJSON(t, e.etcd, pnPrefix+"ipam/"+s.ID+"/10.0.7.8", map[string]string{"id": "port-elsewhere"})
	if got := e.port(t, s.ID, nil).IP; got != "10.0.7.9" {
		t.Fatalf("after .7 (fixed) and .8 (elsewhere): got %s", got)
	}
}

// TestTenancy: a project's member sees its own networks and nothing of
// another project's.
func TestTenancy(t *testing.T) {
	e := startPN(t)
	mine := e.vpc(t, "org-1", "proj-a", "10.0.0.0/16")
	theirs := e.vpc(t, "org-1", "proj-b", "10.0.0.0/16")
	theirSubnet := e.subnet(t, theirs.ID, "10.0.1.0/24")
	theirPort := e.port(t, theirSubnet.ID, nil)
	member := e.token(t, "u", "proj-a", "member")

	got := ok[prismnet.VPC](t, e.do(t, req{method: "GET", path: "/api/v1/vpcs/" + mine.ID, token: member}), http.StatusOK)
	if got.ID != mine.ID {
		t.Fatal(got)
	}
	list := ok[prismnet.VPCList](t, e.do(t, req{method: "GET", path: "/api/v1/vpcs", token: member}), http.StatusOK)
	if len(list.VPCs) != 1 || list.VPCs[0].ID != mine.ID {
		t.Fatalf("member lists %+v", list)
	}
	sub := ok[prismnet.Subnet](t, e.do(t, req{method: "POST", path: "/api/v1/subnets", token: member,
		body: map[string]any{"name": "s", "vpc_id": mine.ID, "cidr_block": "10.0.1.0/24"}}), http.StatusCreated)
	ok[prismnet.Port](t, e.do(t, req{method: "POST", path: "/api/v1/ports", token: member, body: map[string]any{"subnet_id": sub.ID}}), http.StatusCreated)

	e.unchanged(t, "another project's resources", func() {
		for _, p := range []string{"/api/v1/vpcs/" + theirs.ID, "/api/v1/subnets/" + theirSubnet.ID, "/api/v1/ports/" + theirPort.ID} {
			fails(t, e.do(t, req{method: "GET", path: p, token: member}), apierr.CodeNotFound)
			fails(t, e.do(t, req{method: "DELETE", path: p, token: member}), apierr.CodeNotFound)
		}
		fails(t, e.do(t, req{method: "POST", path: "/api/v1/subnets", token: member,
			body: map[string]any{"name": "s", "vpc_id": theirs.ID, "cidr_block": "10.0.9.0/24"}}), apierr.CodeNotFound)
		fails(t, e.do(t, req{method: "POST", path: "/api/v1/ports", token: member, body: map[string]any{"subnet_id": theirSubnet.ID}}), apierr.CodeNotFound)
		fails(t, e.do(t, req{method: "POST", path: "/api/v1/vpcs", token: member,
			body: map[string]any{"name": "x", "org_id": "org-1", "project_id": "proj-b", "cidr_block": "10.0.0.0/16"}}), apierr.CodeForbidden)
		fails(t, e.do(t, req{method: "GET", path: "/api/v1/vpcs?project_id=proj-b", token: member}), apierr.CodeForbidden)
		// No token at all: 401 everywhere but /health.
		fails(t, e.do(t, req{method: "GET", path: "/api/v1/vpcs/" + mine.ID, token: "garbage"}), apierr.CodeUnauthenticated)
	})
	resp, err := http.Get(e.pn + "/health")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("health: %v %v", err, resp)
	}
	resp.Body.Close()
}

// TestSecurityGroups checks the default group, rules and deletes.
func TestSecurityGroups(t *testing.T) {
	e := startPN(t)
	v := e.vpc(t, "org-1", "proj-1", "10.0.0.0/16")
	s := e.subnet(t, v.ID, "10.0.1.0/24")
	groups := ok[prismnet.SecurityGroupList](t, e.do(t, req{method: "GET", path: "/api/v1/security-groups?org_id=org-1&project_id=proj-1"}), http.StatusOK)
	if len(groups.SecurityGroups) != 1 || !groups.SecurityGroups[0].IsDefault || len(groups.SecurityGroups[0].Rules) != 2 {
		t.Fatalf("groups %+v", groups)
	}
	def := groups.SecurityGroups[0]
	p := e.port(t, s.ID, nil)
	if len(p.SecurityGroupIDs) != 1 || p.SecurityGroupIDs[0] != def.ID {
		t.Fatalf("port groups %v, want the default %s", p.SecurityGroupIDs, def.ID)
	}
	web := ok[prismnet.SecurityGroup](t, e.do(t, req{method: "POST", path: "/api/v1/security-groups",
		body: map[string]any{"name": "web", "org_id": "org-1", "project_id": "proj-1"}}), http.StatusCreated)
	rule := ok[prismnet.Rule](t, e.do(t, req{method: "POST", path: "/api/v1/security-groups/" + web.ID + "/rules",
		body: map[string]any{"direction": "ingress", "protocol": "tcp", "port_range_min": 22, "port_range_max": 22, "remote_cidr": "0.0.0.0/0"}}), http.StatusCreated)
	ok[prismnet.Rule](t, e.do(t, req{method: "POST", path: "/api/v1/security-groups/" + web.ID + "/rules",
		body: map[string]any{"direction": "ingress", "protocol": "icmp", "remote_group_id": def.ID}}), http.StatusCreated)
	badRules := []map[string]any{
		{"direction": "sideways", "protocol": "tcp"},
		{"protocol": "tcp"},
		{"direction": "ingress", "protocol": "sctp"},
		{"direction": "ingress", "protocol": "tcp", "port_range_min": 0, "port_range_max": 22},
		{"direction": "ingress", "protocol": "tcp", "port_range_min": 80, "port_range_max": 70000},
		{"direction": "ingress", "protocol": "tcp", "port_range_min": 90, "port_range_max": 80},
		{"direction": "ingress", "protocol": "tcp", "port_range_min": 90},
		{"direction": "ingress", "protocol": "icmp", "port_range_min": 1, "port_range_max": 2},
		{"direction": "ingress", "protocol": "tcp", "remote_cidr": "10.0.0.0/8", "remote_group_id": def.ID},
		{"direction": "ingress", "protocol": "tcp", "remote_cidr": "10.0.0.1/8"},
	}
	for _, b := range badRules {
		e.unchanged(t, "a bad rule", func() {
			fails(t, e.do(t, req{method: "POST", path: "/api/v1/security-groups/" + web.ID + "/rules", body: b}), apierr.CodeValidation)
		})
	}
	e.unchanged(t, "a rule naming a missing group", func() {
		fails(t, e.do(t, req{method: "POST", path: "/api/v1/security-groups/" + web.ID + "/rules",
			body: map[string]any{"direction": "ingress", "protocol": "any", "remote_group_id": "sg-nowhere"}}), apierr.CodeNotFound)
	})
	got := ok[prismnet.SecurityGroup](t, e.do(t, req{method: "GET", path: "/api/v1/security-groups/" + web.ID}), http.StatusOK)
	if len(got.Rules) != 2 || got.Rules[0].ID != rule.ID || *got.Rules[0].PortRangeMin != 22 {
		t.Fatalf("group %+v", got)
	}
	ok[prismnet.Deleted](t, e.do(t, req{method: "DELETE", path: "/api/v1/security-groups/" + web.ID + "/rules/" + rule.ID}), http.StatusOK)
	fails(t, e.do(t, req{method: "DELETE", path: "/api/v1/security-groups/" + web.ID + "/rules/" + rule.ID}), apierr.CodeNotFound)

	wp := e.port(t, s.ID, map[string]any{"security_group_ids": []string{web.ID}})
	e.unchanged(t, "deleting groups in use", func() {
		fails(t, e.do(t, req{method: "DELETE", path: "/api/v1/security-groups/" + web.ID}), apierr.CodeFailedPrecondition)
		fails(t, e.do(t, req{method: "DELETE", path: "/api/v1/security-groups/" + def.ID}), apierr.CodeFailedPrecondition)
	})
	ok[prismnet.Deleted](t, e.do(t, req{method: "DELETE", path: "/api/v1/ports/" + wp.ID}), http.StatusOK)
	ok[prismnet.Deleted](t, e.do(t, req{method: "DELETE", path: "/api/v1/security-groups/" + web.ID}), http.StatusOK)
}
