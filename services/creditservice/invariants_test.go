package creditservice_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/photoncloud/photon/internal/platform"
	"github.com/photoncloud/photon/internal/testutil"
	"github.com/photoncloud/photon/services/creditservice"
)

// checkInvariants reads project's ledger from ChainFire directly, at one
// revision, and fails unless balance = Σ transactions, reserved = Σ the
// active reservations the wallet's record holds = Σ stored active
// reservations, and available ≥ −credit_limit.
func checkInvariants(t *testing.T, e *csEnv, project string) {
	t.Helper()
	ctx := testutil.Context(t)
	resp, err := e.etcd.Txn(ctx).Then(
		clientv3.OpGet(csPrefix+"wallets/"+project),
		clientv3.OpGet(csPrefix+"transactions/"+project+"/", clientv3.WithPrefix()),
		clientv3.OpGet(csPrefix+"reservations/"+project+"/", clientv3.WithPrefix()),
	).Commit()
	if err != nil {
		t.Fatalf("invariants of %s: %v", project, err)
	}
	wkv := resp.Responses[0].GetResponseRange().Kvs
	if len(wkv) != 1 {
		t.Fatalf("invariants of %s: no stored wallet", project)
	}
	var w creditservice.Wallet
	mustJSON(t, wkv[0].Value, &w)

	var sumTxns int64
	txns := resp.Responses[1].GetResponseRange().Kvs
	for _, kv := range txns {
		var tx creditservice.Transaction
		mustJSON(t, kv.Value, &tx)
		sumTxns += tx.Amount
	}
	if w.Balance != sumTxns {
		t.Errorf("%s: balance %d, transactions sum to %d", project, w.Balance, sumTxns)
	}
	if w.TransactionCount != int64(len(txns)) {
		t.Errorf("%s: transaction_count %d, %d stored", project, w.TransactionCount, len(txns))
	}

	var sumIndex int64
	indexed := map[string]int64{}
	var record struct {
		Active map[string]struct {
			Amount int64 `json:"amount"`
		} `json:"active"`
	}
	mustJSON(t, wkv[0].Value, &record)
	for id, a := range record.Active {
		sumIndex += a.Amount
		indexed[id] = a.Amount
	}
	var sumActive int64
	nActive := 0
	for _, kv := range resp.Responses[2].GetResponseRange().Kvs {
		var r creditservice.Reservation
		mustJSON(t, kv.Value, &r)
		if r.Status != "active" {
			if _, in := indexed[r.ID]; in {
				t.Errorf("%s: %s reservation %s is in the active index", project, r.Status, r.ID)
			}
			continue
		}
		nActive++
		sumActive += r.Amount
		if indexed[r.ID] != r.Amount {
			t.Errorf("%s: active reservation %s of %d is indexed with %d", project, r.ID, r.Amount, indexed[r.ID])
		}
	}
	if nActive != len(indexed) {
		t.Errorf("%s: %d stored active reservations, %d in the index", project, nActive, len(indexed))
	}
	if w.Reserved != sumIndex || w.Reserved != sumActive {
		t.Errorf("%s: reserved %d, active index sums to %d, active reservations to %d", project, w.Reserved, sumIndex, sumActive)
	}
	if w.Available != w.Balance-w.Reserved {
		t.Errorf("%s: available %d ≠ balance %d − reserved %d", project, w.Available, w.Balance, w.Reserved)
	}
	if w.Available < -w.CreditLimit {
		t.Errorf("%s: available %d below −credit_limit %d", project, w.Available, w.CreditLimit)
	}
	if t.Failed() {
		t.FailNow()
	}
}

func mustJSON(t *testing.T, raw []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("stored value: %v: %s", err, raw)
	}
}

// patientRequests lets a request wait a minute for its turn: one project's
// changes queue on one lock, and 200 of them behind each other under -race
// on a 2-core machine outlast the default 5 s — which is about speed, not
// what these tests check.
func patientRequests(c *platform.Config) { c.CreditService.RequestTimeout = time.Minute }

