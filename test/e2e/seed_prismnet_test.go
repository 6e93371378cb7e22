package e2e

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The seed's PrismNET examples (section 7, the "Error Response Example" and
// Example 1 steps 1 and 2), as the seed writes them. TestSeedPrismNET
// checks each is verbatim in docs/seed/photoncloud-seed.md before running it.
const (
	seedPNHealth    = `curl http://localhost:8087/health`
	seedPNListVPCs  = `curl "http://localhost:8087/api/v1/vpcs?org_id=org-123&project_id=proj-456"`
	seedPNCreateVPC = `curl -X POST http://localhost:8087/api/v1/vpcs \
-H "Content-Type: application/json" \
-d '{
"name": "staging-vpc",
"org_id": "org-123",
"project_id": "proj-456",
"cidr_block": "172.16.0.0/16",
"description": "Staging environment VPC"
}'`
	seedPNGetVPC       = `curl "http://localhost:8087/api/v1/vpcs/vpc-001?org_id=org-123&project_id=proj-456"`
	seedPNDeleteVPC    = `curl -X DELETE "http://localhost:8087/api/v1/vpcs/vpc-001?org_id=org-123&project_id=proj-456"`
	seedPNListSubnets  = `curl "http://localhost:8087/api/v1/subnets?vpc_id=vpc-001&org_id=org-123&project_id=proj-456"`
	seedPNCreateSubnet = `curl -X POST http://localhost:8087/api/v1/subnets \
-H "Content-Type: application/json" \
-d '{
"name": "app-subnet",
"vpc_id": "vpc-001",
"cidr_block": "10.0.3.0/24",
"gateway_ip": "10.0.3.1",
"description": "Application tier subnet"
}'`
	seedPNDeleteSubnet = `curl -X DELETE "http://localhost:8087/api/v1/subnets/subnet-003?org_id=org-123&project_id=proj-456&vpc_id=vpc-001"`
	// seedVPCPlaceholder and seedSubnetPlaceholder are the ids the seed's
	// examples show.
	seedVPCPlaceholder    = `vpc-001`
	seedSubnetPlaceholder = `subnet-003`

	seedPNErrorExample = `curl -X POST http://localhost:8087/api/v1/vpcs \
-H "Content-Type: application/json" \
-d '{"name": "invalid"}'`

	seedExample1Steps12 = `# 1. Create VPC
VPC_ID=$(curl -s -X POST http://localhost:8087/api/v1/vpcs \
-H "Content-Type: application/json" \
-d '{
"name": "app-vpc",
"org_id": "org-123",
"project_id": "proj-456",
"cidr_block": "10.100.0.0/16"
}' | jq -r '.data.id')
# 2. Create Subnet
SUBNET_ID=$(curl -s -X POST http://localhost:8087/api/v1/subnets \
-H "Content-Type: application/json" \
-d "{
\"name\": \"app-subnet\",
\"vpc_id\": \"$VPC_ID\",
\"cidr_block\": \"10.100.1.0/24\",
\"gateway_ip\": \"10.100.1.1\"
}" | jq -r '.data.id')`
	// example1Steps12Out prints the ids steps 1 and 2 captured, for the
	// test to read back (the seed's own closing echo also prints step 4's
	// VM id, which is not run here).
	example1Steps12Out = "\nprintf '%s\\n%s\\n' \"$VPC_ID\" \"$SUBNET_ID\"\n"
)

