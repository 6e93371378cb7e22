package creditservice_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/testutil"
	"github.com/photoncloud/photon/services/creditservice"
)

// TestWallets covers a wallet's life through the REST API, the seed's
// bodies first.
func TestWallets(t *testing.T) {
	e := startCS(t, nil)

	t.Run("seed create, get, topup", func(t *testing.T) {
		w := ok[creditservice.Wallet](t, e.do(t, req{method: "POST", path: "/api/v1/wallets", body: `{
"project_id": "proj-456",
"org_id": "org-123",
"initial_balance": 10000
}`}), http.StatusCreated)
		if w.ProjectID != "proj-456" || w.OrgID != "org-123" || w.Currency != "JPY" || w.Status != "active" {
			t.Fatalf("created wallet %+v", w)
		}
		wantMoney(t, w, 10000, 0)

		e.unchanged(t, "a duplicate create", func() {
			fails(t, e.do(t, req{method: "POST", path: "/api/v1/wallets",
				body: `{"project_id": "proj-456", "org_id": "org-123", "initial_balance": 5}`}), apierr.CodeAlreadyExists)
		})

		got := e.wallet(t, "proj-456")
		wantMoney(t, got, 10000, 0)
		if got.Currency != "JPY" || got.Status != "active" {
			t.Fatalf("got wallet %+v", got)
		}

		mv := ok[creditservice.MoneyMove](t, e.do(t, req{method: "POST", path: "/api/v1/wallets/proj-456/topup", body: `{
"amount": 5000,
"description": "Monthly credit purchase"
}`}), http.StatusOK)
		wantMoney(t, mv.Wallet, 15000, 0)
		if tx := mv.Transaction; tx.Amount != 5000 || tx.Type != "deposit" || tx.Description != "Monthly credit purchase" || tx.BalanceAfter != 15000 {
			t.Fatalf("topup transaction %+v", tx)
		}
		txs := e.transactions(t, "proj-456")
		if len(txs) != 2 || txs[0].ID != mv.Transaction.ID || txs[0].Type != "deposit" || txs[1].Amount != 10000 {
			t.Fatalf("transactions %+v", txs)
		}
		wantMoney(t, e.wallet(t, "proj-456"), 15000, 0)
	})

	t.Run("transactions paging and filters", func(t *testing.T) {
		const p = "proj-paging"
		e.createWallet(t, p, 0, 0)
		var made []creditservice.Transaction // oldest first
		for i := range 25 {
			path := "/api/v1/wallets/" + p + "/topup"
			body := map[string]any{"amount": 100 + i, "description": fmt.Sprint("t", i)}
			if i%5 == 4 {
				path = "/api/v1/wallets/" + p + "/charge"
				body = map[string]any{"amount": 1, "description": fmt.Sprint("c", i)}
			}
			made = append(made, ok[creditservice.MoneyMove](t, e.do(t, req{method: "POST", path: path, body: body}), http.StatusOK).Transaction)
			if i == 11 {
				// Apart in time from the ones after, for since/until.
				time.Sleep(20 * time.Millisecond)
			}
		}
		// Pages of 10, newest first, no gaps or duplicates.
		var seen []creditservice.Transaction
		token := ""
		for pages := 0; ; pages++ {
			if pages > 5 {
				t.Fatal("paging does not end")
			}
			q := url.Values{"limit": {"10"}}
			if token != "" {
				q.Set("page_token", token)
			}
			l := ok[creditservice.TransactionList](t, e.do(t, req{method: "GET", path: "/api/v1/wallets/" + p + "/transactions?" + q.Encode()}), http.StatusOK)
			if len(l.Transactions) > 10 {
				t.Fatalf("page of %d with limit 10", len(l.Transactions))
			}
			seen = append(seen, l.Transactions...)
			if token = l.NextPageToken; token == "" {
				break
			}
		}
		if len(seen) != len(made) {
			t.Fatalf("paged %d transactions, made %d", len(seen), len(made))
		}
		for i, tx := range seen {
			if want := made[len(made)-1-i]; tx.ID != want.ID {
				t.Fatalf("position %d: %s (%s), want %s (%s)", i, tx.ID, tx.Description, want.ID, want.Description)
			}
		}

		charges := ok[creditservice.TransactionList](t, e.do(t, req{method: "GET", path: "/api/v1/wallets/" + p + "/transactions?type=charge&limit=3"}), http.StatusOK)
		if len(charges.Transactions) != 3 || charges.NextPageToken == "" {
			t.Fatalf("charges page: %+v", charges)
		}
		rest := ok[creditservice.TransactionList](t, e.do(t, req{method: "GET", path: "/api/v1/wallets/" + p + "/transactions?type=charge&limit=3&page_token=" + url.QueryEscape(charges.NextPageToken)}), http.StatusOK)
		all := append(charges.Transactions, rest.Transactions...)
		if len(all) != 5 {
			t.Fatalf("%d charges, want 5: %+v", len(all), all)
		}
		for i, tx := range all {
			if tx.Type != "charge" || tx.ID != made[24-5*i].ID {
				t.Fatalf("charge %d: %+v", i, tx)
			}
		}

		since := made[12].Timestamp.Format(time.RFC3339Nano)
		late := ok[creditservice.TransactionList](t, e.do(t, req{method: "GET", path: "/api/v1/wallets/" + p + "/transactions?since=" + url.QueryEscape(since)}), http.StatusOK)
		if len(late.Transactions) != 13 || late.Transactions[12].ID != made[12].ID {
			t.Fatalf("since %s: %d transactions", since, len(late.Transactions))
		}
		early := ok[creditservice.TransactionList](t, e.do(t, req{method: "GET", path: "/api/v1/wallets/" + p + "/transactions?until=" + url.QueryEscape(since)}), http.StatusOK)
		if len(early.Transactions) != 12 || early.Transactions[0].ID != made[11].ID {
			t.Fatalf("until %s: %d transactions", since, len(early.Transactions))
		}

		for _, q := range []string{"type=refund", "since=yesterday", "limit=0", "limit=x", "bogus=1"} {
			fails(t, e.do(t, req{method: "GET", path: "/api/v1/wallets/" + p + "/transactions?" + q}), apierr.CodeValidation)
		}
	})

	t.Run("bad inputs change nothing", func(t *testing.T) {
		const p = "proj-bad"
		e.createWallet(t, p, 1000, 0)
		cases := []struct {
			name, path, body string
			code             apierr.Code
			field            string
		}{
			{"create: amount missing project", "/api/v1/wallets", `{"org_id":"org-123","initial_balance":1}`, apierr.CodeValidation, "project_id"},
			{"create: bad project chars", "/api/v1/wallets", `{"project_id":"Proj_Bad!","org_id":"org-123"}`, apierr.CodeValidation, "project_id"},
			{"create: negative balance", "/api/v1/wallets", `{"project_id":"proj-x","org_id":"org-123","initial_balance":-1}`, apierr.CodeValidation, "initial_balance"},
			{"create: huge balance", "/api/v1/wallets", `{"project_id":"proj-x","org_id":"org-123","initial_balance":1000000000000001}`, apierr.CodeValidation, "initial_balance"},
			{"create: float balance", "/api/v1/wallets", `{"project_id":"proj-x","org_id":"org-123","initial_balance":1.5}`, apierr.CodeValidation, "initial_balance"},
			{"create: unknown field", "/api/v1/wallets", `{"project_id":"proj-x","org_id":"org-123","bonus":1}`, apierr.CodeValidation, "bonus"},
			{"create: bad currency", "/api/v1/wallets", `{"project_id":"proj-x","org_id":"org-123","currency":"yen!"}`, apierr.CodeValidation, "currency"},
			{"create: bad JSON", "/api/v1/wallets", `{"project_id":`, apierr.CodeInvalidJSON, ""},
			{"topup: zero", "/api/v1/wallets/" + p + "/topup", `{"amount":0}`, apierr.CodeValidation, "amount"},
			{"topup: negative", "/api/v1/wallets/" + p + "/topup", `{"amount":-5}`, apierr.CodeValidation, "amount"},
			{"topup: 10^15+1", "/api/v1/wallets/" + p + "/topup", `{"amount":1000000000000001}`, apierr.CodeValidation, "amount"},
			{"topup: past int64", "/api/v1/wallets/" + p + "/topup", `{"amount":99999999999999999999}`, apierr.CodeValidation, "amount"},
			{"topup: float", "/api/v1/wallets/" + p + "/topup", `{"amount":10.5}`, apierr.CodeValidation, "amount"},
			{"topup: string", "/api/v1/wallets/" + p + "/topup", `{"amount":"100"}`, apierr.CodeValidation, "amount"},
			{"topup: missing amount", "/api/v1/wallets/" + p + "/topup", `{"description":"x"}`, apierr.CodeValidation, "amount"},
			{"topup: unknown field", "/api/v1/wallets/" + p + "/topup", `{"amount":1,"currency":"USD"}`, apierr.CodeValidation, "currency"},
			{"topup: bad project chars", "/api/v1/wallets/PROJ%21/topup", `{"amount":1}`, apierr.CodeValidation, "project_id"},
			{"topup: unknown project", "/api/v1/wallets/proj-nowhere/topup", `{"amount":1}`, apierr.CodeNotFound, ""},
			{"topup: overflow past 10^15", "/api/v1/wallets/" + p + "/topup", `{"amount":1000000000000000}`, apierr.CodeValidation, "amount"},
			{"charge: zero", "/api/v1/wallets/" + p + "/charge", `{"amount":0}`, apierr.CodeValidation, "amount"},
			{"charge: too much", "/api/v1/wallets/" + p + "/charge", `{"amount":1001}`, apierr.CodeInsufficientCredit, ""},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				e.unchanged(t, c.name, func() {
					d := fails(t, e.do(t, req{method: "POST", path: c.path, body: c.body}), c.code)
					if c.field != "" && d["field"] != c.field {
						t.Fatalf("details.field = %v, want %s", d["field"], c.field)
					}
				})
			})
		}
		fails(t, e.do(t, req{method: "GET", path: "/api/v1/wallets/proj-nowhere"}), apierr.CodeNotFound)
		fails(t, e.do(t, req{method: "GET", path: "/api/v1/wallets/proj-nowhere/transactions"}), apierr.CodeNotFound)
		wantMoney(t, e.wallet(t, p), 1000, 0)
		if n := len(e.transactions(t, p)); n != 1 {
			t.Fatalf("%d transactions after failed requests, want 1", n)
		}
	})

	t.Run("topup up to exactly 10^15", func(t *testing.T) {
		const p = "proj-max"
		e.createWallet(t, p, 1, 0)
		mv := ok[creditservice.MoneyMove](t, e.do(t, req{method: "POST", path: "/api/v1/wallets/" + p + "/topup",
			body: map[string]any{"amount": creditservice.MaxAmount - 1}}), http.StatusOK)
		wantMoney(t, mv.Wallet, creditservice.MaxAmount, 0)
		e.unchanged(t, "a topup past the maximum", func() {
			d := fails(t, e.do(t, req{method: "POST", path: "/api/v1/wallets/" + p + "/topup", body: `{"amount":1}`}), apierr.CodeValidation)
			if d["field"] != "amount" {
				t.Fatalf("details %v", d)
			}
		})
	})

	t.Run("status changes", func(t *testing.T) {
		const p = "proj-status"
		e.createWallet(t, p, 1000, 0)
		patch := func(body string) testutil.Answer {
			return e.do(t, req{method: "PATCH", path: "/api/v1/wallets/" + p, body: body})
		}
		w := ok[creditservice.Wallet](t, patch(`{"status":"suspended"}`), http.StatusOK)
		if w.Status != "suspended" {
			t.Fatalf("status %q", w.Status)
		}
		e.unchanged(t, "a reservation on a suspended wallet", func() {
			fails(t, e.do(t, req{method: "POST", path: "/api/v1/reservations", body: `{"project_id":"` + p + `","amount":10}`}), apierr.CodeInsufficientCredit)
		})
		if w := ok[creditservice.Wallet](t, patch(`{"status":"active"}`), http.StatusOK); w.Status != "active" {
			t.Fatalf("status %q", w.Status)
		}
		r := e.reserve(t, p, 10)
		e.unchanged(t, "closing with an active reservation", func() {
			d := fails(t, patch(`{"status":"closed"}`), apierr.CodeFailedPrecondition)
			if d["active_reservations"] != float64(1) {
				t.Fatalf("details %v", d)
			}
		})
		ok[creditservice.Reservation](t, e.do(t, req{method: "POST", path: "/api/v1/reservations/" + r.ID + "/release", body: `{}`}), http.StatusOK)
		e.unchanged(t, "bad PATCH bodies", func() {
			fails(t, patch(`{"status":"frozen"}`), apierr.CodeValidation)
			fails(t, patch(`{"credit_limit":-1}`), apierr.CodeValidation)
			fails(t, patch(`{"balance":5}`), apierr.CodeValidation)
			fails(t, e.do(t, req{method: "PATCH", path: "/api/v1/wallets/proj-nowhere", body: `{"status":"active"}`}), apierr.CodeNotFound)
		})
		if w := ok[creditservice.Wallet](t, patch(`{"status":"closed"}`), http.StatusOK); w.Status != "closed" {
			t.Fatalf("status %q", w.Status)
		}
		e.unchanged(t, "money moves on a closed wallet", func() {
			for _, c := range []struct{ path, body string }{
				{"/api/v1/wallets/" + p + "/topup", `{"amount":5}`},
				{"/api/v1/wallets/" + p + "/charge", `{"amount":5}`},
				{"/api/v1/reservations", `{"project_id":"` + p + `","amount":5}`},
			} {
				a := e.do(t, req{method: "POST", path: c.path, body: c.body})
				fails(t, a, apierr.CodeFailedPrecondition)
				if !strings.Contains(a.Err.Message, "closed") {
					t.Fatalf("%s: message %q does not say closed", c.path, a.Err.Message)
				}
			}
			fails(t, patch(`{"status":"active"}`), apierr.CodeFailedPrecondition)
		})
	})

	t.Run("credit limit", func(t *testing.T) {
		const p = "proj-credit"
		e.createWallet(t, p, 100, 0)
		e.unchanged(t, "an overdraft without a credit limit", func() {
			fails(t, e.do(t, req{method: "POST", path: "/api/v1/wallets/" + p + "/charge", body: `{"amount":101}`}), apierr.CodeInsufficientCredit)
		})
		w := ok[creditservice.Wallet](t, e.do(t, req{method: "PATCH", path: "/api/v1/wallets/" + p, body: `{"credit_limit":50}`}), http.StatusOK)
		if w.CreditLimit != 50 {
			t.Fatalf("credit_limit %d", w.CreditLimit)
		}
		r := ok[creditservice.Reservation](t, e.do(t, req{method: "POST", path: "/api/v1/reservations", body: `{"project_id":"` + p + `","amount":140}`}), http.StatusCreated)
		wantMoney(t, e.wallet(t, p), 100, 140) // available −40, within −50
		e.unchanged(t, "a credit limit below what is already used", func() {
			fails(t, e.do(t, req{method: "PATCH", path: "/api/v1/wallets/" + p, body: `{"credit_limit":39}`}), apierr.CodeFailedPrecondition)
		})
		e.unchanged(t, "past the credit limit", func() {
			d := fails(t, e.do(t, req{method: "POST", path: "/api/v1/wallets/" + p + "/charge", body: `{"amount":11}`}), apierr.CodeInsufficientCredit)
			if d["available"] != float64(-40) || d["credit_limit"] != float64(50) || d["requested"] != float64(11) {
				t.Fatalf("details %v", d)
			}
			fails(t, e.do(t, req{method: "POST", path: "/api/v1/reservations", body: `{"project_id":"` + p + `","amount":11}`}), apierr.CodeInsufficientCredit)
		})
		ok[creditservice.MoneyMove](t, e.do(t, req{method: "POST", path: "/api/v1/wallets/" + p + "/charge", body: `{"amount":10}`}), http.StatusOK)
		wantMoney(t, e.wallet(t, p), 90, 140) // available −50 exactly
		ok[creditservice.CommitResult](t, e.do(t, req{method: "POST", path: "/api/v1/reservations/" + r.ID + "/commit", body: `{}`}), http.StatusOK)
		w = e.wallet(t, p)
		wantMoney(t, w, -50, 0)
		if w.Status != "suspended" {
			t.Fatalf("a wallet at −credit_limit is %q, want suspended", w.Status)
		}
	})
}
