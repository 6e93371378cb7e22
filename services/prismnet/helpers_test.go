// PrismNET's HTTP tests drive a whole in-process stack (ChainFire + IAM +
// CreditService + PrismNET on random loopback ports) through real HTTP, and
// read ChainFire with an ordinary etcd client to check what was (or was
// not) stored.
package prismnet_test

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
	"github.com/photoncloud/photon/services/prismnet"
)

// pnPrefix is PrismNET's keyspace in ChainFire.
const pnPrefix = "/photon/prismnet/"

type pnEnv struct {
	pn   string // PrismNET's base URL
	iam  string
	etcd *clientv3.Client
}

func startPN(t *testing.T) *pnEnv {
	t.Helper()
	st := testutil.StartStack(t, "")
	return &pnEnv{
		pn:   "http://" + st.PrismNET.HTTPAddr(),
		iam:  "http://" + st.IAM.HTTPAddr(),
		etcd: testutil.EtcdClient(t, st.ChainFire.GRPCAddr()),
	}
}

func envelopeRules() testutil.EnvelopeRules {
	codes := testutil.ErrorCodes()
	codes[apierr.CodeSubnetFull] = true
	return testutil.EnvelopeRules{Codes: codes}
}

type req struct {
	method, path string
	token        string
	body         any // nil: none; string: as is; else JSON
}

func newRequest(ctx context.Context, base string, r req) (*http.Request, error) {
	var rd io.Reader
	switch b := r.body.(type) {
	case nil:
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
	return hr, nil
}

// send is for goroutines other than the test's: it never calls t.
func (e *pnEnv) send(ctx context.Context, r req) (int, []byte, error) {
	hr, err := newRequest(ctx, e.pn, r)
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

func (e *pnEnv) do(t *testing.T, r req) testutil.Answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	hr, err := newRequest(ctx, e.pn, r)
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

// snapshot is every key of PrismNET with its mod revision and value.
func (e *pnEnv) snapshot(t *testing.T) map[string]string {
	t.Helper()
	return testutil.Snapshot(t, e.etcd, pnPrefix)
}

// unchanged fails unless PrismNET's keys are the same after fn.
func (e *pnEnv) unchanged(t *testing.T, what string, fn func()) {
	t.Helper()
	testutil.Unchanged(t, e.etcd, pnPrefix, what, fn)
}

// token issues a delegated token for principal at scope with roles.
func (e *pnEnv) token(t *testing.T, principal, scope string, roles ...string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"principal_id": principal, "scope_id": scope, "roles": roles})
	hr, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.iam+"/api/v1/auth/token", bytes.NewReader(body))
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
	return tok.Token
}

func (e *pnEnv) vpc(t *testing.T, org, project, cidr string) prismnet.VPC {
	t.Helper()
	return ok[prismnet.VPC](t, e.do(t, req{method: "POST", path: "/api/v1/vpcs",
		body: map[string]any{"name": "v", "org_id": org, "project_id": project, "cidr_block": cidr}}), http.StatusCreated)
}

func (e *pnEnv) subnet(t *testing.T, vpc, cidr string) prismnet.Subnet {
	t.Helper()
	return ok[prismnet.Subnet](t, e.do(t, req{method: "POST", path: "/api/v1/subnets",
		body: map[string]any{"name": "s", "vpc_id": vpc, "cidr_block": cidr}}), http.StatusCreated)
}

func (e *pnEnv) port(t *testing.T, subnet string, extra map[string]any) prismnet.Port {
	t.Helper()
	body := map[string]any{"subnet_id": subnet}
	for k, v := range extra {
		body[k] = v
	}
	return ok[prismnet.Port](t, e.do(t, req{method: "POST", path: "/api/v1/ports", body: body}), http.StatusCreated)
}
