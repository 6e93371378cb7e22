package iam_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/auth/policy"
	"github.com/photoncloud/photon/internal/auth/token"
	"github.com/photoncloud/photon/internal/testutil"
	"github.com/photoncloud/photon/services/iam"
)

// The fuzz targets below drive one in-process stack (ChainFire + IAM) per
// target over real HTTP, as a tokenless loopback client — the bootstrap
// admin — does. Whatever the body, the answer is the seed's envelope with a
// code from apierr's table and its status, never a 5xx; an answer that is
// an error changes none of IAM's records; and a success says exactly what
// the request asked for, as reading it back (or verifying the token) shows.
//
// Under -fuzz every worker process runs the target from the top and so has
// a stack of its own: seeds must mean the same in each. Random values a
// stack makes (an access key) travel in seeds as placeholders, and
// FuzzVerify pins IAM's signing key so that its seed tokens verify in every
// process.

// The fixture every target's stack starts with.
const (
	fuzzOrg           = "fuzz-org"
	fuzzProject       = "fuzz-proj"
	fuzzAlice         = "fuzz-alice" // a user with a password, member at fuzzProject
	fuzzAlicePassword = "fuzz-alice-pw-1"
	fuzzRobot         = "fuzz-robot" // a service account, viewer at fuzzOrg
	fuzzReader        = "fuzz-reader"

	// fuzzMaxBody is IAM's default request body limit (iam.Config.MaxBodyBytes).
	fuzzMaxBody = 1 << 20
	// fuzzMaxTTL and fuzzDefaultTTL are IAM's default token lifetimes, in seconds.
	fuzzMaxTTL     = 24 * 60 * 60
	fuzzDefaultTTL = 60 * 60
)

// fuzzPrincipalTypes are the principals each stack holds.
var fuzzPrincipalTypes = map[string]string{
	fuzzAlice:             policy.TypeUser,
	fuzzRobot:             policy.TypeServiceAccount,
	policy.BootstrapAdmin: policy.TypeServiceAccount,
}

// fuzzRoles are the roles each stack holds.
var fuzzRoles = map[string]bool{policy.RoleAdmin: true, policy.RoleMember: true, policy.RoleViewer: true, fuzzReader: true}

// fuzzEnv is a target's stack with the fixture in place.
type fuzzEnv struct {
	base   string // IAM's /api/v1
	hc     *http.Client
	cli    *clientv3.Client
	akid   string // fuzzAlice's access key in fuzzProject
	secret string
}

// fuzzStack starts a stack for f with a cheap argon2id cost (logins and
// users with passwords are most of some targets' inputs), stopped when f
// ends, and creates the fixture.
func fuzzStack(f *testing.F) *fuzzEnv {
	f.Helper()
	cfg := testutil.StackConfig(f, "")
	cfg.IAM.PasswordMemoryKiB, cfg.IAM.PasswordTime = 64, 1
	st := testutil.StartStackWith(f, cfg)
	e := &fuzzEnv{
		base: "http://" + st.IAM.HTTPAddr() + "/api/v1",
		// Never follow a redirect: a 3xx is an answer to check, not to chase.
		hc: &http.Client{Timeout: 20 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		cli: st.ChainFire.Client(),
	}
	e.must(f, "POST", "/projects", map[string]any{"id": fuzzProject, "name": "Fuzz project", "org_id": fuzzOrg}, http.StatusCreated)
	e.must(f, "POST", "/users", map[string]any{"id": fuzzAlice, "name": "Alice", "email": "alice@example.com", "password": fuzzAlicePassword}, http.StatusCreated)
	e.must(f, "POST", "/users", map[string]any{"id": fuzzRobot, "name": "Robot", "type": policy.TypeServiceAccount}, http.StatusCreated)
	e.must(f, "POST", "/roles", map[string]any{"name": fuzzReader, "permissions": []string{"*.*.get", "*.*.list", "!chainfire.*.*"}}, http.StatusCreated)
	e.must(f, "POST", "/bindings", map[string]any{"principal_id": fuzzAlice, "role": policy.RoleMember, "scope_id": fuzzProject}, http.StatusCreated)
	e.must(f, "POST", "/bindings", map[string]any{"principal_id": fuzzRobot, "role": policy.RoleViewer, "scope_id": fuzzOrg}, http.StatusCreated)
	var c iam.Credential
	testutil.StrictData(f, "the fixture's credential", e.must(f, "POST", "/credentials", map[string]any{"principal_id": fuzzAlice, "project_id": fuzzProject}, http.StatusCreated), &c)
	if c.AccessKeyID == "" || c.SecretAccessKey == "" {
		f.Fatalf("credential without a key or secret: %+v", c)
	}
	e.akid, e.secret = c.AccessKeyID, c.SecretAccessKey
	return e
}

// do sends body (for any method but GET) as application/json and checks
// the answer is an envelope.
func (e *fuzzEnv) do(t testing.TB, method, path string, body []byte) testutil.Answer {
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
	what := method + " /api/v1" + path
	resp, err := e.hc.Do(req)
	if err != nil {
		if len(body) > fuzzMaxBody {
			// The server may close the connection on a body over its
			// limit before the client has written it all.
			t.Skipf("%s with a %d-byte body: %v", what, len(body), err)
		}
		t.Fatalf("%s: %v", what, err)
	}
	defer resp.Body.Close()
	return fuzzCheck(t, what, resp)
}

// post sends v as JSON.
func (e *fuzzEnv) post(t testing.TB, path string, v any) testutil.Answer {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return e.do(t, "POST", path, b)
}

// must sends v (nil for GET) and fails unless the status is want.
func (e *fuzzEnv) must(t testing.TB, method, path string, v any, want int) json.RawMessage {
	t.Helper()
	var a testutil.Answer
	if method == "GET" {
		a = e.do(t, method, path, nil)
	} else {
		a = e.post(t, path, v)
	}
	if a.Status != want {
		t.Fatalf("%s %s: %s, want status %d", method, path, a, want)
	}
	return a.Data
}

// verify asks IAM about tok.
func (e *fuzzEnv) verify(t testing.TB, what, tok string) iam.Verification {
	t.Helper()
	a := e.post(t, "/auth/verify", map[string]string{"token": tok})
	if a.Status != http.StatusOK {
		t.Fatalf("%s: verifying the token answered %s", what, a)
	}
	var v iam.Verification
	testutil.StrictData(t, what+": verification", a.Data, &v)
	return v
}

// fuzzCheck reads resp and fails unless it is the seed's envelope with a
// code of apierr's table — never a 5xx — and never a password hash in it;
// a RATE_LIMITED answer says when to retry in Retry-After and its details.
func fuzzCheck(t testing.TB, what string, resp *http.Response) testutil.Answer {
	t.Helper()
	a := testutil.CheckEnvelope(t, what, resp, testutil.EnvelopeRules{Codes: testutil.ErrorCodes()})
	if bytes.Contains(a.Raw, []byte("$argon2")) {
		t.Fatalf("%s: a password hash in the answer: %s", what, a.Raw)
	}
	if a.Is(apierr.CodeRateLimited) {
		secs, _ := a.Err.Details["retry_after_seconds"].(float64)
		if h := resp.Header.Get("Retry-After"); secs < 1 || h != strconv.Itoa(int(secs)) {
			t.Fatalf("%s: RATE_LIMITED with Retry-After %q and details.retry_after_seconds %v: %s", what, h, a.Err.Details["retry_after_seconds"], a.Raw)
		}
	}
	return a
}

// fuzzRequest is body decoded as IAM decodes a T, and whether IAM can
// (testutil.RequestOf has checked that the answer refuses it when not).
func fuzzRequest[T any](t testing.TB, what string, body []byte, a testutil.Answer) (T, bool) {
	t.Helper()
	return testutil.RequestOf[T](t, what, body, fuzzMaxBody, a)
}

// fuzzTTL is the token lifetime a request asks for: ttl, else IAM's default.
func fuzzTTL(ttl *int64) int64 {
	if ttl == nil {
		return fuzzDefaultTTL
	}
	return *ttl
}

// fuzzValidID is IAM's rule for ids (and role names, scopes): 1–63 of
// a-z 0-9 - _ . :, starting with a letter or digit.
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

// fuzzSet is roles sorted without duplicates, as a token carries them.
func fuzzSet(roles []string) []string {
	out := slices.Clone(roles)
	slices.Sort(out)
	return slices.Compact(out)
}

// fuzzIAMState is what the store holds under IAM's prefixes (records,
// secrets, indexes): their number and their newest change. Any write or
// delete there moves it; nothing else in the stack writes there while a
// target runs.
type fuzzIAMState struct{ count, newest int64 }

func (e *fuzzEnv) state(t testing.TB) fuzzIAMState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := e.cli.Get(ctx, "/photon/iam", clientv3.WithPrefix(), clientv3.WithKeysOnly(),
		clientv3.WithSort(clientv3.SortByModRevision, clientv3.SortDescend), clientv3.WithLimit(1))
	if err != nil {
		t.Fatalf("reading IAM's keys: %v", err)
	}
	s := fuzzIAMState{count: resp.Count}
	if len(resp.Kvs) > 0 {
		s.newest = resp.Kvs[0].ModRevision
	}
	return s
}

