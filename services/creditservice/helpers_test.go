// CreditService's HTTP tests drive a whole in-process stack (ChainFire + IAM
// + CreditService on random loopback ports) through real HTTP, and read
// ChainFire with an ordinary etcd client to check what was (or was not)
// stored. They live in the external test package because testutil imports
// platform, which imports creditservice.
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
	"github.com/photoncloud/photon/internal/platform"
	"github.com/photoncloud/photon/internal/testutil"
	"github.com/photoncloud/photon/services/creditservice"
)

// csPrefix is CreditService's keyspace in ChainFire.
const csPrefix = "/photon/creditservice/"

// csEnv is one running stack and the clients the tests use on it.
type csEnv struct {
	st   *platform.Stack
	dir  string
	cs   string // CreditService's base URL
	iam  string // IAM's base URL
	etcd *clientv3.Client
}

// startCS starts a stack in a temp dir (testutil.StackConfig, changed by
// change when not nil), stopped when the test ends.
func startCS(t *testing.T, change func(*platform.Config)) *csEnv {
	t.Helper()
	dir := t.TempDir()
	cfg := testutil.StackConfig(t, dir)
	if change != nil {
		change(&cfg)
	}
	st := testutil.StartStackWith(t, cfg)
	return &csEnv{
		st:   st,
		dir:  dir,
		cs:   "http://" + st.CreditService.HTTPAddr(),
		iam:  "http://" + st.IAM.HTTPAddr(),
		etcd: testutil.EtcdClient(t, st.ChainFire.GRPCAddr()),
	}
}

// envelopeRules is what CreditService may answer: every code of apierr's
// table, its own two included.
func envelopeRules() testutil.EnvelopeRules {
	codes := testutil.ErrorCodes()
	codes[apierr.CodeInsufficientCredit] = true
	codes[apierr.CodeQuotaExceeded] = true
	return testutil.EnvelopeRules{Codes: codes}
}

// req is one request a test sends.
type req struct {
	method, path string
	token        string // bearer token; "" is the loopback admin
	body         any    // nil: none; []byte or string: as is; else JSON
	idem         string // Idempotency-Key
}

// newRequest builds r against base.
func newRequest(ctx context.Context, base string, r req) (*http.Request, error) {
	var rd io.Reader
	switch b := r.body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(raw)
	}
	hr, err := http.NewRequestWithContext(ctx, r.method, base+r.path, rd)
	if err != nil {
		return nil, err
	}
	if rd != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if r.token != "" {
		hr.Header.Set("Authorization", "Bearer "+r.token)
	}
	if r.idem != "" {
		hr.Header.Set("Idempotency-Key", r.idem)
	}
	return hr, nil
}

// send is do for goroutines other than the test's: it never calls t, and
// returns the status and raw body.
func (e *csEnv) send(ctx context.Context, r req) (int, []byte, error) {
	hr, err := newRequest(ctx, e.cs, r)
	if err != nil {
		return 0, nil, err
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp.StatusCode, raw, err
}

// do sends r and checks the answer is the seed's envelope.
func (e *csEnv) do(t *testing.T, r req) testutil.Answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	hr, err := newRequest(ctx, e.cs, r)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer resp.Body.Close()
	return testutil.CheckEnvelope(t, r.method+" "+r.path, resp, envelopeRules())
}

// ok and fails are testutil's, named short for the many call sites.
func ok[T any](t *testing.T, a testutil.Answer, status int) T {
	t.Helper()
	return testutil.OK[T](t, a, status)
}

func fails(t *testing.T, a testutil.Answer, code apierr.Code) map[string]any {
	t.Helper()
	return testutil.Fails(t, a, code)
}

// snapshot is every key of CreditService with its mod revision and value
// (the sweeper's election key aside: it belongs to a session, not to data).
func (e *csEnv) snapshot(t *testing.T) map[string]string {
	t.Helper()
	return testutil.Snapshot(t, e.etcd, csPrefix, csPrefix+"sweeper-election")
}

// unchanged fails unless CreditService's keys are the same after fn.
func (e *csEnv) unchanged(t *testing.T, what string, fn func()) {
	t.Helper()
	testutil.Unchanged(t, e.etcd, csPrefix, what, fn, csPrefix+"sweeper-election")
}

// getJSON reads one key as JSON into a T; found reports whether it exists.
func getJSON[T any](t *testing.T, e *csEnv, key string) (v T, found bool) {
	t.Helper()
	resp, err := e.etcd.Get(testutil.Context(t), key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	if len(resp.Kvs) == 0 {
		return v, false
	}
	if err := json.Unmarshal(resp.Kvs[0].Value, &v); err != nil {
		t.Fatalf("stored %s: %v: %s", key, err, resp.Kvs[0].Value)
	}
	return v, true
}

// token issues a delegated token for principal at project with roles, as
// the loopback admin.
func (e *csEnv) token(t *testing.T, principal, project string, roles ...string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"principal_id": principal, "scope_id": project, "roles": roles})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, e.iam+"/api/v1/auth/token", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	hr.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatalf("issue token: %v", err)
	}
	defer resp.Body.Close()
	a := testutil.CheckEnvelope(t, "issue token", resp, envelopeRules())
	tok := ok[struct {
		Token string `json:"token"`
	}](t, a, http.StatusOK)
	if tok.Token == "" {
		t.Fatalf("issue token: none in %s", a.Raw)
	}
	return tok.Token
}

// createWallet opens project's wallet (org "org-123") with balance and
// credit limit, as the admin.
func (e *csEnv) createWallet(t *testing.T, project string, balance, creditLimit int64) creditservice.Wallet {
	t.Helper()
	return ok[creditservice.Wallet](t, e.do(t, req{method: "POST", path: "/api/v1/wallets",
		body: map[string]any{"project_id": project, "org_id": "org-123", "initial_balance": balance, "credit_limit": creditLimit}}), http.StatusCreated)
}

// wallet reads project's wallet as the admin.
func (e *csEnv) wallet(t *testing.T, project string) creditservice.Wallet {
	t.Helper()
	return ok[creditservice.Wallet](t, e.do(t, req{method: "GET", path: "/api/v1/wallets/" + project}), http.StatusOK)
}

// reserve reserves amount of project's credit as the admin.
func (e *csEnv) reserve(t *testing.T, project string, amount int64) creditservice.Reservation {
	t.Helper()
	return ok[creditservice.Reservation](t, e.do(t, req{method: "POST", path: "/api/v1/reservations",
		body: map[string]any{"project_id": project, "amount": amount, "resource_type": "vm"}}), http.StatusCreated)
}

// transactions lists all of project's transactions, newest first.
func (e *csEnv) transactions(t *testing.T, project string) []creditservice.Transaction {
	t.Helper()
	return ok[creditservice.TransactionList](t, e.do(t, req{method: "GET",
		path: "/api/v1/wallets/" + project + "/transactions?limit=1000"}), http.StatusOK).Transactions
}

// wantMoney checks a wallet's balance, reserved and available.
func wantMoney(t *testing.T, w creditservice.Wallet, balance, reserved int64) {
	t.Helper()
	if w.Balance != balance || w.Reserved != reserved || w.Available != balance-reserved {
		t.Fatalf("wallet %s: balance %d reserved %d available %d, want %d %d %d",
			w.ProjectID, w.Balance, w.Reserved, w.Available, balance, reserved, balance-reserved)
	}
}
