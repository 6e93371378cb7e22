package creditservice_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/testutil"
	"github.com/photoncloud/photon/services/creditservice"
)

// The fuzz targets below drive one in-process stack (ChainFire + IAM +
// CreditService) per target over real HTTP as a tokenless loopback client,
// the bootstrap admin. Whatever the body, the answer is the seed's envelope
// with a code of apierr's table and its status, never a 5xx; an answer that
// is an error changes nothing under /photon/creditservice/ (a failed change
// leaves no idempotency record either); a success moves exactly what was
// asked; and after every input each project's ledger holds: balance = the
// sum of its transactions, reserved = the sum of its active reservations,
// available = balance − reserved ≥ −credit_limit.
//
// The sweeper is kept idle (an hour's interval) so that nothing but the
// input writes while a target checks that an error wrote nothing.

const (
	fuzzOrg     = "fuzz-org"
	fuzzProject = "fuzz-proj"   // balance fuzzStartBalance, no credit limit
	fuzzCredit  = "fuzz-credit" // balance 0, credit_limit fuzzCreditLimit

	fuzzStartBalance = 1_000_000
	fuzzCreditLimit  = 5_000
	fuzzMaxBody      = 1 << 20
	fuzzMaxTTL       = 7 * 24 * 60 * 60
	fuzzDefaultTTL   = 60 * 60
)

// fuzzEnv is a target's stack with the fixture in place.
type fuzzEnv struct {
	base string // CreditService's /api/v1
	hc   *http.Client
	cli  *clientv3.Client
}