// postReadOnly posts body to path, a route that writes nothing whatever
// the answer, and fails if IAM's records moved. It returns the answer and
// the times just before and after it, which bound a token's iat.
func (e *fuzzEnv) postReadOnly(t testing.TB, what, path string, body []byte) (a testutil.Answer, t0, t1 time.Time) {
	t.Helper()
	before, t0 := e.state(t), time.Now()
	a = e.do(t, "POST", path, body)
	t1 = time.Now()
	e.unchanged(t, what, before, a)
	return a, t0, t1
}

// postCreate posts body to path, a route that creates a record, and fails
// if an answer that is an error moved IAM's records. It returns the answer
// and IAM's records from before it.
func (e *fuzzEnv) postCreate(t testing.TB, what, path string, body []byte) (a testutil.Answer, before fuzzIAMState) {
	t.Helper()
	before = e.state(t)
	a = e.do(t, "POST", path, body)
	if a.Err != nil {
		e.unchanged(t, what, before, a)
	}
	return a, before
}

// unchanged fails if IAM's records moved from before.
func (e *fuzzEnv) unchanged(t testing.TB, what string, before fuzzIAMState, a testutil.Answer) {
	t.Helper()
	if after := e.state(t); after != before {
		t.Fatalf("%s: answered %s, yet IAM's records moved from %+v to %+v", what, a, before, after)
	}
}

// fuzzCheckToken checks a 200 from POST /auth/token or /auth/login: the
// token says what was asked, expires ttl seconds after it was issued
// (between t0 and t1), and IAM verifies it as exactly that. It returns the
// verification.
func fuzzCheckToken(t *testing.T, e *fuzzEnv, what string, data json.RawMessage, want iam.IssuedToken, wantType string, ttl int64, t0, t1 time.Time) iam.Verification {
	t.Helper()
	var got iam.IssuedToken
	testutil.StrictData(t, what, data, &got)
	if got.Token == "" || got.TokenID == "" || got.PrincipalID != want.PrincipalID || got.ScopeID != want.ScopeID ||
		!slices.Equal(got.Roles, want.Roles) || got.IssuedBy != want.IssuedBy {
		t.Fatalf("%s: issued %s, want principal %q scope %q roles %q issued by %q", what, data, want.PrincipalID, want.ScopeID, want.Roles, want.IssuedBy)
	}
	d := time.Duration(ttl) * time.Second
	if lo, hi := t0.Truncate(time.Second).Add(d), t1.Add(d); got.ExpiresAt.Before(lo) || got.ExpiresAt.After(hi) {
		t.Fatalf("%s: expires at %s, want %d s after issue, between %s and %s", what, got.ExpiresAt, ttl, lo, hi)
	}
	v := e.verify(t, what, got.Token)
	delegated := want.IssuedBy != want.PrincipalID
	if !v.Valid || v.Reason != "" || v.TokenID != got.TokenID || v.PrincipalID != got.PrincipalID || v.PrincipalType != wantType ||
		v.ScopeID != got.ScopeID || !slices.Equal(v.Roles, got.Roles) || v.IssuedBy != got.IssuedBy || v.Delegated != delegated ||
		v.ExpiresAt == nil || !v.ExpiresAt.Equal(got.ExpiresAt) || v.IssuedAt == nil || !v.IssuedAt.Before(got.ExpiresAt) {
		t.Fatalf("%s: issued %s (a %s), but verify says %+v", what, data, wantType, v)
	}
	for _, r := range v.EffectiveRoles {
		if !slices.Contains(v.Roles, r) {
			t.Fatalf("%s: effective role %q the token does not carry: %+v", what, r, v)
		}
	}
	return v
}

