package e2e

// kill -9 of `photon up` in the middle of a mixed CreditService load: after
// a restart on the same data dir every acknowledged operation is there,
// nothing else is, and the ledger's invariants hold — all read through the
// REST API, as a user would.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/photoncloud/photon/internal/testutil"
)

const (
	crashProject = "proj-crash"
	crashBalance = 1_000_000_000_000
)

// csOp is one money-moving request of the load, as sent.
type csOp struct {
	kind   string // reserve, commit, release, charge, topup
	key    string // its Idempotency-Key
	path   string
	body   []byte
	rsvID  string // commit, release: the reservation
	amount int64  // reserve, charge, topup: the amount; commit: actual_amount
}

// ackedOp is an op that got a 2xx, with its answer.
type ackedOp struct {
	csOp
	status int
	data   json.RawMessage
}

// csRequest sends one request with an optional Idempotency-Key and decodes
// the envelope.
func csRequest(ctx context.Context, hc *http.Client, addr, method, path, key string, body []byte) (response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, rd)
	if err != nil {
		return response{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	r := response{status: resp.StatusCode, body: b}
	if err := json.Unmarshal(b, &r.env); err != nil {
		return r, fmt.Errorf("%s %s: answer is not the JSON envelope: %w: %s", method, path, err, r)
	}
	return r, nil
}

// crashLoad is the record of the load: what was sent, what was answered.
type crashLoad struct {
	mu        sync.Mutex
	attempted map[string]csOp // by Idempotency-Key
	acked     []ackedOp
	failures  []string // non-2xx answers before the kill
}

func (l *crashLoad) attempt(op csOp) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.attempted[op.key] = op
}

// run is one client of the load: it reserves, commits and releases its own
// reservations, charges and tops up, until ctx ends.
func (l *crashLoad) run(ctx context.Context, hc *http.Client, addr string, g int, killed *atomic.Bool) {
	rng := rand.New(rand.NewPCG(uint64(g), 42))
	active := map[string]int64{} // this client's acknowledged active reservations
	for i := 0; ctx.Err() == nil; i++ {
		key := fmt.Sprintf("crash-%d-%d", g, i)
		op := csOp{key: key}
		var body any
		pick := rng.IntN(10)
		var rsv string
		for id := range active {
			rsv = id
			break
		}
		switch {
		case pick < 4 || (pick < 7 && rsv == ""):
			op.kind, op.path, op.amount = "reserve", "/api/v1/reservations", 1+rng.Int64N(1000)
			// The description names the request, so the transaction a
			// commit records can be traced back to it.
			body = map[string]any{"project_id": crashProject, "amount": op.amount, "description": key, "resource_type": "vm", "ttl_seconds": 3600}
		case pick < 6:
			op.kind, op.path, op.rsvID, op.amount = "commit", "/api/v1/reservations/"+rsv+"/commit", rsv, rng.Int64N(active[rsv]+1)
			body = map[string]any{"actual_amount": op.amount, "resource_id": "vm-" + key}
		case pick < 7:
			op.kind, op.path, op.rsvID = "release", "/api/v1/reservations/"+rsv+"/release", rsv
			body = map[string]any{"reason": key}
		case pick < 9:
			op.kind, op.path, op.amount = "charge", "/api/v1/wallets/"+crashProject+"/charge", 1+rng.Int64N(500)
			body = map[string]any{"amount": op.amount, "description": key, "resource_type": "vm", "resource_id": "vm-" + key}
		default:
			op.kind, op.path, op.amount = "topup", "/api/v1/wallets/"+crashProject+"/topup", 1+rng.Int64N(1000)
			body = map[string]any{"amount": op.amount, "description": key}
		}
		op.body, _ = json.Marshal(body)
		if op.rsvID != "" {
			// Sent once, whatever comes of it: never again from this client.
			delete(active, op.rsvID)
		}
		l.attempt(op)
		r, err := csRequest(ctx, hc, addr, "POST", op.path, key, op.body)
		if err != nil {
			// Not acknowledged (the process is gone, or going).
			if killed.Load() {
				time.Sleep(20 * time.Millisecond)
			}
			continue
		}
		if r.status/100 != 2 {
			if !killed.Load() {
				l.mu.Lock()
				l.failures = append(l.failures, fmt.Sprintf("%s %s: %s", op.kind, op.path, r))
				l.mu.Unlock()
			}
			continue
		}
		if op.kind == "reserve" {
			var rv struct {
				ID string `json:"id"`
			}
			if json.Unmarshal(r.env.Data, &rv) == nil && rv.ID != "" {
				active[rv.ID] = op.amount
			}
		}
		l.mu.Lock()
		l.acked = append(l.acked, ackedOp{csOp: op, status: r.status, data: r.env.Data})
		l.mu.Unlock()
	}
}