// TestConcurrentReservations is the rule: 200 concurrent
// reservations of 100 against 10,000 → exactly 100 succeed.
func TestConcurrentReservations(t *testing.T) {
	e := startCS(t, patientRequests)
	const p = "proj-race"
	e.createWallet(t, p, 10000, 0)
	var created, refused, other atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var odd []string
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			status, raw, err := e.send(ctx, req{method: "POST", path: "/api/v1/reservations", body: `{"project_id":"proj-race","amount":100}`})
			switch {
			case err == nil && status == http.StatusCreated:
				created.Add(1)
			case err == nil && status == http.StatusPaymentRequired && strings.Contains(string(raw), `"INSUFFICIENT_CREDIT"`):
				refused.Add(1)
			default:
				other.Add(1)
				mu.Lock()
				odd = append(odd, fmt.Sprintf("%d %v %s", status, err, raw))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if created.Load() != 100 || refused.Load() != 100 || other.Load() != 0 {
		t.Fatalf("201: %d, 402: %d, other: %d %v", created.Load(), refused.Load(), other.Load(), odd)
	}
	wantMoney(t, e.wallet(t, p), 10000, 10000)
	checkInvariants(t, e, p)
}

// TestMixedLoad runs reserve, commit, release, charge and topup from 16
// goroutines on two projects for a while and checks the invariants after.
func TestMixedLoad(t *testing.T) {
	e := startCS(t, patientRequests)
	projects := []string{"proj-mix-a", "proj-mix-b"}
	for _, p := range projects {
		e.createWallet(t, p, 2000, 0)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var ok2xx, failed atomic.Int64
	var mu sync.Mutex
	var bad []string
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 42))
			var mine []string // this goroutine's reservations, still active as far as it knows
			for ctx.Err() == nil {
				p := projects[rng.IntN(len(projects))]
				var r req
				switch op := rng.IntN(10); {
				case op < 4:
					r = req{method: "POST", path: "/api/v1/reservations", body: map[string]any{"project_id": p, "amount": 1 + rng.IntN(500), "ttl_seconds": 60}}
				case op < 6 && len(mine) > 0:
					id := mine[0]
					mine = mine[1:]
					r = req{method: "POST", path: "/api/v1/reservations/" + id + "/commit", body: map[string]any{"actual_amount": rng.IntN(2)}}
				case op < 8 && len(mine) > 0:
					id := mine[0]
					mine = mine[1:]
					r = req{method: "POST", path: "/api/v1/reservations/" + id + "/release", body: `{"reason":"load"}`}
				case op < 9:
					r = req{method: "POST", path: "/api/v1/wallets/" + p + "/charge", body: map[string]any{"amount": 1 + rng.IntN(1000)}}
				default:
					r = req{method: "POST", path: "/api/v1/wallets/" + p + "/topup", body: map[string]any{"amount": 1 + rng.IntN(1000)}, idem: fmt.Sprint("mix-", g, "-", rng.Uint64())}
				}
				rctx, rcancel := context.WithTimeout(context.Background(), 30*time.Second)
				status, raw, err := e.send(rctx, r)
				rcancel()
				switch {
				case err == nil && status/100 == 2:
					ok2xx.Add(1)
					if r.path == "/api/v1/reservations" {
						var env struct {
							Data creditservice.Reservation `json:"data"`
						}
						if json.Unmarshal(raw, &env) == nil {
							mine = append(mine, env.Data.ID)
						}
					}
				case err == nil && status == http.StatusPaymentRequired:
					failed.Add(1)
				default:
					mu.Lock()
					bad = append(bad, fmt.Sprintf("%s %s → %d %v %s", r.method, r.path, status, err, raw))
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if len(bad) > 0 {
		t.Fatalf("%d unexpected answers, e.g. %v", len(bad), bad[0])
	}
	if ok2xx.Load() == 0 {
		t.Fatal("no request succeeded")
	}
	t.Logf("%d succeeded, %d refused for credit", ok2xx.Load(), failed.Load())
	for _, p := range projects {
		checkInvariants(t, e, p)
	}
}