// FuzzIssueToken sends any body to POST /api/v1/auth/token as the
// bootstrap admin. "{{akid}}" and "{{secret}}" in a body stand for
// fuzzAlice's access key, so the access-key way is fuzzed in every worker.
func FuzzIssueToken(f *testing.F) {
	for _, s := range []string{
		`{"principal_id":"user-charlie","scope_id":"project-prod","ttl_seconds":7200}`, // the seed's Example 3
		`{"principal_id":"fuzz-alice","scope_id":"fuzz-proj"}`,
		`{"principal_id":"fuzz-alice","scope_id":"fuzz-proj","roles":["viewer","member","viewer"],"principal_type":"user"}`,
		`{"principal_id":"fuzz-robot","principal_type":"service_account","scope_id":"fuzz-org","roles":["fuzz-reader"]}`,
		`{"principal_id":"fuzz-robot","principal_type":"user","scope_id":"fuzz-org"}`,
		`{"principal_id":"photon-admin","scope_id":"system","roles":["admin"],"ttl_seconds":86400}`,
		`{"principal_id":"x","scope_id":"system","ttl_seconds":1}`,
		`{"principal_id":"x","scope_id":"y","ttl_seconds":0}`,
		`{"principal_id":"x","scope_id":"y","ttl_seconds":-1}`,
		`{"principal_id":"x","scope_id":"y","ttl_seconds":86401}`,
		`{"principal_id":"x","scope_id":"y","ttl_seconds":1.5}`,
		`{"principal_id":"x","scope_id":"y","ttl_seconds":1e3}`,
		`{"principal_id":"x","scope_id":"y","ttl_seconds":"60"}`,
		`{"principal_id":"x","scope_id":"y","ttl_seconds":9223372036854775807}`,
		`{"principal_id":"x","scope_id":"y","ttl_seconds":99999999999999999999}`,
		`{"principal_id":"x","scope_id":"y","ttl_seconds":null}`,
		`{"principal_id":"x","scope_id":"y","roles":["nope"]}`,
		`{"principal_id":"x","scope_id":"y","roles":["Admin"]}`,
		`{"principal_id":"x","scope_id":"y","roles":[]}`,
		`{"principal_id":"x","scope_id":"y","roles":null}`,
		`{"principal_id":"x","scope_id":"y","roles":"member"}`,
		`{"principal_id":"x","scope_id":"y","roles":[""]}`,
		`{"principal_id":"x","scope_id":"y","principal_type":"robot"}`,
		`{"principal_id":"","scope_id":"y"}`,
		`{"principal_id":"UPPER","scope_id":"y"}`,
		`{"principal_id":"-lead","scope_id":"y"}`,
		`{"principal_id":"a:b.c_d-e","scope_id":"y"}`,
		`{"principal_id":"` + strings.Repeat("a", 63) + `","scope_id":"y"}`,
		`{"principal_id":"` + strings.Repeat("a", 64) + `","scope_id":"y"}`,
		`{"principal_id":"x"}`,
		`{"principal_id":"x","scope_id":"y\u0000"}`,
		`{"principal_id":"x","scope_id":"\u00e9"}`,
		"{\"principal_id\":\"x\",\"scope_id\":\"\xff\"}",
		`{"principal_id":"x","principal_id":"y","scope_id":"z"}`,
		`{"PRINCIPAL_ID":"x","Scope_Id":"y"}`,
		`{"principal_id":"x","scope_id":"y","extra":1}`,
		`{"principal_id":"x","scope_id":"y"} {}`,
		`{"principal_id":"x","scope_id":"y"}x`,
		`{"access_key_id":"{{akid}}","secret_access_key":"{{secret}}"}`,
		`{"access_key_id":"{{akid}}","secret_access_key":"{{secret}}","roles":["member"],"ttl_seconds":60}`,
		`{"access_key_id":"{{akid}}","secret_access_key":"{{secret}}","roles":["admin"]}`,
		`{"access_key_id":"{{akid}}","secret_access_key":"{{secret}}","principal_id":"fuzz-alice","scope_id":"fuzz-proj"}`,
		`{"access_key_id":"{{akid}}","secret_access_key":"{{secret}}","principal_id":"fuzz-robot"}`,
		`{"access_key_id":"{{akid}}","secret_access_key":"{{secret}}","scope_id":"fuzz-org"}`,
		`{"access_key_id":"{{akid}}","secret_access_key":"{{secret}}","principal_type":"service_account"}`,
		`{"access_key_id":"{{akid}}","secret_access_key":"{{secret}}x"}`,
		`{"access_key_id":"{{akid}}"}`,
		`{"secret_access_key":"{{secret}}"}`,
		`{"access_key_id":"../../passwords/fuzz-alice","secret_access_key":"x"}`,
		``, ` `, `null`, `[]`, `"x"`, `1`, `{`, `{}`, `{"principal_id":`, "\xef\xbb\xbf{}",
	} {
		f.Add([]byte(s))
	}

	e := fuzzStack(f)

	f.Fuzz(func(t *testing.T, body []byte) {
		body = bytes.ReplaceAll(body, []byte("{{akid}}"), []byte(e.akid))
		body = bytes.ReplaceAll(body, []byte("{{secret}}"), []byte(e.secret))
		const what = "POST /api/v1/auth/token"
		// Issuing a token writes nothing, whatever the answer.
		a, t0, t1 := e.postReadOnly(t, what, "/auth/token", body)

		req, decodes := fuzzRequest[iam.IssueTokenRequest](t, what, body, a)
		if !decodes {
			return
		}
		ttl := fuzzTTL(req.TTLSeconds)
		withKey := req.AccessKeyID != "" || req.SecretAccessKey != ""
		invalid := ttl < 1 || ttl > fuzzMaxTTL ||
			(req.PrincipalType != "" && req.PrincipalType != policy.TypeUser && req.PrincipalType != policy.TypeServiceAccount) ||
			slices.ContainsFunc(req.Roles, func(r string) bool { return !fuzzValidID(r) })
		if withKey {
			invalid = invalid || req.AccessKeyID == "" || req.SecretAccessKey == ""
		} else {
			invalid = invalid || !fuzzValidID(req.PrincipalID) || !fuzzValidID(req.ScopeID)
		}
		switch {
		case invalid:
			if !a.Is(apierr.CodeValidation) {
				t.Fatalf("%s: an invalid request answered %s, want VALIDATION_ERROR", what, a)
			}
			return
		case a.Err != nil:
			return
		case a.Status != http.StatusOK:
			t.Fatalf("%s: success status %d, want 200", what, a.Status)
		case !bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte("{")):
			t.Fatalf("%s: 200 for a body that is not a JSON object: %q", what, body)
		}
		var want iam.IssuedToken
		var wantType string
		if withKey {
			// Self-issue: the key's principal, at the key's project, with
			// (a subset of) its roles there.
			if req.AccessKeyID != e.akid || req.SecretAccessKey != e.secret {
				t.Fatalf("%s: 200 for access key %q with a secret that is not its own", what, req.AccessKeyID)
			}
			if (req.PrincipalID != "" && req.PrincipalID != fuzzAlice) || (req.ScopeID != "" && req.ScopeID != fuzzProject) {
				t.Fatalf("%s: 200 for fuzz-alice's key naming principal %q scope %q", what, req.PrincipalID, req.ScopeID)
			}
			want = iam.IssuedToken{PrincipalID: fuzzAlice, ScopeID: fuzzProject, IssuedBy: fuzzAlice, Roles: fuzzSet(req.Roles)}
			if len(want.Roles) == 0 {
				want.Roles = []string{policy.RoleMember}
			}
			if !slices.Equal(want.Roles, []string{policy.RoleMember}) {
				t.Fatalf("%s: 200 for roles %q, but fuzz-alice holds only member in %s", what, req.Roles, fuzzProject)
			}
			wantType = policy.TypeUser
		} else {
			// Delegation by the bootstrap admin.
			want = iam.IssuedToken{PrincipalID: req.PrincipalID, ScopeID: req.ScopeID, IssuedBy: policy.BootstrapAdmin, Roles: fuzzSet(req.Roles)}
			if len(want.Roles) == 0 {
				want.Roles = []string{policy.RoleMember}
			}
			for _, r := range want.Roles {
				if !fuzzRoles[r] {
					t.Fatalf("%s: 200 for role %q, which does not exist", what, r)
				}
			}
			wantType = fuzzPrincipalTypes[req.PrincipalID]
			switch {
			case wantType == "" && req.PrincipalType == "":
				wantType = policy.TypeUser
			case wantType == "":
				wantType = req.PrincipalType
			case req.PrincipalType != "" && req.PrincipalType != wantType:
				t.Fatalf("%s: 200 for %s as a %s, but it is a %s", what, req.PrincipalID, req.PrincipalType, wantType)
			}
		}
		v := fuzzCheckToken(t, e, what, a.Data, want, wantType, ttl, t0, t1)
		// The bootstrap admin's delegation is bounded by admin, which covers
		// every role; fuzz-alice holds member where her key is for.
		if !slices.Equal(v.EffectiveRoles, v.Roles) {
			t.Fatalf("%s: a token with effective roles %q of %q", what, v.EffectiveRoles, v.Roles)
		}
	})
}

// fuzzTokenOf is the token in an IssuedToken answer.
func fuzzTokenOf(t testing.TB, data json.RawMessage) string {
	t.Helper()
	var it iam.IssuedToken
	testutil.StrictData(t, "issued token", data, &it)
	return it.Token
}