// csState is CreditService's state as the REST API shows it.
type csState struct {
	wallet struct {
		Balance          int64  `json:"balance"`
		Reserved         int64  `json:"reserved"`
		Available        int64  `json:"available"`
		Status           string `json:"status"`
		TransactionCount int64  `json:"transaction_count"`
	}
	txns []csTxn
	rsvs map[string]csRsv
}

type csTxn struct {
	ID            string `json:"id"`
	Amount        int64  `json:"amount"`
	Type          string `json:"type"`
	Description   string `json:"description"`
	ReservationID string `json:"reservation_id"`
	BalanceAfter  int64  `json:"balance_after"`
	Sequence      int64  `json:"sequence"`
}

type csRsv struct {
	ID           string `json:"id"`
	Amount       int64  `json:"amount"`
	ActualAmount *int64 `json:"actual_amount"`
	Status       string `json:"status"`
	Description  string `json:"description"`
	Reason       string `json:"reason"`
}

// readCSState reads the wallet, every transaction and every reservation,
// paging through both lists.
func readCSState(t *testing.T, hc *http.Client, addr string) csState {
	t.Helper()
	get := func(path string, v any) string {
		t.Helper()
		r, err := csRequest(context.Background(), hc, addr, "GET", path, "", nil)
		if err != nil || r.status != 200 {
			t.Fatalf("GET %s: %v %s", path, err, r)
		}
		var page struct {
			NextPageToken string `json:"next_page_token"`
		}
		if err := r.decode(v); err != nil {
			t.Fatal(err)
		}
		_ = r.decode(&page)
		return page.NextPageToken
	}
	var st csState
	get("/api/v1/wallets/"+crashProject, &st.wallet)
	for token := "start"; token != ""; {
		q := url.Values{"limit": {"1000"}}
		if token != "start" {
			q.Set("page_token", token)
		}
		var page struct {
			Transactions []csTxn `json:"transactions"`
		}
		token = get("/api/v1/wallets/"+crashProject+"/transactions?"+q.Encode(), &page)
		st.txns = append(st.txns, page.Transactions...)
	}
	st.rsvs = map[string]csRsv{}
	for token := "start"; token != ""; {
		q := url.Values{"project_id": {crashProject}, "limit": {"1000"}}
		if token != "start" {
			q.Set("page_token", token)
		}
		var page struct {
			Reservations []csRsv `json:"reservations"`
		}
		token = get("/api/v1/reservations?"+q.Encode(), &page)
		for _, r := range page.Reservations {
			if _, dup := st.rsvs[r.ID]; dup {
				t.Errorf("reservation %s listed twice", r.ID)
			}
			st.rsvs[r.ID] = r
		}
	}
	return st
}