// fuzzStack starts a stack for f, stopped when f ends, with the fixture's
// wallets and fuzzProject's quota.
func fuzzStack(f *testing.F) *fuzzEnv {
	f.Helper()
	cfg := testutil.StackConfig(f, "")
	cfg.CreditService.SweepInterval = time.Hour
	st := testutil.StartStackWith(f, cfg)
	e := &fuzzEnv{
		base: "http://" + st.CreditService.HTTPAddr() + "/api/v1",
		hc: &http.Client{Timeout: 20 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		cli: st.ChainFire.Client(),
	}
	e.must(f, "POST", "/wallets", map[string]any{"project_id": fuzzProject, "org_id": fuzzOrg, "initial_balance": fuzzStartBalance}, http.StatusCreated)
	e.must(f, "POST", "/wallets", map[string]any{"project_id": fuzzCredit, "org_id": fuzzOrg, "credit_limit": fuzzCreditLimit}, http.StatusCreated)
	e.must(f, "PUT", "/quotas/"+fuzzProject, map[string]any{"org_id": fuzzOrg, "limits": map[string]int64{"vcpus": 100, "memory_mib": 65536, "vms": 10}}, http.StatusOK)
	return e
}

// fuzzCodes is what CreditService may answer: apierr's table.
func fuzzCodes() map[apierr.Code]bool {
	c := testutil.ErrorCodes()
	c[apierr.CodeInsufficientCredit], c[apierr.CodeQuotaExceeded] = true, true
	return c
}

// do sends body (for any method but GET) as application/json, with an
// Idempotency-Key when key is not "", and checks the answer is an envelope.
func (e *fuzzEnv) do(t testing.TB, method, path string, body []byte, key string) testutil.Answer {
	t.Helper()
	var rd io.Reader
	if method != "GET" {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, e.base+path, rd)
	if err != nil {
		t.Fatalf("request %s %s: %v", method, path, err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
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

// must sends v (nil for GET) and fails unless the status is want.
func (e *fuzzEnv) must(t testing.TB, method, path string, v any, want int) json.RawMessage {
	t.Helper()
	var b []byte
	if v != nil {
		var err error
		if b, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	a := e.do(t, method, path, b, "")
	if a.Status != want {
		t.Fatalf("%s %s: %s, want status %d", method, path, a, want)
	}
	return a.Data
}

// fuzzRequest is body decoded as the service decodes a T, and whether it
// can (testutil.RequestOf has checked that the answer refuses it when not).
func fuzzRequest[T any](t testing.TB, what string, body []byte, a testutil.Answer) (T, bool) {
	t.Helper()
	return testutil.RequestOf[T](t, what, body, fuzzMaxBody, a)
}

// fuzzValidID is the service's rule for ids: 1–63 of a-z 0-9 - _ . :,
// starting with a letter or digit.
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

// fuzzState is what the store holds under /photon/creditservice/ but the
// sweeper's election: the number of keys and the newest change.
type fuzzState struct{ count, newest int64 }

func (e *fuzzEnv) state(t testing.TB) fuzzState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := e.cli.Get(ctx, "/photon/creditservice/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatalf("reading CreditService's keys: %v", err)
	}
	var s fuzzState
	for _, kv := range resp.Kvs {
		if strings.HasPrefix(string(kv.Key), "/photon/creditservice/sweeper-election") {
			continue
		}
		s.count++
		s.newest = max(s.newest, kv.ModRevision)
	}
	return s
}

// unchanged fails if the store moved from before.
func (e *fuzzEnv) unchanged(t testing.TB, what string, before fuzzState, a testutil.Answer) {
	t.Helper()
	if after := e.state(t); after != before {
		t.Fatalf("%s: answered %s, yet CreditService's keys moved from %+v to %+v", what, a, before, after)
	}
}

// ledger reads project's stored wallet (with its active reservations) and
// transactions straight from ChainFire and checks the invariants. It returns the wallet
// (ok false when there is none).
func (e *fuzzEnv) ledger(t testing.TB, what, project string) (creditservice.Wallet, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := "/photon/creditservice/"
	resp, err := e.cli.Txn(ctx).Then(
		clientv3.OpGet(p+"wallets/"+project),
		clientv3.OpGet(p+"transactions/"+project+"/", clientv3.WithPrefix()),
	).Commit()
	if err != nil {
		t.Fatalf("%s: reading %s's ledger: %v", what, project, err)
	}
	wkv := resp.Responses[0].GetResponseRange().Kvs
	if len(wkv) == 0 {
		return creditservice.Wallet{}, false
	}
	// The stored record is the wallet with its active reservations.
	var rec struct {
		creditservice.Wallet
		Active map[string]struct{ Amount int64 } `json:"active"`
	}
	if err := json.Unmarshal(wkv[0].Value, &rec); err != nil {
		t.Fatalf("%s: stored wallet %s: %v", what, project, err)
	}
	w := rec.Wallet
	var sum, n int64
	for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
		var tx creditservice.Transaction
		if err := json.Unmarshal(kv.Value, &tx); err != nil {
			t.Fatalf("%s: stored transaction %s: %v", what, kv.Key, err)
		}
		sum += tx.Amount
		n++
	}
	var reserved int64
	for id, a := range rec.Active {
		if a.Amount <= 0 {
			t.Fatalf("%s: %s's active reservation %s holds %d", what, project, id, a.Amount)
		}
		reserved += a.Amount
	}
	switch {
	case w.Balance != sum || w.TransactionCount != n:
		t.Fatalf("%s: %s's balance %d over %d transactions, but they sum to %d over %d", what, project, w.Balance, w.TransactionCount, sum, n)
	case w.Reserved != reserved:
		t.Fatalf("%s: %s reserves %d, but its active reservations sum to %d", what, project, w.Reserved, reserved)
	case w.Available != w.Balance-w.Reserved:
		t.Fatalf("%s: %s's available %d is not balance %d − reserved %d", what, project, w.Available, w.Balance, w.Reserved)
	case w.Available < -w.CreditLimit:
		t.Fatalf("%s: %s's available %d is below −credit_limit %d", what, project, w.Available, w.CreditLimit)
	case w.Balance > creditservice.MaxAmount:
		t.Fatalf("%s: %s's balance %d passes 10^15", what, project, w.Balance)
	}
	return w, true
}

// invariants checks the fixture's ledgers and those of projects.
func (e *fuzzEnv) invariants(t testing.TB, what string, projects ...string) {
	t.Helper()
	for _, p := range append([]string{fuzzProject, fuzzCredit}, projects...) {
		if fuzzValidID(p) {
			e.ledger(t, what, p)
		}
	}
}

// refill keeps fuzzProject's balance where inputs can still succeed and
// fail: topped up when low, charged down when huge.
func (e *fuzzEnv) refill(t testing.TB) {
	t.Helper()
	w, _ := e.ledger(t, "refill", fuzzProject)
	switch {
	case w.Available < fuzzStartBalance/2:
		e.must(t, "POST", "/wallets/"+fuzzProject+"/topup", map[string]any{"amount": fuzzStartBalance}, http.StatusOK)
	case w.Available > 1_000_000_000_000:
		e.must(t, "POST", "/wallets/"+fuzzProject+"/charge", map[string]any{"amount": w.Available - fuzzStartBalance}, http.StatusOK)
	}
}

// FuzzReserve sends any body to POST /api/v1/reservations, then releases
// what it reserved.
func FuzzReserve(f *testing.F) {
	for _, s := range []string{
		`{"project_id":"fuzz-proj","amount":5000,"description":"VM creation","resource_type":"vm","resource_id":"vm-abc","ttl_seconds":3600}`, // the seed's Example 1
		`{"project_id":"fuzz-proj","amount":1}`,
		`{"project_id":"fuzz-proj","amount":1000000}`,
		`{"project_id":"fuzz-proj","amount":1000001}`,
		`{"project_id":"fuzz-credit","amount":5000}`,
		`{"project_id":"fuzz-credit","amount":5001}`,
		`{"project_id":"fuzz-proj","amount":0}`,
		`{"project_id":"fuzz-proj","amount":-1}`,
		`{"project_id":"fuzz-proj","amount":1000000000000000}`,
		`{"project_id":"fuzz-proj","amount":1000000000000001}`,
		`{"project_id":"fuzz-proj","amount":9223372036854775807}`,
		`{"project_id":"fuzz-proj","amount":99999999999999999999}`,
		`{"project_id":"fuzz-proj","amount":1.5}`,
		`{"project_id":"fuzz-proj","amount":"10"}`,
		`{"project_id":"fuzz-proj","amount":10,"ttl_seconds":0}`,
		`{"project_id":"fuzz-proj","amount":10,"ttl_seconds":1}`,
		`{"project_id":"fuzz-proj","amount":10,"ttl_seconds":604800}`,
		`{"project_id":"fuzz-proj","amount":10,"ttl_seconds":604801}`,
		`{"project_id":"fuzz-proj","amount":10,"ttl_seconds":null}`,
		`{"project_id":"fuzz-proj","amount":10,"resource_id":"Bad ID"}`,
		`{"project_id":"fuzz-proj","amount":10,"description":"` + strings.Repeat("d", 1025) + `"}`,
		`{"project_id":"nope","amount":10}`,
		`{"project_id":"","amount":10}`,
		`{"project_id":"FUZZ-PROJ","amount":10}`,
		`{"project_id":"fuzz-proj","amount":10,"extra":1}`,
		`{"project_id":"fuzz-proj","amount":10}{}`,
		``, `null`, `[]`, `{`, `{}`, "\xef\xbb\xbf{}",
	} {
		f.Add([]byte(s))
	}
	e := fuzzStack(f)

	f.Fuzz(func(t *testing.T, body []byte) {
		const what = "POST /api/v1/reservations"
		var req creditservice.ReserveRequest
		_ = json.Unmarshal(body, &req)
		var w0 creditservice.Wallet
		if fuzzValidID(req.ProjectID) {
			w0, _ = e.ledger(t, what, req.ProjectID)
		}
		before, t0 := e.state(t), time.Now()
		a := e.do(t, "POST", "/reservations", body, "")
		t1 := time.Now()
		if a.Err != nil {
			e.unchanged(t, what, before, a)
		}
		defer e.invariants(t, what, req.ProjectID)
		req, ok := fuzzRequest[creditservice.ReserveRequest](t, what, body, a)
		if !ok {
			return
		}
		ttl := int64(fuzzDefaultTTL)
		if req.TTLSeconds != nil {
			ttl = *req.TTLSeconds
		}
		invalid := !fuzzValidID(req.ProjectID) || req.Amount < 1 || req.Amount > creditservice.MaxAmount || ttl < 1 || ttl > fuzzMaxTTL ||
			len(req.Description) > 1024 || len(req.ResourceType) > 1024 || (req.ResourceID != "" && !fuzzValidID(req.ResourceID))
		switch {
		case invalid:
			if !a.Is(apierr.CodeValidation) {
				t.Fatalf("%s: an invalid request answered %s, want VALIDATION_ERROR", what, a)
			}
			return
		case a.Is(apierr.CodeInsufficientCredit):
			// Expiry only frees credit, so what was available before is a
			// floor of what the reservation saw.
			if w0.Status == creditservice.WalletActive && req.Amount <= w0.Available+w0.CreditLimit {
				t.Fatalf("%s: 402 for %d with %d available and credit limit %d", what, req.Amount, w0.Available, w0.CreditLimit)
			}
			return
		case a.Is(apierr.CodeNotFound):
			if w0.ProjectID != "" {
				t.Fatalf("%s: NOT_FOUND for %s, which has a wallet", what, req.ProjectID)
			}
			return
		case a.Err != nil:
			t.Fatalf("%s: unexpected %s", what, a)
		case a.Status != http.StatusCreated:
			t.Fatalf("%s: success status %d, want 201", what, a.Status)
		}
		var r creditservice.Reservation
		testutil.StrictData(t, what, a.Data, &r)
		d := time.Duration(ttl) * time.Second
		if r.ProjectID != req.ProjectID || r.OrgID != w0.OrgID || r.Amount != req.Amount || r.Status != creditservice.ReservationActive ||
			r.Description != req.Description || r.ResourceType != req.ResourceType || r.ResourceID != req.ResourceID ||
			r.ExpiresAt.Before(t0.Truncate(time.Second).Add(d)) || r.ExpiresAt.After(t1.Add(d)) || r.ActualAmount != nil || r.EndedAt != nil {
			t.Fatalf("%s: reserved %s for %s", what, a.Data, body)
		}
		w1, _ := e.ledger(t, what, req.ProjectID)
		// (Reservations that expired on the way are no longer reserved.)
		if w1.Balance != w0.Balance || w1.Reserved > w0.Reserved+r.Amount || w1.Reserved < r.Amount {
			t.Fatalf("%s: reserving %d moved the wallet from %+v to %+v", what, r.Amount, w0, w1)
		}
		// Release it: the credit comes back exactly.
		rel := e.do(t, "POST", "/reservations/"+r.ID+"/release", []byte(`{"reason":"fuzz"}`), "")
		if rel.Is(apierr.CodeFailedPrecondition) && rel.Err.Details["status"] == creditservice.ReservationExpired && time.Now().After(r.ExpiresAt) {
			return // a short TTL ran out first
		}
		if rel.Status != http.StatusOK {
			t.Fatalf("%s: releasing %s answered %s", what, r.ID, rel)
		}
		var got creditservice.Reservation
		testutil.StrictData(t, what+": release", rel.Data, &got)
		if got.Status != creditservice.ReservationReleased || got.Reason != "fuzz" {
			t.Fatalf("%s: released %s", what, rel)
		}
		if w2, _ := e.ledger(t, what, req.ProjectID); w2.Reserved != w1.Reserved-r.Amount || w2.Balance != w1.Balance {
			t.Fatalf("%s: releasing %d moved the wallet from %+v to %+v", what, r.Amount, w1, w2)
		}
	})
}

// FuzzCommit sends any body to the commit of a fresh reservation of 1000
// on fuzzProject.
func FuzzCommit(f *testing.F) {
	for _, s := range []string{
		`{"actual_amount":4500}`, // the seed's Example 1 (more than reserved here)
		`{"actual_amount":1000}`, `{"actual_amount":999}`, `{"actual_amount":1}`, `{"actual_amount":0}`,
		`{"actual_amount":1001}`, `{"actual_amount":-1}`, `{"actual_amount":1000000000000001}`,
		`{"actual_amount":9223372036854775807}`, `{"actual_amount":1.5}`, `{"actual_amount":"1"}`, `{"actual_amount":null}`,
		`{"resource_id":"vm-abc"}`, `{"resource_id":"Bad ID"}`, `{"actual_amount":10,"resource_id":"vm-x"}`,
		`{"reason":"x"}`, ``, `null`, `[]`, `{`, `{}`, `{}x`,
	} {
		f.Add([]byte(s))
	}
	e := fuzzStack(f)
	const reserved = 1000

	f.Fuzz(func(t *testing.T, body []byte) {
		const what = "POST /api/v1/reservations/{id}/commit"
		defer e.invariants(t, what)
		e.refill(t)
		var r creditservice.Reservation
		testutil.StrictData(t, "reserve", e.must(t, "POST", "/reservations", map[string]any{"project_id": fuzzProject, "amount": reserved}, http.StatusCreated), &r)
		w0, _ := e.ledger(t, what, fuzzProject)
		before := e.state(t)
		a := e.do(t, "POST", "/reservations/"+r.ID+"/commit", body, "")
		if a.Err != nil {
			e.unchanged(t, what, before, a)
			// Still active: release it.
			e.must(t, "POST", "/reservations/"+r.ID+"/release", nil, http.StatusOK)
		}
		req, ok := fuzzRequest[creditservice.CommitRequest](t, what, body, a)
		if !ok {
			return
		}
		actual := int64(reserved)
		if req.ActualAmount != nil {
			actual = *req.ActualAmount
		}
		if actual < 0 || actual > reserved || (req.ResourceID != "" && !fuzzValidID(req.ResourceID)) {
			if !a.Is(apierr.CodeValidation) {
				t.Fatalf("%s: an invalid request answered %s, want VALIDATION_ERROR", what, a)
			}
			return
		}
		if a.Status != http.StatusOK {
			t.Fatalf("%s: a valid commit answered %s, want 200", what, a)
		}
		var c creditservice.CommitResult
		testutil.StrictData(t, what, a.Data, &c)
		w1, _ := e.ledger(t, what, fuzzProject)
		if c.Reservation.Status != creditservice.ReservationCommitted || c.Reservation.ActualAmount == nil || *c.Reservation.ActualAmount != actual ||
			w1.Balance != w0.Balance-actual || w1.Reserved != w0.Reserved-reserved || (c.Transaction != nil) != (actual > 0) ||
			(c.Transaction != nil && (c.Transaction.Amount != -actual || c.Transaction.ReservationID != r.ID || c.Transaction.BalanceAfter != w1.Balance)) ||
			c.Wallet.Balance != w1.Balance || c.Wallet.Reserved != w1.Reserved {
			t.Fatalf("%s: committed %s of %d for %s; the wallet went from %+v to %+v", what, a.Data, reserved, body, w0, w1)
		}
		// It is over: a second commit or a release names its state.
		before = e.state(t)
		for _, op := range []string{"commit", "release"} {
			again := e.do(t, "POST", "/reservations/"+r.ID+"/"+op, nil, "")
			if !again.Is(apierr.CodeFailedPrecondition) || again.Err.Details["status"] != creditservice.ReservationCommitted {
				t.Fatalf("%s: %s after commit answered %s, want FAILED_PRECONDITION naming committed", what, op, again)
			}
			e.unchanged(t, what+": "+op+" again", before, again)
		}
	})
}

// FuzzTopUp sends any body, with an Idempotency-Key, to POST
// /api/v1/wallets/fuzz-proj/topup. A key that succeeded before answers the
// same request with the same answer and moves nothing, and refuses any
// other request.
func FuzzTopUp(f *testing.F) {
	for _, s := range []struct{ body, key string }{
		{`{"amount":100000,"description":"Monthly credit"}`, ""},
		{`{"amount":1}`, "k1"}, {`{"amount":1}`, "k1"}, {`{ "amount" : 1 }`, "k1"}, {`{"amount":2}`, "k1"},
		{`{"amount":0}`, ""}, {`{"amount":-5}`, ""}, {`{"amount":1000000000000000}`, ""}, {`{"amount":1000000000000001}`, ""},
		{`{"amount":9223372036854775807}`, ""}, {`{"amount":1e3}`, ""}, {`{"amount":"5"}`, ""},
		{`{"amount":5,"description":"` + strings.Repeat("d", 1025) + `"}`, ""}, {`{"amount":5,"extra":true}`, ""},
		{`{"amount":5}`, "has space"}, {`{"amount":5}`, strings.Repeat("k", 256)}, {`{"amount":5}`, "\x7f"},
		{``, ""}, {`null`, "k2"}, {`{`, ""}, {`{}`, ""},
	} {
		f.Add([]byte(s.body), s.key)
	}
	e := fuzzStack(f)
	type first struct {
		body   []byte
		status int
		data   json.RawMessage
	}
	seen := map[string]first{} // Idempotency-Key → its first success

	f.Fuzz(func(t *testing.T, body []byte, key string) {
		const what = "POST /api/v1/wallets/fuzz-proj/topup"
		defer e.invariants(t, what)
		e.refill(t)
		w0, _ := e.ledger(t, what, fuzzProject)
		before := e.state(t)
		// The header as the server sees it: net/http sends no control
		// character but tab, and the server trims surrounding blanks.
		if strings.ContainsFunc(key, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }) {
			key = ""
		}
		key = strings.Trim(key, " \t")
		a := e.do(t, "POST", "/wallets/"+fuzzProject+"/topup", body, key)
		if a.Err != nil {
			e.unchanged(t, what, before, a)
		}
		req, ok := fuzzRequest[creditservice.TopUpRequest](t, what, body, a)
		if !ok {
			return
		}
		validKey := len(key) <= 255 && !strings.ContainsFunc(key, func(r rune) bool { return r < 0x21 || r > 0x7e })
		if req.Amount < 1 || req.Amount > creditservice.MaxAmount || len(req.Description) > 1024 || !validKey {
			if !a.Is(apierr.CodeValidation) {
				t.Fatalf("%s: an invalid request (key %q) answered %s, want VALIDATION_ERROR", what, key, a)
			}
			return
		}
		if prev, ok := seen[key]; ok && key != "" {
			var c bytes.Buffer
			_ = json.Compact(&c, body)
			if bytes.Equal(c.Bytes(), prev.body) {
				if a.Status != prev.status || !bytes.Equal(a.Data, prev.data) {
					t.Fatalf("%s: key %q replayed as %s, first answered %d %s", what, key, a, prev.status, prev.data)
				}
				e.unchanged(t, what+": replay", before, a)
			} else if !a.Is(apierr.CodeConflict) {
				t.Fatalf("%s: key %q with another request answered %s, want CONFLICT", what, key, a)
			}
			return
		}
		if w0.Balance+req.Amount > creditservice.MaxAmount {
			if !a.Is(apierr.CodeValidation) {
				t.Fatalf("%s: a top-up past 10^15 answered %s, want VALIDATION_ERROR", what, a)
			}
			return
		}
		if a.Status != http.StatusOK {
			t.Fatalf("%s: a valid top-up answered %s, want 200", what, a)
		}
		var m creditservice.MoneyMove
		testutil.StrictData(t, what, a.Data, &m)
		w1, _ := e.ledger(t, what, fuzzProject)
		if w1.Balance != w0.Balance+req.Amount || w1.Reserved != w0.Reserved || m.Wallet.Balance != w1.Balance ||
			m.Transaction.Amount != req.Amount || m.Transaction.Type != creditservice.TxnDeposit || m.Transaction.Description != req.Description ||
			m.Transaction.BalanceAfter != w1.Balance || m.Transaction.Sequence != w1.TransactionCount {
			t.Fatalf("%s: topped up %s for %s; the wallet went from %+v to %+v", what, a.Data, body, w0, w1)
		}
		if key != "" {
			var c bytes.Buffer
			if json.Compact(&c, body) != nil {
				c.Reset()
				c.Write(body)
			}
			seen[key] = first{body: c.Bytes(), status: a.Status, data: a.Data}
		}
	})
}

// FuzzCreateWallet sends any body to POST /api/v1/wallets.
func FuzzCreateWallet(f *testing.F) {
	for _, s := range []string{
		`{"project_id":"project-prod","org_id":"org-123","initial_balance":100000,"currency":"JPY"}`,
		`{"project_id":"p1","org_id":"o1"}`,
		`{"project_id":"p2","org_id":"o1","currency":"usd","credit_limit":500}`,
		`{"project_id":"fuzz-proj","org_id":"fuzz-org"}`,
		`{"project_id":"p3","org_id":"o1","initial_balance":-1}`,
		`{"project_id":"p3","org_id":"o1","initial_balance":1000000000000000}`,
		`{"project_id":"p3","org_id":"o1","initial_balance":1000000000000001}`,
		`{"project_id":"p3","org_id":"o1","credit_limit":-1}`,
		`{"project_id":"p3","org_id":"o1","credit_limit":1000000000000001}`,
		`{"project_id":"p3","org_id":"o1","currency":"JP"}`, `{"project_id":"p3","org_id":"o1","currency":"J1Y"}`,
		`{"project_id":"p3","org_id":"o1","currency":"\u00dfss"}`,
		`{"project_id":"p3"}`, `{"org_id":"o1"}`, `{"project_id":"P3","org_id":"o1"}`,
		`{"project_id":"` + strings.Repeat("p", 64) + `","org_id":"o1"}`,
		`{"project_id":"p3","org_id":"o1","status":"active"}`,
		``, `null`, `[]`, `{`, `{}`,
	} {
		f.Add([]byte(s))
	}
	e := fuzzStack(f)
	taken := map[string]bool{fuzzProject: true, fuzzCredit: true}

	f.Fuzz(func(t *testing.T, body []byte) {
		const what = "POST /api/v1/wallets"
		before := e.state(t)
		a := e.do(t, "POST", "/wallets", body, "")
		if a.Err != nil {
			e.unchanged(t, what, before, a)
		}
		req, ok := fuzzRequest[creditservice.CreateWalletRequest](t, what, body, a)
		defer e.invariants(t, what, req.ProjectID)
		if !ok {
			return
		}
		cur := strings.ToUpper(req.Currency)
		if req.Currency == "" {
			cur = "JPY"
		}
		invalid := !fuzzValidID(req.ProjectID) || !fuzzValidID(req.OrgID) ||
			req.InitialBalance < 0 || req.InitialBalance > creditservice.MaxAmount || req.CreditLimit < 0 || req.CreditLimit > creditservice.MaxAmount ||
			len(cur) != 3 || strings.ContainsFunc(cur, func(r rune) bool { return r < 'A' || r > 'Z' })
		switch {
		case invalid:
			if !a.Is(apierr.CodeValidation) {
				t.Fatalf("%s: an invalid request answered %s, want VALIDATION_ERROR", what, a)
			}
			return
		case taken[req.ProjectID]:
			if !a.Is(apierr.CodeAlreadyExists) {
				t.Fatalf("%s: a second wallet for %s answered %s, want ALREADY_EXISTS", what, req.ProjectID, a)
			}
			return
		case a.Status != http.StatusCreated:
			t.Fatalf("%s: a valid new wallet answered %s, want 201", what, a)
		}
		taken[req.ProjectID] = true
		var w creditservice.Wallet
		testutil.StrictData(t, what, a.Data, &w)
		stored, _ := e.ledger(t, what, req.ProjectID)
		var n int64
		if req.InitialBalance > 0 {
			n = 1
		}
		status := creditservice.WalletActive
		if req.InitialBalance <= -req.CreditLimit {
			status = creditservice.WalletSuspended
		}
		if w.ProjectID != req.ProjectID || w.OrgID != req.OrgID || w.Balance != req.InitialBalance || w.Reserved != 0 ||
			w.Available != req.InitialBalance || w.CreditLimit != req.CreditLimit || w.Currency != cur || w.TransactionCount != n ||
			stored.Balance != w.Balance || stored.Currency != cur || w.Status != stored.Status || stored.Status != status {
			t.Fatalf("%s: created %s (stored %+v) for %s", what, a.Data, stored, body)
		}
		if got := e.do(t, "GET", "/wallets/"+w.ProjectID, nil, ""); got.Status != http.StatusOK {
			t.Fatalf("%s: created %s, reading it back answered %s", what, a.Data, got)
		}
	})
}

// FuzzQuotaUsage sends any body to POST /api/v1/quotas/fuzz-proj/usage
// (limits vcpus 100, memory_mib 65536, vms 10), then gives back what it took.
func FuzzQuotaUsage(f *testing.F) {
	for _, s := range []string{
		`{"resources":{"vcpus":4,"memory_mib":8192,"vms":1}}`,
		`{"resources":{"vcpus":100}}`, `{"resources":{"vcpus":101}}`, `{"resources":{"vcpus":-1}}`,
		`{"resources":{"vms":10,"vcpus":1}}`, `{"resources":{"vms":11,"vcpus":1}}`,
		`{"resources":{"disk_gb":1000000000000000}}`, `{"resources":{"disk_gb":1000000000000001}}`,
		`{"resources":{"disk_gb":-1000000000000000}}`, `{"resources":{"Bad":1}}`, `{"resources":{"":1}}`,
		`{"resources":{"` + strings.Repeat("r", 33) + `":1}}`, `{"resources":{"vcpus":1.5}}`, `{"resources":{"vcpus":"1"}}`,
		`{"resources":{}}`, `{"resources":null}`, `{"resources":[]}`, `{"limits":{"vcpus":1}}`,
		``, `null`, `{`, `{}`,
	} {
		f.Add([]byte(s))
	}
	e := fuzzStack(f)
	limits := map[string]int64{"vcpus": 100, "memory_mib": 65536, "vms": 10}

	quota := func(t *testing.T, what string) creditservice.Quota {
		t.Helper()
		var q creditservice.Quota
		testutil.StrictData(t, what, e.must(t, "GET", "/quotas/"+fuzzProject, nil, http.StatusOK), &q)
		for r, n := range q.Usage {
			if n <= 0 || (limits[r] > 0 && n > limits[r]) {
				t.Fatalf("%s: usage of %s is %d (limit %d)", what, r, n, limits[r])
			}
		}
		return q
	}

	f.Fuzz(func(t *testing.T, body []byte) {
		const what = "POST /api/v1/quotas/fuzz-proj/usage"
		q0 := quota(t, what)
		before := e.state(t)
		a := e.do(t, "POST", "/quotas/"+fuzzProject+"/usage", body, "")
		if a.Err != nil {
			e.unchanged(t, what, before, a)
		}
		req, ok := fuzzRequest[creditservice.QuotaRequest](t, what, body, a)
		if !ok {
			return
		}
		invalid := len(req.Resources) > 64
		exceeds, negative := false, false
		for r, n := range req.Resources {
			if r == "" || len(r) > 32 || strings.ContainsFunc(r, func(c rune) bool { return !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') }) ||
				n > creditservice.MaxAmount || n < -creditservice.MaxAmount {
				invalid = true
			}
			if l, ok := limits[r]; ok && n > 0 && q0.Usage[r]+n > l {
				exceeds = true
			}
			if q0.Usage[r]+n < 0 {
				negative = true
			}
		}
		switch {
		case invalid:
			if !a.Is(apierr.CodeValidation) {
				t.Fatalf("%s: an invalid request answered %s, want VALIDATION_ERROR", what, a)
			}
			return
		case exceeds:
			if !a.Is(apierr.CodeQuotaExceeded) {
				t.Fatalf("%s: a request past a limit (usage %v) answered %s, want QUOTA_EXCEEDED", what, q0.Usage, a)
			}
			return
		case negative:
			if !a.Is(apierr.CodeValidation) {
				t.Fatalf("%s: usage below zero (usage %v) answered %s, want VALIDATION_ERROR", what, q0.Usage, a)
			}
			return
		case a.Status != http.StatusOK:
			t.Fatalf("%s: a request that fits answered %s, want 200", what, a)
		}
		var q creditservice.Quota
		testutil.StrictData(t, what, a.Data, &q)
		want := map[string]int64{}
		for r, n := range q0.Usage {
			want[r] = n
		}
		back := map[string]int64{}
		for r, n := range req.Resources {
			if want[r] += n; want[r] == 0 {
				delete(want, r)
			}
			back[r] = -n
		}
		if q1 := quota(t, what); !fuzzSameUsage(q.Usage, want) || !fuzzSameUsage(q1.Usage, want) {
			t.Fatalf("%s: usage %v + %v answered %v, stored %v", what, q0.Usage, req.Resources, q.Usage, q1.Usage)
		}
		e.must(t, "POST", "/quotas/"+fuzzProject+"/usage", map[string]any{"resources": back}, http.StatusOK)
		if q2 := quota(t, what); !fuzzSameUsage(q2.Usage, q0.Usage) {
			t.Fatalf("%s: giving back %v left usage %v, want %v", what, req.Resources, q2.Usage, q0.Usage)
		}
	})
}

func fuzzSameUsage(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