// FuzzLogin sends any body to POST /api/v1/auth/login. Only fuzzAlice has
// a password, and a role only at fuzzProject.
func FuzzLogin(f *testing.F) {
	for _, s := range []string{
		`{"principal_id":"fuzz-alice","password":"fuzz-alice-pw-1","scope_id":"fuzz-proj"}`,
		`{"principal_id":"fuzz-alice","password":"fuzz-alice-pw-1","scope_id":"fuzz-proj","ttl_seconds":60}`,
		`{"principal_id":"fuzz-alice","password":"fuzz-alice-pw-1","scope_id":"fuzz-org"}`,
		`{"principal_id":"fuzz-alice","password":"fuzz-alice-pw-1","scope_id":"system"}`,
		`{"principal_id":"fuzz-alice","password":"fuzz-alice-pw-1","scope_id":"fuzz-proj","ttl_seconds":0}`,
		`{"principal_id":"fuzz-alice","password":"fuzz-alice-pw-1","scope_id":"fuzz-proj","ttl_seconds":86401}`,
		`{"principal_id":"fuzz-alice","password":"fuzz-alice-pw-1","scope_id":"fuzz-proj","roles":["admin"]}`,
		`{"principal_id":"fuzz-alice","password":"fuzz-alice-pw-1 ","scope_id":"fuzz-proj"}`,
		`{"principal_id":"fuzz-alice","password":"FUZZ-ALICE-PW-1","scope_id":"fuzz-proj"}`,
		`{"principal_id":"fuzz-alice","password":"","scope_id":"fuzz-proj"}`,
		`{"principal_id":"fuzz-alice","scope_id":"fuzz-proj"}`,
		`{"principal_id":"fuzz-robot","password":"anything-at-all","scope_id":"fuzz-org"}`,
		`{"principal_id":"photon-admin","password":"anything-at-all","scope_id":"system"}`,
		`{"principal_id":"ghost","password":"anything-at-all","scope_id":"fuzz-proj"}`,
		`{"principal_id":"Fuzz-Alice","password":"fuzz-alice-pw-1","scope_id":"fuzz-proj"}`,
		`{"principal_id":"fuzz-alice","password":"fuzz-alice-pw-1","scope_id":""}`,
		`{"principal_id":"fuzz-alice","password":"fuzz-alice-pw-1","scope_id":"FUZZ"}`,
		`{"principal_id":"fuzz-alice","password":1,"scope_id":"fuzz-proj"}`,
		`{"principal_id":"fuzz-alice","password":"\u0000","scope_id":"fuzz-proj"}`,
		`{"principal_id":"fuzz-alice","password":"` + strings.Repeat("p", 4096) + `","scope_id":"fuzz-proj"}`,
		``, `null`, `[]`, `{`, `{}`, `{"password":"x"}`,
	} {
		f.Add([]byte(s))
	}

	e := fuzzStack(f)
	// The fixture logs in: a fuzzer that never could would test little.
	e.must(f, "POST", "/auth/login", map[string]any{"principal_id": fuzzAlice, "password": fuzzAlicePassword, "scope_id": fuzzProject}, http.StatusOK)

	f.Fuzz(func(t *testing.T, body []byte) {
		const what = "POST /api/v1/auth/login"
		// A login writes nothing (failures are counted in memory).
		a, t0, t1 := e.postReadOnly(t, what, "/auth/login", body)

		req, decodes := fuzzRequest[iam.LoginRequest](t, what, body, a)
		if !decodes {
			return
		}
		ttl := fuzzTTL(req.TTLSeconds)
		invalid := !fuzzValidID(req.PrincipalID) || !fuzzValidID(req.ScopeID) || req.Password == "" || ttl < 1 || ttl > fuzzMaxTTL
		rightPassword := req.PrincipalID == fuzzAlice && req.Password == fuzzAlicePassword
		switch {
		case invalid:
			if !a.Is(apierr.CodeValidation) {
				t.Fatalf("%s: an invalid login answered %s, want VALIDATION_ERROR", what, a)
			}
		case a.Is(apierr.CodeRateLimited):
		case a.Is(apierr.CodeUnauthenticated):
			if rightPassword {
				t.Fatalf("%s: fuzz-alice's own password answered %s", what, a)
			}
		case a.Is(apierr.CodeForbidden):
			if !rightPassword || req.ScopeID == fuzzProject {
				t.Fatalf("%s: answered %s", what, a)
			}
		case a.Status == http.StatusOK:
			if !rightPassword || req.ScopeID != fuzzProject {
				t.Fatalf("%s: 200 for %s at %s", what, req.PrincipalID, req.ScopeID)
			}
			want := iam.IssuedToken{PrincipalID: fuzzAlice, ScopeID: fuzzProject, IssuedBy: fuzzAlice, Roles: []string{policy.RoleMember}}
			fuzzCheckToken(t, e, what, a.Data, want, policy.TypeUser, ttl, t0, t1)
		default:
			t.Fatalf("%s: answered %s", what, a)
		}
	})
}

// fuzzStrings calls fn with every key and string in v, a decoded JSON value.
func fuzzStrings(v any, fn func(string)) {
	switch v := v.(type) {
	case string:
		fn(v)
	case []any:
		for _, x := range v {
			fuzzStrings(x, fn)
		}
	case map[string]any:
		for k, x := range v {
			fn(k)
			fuzzStrings(x, fn)
		}
	}
}

// fuzzPassword is the password a create-user body carries (as IAM decodes
// it, invalid UTF-8 replaced), and whether the check for it applies: it
// is long enough to be a password (IAM's minimum), and the request says it
// nowhere else — where it does, an answer may rightly echo that other field.
func fuzzPassword(body []byte) (string, bool) {
	var lenient struct {
		Password string `json:"password"`
	}
	var typeErr *json.UnmarshalTypeError
	if err := json.Unmarshal(body, &lenient); err != nil && !errors.As(err, &typeErr) {
		return "", false
	}
	p := lenient.Password
	if len(p) < 8 {
		return p, false
	}
	var others []string
	dec := json.NewDecoder(bytes.NewReader(body))
	skipped := false
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		if s, ok := tok.(string); ok {
			if s == p && !skipped {
				skipped = true
				continue
			}
			others = append(others, s)
		}
	}
	others = append(others, fuzzAlice, fuzzRobot, fuzzProject, fuzzOrg, fuzzReader, policy.BootstrapAdmin)
	for _, s := range others {
		if strings.Contains(s, p) {
			return p, false
		}
	}
	return p, true
}

// fuzzNoPassword fails if answer a says password p or has a field named
// like a password.
func fuzzNoPassword(t testing.TB, what string, a testutil.Answer, p string, checkValue bool) {
	t.Helper()
	var v any
	if err := json.Unmarshal(a.Raw, &v); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	fuzzStrings(v, func(s string) {
		if checkValue && strings.Contains(s, p) {
			t.Fatalf("%s: the answer says the password %q: %s", what, p, a.Raw)
		}
	})
	if a.Data != nil {
		var d any
		_ = json.Unmarshal(a.Data, &d)
		fuzzKeys(d, func(k string) {
			if l := strings.ToLower(k); strings.Contains(l, "password") || strings.Contains(l, "hash") {
				t.Fatalf("%s: the answer has a field %q: %s", what, k, a.Raw)
			}
		})
	}
}

// fuzzKeys calls fn with every object key in v.
func fuzzKeys(v any, fn func(string)) {
	switch v := v.(type) {
	case []any:
		for _, x := range v {
			fuzzKeys(x, fn)
		}
	case map[string]any:
		for k, x := range v {
			fn(k)
			fuzzKeys(x, fn)
		}
	}
}

// fuzzSameJSON fails unless a and b are the same JSON value.
func fuzzSameJSON(t testing.TB, what string, a, b json.RawMessage) {
	t.Helper()
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil || !reflect.DeepEqual(x, y) {
		t.Fatalf("%s: %s, read back as %s", what, a, b)
	}
}

