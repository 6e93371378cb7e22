package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// The seed's CreditService examples (section 6 and Example 1 steps 3 and
// 6), as the seed writes them. TestSeedCreditService checks each is
// verbatim in docs/seed/photoncloud-seed.md before running it.
const (
	seedCSHealth       = `curl http://localhost:8086/health`
	seedCSCreateWallet = `curl -X POST http://localhost:8086/api/v1/wallets \
-H "Content-Type: application/json" \
-d '{
"project_id": "proj-456",
"org_id": "org-123",
"initial_balance": 10000
}'`
	seedCSGetWallet = `curl http://localhost:8086/api/v1/wallets/proj-456`
	seedCSTopUp     = `curl -X POST http://localhost:8086/api/v1/wallets/proj-456/topup \
-H "Content-Type: application/json" \
-d '{
"amount": 5000,
"description": "Monthly credit purchase"
}'`
	seedCSTransactions = `curl "http://localhost:8086/api/v1/wallets/proj-456/transactions?limit=10"`
	seedCSReserve      = `curl -X POST http://localhost:8086/api/v1/reservations \
-H "Content-Type: application/json" \
-d '{
"project_id": "proj-456",
"amount": 2000,
"description": "VM creation reservation",
"resource_type": "vm",
"resource_id": "vm-004",
"ttl_seconds": 3600
}'`
	seedCSCommit = `curl -X POST http://localhost:8086/api/v1/reservations/rsv-001/commit \
-H "Content-Type: application/json" \
-d '{
"actual_amount": 1800,
"resource_id": "vm-004"
}'`
	seedCSRelease = `curl -X POST http://localhost:8086/api/v1/reservations/rsv-001/release \
-H "Content-Type: application/json" \
-d '{
"reason": "VM creation failed"
}'`
	// seedReservationPlaceholder is the reservation id the seed's commit
	// and release examples show.
	seedReservationPlaceholder = `/reservations/rsv-001/`

	seedExample1Step3 = `# 3. Reserve Credits
RSV_ID=$(curl -s -X POST http://localhost:8086/api/v1/reservations \
-H "Content-Type: application/json" \
-d '{
"project_id": "proj-456",
"amount": 5000,
"resource_type": "vm",
"ttl_seconds": 3600
}' | jq -r '.data.id')`
	seedExample1Step6 = `# 6. Commit Reservation
curl -X POST "http://localhost:8086/api/v1/reservations/$RSV_ID/commit" \
-H "Content-Type: application/json" \
-d "{
\"actual_amount\": 4500,
\"resource_id\": \"$VM_ID\"
}"`
	// example1VMID stands in for step 4, so that the CreditService steps
	// are checked on their own; the whole of Example 1 runs verbatim in
	// TestSeedPlasmaVMC.
	example1VMID = "\n# 4. Create VM (here: its id only)\nVM_ID=vm-e2e\n"
)

