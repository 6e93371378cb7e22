package creditservice_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/platform"
	"github.com/photoncloud/photon/internal/testutil"
	"github.com/photoncloud/photon/services/creditservice"
)

// TestReservations covers the two phases: reserve, then commit or release.
func TestReservations(t *testing.T) {
	e := startCS(t, nil)

	t.Run("seed reserve and commit", func(t *testing.T) {
		const p = "proj-456"
		e.createWallet(t, p, 10000, 0)
		before := time.Now()
		r := ok[creditservice.Reservation](t, e.do(t, req{method: "POST", path: "/api/v1/reservations", body: `{
"project_id": "proj-456",
"amount": 2000,
"description": "VM creation reservation",
"resource_type": "vm",
"resource_id": "vm-004",
"ttl_seconds": 3600
}`}), http.StatusCreated)
		if r.ID == "" || r.ProjectID != p || r.Amount != 2000 || r.Status != "active" || r.ResourceType != "vm" || r.ResourceID != "vm-004" {
			t.Fatalf("reservation %+v", r)
		}
		if r.ExpiresAt.Before(before.Add(3600*time.Second-time.Second)) || r.ExpiresAt.After(time.Now().Add(3600*time.Second+time.Second)) {
			t.Fatalf("expires_at %s, want about now+1h", r.ExpiresAt)
		}
		wantMoney(t, e.wallet(t, p), 10000, 2000)
		if got := ok[creditservice.Reservation](t, e.do(t, req{method: "GET", path: "/api/v1/reservations/" + r.ID}), http.StatusOK); got.ID != r.ID || got.Status != "active" {
			t.Fatalf("get %+v", got)
		}

		c := ok[creditservice.CommitResult](t, e.do(t, req{method: "POST", path: "/api/v1/reservations/" + r.ID + "/commit", body: `{
"actual_amount": 1800,
"resource_id": "vm-004"
}`}), http.StatusOK)
		if c.Reservation.Status != "committed" || c.Reservation.ActualAmount == nil || *c.Reservation.ActualAmount != 1800 {
			t.Fatalf("committed %+v", c.Reservation)
		}
		if tx := c.Transaction; tx == nil || tx.Amount != -1800 || tx.Type != "charge" || tx.ReservationID != r.ID || tx.ResourceID != "vm-004" {
			t.Fatalf("commit transaction %+v", c.Transaction)
		}
		wantMoney(t, c.Wallet, 8200, 0)
		wantMoney(t, e.wallet(t, p), 8200, 0)
		txs := e.transactions(t, p)
		if len(txs) != 2 || txs[0].Amount != -1800 || txs[0].Type != "charge" {
			t.Fatalf("transactions %+v", txs)
		}

		// Ended: commit and release again are refused, naming the state.
		e.unchanged(t, "ending a committed reservation", func() {
			for _, verb := range []string{"commit", "release"} {
				a := e.do(t, req{method: "POST", path: "/api/v1/reservations/" + r.ID + "/" + verb, body: `{}`})
				d := fails(t, a, apierr.CodeFailedPrecondition)
				if d["status"] != "committed" || !strings.Contains(a.Err.Message, "committed") {
					t.Fatalf("%s: %s", verb, a.Raw)
				}
			}
		})
	})

	t.Run("commit defaults to the amount", func(t *testing.T) {
		const p = "proj-default"
		e.createWallet(t, p, 1000, 0)
		r := e.reserve(t, p, 300)
		c := ok[creditservice.CommitResult](t, e.do(t, req{method: "POST", path: "/api/v1/reservations/" + r.ID + "/commit"}), http.StatusOK)
		if *c.Reservation.ActualAmount != 300 || c.Transaction.Amount != -300 {
			t.Fatalf("commit %+v", c)
		}
		wantMoney(t, e.wallet(t, p), 700, 0)
	})

	t.Run("commit past the amount", func(t *testing.T) {
		const p = "proj-over"
		e.createWallet(t, p, 1000, 0)
		r := e.reserve(t, p, 300)
		e.unchanged(t, "bad commits", func() {
			d := fails(t, e.do(t, req{method: "POST", path: "/api/v1/reservations/" + r.ID + "/commit", body: `{"actual_amount":301}`}), apierr.CodeValidation)
			if d["field"] != "actual_amount" || d["max"] != float64(300) {
				t.Fatalf("details %v", d)
			}
			fails(t, e.do(t, req{method: "POST", path: "/api/v1/reservations/" + r.ID + "/commit", body: `{"actual_amount":-1}`}), apierr.CodeValidation)
			fails(t, e.do(t, req{method: "POST", path: "/api/v1/reservations/" + r.ID + "/commit", body: `{"actual_amount":"5"}`}), apierr.CodeValidation)
			fails(t, e.do(t, req{method: "POST", path: "/api/v1/reservations/" + r.ID + "/commit", body: `{"amount":5}`}), apierr.CodeValidation)
			fails(t, e.do(t, req{method: "POST", path: "/api/v1/reservations/rsv-nowhere/commit", body: `{}`}), apierr.CodeNotFound)
			fails(t, e.do(t, req{method: "POST", path: "/api/v1/reservations/rsv-nowhere/release", body: `{}`}), apierr.CodeNotFound)
		})
		c := ok[creditservice.CommitResult](t, e.do(t, req{method: "POST", path: "/api/v1/reservations/" + r.ID + "/commit", body: `{"actual_amount":0}`}), http.StatusOK)
		if c.Transaction != nil {
			t.Fatalf("commit of 0 recorded %+v", c.Transaction)
		}
		wantMoney(t, e.wallet(t, p), 1000, 0)
	})

	t.Run("release, list, insufficient, bad inputs", func(t *testing.T) {
		const p = "proj-release"
		e.createWallet(t, p, 1000, 0)
		a, b := e.reserve(t, p, 400), e.reserve(t, p, 500)
		wantMoney(t, e.wallet(t, p), 1000, 900)

		e.unchanged(t, "an insufficient reservation", func() {
			d := fails(t, e.do(t, req{method: "POST", path: "/api/v1/reservations", body: `{"project_id":"` + p + `","amount":101}`}), apierr.CodeInsufficientCredit)
			if d["available"] != float64(100) || d["requested"] != float64(101) || d["project_id"] != p {
				t.Fatalf("details %v", d)
			}
		})
		rel := ok[creditservice.Reservation](t, e.do(t, req{method: "POST", path: "/api/v1/reservations/" + a.ID + "/release", body: `{
"reason": "VM creation failed"
}`}), http.StatusOK)
		if rel.Status != "released" || rel.Reason != "VM creation failed" || rel.EndedAt == nil {
			t.Fatalf("released %+v", rel)
		}
		wantMoney(t, e.wallet(t, p), 1000, 500)
		if got := ok[creditservice.Reservation](t, e.do(t, req{method: "GET", path: "/api/v1/reservations/" + a.ID}), http.StatusOK); got.Status != "released" || got.Reason != "VM creation failed" {
			t.Fatalf("get %+v", got)
		}
		if n := len(e.transactions(t, p)); n != 1 {
			t.Fatalf("a release recorded a transaction: %d", n)
		}
		e.unchanged(t, "commit of a released reservation", func() {
			a := e.do(t, req{method: "POST", path: "/api/v1/reservations/" + a.ID + "/commit", body: `{}`})
			if d := fails(t, a, apierr.CodeFailedPrecondition); d["status"] != "released" || !strings.Contains(a.Err.Message, "released") {
				t.Fatalf("%s", a.Raw)
			}
		})

		list := func(q string) []creditservice.Reservation {
			return ok[creditservice.ReservationList](t, e.do(t, req{method: "GET", path: "/api/v1/reservations?project_id=" + p + q}), http.StatusOK).Reservations
		}
		if all := list(""); len(all) != 2 {
			t.Fatalf("list: %+v", all)
		}
		if act := list("&status=active"); len(act) != 1 || act[0].ID != b.ID {
			t.Fatalf("active: %+v", act)
		}
		if rl := list("&status=released"); len(rl) != 1 || rl[0].ID != a.ID {
			t.Fatalf("released: %+v", rl)
		}
		if c := list("&status=committed"); len(c) != 0 {
			t.Fatalf("committed: %+v", c)
		}
		fails(t, e.do(t, req{method: "GET", path: "/api/v1/reservations?project_id=" + p + "&status=gone"}), apierr.CodeValidation)
		fails(t, e.do(t, req{method: "GET", path: "/api/v1/reservations"}), apierr.CodeValidation)
		fails(t, e.do(t, req{method: "GET", path: "/api/v1/reservations/rsv-nowhere"}), apierr.CodeNotFound)

		cases := []struct {
			name, body string
			code       apierr.Code
			field      string
		}{
			{"ttl 0", `{"project_id":"` + p + `","amount":1,"ttl_seconds":0}`, apierr.CodeValidation, "ttl_seconds"},
			{"ttl negative", `{"project_id":"` + p + `","amount":1,"ttl_seconds":-5}`, apierr.CodeValidation, "ttl_seconds"},
			{"ttl too big", `{"project_id":"` + p + `","amount":1,"ttl_seconds":604801}`, apierr.CodeValidation, "ttl_seconds"},
			{"ttl float", `{"project_id":"` + p + `","amount":1,"ttl_seconds":1.5}`, apierr.CodeValidation, "ttl_seconds"},
			{"amount 0", `{"project_id":"` + p + `","amount":0}`, apierr.CodeValidation, "amount"},
			{"amount negative", `{"project_id":"` + p + `","amount":-1}`, apierr.CodeValidation, "amount"},
			{"amount huge", `{"project_id":"` + p + `","amount":1000000000000001}`, apierr.CodeValidation, "amount"},
			{"amount string", `{"project_id":"` + p + `","amount":"1"}`, apierr.CodeValidation, "amount"},
			{"unknown field", `{"project_id":"` + p + `","amount":1,"priority":9}`, apierr.CodeValidation, "priority"},
			{"missing project", `{"amount":1}`, apierr.CodeValidation, "project_id"},
			{"bad project", `{"project_id":"P r","amount":1}`, apierr.CodeValidation, "project_id"},
			{"unknown project", `{"project_id":"proj-nowhere","amount":1}`, apierr.CodeNotFound, ""},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				e.unchanged(t, c.name, func() {
					d := fails(t, e.do(t, req{method: "POST", path: "/api/v1/reservations", body: c.body}), c.code)
					if c.field != "" && d["field"] != c.field {
						t.Fatalf("details.field = %v, want %s", d["field"], c.field)
					}
				})
			})
		}
		wantMoney(t, e.wallet(t, p), 1000, 500)
	})
}