// FuzzCreateUser sends any body to POST /api/v1/users.
func FuzzCreateUser(f *testing.F) {
	for _, s := range []string{
		`{"id":"user-charlie","name":"Charlie Brown","email":"charlie@example.com","type":"user"}`, // the seed's Example 3
		`{"id":"user-bob","name":"Bob","email":"bob@example.com","password":"correct horse battery"}`,
		`{"name":"Carol"}`,
		`{"name":"CI bot","type":"service_account"}`,
		`{"name":"sa","type":"service_account","password":"long enough 1"}`,
		`{"id":"fuzz-alice","name":"again"}`,
		`{"id":"system","name":"s"}`,
		`{"id":"UPPER","name":"x"}`, `{"id":"-x","name":"x"}`, `{"id":"a.b:c_d-e","name":"x"}`,
		`{"id":"` + strings.Repeat("a", 64) + `","name":"x"}`,
		`{"name":"  "}`, `{"name":""}`, `{"name":"` + strings.Repeat("n", 129) + `"}`,
		`{"name":"x","email":"not-an-email"}`, `{"name":"x","email":"Bob <bob@example.com>"}`,
		`{"name":"x","email":"` + strings.Repeat("e", 250) + `@x.io"}`,
		`{"name":"x","password":"short"}`, `{"name":"x","password":"12345678"}`,
		`{"name":"x","password":"` + strings.Repeat("p", 257) + `"}`,
		`{"name":"x","password":"\u0000\u00e9\ud83d\ude00 pass <&>"}`,
		"{\"name\":\"x\",\"password\":\"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\"}",
		`{"name":"x","password":null}`, `{"name":"x","password":12345678}`,
		`{"name":"x","type":"robot"}`, `{"name":1}`, `{"name":"x","role":"admin"}`,
		`{"name":"x","Password":"Mixed-Case-Key"}`,
		`{"name":"x","password":"first-password","password":"second-password"}`,
		``, `null`, `[]`, `{`, `{"name":"x"}{}`,
	} {
		f.Add([]byte(s))
	}

	e := fuzzStack(f)
	taken := map[string]bool{fuzzAlice: true, fuzzRobot: true, policy.BootstrapAdmin: true}

	f.Fuzz(func(t *testing.T, body []byte) {
		const what = "POST /api/v1/users"
		a, before := e.postCreate(t, what, "/users", body)
		p, checkP := fuzzPassword(body)
		fuzzNoPassword(t, what, a, p, checkP)
		req, decodes := fuzzRequest[iam.CreatePrincipalRequest](t, what, body, a)
		if !decodes {
			return
		}
		if a.Is(apierr.CodeAlreadyExists) && !taken[req.ID] {
			t.Fatalf("%s: id %q was never created, yet %s", what, req.ID, a)
		}
		if a.Err != nil {
			return
		}
		if a.Status != http.StatusCreated {
			t.Fatalf("%s: success status %d, want 201", what, a.Status)
		}
		if e.state(t) == before {
			t.Fatalf("%s: answered %s, but IAM's records did not move", what, a)
		}
		wantType := req.Type
		if wantType == "" {
			wantType = policy.TypeUser
		}
		switch {
		case wantType != policy.TypeUser && wantType != policy.TypeServiceAccount:
			t.Fatalf("%s: 201 for type %q", what, req.Type)
		case req.ID != "" && !fuzzValidID(req.ID):
			t.Fatalf("%s: 201 for id %q", what, req.ID)
		case strings.TrimSpace(req.Name) == "" || len(req.Name) > 128:
			t.Fatalf("%s: 201 for name %q", what, req.Name)
		case req.Password != "" && (wantType != policy.TypeUser || len(req.Password) < 8 || len(req.Password) > 256):
			t.Fatalf("%s: 201 for a %s with a %d-byte password", what, wantType, len(req.Password))
		}
		var u iam.Principal
		testutil.StrictData(t, what, a.Data, &u)
		if (req.ID != "" && u.ID != req.ID) || !fuzzValidID(u.ID) || u.Name != req.Name || u.Email != req.Email || u.Type != wantType ||
			u.CreatedAt.IsZero() || !u.UpdatedAt.Equal(u.CreatedAt) {
			t.Fatalf("%s: created %s for %q", what, a.Data, body)
		}
		if taken[u.ID] {
			t.Fatalf("%s: created %q a second time", what, u.ID)
		}
		taken[u.ID] = true

		got := e.do(t, "GET", "/users/"+u.ID, nil)
		fuzzNoPassword(t, what+": reading it back", got, p, checkP)
		if got.Status != http.StatusOK {
			t.Fatalf("%s: created %s, reading it back answered %s", what, a.Data, got)
		}
		fuzzSameJSON(t, what+": created", a.Data, got.Data)

		// The password was stored: it is right (so the login gets as far as
		// the user's roles, of which it has none: 403), and no other is.
		login := func(pw string) testutil.Answer {
			t.Helper()
			a := e.post(t, "/auth/login", map[string]string{"principal_id": u.ID, "password": pw, "scope_id": fuzzProject})
			fuzzNoPassword(t, what+": logging in", a, p, checkP)
			return a
		}
		if req.Password != "" {
			if l := login(req.Password); !l.Is(apierr.CodeForbidden) {
				t.Fatalf("%s: logging in with the new user's password answered %s, want FORBIDDEN (no roles)", what, l)
			}
		}
		if l := login(req.Password + "-not-it"); !l.Is(apierr.CodeUnauthenticated) {
			t.Fatalf("%s: logging in with a wrong password answered %s, want UNAUTHENTICATED", what, l)
		}
	})
}

// FuzzCreateBinding sends any body to POST /api/v1/bindings. The stack's
// principals are fuzzPrincipalTypes' and its roles fuzzRoles'.
func FuzzCreateBinding(f *testing.F) {
	for _, s := range []string{
		`{"principal_id":"fuzz-alice","role":"viewer","scope_id":"fuzz-proj"}`,
		`{"principal_id":"fuzz-alice","role":"member","scope_id":"fuzz-proj"}`,
		`{"principal_id":"fuzz-robot","role":"fuzz-reader","scope_id":"system"}`,
		`{"principal_id":"fuzz-alice","role":"admin","scope_id":"fuzz-org"}`,
		`{"principal_id":"fuzz-alice","role":"viewer","scope_id":"project-unknown"}`,
		`{"principal_id":"photon-admin","role":"viewer","scope_id":"system"}`,
		`{"principal_id":"ghost","role":"viewer","scope_id":"fuzz-proj"}`,
		`{"principal_id":"fuzz-alice","role":"nope","scope_id":"fuzz-proj"}`,
		`{"principal_id":"fuzz-alice","role":"Admin","scope_id":"fuzz-proj"}`,
		`{"principal_id":"fuzz-alice","role":"viewer","scope_id":"Fuzz"}`,
		`{"principal_id":"fuzz-alice","role":"viewer","scope_id":"` + strings.Repeat("s", 64) + `"}`,
		`{"principal_id":"fuzz-alice","role":"viewer"}`, `{"role":"viewer","scope_id":"system"}`,
		`{"principal_id":"fuzz-alice","scope_id":"system"}`,
		`{"principal_id":"fuzz-alice","role":"viewer","scope_id":"system","id":"bnd-1"}`,
		`{"principal_id":"fuzz-alice","role":["viewer"],"scope_id":"system"}`,
		`{"principal_id":"fuzz-alice","role":"viewer","scope_id":"system"}{}`,
		``, `null`, `[]`, `{`, `{}`,
	} {
		f.Add([]byte(s))
	}

	e := fuzzStack(f)
	type grant struct{ principal, role, scope string }
	granted := map[grant]bool{
		{fuzzAlice, policy.RoleMember, fuzzProject}:         true,
		{fuzzRobot, policy.RoleViewer, fuzzOrg}:             true,
		{policy.BootstrapAdmin, policy.RoleAdmin, "system"}: true,
	}

	f.Fuzz(func(t *testing.T, body []byte) {
		const what = "POST /api/v1/bindings"
		a, _ := e.postCreate(t, what, "/bindings", body)
		req, decodes := fuzzRequest[iam.CreateBindingRequest](t, what, body, a)
		if !decodes {
			return
		}
		g := grant{req.PrincipalID, req.Role, req.ScopeID}
		if a.Is(apierr.CodeAlreadyExists) && !granted[g] {
			t.Fatalf("%s: %+v was never granted, yet %s", what, g, a)
		}
		if a.Err != nil {
			return
		}
		if a.Status != http.StatusCreated {
			t.Fatalf("%s: success status %d, want 201", what, a.Status)
		}
		switch {
		case !fuzzValidID(req.PrincipalID) || !fuzzValidID(req.Role) || !fuzzValidID(req.ScopeID):
			t.Fatalf("%s: 201 for %q", what, body)
		case fuzzPrincipalTypes[req.PrincipalID] == "":
			t.Fatalf("%s: 201 for principal %q, which does not exist", what, req.PrincipalID)
		case !fuzzRoles[req.Role]:
			t.Fatalf("%s: 201 for role %q, which does not exist", what, req.Role)
		case granted[g]:
			t.Fatalf("%s: %+v granted a second time", what, g)
		}
		granted[g] = true
		var b iam.Binding
		testutil.StrictData(t, what, a.Data, &b)
		if b.PrincipalID != req.PrincipalID || b.Role != req.Role || b.Scope != req.ScopeID || !fuzzValidID(b.ID) || b.CreatedAt.IsZero() {
			t.Fatalf("%s: created %s for %q", what, a.Data, body)
		}
		got := e.do(t, "GET", "/bindings/"+b.ID, nil)
		if got.Status != http.StatusOK {
			t.Fatalf("%s: created %s, reading it back answered %s", what, a.Data, got)
		}
		fuzzSameJSON(t, what+": created", a.Data, got.Data)

		// The same grant again is refused and changes nothing.
		mid := e.state(t)
		if again := e.do(t, "POST", "/bindings", body); !again.Is(apierr.CodeAlreadyExists) {
			t.Fatalf("%s: granting %+v again answered %s, want ALREADY_EXISTS", what, g, again)
		} else {
			e.unchanged(t, what+" again", mid, again)
		}
	})
}

