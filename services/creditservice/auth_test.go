package creditservice_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/platform"
	"github.com/photoncloud/photon/internal/testutil"
	"github.com/photoncloud/photon/services/creditservice"
)

// TestAuthorization checks what a project's member and viewer may do, and
// that another project's money is invisible to them.
func TestAuthorization(t *testing.T) {
	e := startCS(t, nil)
	const mine, theirs = "proj-mine", "proj-theirs"
	e.createWallet(t, mine, 10000, 0)
	e.createWallet(t, theirs, 10000, 0)
	theirRsv := e.reserve(t, theirs, 100)
	member := e.token(t, "user-alice", mine, "member")
	viewer := e.token(t, "user-victor", mine, "viewer")

	t.Run("member works in its project", func(t *testing.T) {
		w := ok[creditservice.Wallet](t, e.do(t, req{method: "GET", path: "/api/v1/wallets/" + mine, token: member}), http.StatusOK)
		wantMoney(t, w, 10000, 0)
		ok[creditservice.TransactionList](t, e.do(t, req{method: "GET", path: "/api/v1/wallets/" + mine + "/transactions", token: member}), http.StatusOK)
		r1 := ok[creditservice.Reservation](t, e.do(t, req{method: "POST", path: "/api/v1/reservations", token: member,
			body: `{"project_id":"` + mine + `","amount":1000}`}), http.StatusCreated)
		r2 := ok[creditservice.Reservation](t, e.do(t, req{method: "POST", path: "/api/v1/reservations", token: member,
			body: `{"project_id":"` + mine + `","amount":500}`}), http.StatusCreated)
		ok[creditservice.Reservation](t, e.do(t, req{method: "GET", path: "/api/v1/reservations/" + r1.ID, token: member}), http.StatusOK)
		ok[creditservice.ReservationList](t, e.do(t, req{method: "GET", path: "/api/v1/reservations?project_id=" + mine, token: member}), http.StatusOK)
		ok[creditservice.CommitResult](t, e.do(t, req{method: "POST", path: "/api/v1/reservations/" + r1.ID + "/commit", token: member, body: `{"actual_amount":700}`}), http.StatusOK)
		ok[creditservice.Reservation](t, e.do(t, req{method: "POST", path: "/api/v1/reservations/" + r2.ID + "/release", token: member, body: `{}`}), http.StatusOK)
		ok[creditservice.MoneyMove](t, e.do(t, req{method: "POST", path: "/api/v1/wallets/" + mine + "/charge", token: member, body: `{"amount":300}`}), http.StatusOK)
		ok[creditservice.Quota](t, e.do(t, req{method: "GET", path: "/api/v1/quotas/" + mine, token: member}), http.StatusOK)
		ok[creditservice.QuotaCheck](t, e.do(t, req{method: "POST", path: "/api/v1/quotas/" + mine + "/check", token: member, body: `{"resources":{"vcpus":1}}`}), http.StatusOK)
		wantMoney(t, e.wallet(t, mine), 9000, 0)
		checkInvariants(t, e, mine)
	})

	t.Run("member cannot make money or quota", func(t *testing.T) {
		cases := []struct{ name, method, path, body string }{
			{"create wallet", "POST", "/api/v1/wallets", `{"project_id":"` + mine + `-2","org_id":"org-123","initial_balance":1000000}`},
			{"create own wallet again", "POST", "/api/v1/wallets", `{"project_id":"` + mine + `","org_id":"org-123"}`},
			{"topup", "POST", "/api/v1/wallets/" + mine + "/topup", `{"amount":1000000}`},
			{"patch credit limit", "PATCH", "/api/v1/wallets/" + mine, `{"credit_limit":1000000}`},
			{"patch status", "PATCH", "/api/v1/wallets/" + mine, `{"status":"active"}`},
			{"set quota", "PUT", "/api/v1/quotas/" + mine, `{"limits":{"vcpus":1000}}`},
			{"add usage", "POST", "/api/v1/quotas/" + mine + "/usage", `{"resources":{"vcpus":-1}}`},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				e.unchanged(t, c.name, func() {
					fails(t, e.do(t, req{method: c.method, path: c.path, body: c.body, token: member}), apierr.CodeForbidden)
				})
			})
		}
	})

	t.Run("viewer only reads", func(t *testing.T) {
		ok[creditservice.Wallet](t, e.do(t, req{method: "GET", path: "/api/v1/wallets/" + mine, token: viewer}), http.StatusOK)
		e.unchanged(t, "a viewer's changes", func() {
			fails(t, e.do(t, req{method: "POST", path: "/api/v1/reservations", token: viewer, body: `{"project_id":"` + mine + `","amount":1}`}), apierr.CodeForbidden)
			fails(t, e.do(t, req{method: "POST", path: "/api/v1/wallets/" + mine + "/charge", token: viewer, body: `{"amount":1}`}), apierr.CodeForbidden)
		})
	})

	t.Run("another project is missing", func(t *testing.T) {
		cases := []struct{ name, method, path, missing, body string }{
			{"wallet", "GET", "/api/v1/wallets/" + theirs, "/api/v1/wallets/proj-nowhere", ""},
			{"transactions", "GET", "/api/v1/wallets/" + theirs + "/transactions", "/api/v1/wallets/proj-nowhere/transactions", ""},
			{"reservation", "GET", "/api/v1/reservations/" + theirRsv.ID, "/api/v1/reservations/rsv-nowhere", ""},
			{"reservations", "GET", "/api/v1/reservations?project_id=" + theirs, "/api/v1/reservations?project_id=proj-nowhere", ""},
			{"charge", "POST", "/api/v1/wallets/" + theirs + "/charge", "/api/v1/wallets/proj-nowhere/charge", `{"amount":1}`},
			{"reserve", "POST", "/api/v1/reservations", "/api/v1/reservations", `{"project_id":"` + theirs + `","amount":1}`},
			{"commit", "POST", "/api/v1/reservations/" + theirRsv.ID + "/commit", "/api/v1/reservations/rsv-nowhere/commit", `{}`},
			{"release", "POST", "/api/v1/reservations/" + theirRsv.ID + "/release", "/api/v1/reservations/rsv-nowhere/release", `{}`},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				e.unchanged(t, c.name, func() {
					a := e.do(t, req{method: c.method, path: c.path, body: c.body, token: member})
					missingBody := c.body
					if c.name == "reserve" {
						missingBody = `{"project_id":"proj-nowhere","amount":1}`
					}
					b := e.do(t, req{method: c.method, path: c.missing, body: missingBody, token: member})
					fails(t, a, apierr.CodeNotFound)
					fails(t, b, apierr.CodeNotFound)
					// The same answer, but for the id.
					strip := func(s string) string {
						for _, id := range []string{theirs, theirRsv.ID, "proj-nowhere", "rsv-nowhere"} {
							s = strings.ReplaceAll(s, id, "ID")
						}
						return s
					}
					if strip(a.Err.Message) != strip(b.Err.Message) || len(a.Err.Details) != len(b.Err.Details) {
						t.Fatalf("another project's answer %s differs from a missing one's %s", a.Raw, b.Raw)
					}
				})
			})
		}
		if r := ok[creditservice.Reservation](t, e.do(t, req{method: "GET", path: "/api/v1/reservations/" + theirRsv.ID}), http.StatusOK); r.Status != "active" {
			t.Fatalf("their reservation %+v", r)
		}
	})

	t.Run("bad tokens", func(t *testing.T) {
		for _, tok := range []string{"garbage", member[:len(member)-4] + "AAAA"} {
			fails(t, e.do(t, req{method: "GET", path: "/api/v1/wallets/" + mine, token: tok}), apierr.CodeUnauthenticated)
		}
	})
}