// TestReservationExpiry checks a reservation past its TTL: expired at once
// to readers, its amount back, and stored as expired once the sweeper ran.
func TestReservationExpiry(t *testing.T) {
	e := startCS(t, func(c *platform.Config) { c.CreditService.SweepInterval = 100 * time.Millisecond })
	const p = "proj-expiry"
	e.createWallet(t, p, 1000, 0)
	r := ok[creditservice.Reservation](t, e.do(t, req{method: "POST", path: "/api/v1/reservations",
		body: `{"project_id":"` + p + `","amount":600,"ttl_seconds":1}`}), http.StatusCreated)
	wantMoney(t, e.wallet(t, p), 1000, 600)
	time.Sleep(time.Until(r.ExpiresAt) + 50*time.Millisecond)

	// Reads never show it active, whether or not the sweeper came by.
	got := ok[creditservice.Reservation](t, e.do(t, req{method: "GET", path: "/api/v1/reservations/" + r.ID}), http.StatusOK)
	if got.Status != "expired" {
		t.Fatalf("status %q after its TTL, want expired", got.Status)
	}
	wantMoney(t, e.wallet(t, p), 1000, 0)

	key := csPrefix + "reservations/" + p + "/" + r.ID
	deadline := time.Now().Add(10 * time.Second)
	for {
		stored, found := getJSON[creditservice.Reservation](t, e, key)
		if !found {
			t.Fatalf("%s is gone", key)
		}
		if stored.Status == "expired" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stored reservation is still %q 10 s after its TTL", stored.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
	rec, _ := getJSON[struct {
		Active map[string]json.RawMessage `json:"active"`
	}](t, e, csPrefix+"wallets/"+p)
	if _, found := rec.Active[r.ID]; found {
		t.Fatal("an expired reservation is still among the wallet's active ones")
	}
	w, _ := getJSON[creditservice.Wallet](t, e, csPrefix+"wallets/"+p)
	if w.Reserved != 0 || w.Balance != 1000 {
		t.Fatalf("stored wallet after the sweep: %+v", w)
	}
	checkInvariants(t, e, p)

	e.unchanged(t, "ending an expired reservation", func() {
		for _, verb := range []string{"commit", "release"} {
			a := e.do(t, req{method: "POST", path: "/api/v1/reservations/" + r.ID + "/" + verb, body: `{}`})
			if d := fails(t, a, apierr.CodeFailedPrecondition); d["status"] != "expired" || !strings.Contains(a.Err.Message, "expired") {
				t.Fatalf("%s: %s", verb, a.Raw)
			}
		}
	})
	if l := ok[creditservice.ReservationList](t, e.do(t, req{method: "GET", path: "/api/v1/reservations?project_id=" + p + "&status=expired"}), http.StatusOK); len(l.Reservations) != 1 {
		t.Fatalf("expired list: %+v", l)
	}
}

// TestSuspension checks that credit running out suspends a wallet and
// money reactivates it, but not a wallet an admin suspended.
func TestSuspension(t *testing.T) {
	e := startCS(t, nil)
	reserve := func(p string, amount int64) testutil.Answer {
		return e.do(t, req{method: "POST", path: "/api/v1/reservations", body: map[string]any{"project_id": p, "amount": amount}})
	}
	topup := func(p string, amount int64) creditservice.Wallet {
		return ok[creditservice.MoneyMove](t, e.do(t, req{method: "POST", path: "/api/v1/wallets/" + p + "/topup", body: map[string]any{"amount": amount}}), http.StatusOK).Wallet
	}

	t.Run("a charge to zero", func(t *testing.T) {
		const p = "proj-susp-charge"
		e.createWallet(t, p, 500, 0)
		mv := ok[creditservice.MoneyMove](t, e.do(t, req{method: "POST", path: "/api/v1/wallets/" + p + "/charge", body: `{"amount":500}`}), http.StatusOK)
		if mv.Wallet.Status != "suspended" || mv.Wallet.Suspension != "credit_exhausted" {
			t.Fatalf("wallet at 0: %+v", mv.Wallet)
		}
		e.unchanged(t, "a reservation on a suspended wallet", func() {
			d := fails(t, reserve(p, 1), apierr.CodeInsufficientCredit)
			if d["status"] != "suspended" {
				t.Fatalf("details %v", d)
			}
		})
		if w := topup(p, 100); w.Status != "active" || w.Suspension != "" {
			t.Fatalf("after a topup: %+v", w)
		}
		ok[creditservice.Reservation](t, reserve(p, 100), http.StatusCreated)
	})

	t.Run("a commit to zero", func(t *testing.T) {
		const p = "proj-susp-commit"
		e.createWallet(t, p, 500, 0)
		r := e.reserve(t, p, 500)
		c := ok[creditservice.CommitResult](t, e.do(t, req{method: "POST", path: "/api/v1/reservations/" + r.ID + "/commit", body: `{}`}), http.StatusOK)
		if c.Wallet.Status != "suspended" {
			t.Fatalf("wallet at 0 after a commit: %+v", c.Wallet)
		}
		if w := e.wallet(t, p); w.Status != "suspended" || w.Balance != 0 {
			t.Fatalf("wallet %+v", w)
		}
		fails(t, reserve(p, 1), apierr.CodeInsufficientCredit)
		if w := topup(p, 1); w.Status != "active" {
			t.Fatalf("after a topup: %+v", w)
		}
	})

	t.Run("an admin's suspension", func(t *testing.T) {
		const p = "proj-susp-admin"
		e.createWallet(t, p, 500, 0)
		ok[creditservice.Wallet](t, e.do(t, req{method: "PATCH", path: "/api/v1/wallets/" + p, body: `{"status":"suspended"}`}), http.StatusOK)
		if w := topup(p, 100); w.Status != "suspended" || w.Suspension != "admin" {
			t.Fatalf("a topup reactivated an admin-suspended wallet: %+v", w)
		}
		fails(t, reserve(p, 1), apierr.CodeInsufficientCredit)
	})
}

// TestIdempotency checks Idempotency-Key on every POST that moves money.
func TestIdempotency(t *testing.T) {
	e := startCS(t, nil)
	const p = "proj-idem"
	first := e.do(t, req{method: "POST", path: "/api/v1/wallets", idem: "create-1",
		body: `{"project_id":"proj-idem","org_id":"org-123","initial_balance":10000}`})
	ok[creditservice.Wallet](t, first, http.StatusCreated)
	again := e.do(t, req{method: "POST", path: "/api/v1/wallets", idem: "create-1",
		body: `{ "project_id": "proj-idem", "org_id": "org-123", "initial_balance": 10000 }`})
	if again.Status != http.StatusCreated || string(again.Data) != string(first.Data) {
		t.Fatalf("replayed create: %s, first %s", again, first)
	}
	fails(t, e.do(t, req{method: "POST", path: "/api/v1/wallets", idem: "create-1",
		body: `{"project_id":"proj-idem","org_id":"org-123","initial_balance":1}`}), apierr.CodeConflict)

	r1 := e.reserve(t, p, 100)
	r2 := e.reserve(t, p, 100)
	r3 := e.reserve(t, p, 100)
	calls := []struct {
		name, path, body, other string
		balance, reserved       int64 // after the first call
		txns                    int
	}{
		{"topup", "/api/v1/wallets/" + p + "/topup", `{"amount":500}`, `{"amount":501}`, 10500, 300, 2},
		{"charge", "/api/v1/wallets/" + p + "/charge", `{"amount":200}`, `{"amount":201}`, 10300, 300, 3},
		{"reserve", "/api/v1/reservations", `{"project_id":"proj-idem","amount":1000}`, `{"project_id":"proj-idem","amount":999}`, 10300, 1300, 3},
		{"commit", "/api/v1/reservations/" + r1.ID + "/commit", `{"actual_amount":60}`, `{"actual_amount":61}`, 10240, 1200, 4},
		{"release", "/api/v1/reservations/" + r2.ID + "/release", `{"reason":"a"}`, `{"reason":"b"}`, 10240, 1100, 4},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			key := "key-" + c.name
			a := e.do(t, req{method: "POST", path: c.path, body: c.body, idem: key})
			if a.Status/100 != 2 {
				t.Fatalf("first call: %s", a)
			}
			check := func() {
				t.Helper()
				w := e.wallet(t, p)
				wantMoney(t, w, c.balance, c.reserved)
				if n := len(e.transactions(t, p)); n != c.txns {
					t.Fatalf("%d transactions, want %d", n, c.txns)
				}
			}
			check()
			e.unchanged(t, "a replay", func() {
				b := e.do(t, req{method: "POST", path: c.path, body: c.body, idem: key})
				if b.Status != a.Status || string(b.Data) != string(a.Data) {
					t.Fatalf("replay answered %s, first %s", b, a)
				}
				d := fails(t, e.do(t, req{method: "POST", path: c.path, body: c.other, idem: key}), apierr.CodeConflict)
				if d["idempotency_key"] != key {
					t.Fatalf("details %v", d)
				}
			})
			check()
		})
	}

	t.Run("bad keys", func(t *testing.T) {
		e.unchanged(t, "bad Idempotency-Keys", func() {
			for _, k := range []string{strings.Repeat("k", 256), "has space", "tab\there"} {
				fails(t, e.do(t, req{method: "POST", path: "/api/v1/wallets/" + p + "/topup", body: `{"amount":1}`, idem: k}), apierr.CodeValidation)
			}
		})
	})

	t.Run("concurrent duplicates", func(t *testing.T) {
		cases := []struct{ name, path, body string }{
			{"topup", "/api/v1/wallets/" + p + "/topup", `{"amount":7}`},
			{"reserve", "/api/v1/reservations", `{"project_id":"proj-idem","amount":11}`},
			{"commit", "/api/v1/reservations/" + r3.ID + "/commit", `{"actual_amount":13}`},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				before := e.wallet(t, p)
				txBefore := len(e.transactions(t, p))
				key := fmt.Sprint("race-", c.name, "-", time.Now().UnixNano())
				var wg sync.WaitGroup
				statuses := make([]int, 20)
				bodies := make([]string, 20)
				errs := make([]error, 20)
				for i := range 20 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
						defer cancel()
						var raw []byte
						statuses[i], raw, errs[i] = e.send(ctx, req{method: "POST", path: c.path, body: c.body, idem: key})
						var env struct {
							Data json.RawMessage `json:"data"`
						}
						_ = json.Unmarshal(raw, &env)
						bodies[i] = string(env.Data)
					}()
				}
				wg.Wait()
				for i := range 20 {
					if errs[i] != nil {
						t.Fatalf("request %d: %v", i, errs[i])
					}
					if statuses[i] != statuses[0] || statuses[i]/100 != 2 || bodies[i] != bodies[0] {
						t.Fatalf("request %d answered %d %s, request 0 %d %s", i, statuses[i], bodies[i], statuses[0], bodies[0])
					}
				}
				after := e.wallet(t, p)
				txAfter := len(e.transactions(t, p))
				switch c.name {
				case "topup":
					wantMoney(t, after, before.Balance+7, before.Reserved)
					if txAfter != txBefore+1 {
						t.Fatalf("%d transactions, want %d", txAfter, txBefore+1)
					}
				case "reserve":
					wantMoney(t, after, before.Balance, before.Reserved+11)
					if l := ok[creditservice.ReservationList](t, e.do(t, req{method: "GET", path: "/api/v1/reservations?project_id=" + p + "&status=active"}), http.StatusOK); countAmount(l.Reservations, 11) != 1 {
						t.Fatalf("reservations of 11: %+v", l.Reservations)
					}
				case "commit":
					wantMoney(t, after, before.Balance-13, before.Reserved-100)
					if txAfter != txBefore+1 {
						t.Fatalf("%d transactions, want %d", txAfter, txBefore+1)
					}
				}
				checkInvariants(t, e, p)
			})
		}
	})
	checkInvariants(t, e, p)
}