// FuzzCreateRole sends any body to POST /api/v1/roles.
func FuzzCreateRole(f *testing.F) {
	many := make([]string, 101)
	for i := range many {
		many[i] = `"svc.res` + strconv.Itoa(i) + `.get"`
	}
	for _, s := range []string{
		`{"name":"auditor","description":"reads everything","permissions":["*.*.get","*.*.list","!chainfire.*.*"]}`,
		`{"name":"ops","permissions":["*"]}`,
		`{"name":"nobody","permissions":["!*"]}`,
		`{"name":"vm-admin","permissions":["plasmavmc.vms.*","plasmavmc.*.get","!plasmavmc.vms.delete"]}`,
		`{"name":"a:b.c_d-e","permissions":["a-b.c_d.e0"]}`,
		`{"name":"admin","permissions":["*"]}`,
		`{"name":"fuzz-reader","permissions":["*"]}`,
		`{"name":"x","permissions":[]}`, `{"name":"x","permissions":null}`, `{"name":"x"}`,
		`{"name":"x","permissions":[` + strings.Join(many, ",") + `]}`,
		`{"name":"x","permissions":[` + strings.Join(many[:100], ",") + `]}`,
		`{"name":"x","permissions":["a.b"]}`, `{"name":"x","permissions":["a.b.c.d"]}`,
		`{"name":"x","permissions":["A.b.c"]}`, `{"name":"x","permissions":["a..c"]}`,
		`{"name":"x","permissions":["!"]}`, `{"name":"x","permissions":["!!a.b.c"]}`,
		`{"name":"x","permissions":["* "]}`, `{"name":"x","permissions":["a.*.c"]}`,
		`{"name":"x","permissions":["*.*"]}`, `{"name":"x","permissions":[""]}`,
		`{"name":"x","permissions":["a.b*.c"]}`, `{"name":"x","permissions":["**"]}`,
		`{"name":"x","permissions":["a.b.c\u0000"]}`, `{"name":"x","permissions":["a.b.c",1]}`,
		`{"name":"x","permissions":"a.b.c"}`,
		`{"name":"Role","permissions":["*"]}`, `{"name":"-r","permissions":["*"]}`, `{"name":"","permissions":["*"]}`,
		`{"name":"` + strings.Repeat("r", 64) + `","permissions":["*"]}`,
		`{"name":"x","description":"` + strings.Repeat("d", 1025) + `","permissions":["*"]}`,
		`{"name":"x","permissions":["*"],"builtin":true}`,
		``, `null`, `[]`, `{`, `{}`,
	} {
		f.Add([]byte(s))
	}

	e := fuzzStack(f)
	created := map[string]bool{fuzzReader: true}

	f.Fuzz(func(t *testing.T, body []byte) {
		const what = "POST /api/v1/roles"
		a, _ := e.postCreate(t, what, "/roles", body)
		req, decodes := fuzzRequest[iam.CreateRoleRequest](t, what, body, a)
		if !decodes {
			return
		}
		rulesOK := len(req.Permissions) >= 1 && len(req.Permissions) <= 100
		for _, r := range req.Permissions {
			rulesOK = rulesOK && policy.ValidateRule("permissions", r) == nil
		}
		valid := fuzzValidID(req.Name) && len(req.Description) <= 1024 && rulesOK
		switch {
		case !valid:
			if !a.Is(apierr.CodeValidation) {
				t.Fatalf("%s: an invalid role answered %s, want VALIDATION_ERROR", what, a)
			}
			return
		case policy.IsBuiltin(req.Name) || created[req.Name]:
			if !a.Is(apierr.CodeAlreadyExists) {
				t.Fatalf("%s: role %q exists, yet %s", what, req.Name, a)
			}
			return
		case a.Status != http.StatusCreated:
			t.Fatalf("%s: a valid new role answered %s, want 201", what, a)
		}
		created[req.Name] = true
		var r iam.Role
		testutil.StrictData(t, what, a.Data, &r)
		if r.Name != req.Name || r.Description != req.Description || !slices.Equal(r.Permissions, req.Permissions) || r.Builtin || r.CreatedAt.IsZero() {
			t.Fatalf("%s: created %s for %q", what, a.Data, body)
		}
		for _, p := range r.Permissions {
			if err := policy.ValidateRule("permissions", p); err != nil {
				t.Fatalf("%s: created a role with rule %q: %v", what, p, err)
			}
		}
		got := e.do(t, "GET", "/roles/"+r.Name, nil)
		if got.Status != http.StatusOK {
			t.Fatalf("%s: created %s, reading it back answered %s", what, a.Data, got)
		}
		fuzzSameJSON(t, what+": created", a.Data, got.Data)
	})
}

// fuzzKID is the key FuzzVerify pins IAM to, the same in every process (its
// seed is no secret), so that tokens made in one verify in another.
const fuzzKID = "key-fuzz-pinned"

// fuzzStoredKey is IAM's signing-key record (services/iam/keys.go).
type fuzzStoredKey struct {
	ID          string    `json:"kid"`
	Seed        []byte    `json:"seed"`
	CreatedAt   time.Time `json:"created_at"`
	ActiveUntil time.Time `json:"active_until"`
	RetireAt    time.Time `json:"retire_at"`
}