// TestSeedCreditService replays the seed's CreditService examples — section
// 6 and the CreditService steps of Example 1 — with curl and jq against
// `photon up` on the seed's ports, in a network namespace of its own (as
// TestSeedChainFire; the seed tests never run at once: none is parallel).
func TestSeedCreditService(t *testing.T) {
	needSeedTools(t)
	seed := readSeed(t)
	ns := newSeedNS(t)
	startSeedPhoton(t, ns, t.TempDir())

	wantWallet := func(t *testing.T, what string, w map[string]any, balance, reserved float64) {
		t.Helper()
		if w["project_id"] != "proj-456" || w["org_id"] != "org-123" || w["currency"] != "JPY" || w["status"] != "active" ||
			w["balance"] != balance || w["reserved"] != reserved || w["available"] != balance-reserved {
			t.Errorf("%s: wallet %v, want proj-456/org-123 JPY active, balance %v, reserved %v, available %v",
				what, w, balance, reserved, balance-reserved)
		}
	}
	getWallet := func(t *testing.T, balance, reserved float64) {
		t.Helper()
		r := replay(t, ns, seed, seedCSGetWallet)
		wantStatus(t, r, 200)
		data, _ := r.envelope(t)
		wantWallet(t, "get wallet", data, balance, reserved)
	}

	t.Run("health", func(t *testing.T) {
		r := replay(t, ns, seed, seedCSHealth)
		wantStatus(t, r, 200)
		data, _ := r.envelope(t)
		if data["status"] != "ok" || data["service"] != "creditservice" {
			t.Errorf("health data = %v", data)
		}
	})

	t.Run("create wallet", func(t *testing.T) {
		r := replay(t, ns, seed, seedCSCreateWallet)
		wantStatus(t, r, 201)
		data, _ := r.envelope(t)
		wantWallet(t, "create", data, 10000, 0)
		// The same project again is a conflict, and changes nothing.
		r = replay(t, ns, seed, seedCSCreateWallet)
		wantStatus(t, r, 409)
		if _, e := r.envelope(t); e["code"] != "ALREADY_EXISTS" {
			t.Errorf("second create: %v", e)
		}
	})

	t.Run("get wallet balance", func(t *testing.T) {
		getWallet(t, 10000, 0)
	})

	t.Run("top up", func(t *testing.T) {
		r := replay(t, ns, seed, seedCSTopUp)
		wantStatus(t, r, 200)
		data, _ := r.envelope(t)
		w, _ := data["wallet"].(map[string]any)
		wantWallet(t, "top up answer", w, 15000, 0)
		txn, _ := data["transaction"].(map[string]any)
		if txn["amount"] != 5000.0 || txn["type"] != "deposit" || txn["description"] != "Monthly credit purchase" || txn["project_id"] != "proj-456" {
			t.Errorf("top up transaction = %v", txn)
		}
		getWallet(t, 15000, 0)
	})

	t.Run("transactions", func(t *testing.T) {
		r := replay(t, ns, seed, seedCSTransactions)
		wantStatus(t, r, 200)
		txns := transactionsOf(t, r)
		// Newest first: the top-up, then the wallet's initial balance.
		if len(txns) != 2 {
			t.Fatalf("%d transactions, want 2: %v", len(txns), txns)
		}
		if txns[0]["amount"] != 5000.0 || txns[0]["type"] != "deposit" || txns[0]["description"] != "Monthly credit purchase" ||
			txns[0]["project_id"] != "proj-456" || txns[0]["id"] == "" {
			t.Errorf("newest transaction = %v, want the deposit of 5000", txns[0])
		}
		if txns[1]["amount"] != 10000.0 || txns[1]["type"] != "deposit" {
			t.Errorf("oldest transaction = %v, want the initial deposit of 10000", txns[1])
		}
		for _, tx := range txns {
			if _, err := time.Parse(time.RFC3339, fmt.Sprint(tx["timestamp"])); err != nil {
				t.Errorf("transaction timestamp: %v", err)
			}
		}
	})

	// reserve replays the seed's reservation example and returns its id.
	reserve := func(t *testing.T) string {
		t.Helper()
		before := time.Now()
		r := replay(t, ns, seed, seedCSReserve)
		after := time.Now()
		wantStatus(t, r, 201)
		data, _ := r.envelope(t)
		id, _ := data["id"].(string)
		if !strings.HasPrefix(id, "rsv") || data["project_id"] != "proj-456" || data["amount"] != 2000.0 || data["status"] != "active" ||
			data["resource_type"] != "vm" || data["resource_id"] != "vm-004" || data["description"] != "VM creation reservation" {
			t.Fatalf("reserve data = %v", data)
		}
		wantExpiry(t, data["expires_at"], before, after, 3600*time.Second)
		return id
	}

	t.Run("reserve and commit", func(t *testing.T) {
		id := reserve(t)
		getWallet(t, 15000, 2000)
		// The seed commits its example's id, rsv-001; the replay commits
		// the id the reserve example just returned in its place.
		r := replayFilled(t, ns, seed, seedCSCommit, seedReservationPlaceholder, "/reservations/"+id+"/")
		wantStatus(t, r, 200)
		data, _ := r.envelope(t)
		rsv, _ := data["reservation"].(map[string]any)
		if rsv["id"] != id || rsv["status"] != "committed" || rsv["actual_amount"] != 1800.0 || rsv["amount"] != 2000.0 || rsv["resource_id"] != "vm-004" {
			t.Errorf("committed reservation = %v", rsv)
		}
		txn, _ := data["transaction"].(map[string]any)
		if txn["amount"] != -1800.0 || txn["type"] != "charge" || txn["reservation_id"] != id || txn["resource_id"] != "vm-004" || txn["balance_after"] != 13200.0 {
			t.Errorf("commit transaction = %v", txn)
		}
		w, _ := data["wallet"].(map[string]any)
		wantWallet(t, "commit answer", w, 13200, 0)
		getWallet(t, 13200, 0)

		r = replay(t, ns, seed, seedCSTransactions)
		wantStatus(t, r, 200)
		txns := transactionsOf(t, r)
		if len(txns) != 3 || txns[0]["id"] != txn["id"] || txns[0]["amount"] != -1800.0 || txns[0]["type"] != "charge" {
			t.Errorf("transactions after the commit = %v, want the charge of 1800 first", txns)
		}

		// Committing it again is refused, naming its state, and charges nothing.
		r = replayFilled(t, ns, seed, seedCSCommit, seedReservationPlaceholder, "/reservations/"+id+"/")
		wantStatus(t, r, 409)
		if _, e := r.envelope(t); e["code"] != "FAILED_PRECONDITION" || !strings.Contains(fmt.Sprint(e["message"]), "committed") {
			t.Errorf("second commit: %v", e)
		}
		getWallet(t, 13200, 0)
	})

	t.Run("reserve and release", func(t *testing.T) {
		id := reserve(t)
		getWallet(t, 13200, 2000)
		// As for the commit: the fresh reservation's id in place of rsv-001.
		r := replayFilled(t, ns, seed, seedCSRelease, seedReservationPlaceholder, "/reservations/"+id+"/")
		wantStatus(t, r, 200)
		data, _ := r.envelope(t)
		if data["id"] != id || data["status"] != "released" || data["reason"] != "VM creation failed" || data["amount"] != 2000.0 {
			t.Errorf("release data = %v", data)
		}
		getWallet(t, 13200, 0)
		status, body := nsRequest(t, ns, "GET", "http://localhost:8086/api/v1/reservations/"+id, "")
		if status != 200 || !strings.Contains(body, `"status":"released"`) {
			t.Errorf("GET released reservation: %d %s", status, body)
		}
	})

	t.Run("seed's own reservation id", func(t *testing.T) {
		// rsv-001 is an example id: no reservation has it.
		for _, cmd := range []string{seedCSCommit, seedCSRelease} {
			r := replay(t, ns, seed, cmd)
			wantStatus(t, r, 404)
			if _, e := r.envelope(t); e["code"] != "NOT_FOUND" {
				t.Errorf("literal rsv-001: %v", e)
			}
		}
		getWallet(t, 13200, 0)
	})

	t.Run("example 1", func(t *testing.T) {
		for _, step := range []string{seedExample1Step3, seedExample1Step6} {
			if !strings.Contains(seed, step) {
				t.Fatalf("not a verbatim seed example:\n%s", step)
			}
		}
		r := runInNS(t, ns, seedExample1Step3+example1VMID+seedExample1Step6)
		// 3: 201 reserved (its output goes to jq), 6: 200 committed.
		wantStatus(t, r, 201, 200)
		envs := r.envelopes(t)
		if len(envs) != 1 {
			t.Fatalf("%d JSON documents, want 1 (step 6):\n%s", len(envs), r.stdout)
		}
		var res struct {
			Reservation map[string]any `json:"reservation"`
			Transaction map[string]any `json:"transaction"`
			Wallet      map[string]any `json:"wallet"`
		}
		decodeData(t, envs[0], &res)
		id, _ := res.Reservation["id"].(string)
		if !strings.HasPrefix(id, "rsv") || res.Reservation["status"] != "committed" || res.Reservation["amount"] != 5000.0 ||
			res.Reservation["actual_amount"] != 4500.0 || res.Reservation["resource_id"] != "vm-e2e" || res.Reservation["resource_type"] != "vm" {
			t.Errorf("step 6 reservation = %v", res.Reservation)
		}
		if res.Transaction["amount"] != -4500.0 || res.Transaction["type"] != "charge" || res.Transaction["reservation_id"] != id ||
			res.Transaction["resource_id"] != "vm-e2e" {
			t.Errorf("step 6 transaction = %v", res.Transaction)
		}
		wantWallet(t, "step 6 wallet", res.Wallet, 8700, 0)
		getWallet(t, 8700, 0)

		r = replay(t, ns, seed, seedCSTransactions)
		txns := transactionsOf(t, r)
		if len(txns) != 4 || txns[0]["amount"] != -4500.0 || txns[0]["reservation_id"] != id {
			t.Errorf("transactions after example 1 = %v, want the charge of 4500 first", txns)
		}
		status, body := nsRequest(t, ns, "GET", "http://localhost:8086/api/v1/reservations/"+id, "")
		if status != 200 || !strings.Contains(body, `"status":"committed"`) || !strings.Contains(body, `"actual_amount":4500`) {
			t.Errorf("GET step 3's reservation: %d %s", status, body)
		}
	})
}

// transactionsOf is the transactions of a list-transactions answer.
func transactionsOf(t *testing.T, r seedResult) []map[string]any {
	t.Helper()
	data, _ := r.envelope(t)
	raw, ok := data["transactions"].([]any)
	if !ok {
		t.Fatalf("no transactions array: %s", r.stdout)
	}
	out := make([]map[string]any, 0, len(raw))
	for _, x := range raw {
		m, _ := x.(map[string]any)
		out = append(out, m)
	}
	return out
}