func countAmount(rs []creditservice.Reservation, amount int64) int {
	n := 0
	for _, r := range rs {
		if r.Amount == amount {
			n++
		}
	}
	return n
}

// TestExpiryBeforeSweep checks that a reservation past its TTL is expired
// to every reader and to every change without the sweeper: here it never
// runs within the test.
func TestExpiryBeforeSweep(t *testing.T) {
	e := startCS(t, func(c *platform.Config) { c.CreditService.SweepInterval = time.Hour })
	const p = "proj-nosweep"
	e.createWallet(t, p, 1000, 0)
	r := ok[creditservice.Reservation](t, e.do(t, req{method: "POST", path: "/api/v1/reservations",
		body: `{"project_id":"` + p + `","amount":600,"ttl_seconds":1}`}), http.StatusCreated)
	time.Sleep(time.Until(r.ExpiresAt) + 50*time.Millisecond)

	key := csPrefix + "reservations/" + p + "/" + r.ID
	e.unchanged(t, "reads and refused changes of an expired reservation", func() {
		if got := ok[creditservice.Reservation](t, e.do(t, req{method: "GET", path: "/api/v1/reservations/" + r.ID}), http.StatusOK); got.Status != "expired" {
			t.Fatalf("status %q after its TTL, want expired", got.Status)
		}
		if l := ok[creditservice.ReservationList](t, e.do(t, req{method: "GET", path: "/api/v1/reservations?project_id=" + p + "&status=active"}), http.StatusOK); len(l.Reservations) != 0 {
			t.Fatalf("active list shows %+v", l.Reservations)
		}
		wantMoney(t, e.wallet(t, p), 1000, 0)
		a := e.do(t, req{method: "POST", path: "/api/v1/reservations/" + r.ID + "/commit", body: `{}`})
		if d := fails(t, a, apierr.CodeFailedPrecondition); d["status"] != "expired" || !strings.Contains(a.Err.Message, "expired") {
			t.Fatalf("commit: %s", a.Raw)
		}
	})
	if stored, _ := getJSON[creditservice.Reservation](t, e, key); stored.Status != "active" {
		t.Fatalf("stored status %q: something swept", stored.Status)
	}
	// The next change of the wallet writes the expiry with it; the freed
	// amount is available to it.
	ok[creditservice.MoneyMove](t, e.do(t, req{method: "POST", path: "/api/v1/wallets/" + p + "/charge", body: `{"amount":1000}`}), http.StatusOK)
	if stored, _ := getJSON[creditservice.Reservation](t, e, key); stored.Status != "expired" {
		t.Fatalf("stored status %q after a change of the wallet, want expired", stored.Status)
	}
	checkInvariants(t, e, p)
}