// fuzzPinKey makes IAM sign with fuzzKID: it stores that key, ends the
// signing of the key IAM made (as a rotation does: it stays published), and
// has IAM reload its keys. It returns the key.
func fuzzPinKey(f *testing.F, e *fuzzEnv) token.SigningKey {
	f.Helper()
	seed := sha256.Sum256([]byte("photon iam fuzz signing key: not a secret"))
	sk := token.SigningKey{ID: fuzzKID, Private: ed25519.NewKeyFromSeed(seed[:])}
	const prefix = policy.SecretsPrefix + "signing-keys/"
	now := time.Now().UTC()
	resp, err := e.cli.Get(testutil.Context(f), prefix, clientv3.WithPrefix())
	if err != nil {
		f.Fatal(err)
	}
	for _, kv := range resp.Kvs {
		var rec map[string]any // every field IAM keeps, not just those known here
		if err := json.Unmarshal(kv.Value, &rec); err != nil {
			f.Fatalf("signing key %s: %v", kv.Key, err)
		}
		rec["active_until"] = now.Add(-time.Second).Format(time.RFC3339Nano)
		testutil.PutJSON(f, e.cli, string(kv.Key), rec)
	}
	testutil.PutJSON(f, e.cli, prefix+fuzzKID, fuzzStoredKey{ID: fuzzKID, Seed: seed[:], CreatedAt: now.Add(-time.Hour),
		ActiveUntil: now.Add(23 * time.Hour), RetireAt: now.Add(72 * time.Hour)})
	// Listing the keys reloads them.
	e.must(f, "GET", "/auth/keys", nil, http.StatusOK)
	tok := fuzzTokenOf(f, e.must(f, "POST", "/auth/token", map[string]any{"principal_id": fuzzAlice, "scope_id": fuzzProject}, http.StatusOK))
	if h := fuzzHeader(tok); h["kid"] != fuzzKID {
		f.Fatalf("IAM signs with %v, not the pinned key %q: has its signing-key record (services/iam/keys.go) changed?", h["kid"], fuzzKID)
	}
	return sk
}

// fuzzHeader is a compact JWS's header, or nil.
func fuzzHeader(tok string) map[string]any {
	h, _, _ := strings.Cut(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return nil
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

// fuzzClaims are a token's payload as the verifier reads it.
type fuzzClaims struct {
	Iss   string          `json:"iss"`
	Sub   string          `json:"sub"`
	Jti   string          `json:"jti"`
	Ptype string          `json:"ptype"`
	Scope string          `json:"scope"`
	Roles []string        `json:"roles"`
	Ib    string          `json:"ib"`
	Iat   json.RawMessage `json:"iat"`
	Nbf   json.RawMessage `json:"nbf"`
	Exp   json.RawMessage `json:"exp"`
}

// fuzzSeconds reads a NumericDate (whole seconds kept), or -1.
func fuzzSeconds(raw json.RawMessage) int64 {
	s := string(raw)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n
	}
	if x, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(x) && x >= 0 && x < 1e15 {
		return int64(x)
	}
	return -1
}

// fuzzSignedBy returns the claims of s if s is a compact JWS in canonical
// unpadded base64url whose EdDSA signature one of keys verifies — a token
// IAM signed (Ed25519 signatures cannot be forged nor, in Go, re-spelled).
func fuzzSignedBy(s string, keys map[string]ed25519.PublicKey) (*fuzzClaims, bool) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return nil, false
	}
	var raw [3][]byte
	for i, p := range parts {
		b, err := base64.RawURLEncoding.Strict().DecodeString(p)
		if err != nil || base64.RawURLEncoding.EncodeToString(b) != p {
			return nil, false
		}
		raw[i] = b
	}
	var h struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if json.Unmarshal(raw[0], &h) != nil || h.Alg != "EdDSA" {
		return nil, false
	}
	pub, ok := keys[h.Kid]
	if !ok || !ed25519.Verify(pub, []byte(parts[0]+"."+parts[1]), raw[2]) {
		return nil, false
	}
	var c fuzzClaims
	if json.Unmarshal(raw[1], &c) != nil {
		return nil, false
	}
	return &c, true
}

// fuzzJWT signs claims with method and key, setting header fields (a nil
// value deletes one), for seeds IAM's own signer would refuse to make.
func fuzzJWT(f *testing.F, method jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	f.Helper()
	tk := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		if v == nil {
			delete(tk.Header, k)
		} else {
			tk.Header[k] = v
		}
	}
	s, err := tk.SignedString(key)
	if err != nil {
		f.Fatal(err)
	}
	return s
}