// TestSeedPrismNET replays the seed's PrismNET examples — section 7, the
// "Error Response Example" and Example 1 steps 1 and 2 — with curl and jq
// against `photon up` on the seed's ports, in a network namespace of its
// own (as TestSeedChainFire; the seed tests never run at once: none is
// parallel).
func TestSeedPrismNET(t *testing.T) {
	needSeedTools(t)
	seed := readSeed(t)
	ns := newSeedNS(t)
	startSeedPhoton(t, ns, t.TempDir())

	// listVPCs replays the seed's list example and returns the VPCs by id.
	listVPCs := func(t *testing.T) map[string]map[string]any {
		t.Helper()
		r := replay(t, ns, seed, seedPNListVPCs)
		wantStatus(t, r, 200)
		return itemsByID(t, r, "vpcs")
	}
	// wantVPC checks a VPC's fields.
	wantVPC := func(t *testing.T, what string, v map[string]any, id, name, cidr, description string) {
		t.Helper()
		if v["id"] != id || v["name"] != name || v["org_id"] != "org-123" || v["project_id"] != "proj-456" ||
			v["cidr_block"] != cidr || v["status"] != "active" || (description != "" && v["description"] != description) {
			t.Errorf("%s: vpc %v, want %s %s org-123/proj-456 %s %q active", what, v, id, name, cidr, description)
		}
		if _, err := time.Parse(time.RFC3339, fmt.Sprint(v["created_at"])); err != nil {
			t.Errorf("%s: created_at: %v", what, err)
		}
	}
	// wantNotFound checks an answer is the envelope of 404 NOT_FOUND.
	wantNotFound := func(t *testing.T, what string, r seedResult) {
		t.Helper()
		wantStatus(t, r, 404)
		if data, e := r.envelope(t); e["code"] != "NOT_FOUND" || data != nil {
			t.Errorf("%s: data %v, error %v, want NOT_FOUND", what, data, e)
		}
	}
	// wantDeleted checks a delete's answer names the id as deleted.
	wantDeleted := func(t *testing.T, r seedResult, id string) {
		t.Helper()
		wantStatus(t, r, 200)
		if data, _ := r.envelope(t); data["id"] != id || data["deleted"] != true {
			t.Errorf("delete %s: data %v", id, data)
		}
	}

	t.Run("health", func(t *testing.T) {
		r := replay(t, ns, seed, seedPNHealth)
		wantStatus(t, r, 200)
		data, _ := r.envelope(t)
		if data["status"] != "ok" || data["service"] != "prismnet" {
			t.Errorf("health data = %v", data)
		}
	})

	t.Run("list vpcs on a fresh start", func(t *testing.T) {
		r := replay(t, ns, seed, seedPNListVPCs)
		wantStatus(t, r, 200)
		// An empty list, not null: "vpcs": [].
		data, _ := r.envelope(t)
		if v, ok := data["vpcs"].([]any); !ok || len(v) != 0 {
			t.Errorf("vpcs on a fresh start = %v", data)
		}
	})

	var stagingID string
	t.Run("create vpc", func(t *testing.T) {
		r := replay(t, ns, seed, seedPNCreateVPC)
		wantStatus(t, r, 201)
		data, _ := r.envelope(t)
		id, _ := data["id"].(string)
		if !strings.HasPrefix(id, "vpc-") || id == seedVPCPlaceholder {
			t.Fatalf("create vpc id %q, want a fresh vpc-… id: %v", id, data)
		}
		stagingID = id
		wantVPC(t, "create", data, id, "staging-vpc", "172.16.0.0/16", "Staging environment VPC")

		vpcs := listVPCs(t)
		if len(vpcs) != 1 {
			t.Fatalf("vpcs after create = %v, want only %s", vpcs, id)
		}
		wantVPC(t, "list", vpcs[id], id, "staging-vpc", "172.16.0.0/16", "Staging environment VPC")
	})

	t.Run("get vpc", func(t *testing.T) {
		if stagingID == "" {
			t.Fatal("no vpc: create vpc failed")
		}
		// vpc-001 is the seed's example id: no VPC has it (ids are
		// generated), so the verbatim example is 404 NOT_FOUND.
		wantNotFound(t, "get vpc-001", replay(t, ns, seed, seedPNGetVPC))
		// The replay gets the VPC create vpc returned in its place.
		r := replayFilled(t, ns, seed, seedPNGetVPC, seedVPCPlaceholder, stagingID)
		wantStatus(t, r, 200)
		data, _ := r.envelope(t)
		wantVPC(t, "get", data, stagingID, "staging-vpc", "172.16.0.0/16", "Staging environment VPC")
	})

	t.Run("delete vpc", func(t *testing.T) {
		if stagingID == "" {
			t.Fatal("no vpc: create vpc failed")
		}
		// As for get: the verbatim vpc-001 is 404 NOT_FOUND, and deletes
		// nothing.
		wantNotFound(t, "delete vpc-001", replay(t, ns, seed, seedPNDeleteVPC))
		if vpcs := listVPCs(t); len(vpcs) != 1 || vpcs[stagingID] == nil {
			t.Fatalf("vpcs after deleting vpc-001 = %v, want %s", vpcs, stagingID)
		}
		wantDeleted(t, replayFilled(t, ns, seed, seedPNDeleteVPC, seedVPCPlaceholder, stagingID), stagingID)
		wantNotFound(t, "get after delete", replayFilled(t, ns, seed, seedPNGetVPC, seedVPCPlaceholder, stagingID))
		wantNotFound(t, "second delete", replayFilled(t, ns, seed, seedPNDeleteVPC, seedVPCPlaceholder, stagingID))
		if vpcs := listVPCs(t); len(vpcs) != 0 {
			t.Errorf("vpcs after delete = %v, want none", vpcs)
		}
	})

	// The subnet examples need a VPC whose range holds the seed's
	// 10.0.3.0/24 (the staging VPC, 172.16.0.0/16, does not): the seed's
	// own production-vpc, which its list answer shows, made here.
	var subnetVPC, subnetID string
	t.Run("subnets", func(t *testing.T) {
		// vpc-001 names no VPC: an empty list, not an error.
		r := replay(t, ns, seed, seedPNListSubnets)
		wantStatus(t, r, 200)
		if subnets := itemsByID(t, r, "subnets"); len(subnets) != 0 {
			t.Errorf("subnets of vpc-001 = %v, want none", subnets)
		}

		// The verbatim create names vpc-001, which does not exist: the
		// service answers 404 NOT_FOUND (the VPC is looked up after the
		// body is validated), and creates nothing.
		r = replay(t, ns, seed, seedPNCreateSubnet)
		wantNotFound(t, "create subnet in vpc-001", r)
		if _, e := r.envelope(t); !strings.Contains(fmt.Sprint(e["message"]), "vpc-001") {
			t.Errorf("create subnet in vpc-001: error %v does not name vpc-001", e)
		}

		status, body := nsRequest(t, ns, "POST", "http://localhost:8087/api/v1/vpcs",
			`{"name": "production-vpc", "org_id": "org-123", "project_id": "proj-456", "cidr_block": "10.0.0.0/16", "description": "Production environment VPC"}`)
		if status != 201 {
			t.Fatalf("create production-vpc: %d %s", status, body)
		}
		vpcs := listVPCs(t)
		for id, v := range vpcs {
			if v["name"] == "production-vpc" {
				subnetVPC = id
			}
		}
		if len(vpcs) != 1 || subnetVPC == "" {
			t.Fatalf("vpcs = %v, want production-vpc only", vpcs)
		}

		// The replay creates the subnet in that VPC in place of vpc-001.
		r = replayFilled(t, ns, seed, seedPNCreateSubnet, seedVPCPlaceholder, subnetVPC)
		wantStatus(t, r, 201)
		data, _ := r.envelope(t)
		subnetID, _ = data["id"].(string)
		if !strings.HasPrefix(subnetID, "subnet-") || subnetID == seedSubnetPlaceholder {
			t.Fatalf("create subnet id %q, want a fresh subnet-… id: %v", subnetID, data)
		}
		wantSubnet(t, "create", data, subnetID, subnetVPC, "app-subnet", "10.0.3.0/24", "10.0.3.1")
		if data["description"] != "Application tier subnet" || data["dhcp_enabled"] != true {
			t.Errorf("create subnet: %v, want the seed's description and dhcp_enabled true", data)
		}

		// The same range again overlaps it: 409, nothing created.
		r = replayFilled(t, ns, seed, seedPNCreateSubnet, seedVPCPlaceholder, subnetVPC)
		wantStatus(t, r, 409)
		if _, e := r.envelope(t); e["code"] != "CONFLICT" {
			t.Errorf("overlapping subnet: %v", e)
		}

		r = replayFilled(t, ns, seed, seedPNListSubnets, seedVPCPlaceholder, subnetVPC)
		wantStatus(t, r, 200)
		subnets := itemsByID(t, r, "subnets")
		if len(subnets) != 1 {
			t.Fatalf("subnets of %s = %v, want %s only", subnetVPC, subnets, subnetID)
		}
		wantSubnet(t, "list", subnets[subnetID], subnetID, subnetVPC, "app-subnet", "10.0.3.0/24", "10.0.3.1")
		// The verbatim list (vpc-001) still lists none.
		r = replay(t, ns, seed, seedPNListSubnets)
		if subnets := itemsByID(t, r, "subnets"); len(subnets) != 0 {
			t.Errorf("subnets of vpc-001 = %v, want none", subnets)
		}

		// A VPC with a subnet cannot be deleted.
		r = replayFilled(t, ns, seed, seedPNDeleteVPC, seedVPCPlaceholder, subnetVPC)
		wantStatus(t, r, 409)
		if _, e := r.envelope(t); e["code"] != "FAILED_PRECONDITION" {
			t.Errorf("delete a vpc with a subnet: %v", e)
		}
	})

	t.Run("delete subnet", func(t *testing.T) {
		if subnetID == "" {
			t.Fatal("no subnet: subnets failed")
		}
		// The seed's delete names vpc_id in its query as well as org_id and
		// project_id; it must name the subnet's VPC.
		// subnet-003 is the seed's example id: 404 NOT_FOUND.
		r := replay(t, ns, seed, seedPNDeleteSubnet)
		wantNotFound(t, "delete subnet-003", r)

		// In its place the subnet subnets created, in its VPC.
		filled := strings.NewReplacer(seedSubnetPlaceholder, subnetID, seedVPCPlaceholder, subnetVPC)
		if !strings.Contains(seedPNDeleteSubnet, seedSubnetPlaceholder) || !strings.Contains(seedPNDeleteSubnet, seedVPCPlaceholder) {
			t.Fatal("placeholders not in the delete subnet example")
		}
		r = runInNS(t, ns, filled.Replace(seedPNDeleteSubnet))
		wantDeleted(t, r, subnetID)
		if status, body := nsRequest(t, ns, "GET", "http://localhost:8087/api/v1/subnets/"+subnetID, ""); status != 404 {
			t.Errorf("get subnet after delete: %d %s", status, body)
		}
		r = replayFilled(t, ns, seed, seedPNListSubnets, seedVPCPlaceholder, subnetVPC)
		if subnets := itemsByID(t, r, "subnets"); len(subnets) != 0 {
			t.Errorf("subnets after delete = %v, want none", subnets)
		}
		// Its VPC, empty now, can be deleted.
		wantDeleted(t, replayFilled(t, ns, seed, seedPNDeleteVPC, seedVPCPlaceholder, subnetVPC), subnetVPC)
	})

	t.Run("error response example", func(t *testing.T) {
		before := listVPCs(t)
		r := replay(t, ns, seed, seedPNErrorExample)
		wantStatus(t, r, 400)
		data, e := r.envelope(t)
		if data != nil || e["code"] != "VALIDATION_ERROR" || e["message"] != "cidr_block is required" {
			t.Errorf("error example: data %v, error %v", data, e)
		}
		if want := map[string]any{"field": "cidr_block", "constraint": "required"}; !reflect.DeepEqual(e["details"], want) {
			t.Errorf("error example details = %v, want exactly %v", e["details"], want)
		}
		if after := listVPCs(t); !reflect.DeepEqual(after, before) {
			t.Errorf("the refused create changed the vpcs: %v, then %v", before, after)
		}
	})

	t.Run("example 1", func(t *testing.T) {
		if !strings.Contains(seed, seedExample1Steps12) {
			t.Fatalf("not a verbatim seed example:\n%s", seedExample1Steps12)
		}
		// Steps 3 and 6 are CreditService's (TestSeedCreditService replays
		// them); steps 4 and 5 need PlasmaVMC (8084), which does not exist
		// yet. None is run here.
		r := runInNS(t, ns, seedExample1Steps12+example1Steps12Out)
		// 1: 201 created, 2: 201 created (both outputs go to jq).
		wantStatus(t, r, 201, 201)
		out := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
		if len(out) != 2 || !strings.HasPrefix(out[0], "vpc-") || !strings.HasPrefix(out[1], "subnet-") {
			t.Fatalf("captured VPC_ID and SUBNET_ID = %q", r.stdout)
		}
		vpcID, subID := out[0], out[1]

		r = replayFilled(t, ns, seed, seedPNGetVPC, seedVPCPlaceholder, vpcID)
		wantStatus(t, r, 200)
		data, _ := r.envelope(t)
		wantVPC(t, "step 1's vpc", data, vpcID, "app-vpc", "10.100.0.0/16", "")

		status, body := nsRequest(t, ns, "GET", "http://localhost:8087/api/v1/subnets/"+subID+"?org_id=org-123&project_id=proj-456", "")
		if status != 200 {
			t.Fatalf("get step 2's subnet: %d %s", status, body)
		}
		var sub map[string]any
		decodeData(t, seedResult{stdout: body}.envelopes(t)[0], &sub)
		wantSubnet(t, "step 2's subnet", sub, subID, vpcID, "app-subnet", "10.100.1.0/24", "10.100.1.1")

		r = replayFilled(t, ns, seed, seedPNListSubnets, seedVPCPlaceholder, vpcID)
		wantStatus(t, r, 200)
		if subnets := itemsByID(t, r, "subnets"); len(subnets) != 1 || subnets[subID] == nil {
			t.Errorf("subnets of step 1's vpc = %v, want %s only", subnets, subID)
		}
	})
}

// wantSubnet checks a subnet's fields; its org and project are its VPC's.
func wantSubnet(t *testing.T, what string, s map[string]any, id, vpcID, name, cidr, gateway string) {
	t.Helper()
	if s["id"] != id || s["vpc_id"] != vpcID || s["name"] != name || s["cidr_block"] != cidr || s["gateway_ip"] != gateway ||
		s["org_id"] != "org-123" || s["project_id"] != "proj-456" || s["status"] != "active" {
		t.Errorf("%s: subnet %v, want %s in %s, %s %s gateway %s, org-123/proj-456, active", what, s, id, vpcID, name, cidr, gateway)
	}
}

// itemsByID is the items of a list answer's array named key, by id.
func itemsByID(t *testing.T, r seedResult, key string) map[string]map[string]any {
	t.Helper()
	data, _ := r.envelope(t)
	list, ok := data[key].([]any)
	if !ok {
		t.Fatalf("no %s array: %s", key, r.stdout)
	}
	out := map[string]map[string]any{}
	for _, x := range list {
		m, _ := x.(map[string]any)
		out[fmt.Sprint(m["id"])] = m
	}
	return out
}
