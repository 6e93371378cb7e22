// IAM's HTTP tests drive a whole in-process stack (ChainFire + IAM on
// random loopback ports) through real HTTP, and read ChainFire with an
// ordinary etcd client to check what was (or was not) stored. They live in
// the external test package because testutil imports platform, which
// imports iam.
package iam_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/photoncloud/photon/internal/platform"
	"github.com/photoncloud/photon/internal/testutil"
	"github.com/photoncloud/photon/services/iam"
)

// env is one running stack and the clients the tests use on it.
type env struct {
	st   *platform.Stack
	dir  string
	iam  string // IAM's base URL
	cf   string // ChainFire's REST base URL
	etcd *clientv3.Client
	// admin is the bearer token acting as the bootstrap admin: "" in
	// loopback mode (a tokenless loopback request is photon-admin), the
	// admin.token file's token in enforce mode.
	admin string
}

// stackConfig changes the stack a test starts.
type stackConfig struct {
	// authMode is platform.Config.AuthMode ("" is auto: loopback here).
	authMode string
	// cheapPasswords lowers argon2id's cost for tests that hash many
	// passwords (the format, and so the checks on it, stay the same).
	cheapPasswords bool
}

// startEnv starts a stack in a temp dir (as testutil.StartStack does, with
// cfg's changes), stopped when the test ends.
func startEnv(t *testing.T, cfg stackConfig) *env {
	t.Helper()
	dir := t.TempDir()
	sc := testutil.StackConfig(t, dir)
	sc.AuthMode = cfg.authMode
	if cfg.cheapPasswords {
		sc.IAM.PasswordMemoryKiB, sc.IAM.PasswordTime = 1024, 1
	}
	st := testutil.StartStackWith(t, sc)
	e := &env{
		st:   st,
		dir:  dir,
		iam:  "http://" + st.IAM.HTTPAddr(),
		cf:   "http://" + st.ChainFire.HTTPAddr(),
		etcd: testutil.EtcdClient(t, st.ChainFire.GRPCAddr()),
	}
	if cfg.authMode == "enforce" {
		e.admin = testutil.AdminToken(t, dir)
	}
	return e
}

// errorBody is the "error" of an error envelope.
type errorBody struct {
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details"`
}

// reply is one HTTP answer: its status, headers, raw body and, when the
// body is JSON, the decoded envelope.
type reply struct {
	Method, URL string
	Status      int
	Header      http.Header
	Raw         []byte
	Data        json.RawMessage `json:"data"`
	Error       *errorBody      `json:"error"`
	Meta        struct {
		RequestID string `json:"request_id"`
		Timestamp string `json:"timestamp"`
	} `json:"meta"`
}

func (r reply) String() string {
	return fmt.Sprintf("%s %s → %d %s", r.Method, r.URL, r.Status, bytes.TrimSpace(r.Raw))
}

// code is r's error code ("" for a success).
func (r reply) code() string {
	if r.Error == nil {
		return ""
	}
	return r.Error.Code
}

// do sends one request: body nil sends none, []byte or string is sent as
// it is, anything else as JSON; token, if set, is the bearer token.
func do(t *testing.T, method, url, token string, body any) reply {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("encode body: %v", err)
		}
		rd = bytes.NewReader(raw)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	r := reply{Method: method, URL: url, Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatalf("%s %s: body is not JSON: %v: %s", method, url, err, raw)
		}
	}
	return r
}

// ok checks r is a success envelope with status want and decodes its data
// into v (if not nil).
func ok(t *testing.T, r reply, want int, v any) {
	t.Helper()
	if r.Status != want || r.Error != nil || r.Data == nil {
		t.Fatalf("want %d with data: %s", want, r)
	}
	if r.Meta.RequestID == "" || r.Meta.Timestamp == "" {
		t.Fatalf("envelope without meta: %s", r)
	}
	if v != nil {
		if err := json.Unmarshal(r.Data, v); err != nil {
			t.Fatalf("decode data: %v: %s", err, r)
		}
	}
}

// okAs is ok returning the data as a T.
func okAs[T any](t *testing.T, r reply, want int) T {
	t.Helper()
	var v T
	ok(t, r, want, &v)
	return v
}

// fails checks r is an error envelope with status and code, and returns
// its details.
func fails(t *testing.T, r reply, status int, code string) map[string]any {
	t.Helper()
	if r.Status != status || r.Error == nil || r.Error.Code != code {
		t.Fatalf("want %d %s: %s", status, code, r)
	}
	if r.Data != nil && string(r.Data) != "null" {
		t.Fatalf("error envelope carries data: %s", r)
	}
	if r.Error.Message == "" || r.Meta.RequestID == "" || r.Meta.Timestamp == "" {
		t.Fatalf("error envelope without message or meta: %s", r)
	}
	return r.Error.Details
}

// failsOn is fails for a 400 VALIDATION_ERROR naming field and constraint.
func failsOn(t *testing.T, r reply, field, constraint string) {
	t.Helper()
	d := fails(t, r, http.StatusBadRequest, "VALIDATION_ERROR")
	if d["field"] != field || d["constraint"] != constraint {
		t.Fatalf("details = %v, want field %q constraint %q: %s", d, field, constraint, r)
	}
}

// snapshot is every key IAM keeps (records, secrets, indexes) and its
// value, read straight from ChainFire.
func (e *env) snapshot(t *testing.T) map[string]string {
	t.Helper()
	return e.keys(t, "/photon/iam", clientv3.WithPrefix())
}

// keys reads, straight from ChainFire, the keys opt picks from key on, and
// their values.
func (e *env) keys(t *testing.T, key string, opt clientv3.OpOption) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	resp, err := e.etcd.Get(ctx, key, opt)
	if err != nil {
		t.Fatalf("read %q: %v", key, err)
	}
	out := make(map[string]string, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		out[string(kv.Key)] = string(kv.Value)
	}
	return out
}