// TestEnforceMode checks that without a token, in enforce mode, every route
// but /health answers 401 and changes nothing.
func TestEnforceMode(t *testing.T) {
	e := startCS(t, func(c *platform.Config) { c.AuthMode = "enforce" })
	admin := testutil.AdminToken(t, e.dir)
	e.createWalletAs(t, admin, "proj-enf")
	r := ok[creditservice.Reservation](t, e.do(t, req{method: "POST", path: "/api/v1/reservations", token: admin,
		body: `{"project_id":"proj-enf","amount":10}`}), http.StatusCreated)

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if status, raw, err := e.send(ctx, req{method: "GET", path: "/health"}); err != nil || status != http.StatusOK {
		t.Fatalf("/health without a token: %d %v %s", status, err, raw)
	}
	bodies := map[string]string{
		"POST /api/v1/wallets":                     `{"project_id":"proj-x","org_id":"org-123","initial_balance":5}`,
		"PATCH /api/v1/wallets/{project_id}":       `{"status":"closed"}`,
		"POST /api/v1/wallets/{project_id}/topup":  `{"amount":5}`,
		"POST /api/v1/wallets/{project_id}/charge": `{"amount":5}`,
		"POST /api/v1/reservations":                `{"project_id":"proj-enf","amount":5}`,
		"POST /api/v1/reservations/{id}/commit":    `{}`,
		"POST /api/v1/reservations/{id}/release":   `{}`,
		"PUT /api/v1/quotas/{project_id}":          `{"limits":{"vcpus":1}}`,
		"POST /api/v1/quotas/{project_id}/check":   `{"resources":{"vcpus":1}}`,
		"POST /api/v1/quotas/{project_id}/usage":   `{"resources":{"vcpus":1}}`,
	}
	e.unchanged(t, "tokenless requests", func() {
		for _, route := range creditservice.Routes() {
			if route == "GET /health" {
				continue
			}
			method, path, _ := strings.Cut(route, " ")
			path = strings.NewReplacer("{project_id}", "proj-enf", "{id}", r.ID).Replace(path)
			if path == "/api/v1/reservations" && method == "GET" {
				path += "?project_id=proj-enf"
			}
			var body any
			if b, has := bodies[route]; has {
				body = b
			}
			fails(t, e.do(t, req{method: method, path: path, body: body}), apierr.CodeUnauthenticated)
		}
	})
	w := ok[creditservice.Wallet](t, e.do(t, req{method: "GET", path: "/api/v1/wallets/proj-enf", token: admin}), http.StatusOK)
	wantMoney(t, w, 1000, 10)
}

// createWalletAs opens project's wallet with 1000 as the holder of token.
func (e *csEnv) createWalletAs(t *testing.T, token, project string) {
	t.Helper()
	ok[creditservice.Wallet](t, e.do(t, req{method: "POST", path: "/api/v1/wallets", token: token,
		body: `{"project_id":"` + project + `","org_id":"org-123","initial_balance":1000}`}), http.StatusCreated)
}