// checkInvariants checks balance = sum of transactions (listed newest
// first, sequences 1..transaction_count each once, each balance_after the
// running sum), reserved = sum of the active reservations, and available =
// balance − reserved ≥ 0. The active sum is also read through the
// status=active filter.
func checkInvariants(t *testing.T, hc *http.Client, addr string, st csState) {
	t.Helper()
	var sum int64
	for i := len(st.txns) - 1; i >= 0; i-- {
		tx := st.txns[i]
		sum += tx.Amount
		if want := int64(len(st.txns) - i); tx.Sequence != want {
			t.Errorf("transaction %s at position %d has sequence %d, want %d (newest first, no gaps)", tx.ID, i, tx.Sequence, want)
		}
		if tx.BalanceAfter != sum {
			t.Errorf("transaction %s: balance_after %d, running sum %d", tx.ID, tx.BalanceAfter, sum)
		}
	}
	w := st.wallet
	if w.Balance != sum || w.TransactionCount != int64(len(st.txns)) {
		t.Errorf("balance %d (transaction_count %d), sum of %d transactions %d", w.Balance, w.TransactionCount, len(st.txns), sum)
	}
	var reserved int64
	for _, r := range st.rsvs {
		if r.Status == "active" {
			reserved += r.Amount
		}
	}
	var filtered int64
	for token := "start"; token != ""; {
		q := url.Values{"project_id": {crashProject}, "status": {"active"}, "limit": {"1000"}}
		if token != "start" {
			q.Set("page_token", token)
		}
		r, err := csRequest(context.Background(), hc, addr, "GET", "/api/v1/reservations?"+q.Encode(), "", nil)
		if err != nil || r.status != 200 {
			t.Fatalf("list active reservations: %v %s", err, r)
		}
		var page struct {
			Reservations  []csRsv `json:"reservations"`
			NextPageToken string  `json:"next_page_token"`
		}
		if err := r.decode(&page); err != nil {
			t.Fatal(err)
		}
		for _, rv := range page.Reservations {
			if rv.Status != "active" {
				t.Errorf("status=active lists %s as %s", rv.ID, rv.Status)
			}
			filtered += rv.Amount
		}
		token = page.NextPageToken
	}
	if w.Reserved != reserved || filtered != reserved {
		t.Errorf("reserved %d, sum of active reservations %d (through ?status=active: %d)", w.Reserved, reserved, filtered)
	}
	if w.Available != w.Balance-w.Reserved || w.Available < 0 {
		t.Errorf("available %d, balance %d − reserved %d", w.Available, w.Balance, w.Reserved)
	}
}