// unchanged runs fn (requests that must fail) and checks that IAM's keys
// in ChainFire are exactly as they were.
func (e *env) unchanged(t *testing.T, fn func()) {
	t.Helper()
	before := e.snapshot(t)
	fn()
	after := e.snapshot(t)
	if maps.Equal(before, after) {
		return
	}
	for _, k := range slices.Sorted(maps.Keys(after)) {
		if v, ok := before[k]; !ok {
			t.Errorf("key %s appeared: %s", k, after[k])
		} else if v != after[k] {
			t.Errorf("key %s changed: %s → %s", k, v, after[k])
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			t.Errorf("key %s disappeared", k)
		}
	}
	t.FailNow()
}

// getKey reads one key from ChainFire ("" and false when absent).
func (e *env) getKey(t *testing.T, key string) (string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	resp, err := e.etcd.Get(ctx, key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	if len(resp.Kvs) == 0 {
		return "", false
	}
	return string(resp.Kvs[0].Value), true
}

// --- IAM calls as the bootstrap admin, for setting tests up ---------------

// createOrg creates org id and, in it, projects.
func (e *env) createOrg(t *testing.T, id string, projects ...string) iam.Org {
	t.Helper()
	o := okAs[iam.Org](t, do(t, "POST", e.iam+"/api/v1/orgs", e.admin, map[string]any{"id": id, "name": id}), http.StatusCreated)
	for _, p := range projects {
		e.createProject(t, p, id)
	}
	return o
}

func (e *env) createProject(t *testing.T, id, org string) iam.Project {
	t.Helper()
	return okAs[iam.Project](t, do(t, "POST", e.iam+"/api/v1/projects", e.admin,
		map[string]any{"id": id, "name": id, "org_id": org}), http.StatusCreated)
}

// createUser creates a user (with a password unless it is "").
func (e *env) createUser(t *testing.T, id, password string) iam.Principal {
	t.Helper()
	body := map[string]any{"id": id, "name": id, "type": "user"}
	if password != "" {
		body["password"] = password
	}
	return okAs[iam.Principal](t, do(t, "POST", e.iam+"/api/v1/users", e.admin, body), http.StatusCreated)
}

func (e *env) bind(t *testing.T, principal, role, scope string) iam.Binding {
	t.Helper()
	return okAs[iam.Binding](t, do(t, "POST", e.iam+"/api/v1/bindings", e.admin,
		map[string]any{"principal_id": principal, "role": role, "scope_id": scope}), http.StatusCreated)
}

// credential creates, as the admin, an access key of principal in project.
func (e *env) credential(t *testing.T, principal, project string) iam.Credential {
	t.Helper()
	return okAs[iam.Credential](t, do(t, "POST", e.iam+"/api/v1/credentials", e.admin,
		map[string]any{"principal_id": principal, "project_id": project}), http.StatusCreated)
}

// exchange is the token c's holder issues itself with c's key and secret.
func (e *env) exchange(t *testing.T, c iam.Credential) iam.IssuedToken {
	t.Helper()
	return okAs[iam.IssuedToken](t, do(t, "POST", e.iam+"/api/v1/auth/token", "",
		map[string]any{"access_key_id": c.AccessKeyID, "secret_access_key": c.SecretAccessKey}), http.StatusOK)
}

// delegate issues, as the admin, a token for principal at scope carrying
// roles (IAM's default, member, when none).
func (e *env) delegate(t *testing.T, principal, scope string, roles ...string) iam.IssuedToken {
	t.Helper()
	body := map[string]any{"principal_id": principal, "scope_id": scope}
	if len(roles) > 0 {
		body["roles"] = roles
	}
	return okAs[iam.IssuedToken](t, do(t, "POST", e.iam+"/api/v1/auth/token", e.admin, body), http.StatusOK)
}

// login is a user's own token at scope, by password.
func (e *env) login(t *testing.T, principal, password, scope string) iam.IssuedToken {
	t.Helper()
	return okAs[iam.IssuedToken](t, do(t, "POST", e.iam+"/api/v1/auth/login", "",
		map[string]any{"principal_id": principal, "password": password, "scope_id": scope}), http.StatusOK)
}

func (e *env) verify(t *testing.T, token string) iam.Verification {
	t.Helper()
	return okAs[iam.Verification](t, do(t, "POST", e.iam+"/api/v1/auth/verify", "", map[string]any{"token": token}), http.StatusOK)
}

// eventually polls cond every 50 ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// allKeys is every key in ChainFire and its value.
func (e *env) allKeys(t *testing.T) map[string]string {
	t.Helper()
	return e.keys(t, "\x00", clientv3.WithFromKey())
}

// jwtPart decodes part i (0 header, 1 claims) of a compact JWS.
func jwtPart(t *testing.T, tok string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatalf("token part %d: %v", i, err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("token part %d: %v", i, err)
	}
	return m
}

// kidOf is a token's key id.
func kidOf(t *testing.T, tok string) string {
	t.Helper()
	kid, _ := jwtPart(t, tok, 0)["kid"].(string)
	if kid == "" {
		t.Fatalf("token without kid: %v", jwtPart(t, tok, 0))
	}
	return kid
}

// flipSignature returns tok with one bit of its signature flipped.
func flipSignature(t *testing.T, tok string) string {
	t.Helper()
	i := strings.LastIndexByte(tok, '.')
	sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
	if err != nil || len(sig) == 0 {
		t.Fatalf("token signature: %v", err)
	}
	sig[10%len(sig)] ^= 0x01
	return tok[:i+1] + base64.RawURLEncoding.EncodeToString(sig)
}