// FuzzVerify sends any token to POST /api/v1/auth/verify: valid only for
// what IAM (or the pinned key) signed, exactly as it signed it, and then
// saying exactly what the token says.
func FuzzVerify(f *testing.F) {
	e := fuzzStack(f)
	sk := fuzzPinKey(f, e)
	var set struct {
		Data token.JWKS `json:"data"`
	}
	a := e.do(f, "GET", "/auth/jwks", nil)
	if err := json.Unmarshal(a.Raw, &set); err != nil {
		f.Fatal(err)
	}
	keys, err := set.Data.PublicKeys()
	if err != nil || !keys[fuzzKID].Equal(sk.Public()) {
		f.Fatalf("IAM's JWKS %s lacks the pinned key (%v)", a.Data, err)
	}

	// Tokens this process knows the fate of: live ones must verify,
	// revoked ones must not.
	live := map[string]bool{}
	revoked := map[string]bool{}
	issue := func(body map[string]any) string {
		tok := fuzzTokenOf(f, e.must(f, "POST", "/auth/token", body, http.StatusOK))
		live[tok] = true
		return tok
	}
	delegated := issue(map[string]any{"principal_id": fuzzAlice, "scope_id": fuzzProject, "ttl_seconds": fuzzMaxTTL})
	robot := issue(map[string]any{"principal_id": fuzzRobot, "scope_id": fuzzOrg, "roles": []string{"viewer", "fuzz-reader"}, "ttl_seconds": fuzzMaxTTL})
	own := fuzzTokenOf(f, e.must(f, "POST", "/auth/login", map[string]any{"principal_id": fuzzAlice, "password": fuzzAlicePassword, "scope_id": fuzzProject, "ttl_seconds": fuzzMaxTTL}, http.StatusOK))
	live[own] = true
	gone := fuzzTokenOf(f, e.must(f, "POST", "/auth/token", map[string]any{"principal_id": fuzzAlice, "scope_id": fuzzProject, "ttl_seconds": fuzzMaxTTL}, http.StatusOK))
	e.must(f, "POST", "/auth/revoke", map[string]any{"token": gone}, http.StatusOK)
	gc, ok := fuzzSignedBy(gone, keys)
	if !ok {
		f.Fatalf("IAM issued a token its JWKS does not verify: %s", gone)
	}
	revoked[gc.Jti] = true

	now := time.Now().UTC().Truncate(time.Second)
	sign := func(c token.Claims) string {
		s, err := token.Sign(sk, c)
		if err != nil {
			f.Fatal(err)
		}
		return s
	}
	claims := func(iat, exp time.Time) jwt.MapClaims {
		return jwt.MapClaims{"iss": token.Issuer, "sub": "mallory", "jti": "tok-fuzz-raw", "ptype": "user", "scope": "system",
			"roles": []string{"admin"}, "ib": "mallory", "iat": iat.Unix(), "nbf": iat.Unix(), "exp": exp.Unix()}
	}
	without := func(c jwt.MapClaims, k string) jwt.MapClaims { delete(c, k); return c }
	with := func(c jwt.MapClaims, k string, v any) jwt.MapClaims { c[k] = v; return c }
	edKey, later := map[string]any{"kid": fuzzKID}, now.Add(time.Hour)
	forged := sign(token.Claims{ID: "tok-fuzz-forged", Subject: "mallory", PrincipalType: "user", Scope: "system",
		Roles: []string{"admin"}, IssuedAt: now, ExpiresAt: later})
	live[forged] = true // the pinned key is IAM's own: what it signs is valid
	seeds := []string{
		delegated, robot, own, gone, forged,
		sign(token.Claims{ID: "tok-fuzz-expired", Subject: "a", PrincipalType: "user", Scope: "s", IssuedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour)}),
		sign(token.Claims{ID: "tok-fuzz-nbf", Subject: "a", PrincipalType: "user", Scope: "s", IssuedAt: now, NotBefore: later, ExpiresAt: later.Add(time.Hour)}),
		sign(token.Claims{ID: "tok-fuzz-iat", Subject: "a", PrincipalType: "service_account", Scope: "s", IssuedAt: later, ExpiresAt: later.Add(time.Hour)}),
		fuzzJWT(f, jwt.SigningMethodEdDSA, sk.Private, edKey, claims(now, later)),
		fuzzJWT(f, jwt.SigningMethodEdDSA, sk.Private, edKey, with(claims(now, later), "iss", "someone-else")),
		fuzzJWT(f, jwt.SigningMethodEdDSA, sk.Private, edKey, without(claims(now, later), "jti")),
		fuzzJWT(f, jwt.SigningMethodEdDSA, sk.Private, edKey, without(claims(now, later), "exp")),
		fuzzJWT(f, jwt.SigningMethodEdDSA, sk.Private, edKey, with(claims(now, later), "ptype", "robot")),
		fuzzJWT(f, jwt.SigningMethodEdDSA, sk.Private, edKey, with(claims(now, later), "exp", 1e300)),
		fuzzJWT(f, jwt.SigningMethodEdDSA, sk.Private, edKey, with(claims(now, later), "exp", float64(later.Unix())+0.5)),
		fuzzJWT(f, jwt.SigningMethodEdDSA, sk.Private, edKey, with(claims(now, later), "SUB", "eve")),
		fuzzJWT(f, jwt.SigningMethodEdDSA, sk.Private, map[string]any{"kid": nil}, claims(now, later)),
		fuzzJWT(f, jwt.SigningMethodEdDSA, sk.Private, map[string]any{"kid": "key-unknown"}, claims(now, later)),
		fuzzJWT(f, jwt.SigningMethodEdDSA, sk.Private, map[string]any{"kid": 7}, claims(now, later)),
		fuzzJWT(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, edKey, claims(now, later)),
		fuzzJWT(f, jwt.SigningMethodHS256, []byte(sk.Public()), edKey, claims(now, later)),
		"", "x", ".", "..", "a.b.c", "null", "Bearer", strings.Repeat("a", 9000),
	}
	h, rest, _ := strings.Cut(delegated, ".")
	p, sig, _ := strings.Cut(rest, ".")
	flip := func(s string, i int) string { b := []byte(s); b[i] ^= 1; return string(b) }
	seeds = append(seeds,
		delegated[:len(delegated)-1], delegated+"A", delegated+".", " "+delegated, delegated+"\n", "Bearer "+delegated,
		flip(delegated, len(delegated)-1), flip(delegated, len(h)+5), flip(delegated, 3),
		// Base64 decoders skip CR and LF: these once verified (a token had
		// endless spellings), until the verifier refused them.
		h+"."+p[:10]+"\r\n"+p[10:]+"."+sig, h+"\n."+p+"."+sig,
		h+"."+p, h+"."+p+".", h+".."+sig, p+"."+h+"."+sig, h+"="+"."+p+"."+sig, h+"."+p+"."+sig+"==",
		strings.NewReplacer("-", "+", "_", "/").Replace(delegated),
		h+"."+base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"photon-iam","sub":"mallory","jti":"j","ptype":"user","scope":"system","ib":"mallory","exp":9999999999}`))+"."+sig,
		base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"`+fuzzKID+`"}`))+"."+p+".",
		base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"EdDSA","kid":"`+fuzzKID+`","crit":["x"]}`))+"."+p+"."+sig,
	)
	for _, s := range seeds {
		f.Add(s)
	}
	// The fixture's tokens are what they say before the fuzzer starts.
	for tok := range live {
		if v := e.verify(f, "a live seed", tok); !v.Valid {
			f.Fatalf("a token IAM issued does not verify: %+v", v)
		}
	}
	if v := e.verify(f, "the revoked seed", gone); v.Valid || v.Reason != "token revoked" {
		f.Fatalf("a revoked token verifies as %+v", v)
	}

	f.Fuzz(func(t *testing.T, s string) {
		const what = "POST /api/v1/auth/verify"
		body, err := json.Marshal(map[string]string{"token": s})
		if err != nil {
			t.Fatal(err)
		}
		a, t0, _ := e.postReadOnly(t, what, "/auth/verify", body)
		switch {
		case len(body) > fuzzMaxBody:
			if !a.Is(apierr.CodePayloadTooLarge) {
				t.Fatalf("%s: a %d-byte body answered %s", what, len(body), a)
			}
			return
		case s == "":
			if !a.Is(apierr.CodeValidation) || a.Err.Details["field"] != "token" {
				t.Fatalf("%s: an empty token answered %s, want VALIDATION_ERROR on token", what, a)
			}
			return
		case a.Status != http.StatusOK:
			// An invalid token is an answer, not an error.
			t.Fatalf("%s: answered %s, want 200", what, a)
		}
		var v iam.Verification
		testutil.StrictData(t, what, a.Data, &v)
		seen := fuzzViaJSON(s) // what IAM read
		if !v.Valid {
			if live[seen] {
				t.Fatalf("%s: a live token IAM issued is invalid: %+v", what, v)
			}
			if v.Reason == "" || v.PrincipalID != "" || v.ScopeID != "" || v.Roles != nil || v.EffectiveRoles != nil ||
				v.IssuedBy != "" || v.ExpiresAt != nil || v.IssuedAt != nil {
				t.Fatalf("%s: an invalid token answered %s", what, a.Data)
			}
			if len(seen) >= 16 && strings.Contains(v.Reason, seen) {
				t.Fatalf("%s: the reason echoes the token: %q", what, v.Reason)
			}
			return
		}
		c, ok := fuzzSignedBy(seen, keys)
		if !ok {
			t.Fatalf("%s: valid, but IAM did not sign %q: %s", what, seen, a.Data)
		}
		if revoked[c.Jti] {
			t.Fatalf("%s: a revoked token is valid: %s", what, a.Data)
		}
		iat, exp := fuzzSeconds(c.Iat), fuzzSeconds(c.Exp)
		if c.Iss != token.Issuer || v.Reason != "" || v.TokenID != c.Jti || v.PrincipalID != c.Sub || v.PrincipalType != c.Ptype ||
			v.ScopeID != c.Scope || !slices.Equal(v.Roles, c.Roles) || v.IssuedBy != c.Ib || v.Delegated != (c.Ib != c.Sub) ||
			v.ExpiresAt == nil || v.ExpiresAt.Unix() != exp || v.IssuedAt == nil || v.IssuedAt.Unix() != iat {
			t.Fatalf("%s: valid, saying %s, but the token says %+v", what, a.Data, c)
		}
		if !v.ExpiresAt.After(t0) {
			t.Fatalf("%s: valid, but it expired at %s", what, v.ExpiresAt)
		}
		for _, r := range v.EffectiveRoles {
			if !slices.Contains(v.Roles, r) {
				t.Fatalf("%s: effective role %q the token does not carry: %s", what, r, a.Data)
			}
		}
	})
}

// fuzzViaJSON is s as a JSON string carries it: invalid UTF-8 becomes U+FFFD.
func fuzzViaJSON(s string) string {
	b, _ := json.Marshal(s)
	var out string
	_ = json.Unmarshal(b, &out)
	return out
}