// TestCreditServiceCrash: kill -9 of `photon up` during a mixed load from 8
// clients; after a restart on the same data dir every acknowledged
// operation is there, every transaction comes from an operation that was
// sent (once), the invariants hold, and acknowledged requests re-sent with
// their Idempotency-Key answer as before and move nothing.
func TestCreditServiceCrash(t *testing.T) {
	addr := testutil.FreeAddr(t)
	s := startUpStack(t, "--creditservice-http-addr", addr)
	hc := &http.Client{Timeout: 20 * time.Second}
	t.Cleanup(hc.CloseIdleConnections)

	body, _ := json.Marshal(map[string]any{"project_id": crashProject, "org_id": "org-crash", "initial_balance": crashBalance})
	if r, err := csRequest(context.Background(), hc, addr, "POST", "/api/v1/wallets", "", body); err != nil || r.status != 201 {
		t.Fatalf("create wallet: %v %s", err, r)
	}

	load := &crashLoad{attempted: map[string]csOp{}}
	var killed atomic.Bool
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			load.run(ctx, hc, addr, g, &killed)
		}()
	}
	// Mid-load: wait until the load has some of everything acknowledged
	// (or 2 s), then kill -9.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		load.mu.Lock()
		n := len(load.acked)
		load.mu.Unlock()
		if n >= 100 && time.Until(deadline) < time.Second {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	killed.Store(true)
	if err := s.proc.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-s.proc.done
	wg.Wait()
	hc.CloseIdleConnections()
	s.hc.CloseIdleConnections()

	for _, f := range load.failures {
		t.Errorf("non-2xx answer before the kill: %s", f)
	}
	kinds := map[string]int{}
	for _, a := range load.acked {
		kinds[a.kind]++
	}
	t.Logf("acknowledged before the kill: %d of %d sent %v", len(load.acked), len(load.attempted), kinds)
	for _, k := range []string{"reserve", "commit", "release", "charge", "topup"} {
		if kinds[k] == 0 {
			t.Fatalf("no %s was acknowledged before the kill: the load did not exercise it", k)
		}
	}

	s.start(t)
	st := readCSState(t, hc, addr)
	checkInvariants(t, hc, addr, st)

	t.Run("acknowledged operations survive", func(t *testing.T) {
		txnByID := map[string]csTxn{}
		for _, tx := range st.txns {
			txnByID[tx.ID] = tx
		}
		// What happened to each reservation, as acknowledged.
		ended := map[string]ackedOp{}
		for _, a := range load.acked {
			if a.rsvID != "" {
				ended[a.rsvID] = a
			}
		}
		// What was tried on each, acknowledged or not.
		tried := map[string]csOp{}
		for _, op := range load.attempted {
			if op.rsvID != "" {
				tried[op.rsvID] = op
			}
		}
		for _, a := range load.acked {
			switch a.kind {
			case "reserve":
				var rv csRsv
				if err := json.Unmarshal(a.data, &rv); err != nil {
					t.Fatal(err)
				}
				got, ok := st.rsvs[rv.ID]
				if !ok {
					t.Errorf("acknowledged reservation %s (%s) is gone", rv.ID, a.key)
					continue
				}
				if got.Amount != a.amount || got.Description != a.key {
					t.Errorf("reservation %s: %+v, acknowledged amount %d", rv.ID, got, a.amount)
				}
				want := "active"
				if e, ok := ended[rv.ID]; ok {
					want = map[string]string{"commit": "committed", "release": "released"}[e.kind]
				} else if op, ok := tried[rv.ID]; ok && got.Status != "active" {
					// An unacknowledged commit or release may have happened.
					want = map[string]string{"commit": "committed", "release": "released"}[op.kind]
				}
				if got.Status != want {
					t.Errorf("reservation %s is %s, want %s", rv.ID, got.Status, want)
				}
				if op, ok := tried[rv.ID]; ok && got.Status == "committed" && (got.ActualAmount == nil || *got.ActualAmount != op.amount) {
					t.Errorf("reservation %s committed with %v, the commit sent %d", rv.ID, got.ActualAmount, op.amount)
				}
				if op, ok := tried[rv.ID]; ok && got.Status == "released" && got.Reason != op.key {
					t.Errorf("reservation %s released with reason %q, the release sent %q", rv.ID, got.Reason, op.key)
				}
			case "commit", "topup", "charge":
				var tx *csTxn
				if a.kind == "commit" {
					var cr struct {
						Transaction *csTxn `json:"transaction"`
					}
					if err := json.Unmarshal(a.data, &cr); err != nil {
						t.Fatal(err)
					}
					tx = cr.Transaction
					if (tx == nil) != (a.amount == 0) {
						t.Errorf("commit %s of %d answered transaction %+v", a.key, a.amount, tx)
						continue
					}
				} else {
					var mm struct {
						Transaction csTxn `json:"transaction"`
					}
					if err := json.Unmarshal(a.data, &mm); err != nil {
						t.Fatal(err)
					}
					tx = &mm.Transaction
				}
				if tx == nil {
					continue
				}
				got, ok := txnByID[tx.ID]
				if !ok {
					t.Errorf("acknowledged %s %s: transaction %s is gone", a.kind, a.key, tx.ID)
					continue
				}
				if got != *tx {
					t.Errorf("transaction %s is %+v, acknowledged as %+v", tx.ID, got, *tx)
				}
			}
		}
	})

	t.Run("nothing made up", func(t *testing.T) {
		// Every transaction but the initial deposit comes from exactly one
		// operation that was sent: charges and top-ups carry their key,
		// a commit's charge its reservation's.
		rsvKey := map[string]string{}
		for id, r := range st.rsvs {
			rsvKey[id] = r.Description
		}
		seen := map[string]string{}
		for _, tx := range st.txns {
			if tx.Sequence == 1 {
				if tx.Amount != crashBalance || tx.Type != "deposit" {
					t.Errorf("first transaction %+v, want the initial deposit", tx)
				}
				continue
			}
			from := tx.Description
			var want int64
			var kind string
			if tx.ReservationID != "" {
				op, ok := findCommit(load.attempted, tx.ReservationID)
				if !ok {
					t.Errorf("transaction %+v charges reservation %s, which no commit was sent for", tx, tx.ReservationID)
					continue
				}
				from, kind, want = op.key, "commit", -op.amount
				if rsvKey[tx.ReservationID] != tx.Description {
					t.Errorf("transaction %+v: description is not its reservation's", tx)
				}
			} else {
				op, ok := load.attempted[from]
				if !ok || (op.kind != "charge" && op.kind != "topup") {
					t.Errorf("transaction %+v comes from no charge or top-up that was sent", tx)
					continue
				}
				kind, want = op.kind, op.amount
				if kind == "charge" {
					want = -want
				}
			}
			if tx.Amount != want || (kind == "topup") != (tx.Type == "deposit") {
				t.Errorf("transaction %+v, the %s sent amount %d", tx, kind, want)
			}
			if prev, dup := seen[from]; dup {
				t.Errorf("request %s recorded twice: %s and %s", from, prev, tx.ID)
			}
			seen[from] = tx.ID
		}
		// And no reservation exists that was never asked for.
		reserveKeys := map[string]bool{}
		for k, op := range load.attempted {
			if op.kind == "reserve" {
				reserveKeys[k] = true
			}
		}
		descs := map[string]string{}
		for id, r := range st.rsvs {
			if !reserveKeys[r.Description] {
				t.Errorf("reservation %+v comes from no reserve that was sent", r)
			}
			if prev, dup := descs[r.Description]; dup {
				t.Errorf("reserve %s made two reservations: %s and %s", r.Description, prev, id)
			}
			descs[r.Description] = id
		}
	})

	t.Run("idempotent replays after the restart", func(t *testing.T) {
		// The last acknowledged op of each kind, sent again with its key.
		last := map[string]ackedOp{}
		for _, a := range load.acked {
			last[a.kind] = a
		}
		kinds := make([]string, 0, len(last))
		for k := range last {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		for _, k := range kinds {
			a := last[k]
			r, err := csRequest(context.Background(), hc, addr, "POST", a.path, a.key, a.body)
			if err != nil {
				t.Fatal(err)
			}
			if r.status != a.status || !sameJSON(r.env.Data, a.data) {
				t.Errorf("%s %s re-sent: %s, first answer %d %s", a.kind, a.key, r, a.status, a.data)
			}
			// The same key with another body is refused.
			other := bytes.Replace(a.body, []byte(a.key), []byte(a.key+"-other"), 1)
			if r, err := csRequest(context.Background(), hc, addr, "POST", a.path, a.key, other); err != nil || r.status != 409 || r.errCode() != "CONFLICT" {
				t.Errorf("%s %s re-sent with another body: %v %s, want 409 CONFLICT", a.kind, a.key, err, r)
			}
		}
		after := readCSState(t, hc, addr)
		if after.wallet != st.wallet || len(after.txns) != len(st.txns) || !reflect.DeepEqual(after.rsvs, st.rsvs) {
			t.Errorf("the replays moved something: wallet %+v → %+v, %d → %d transactions", st.wallet, after.wallet, len(st.txns), len(after.txns))
		}
	})
}

// findCommit is the commit sent for reservation id (each client sends at
// most one commit or release per reservation).
func findCommit(attempted map[string]csOp, id string) (csOp, bool) {
	for _, op := range attempted {
		if op.kind == "commit" && op.rsvID == id {
			return op, true
		}
	}
	return csOp{}, false
}

func sameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}
