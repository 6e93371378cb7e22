package iam_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/photoncloud/photon/internal/platform"
	"github.com/photoncloud/photon/internal/testutil"
	"github.com/photoncloud/photon/services/chainfire"
	"github.com/photoncloud/photon/services/iam"
)

// guarded are requests every token must pass to be answered: IAM's own
// routes and ChainFire's (whose keys need admin at system scope).
func (e *env) guarded() []struct{ method, url string } {
	return []struct{ method, url string }{
		{"GET", e.iam + "/api/v1/users"},
		{"GET", e.iam + "/api/v1/orgs"},
		{"GET", e.cf + "/api/v1/cluster/status"},
		{"GET", e.cf + "/api/v1/kv/x"},
	}
}

// refusedEverywhere checks tok gets 401 UNAUTHENTICATED from every guarded
// route, and that writes with it change nothing.
func (e *env) refusedEverywhere(t *testing.T, tok string) {
	t.Helper()
	for _, g := range e.guarded() {
		fails(t, do(t, g.method, g.url, tok, nil), http.StatusUnauthorized, "UNAUTHENTICATED")
	}
	e.unchanged(t, func() {
		fails(t, do(t, "POST", e.iam+"/api/v1/orgs", tok, map[string]any{"id": "pwned", "name": "pwned"}), http.StatusUnauthorized, "UNAUTHENTICATED")
		fails(t, do(t, "POST", e.iam+"/api/v1/bindings", tok, map[string]any{"principal_id": "photon-admin", "role": "viewer", "scope_id": "pwned"}),
			http.StatusUnauthorized, "UNAUTHENTICATED")
		fails(t, do(t, "POST", e.cf+"/api/v1/kv/pwned/put", tok, map[string]any{"value": "yes"}), http.StatusUnauthorized, "UNAUTHENTICATED")
	})
	if _, found := e.getKey(t, "pwned"); found {
		t.Fatal("a refused token wrote to ChainFire")
	}
}

// sign returns a compact JWS of claims with header fields extra, signed by
// method with key.
func sign(t *testing.T, method jwt.SigningMethod, key any, extra map[string]any, claims map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, jwt.MapClaims(claims))
	maps.Copy(tok.Header, extra)
	for k, v := range extra {
		if v == nil {
			delete(tok.Header, k)
		}
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

func b64json(t *testing.T, v any) string {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(raw)
}

// signingKey reads IAM's private signing key kid straight from ChainFire,
// as only an attacker who owns the store could: it lets the test mint
// tokens with IAM's real key and bad claims, which IAM itself never signs.
func (e *env) signingKey(t *testing.T, kid string) ed25519.PrivateKey {
	t.Helper()
	raw, found := e.getKey(t, "/photon/iam-secrets/signing-keys/"+kid)
	if !found {
		t.Fatalf("signing key %s not in ChainFire", kid)
	}
	var k struct {
		Seed []byte `json:"seed"`
	}
	if err := json.Unmarshal([]byte(raw), &k); err != nil || len(k.Seed) != ed25519.SeedSize {
		t.Fatalf("signing key record: %v", err)
	}
	return ed25519.NewKeyFromSeed(k.Seed)
}

// TestForgedTokens: every forgery fails closed on IAM and on ChainFire —
// 401, never the bootstrap admin a tokenless loopback request would be —
// and verify says why.
func TestForgedTokens(t *testing.T) {
	t.Parallel()
	e := startEnv(t, stackConfig{})
	admin := testutil.AdminToken(t, e.dir)
	for _, g := range e.guarded() {
		if r := do(t, g.method, g.url, admin, nil); r.Status != http.StatusOK && r.Status != http.StatusNotFound {
			t.Fatalf("the genuine admin token is refused: %s", r)
		}
	}
	kid := kidOf(t, admin)
	claims := jwtPart(t, admin, 1)
	parts := strings.Split(admin, ".")
	var pubX string
	for _, k := range okAs[struct {
		Keys []struct{ Kid, X string }
	}](t, do(t, "GET", e.iam+"/api/v1/auth/jwks", "", nil), http.StatusOK).Keys {
		if k.Kid == kid {
			pubX = k.X
		}
	}
	pub, err := base64.RawURLEncoding.DecodeString(pubX)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		t.Fatalf("public key of %s: %q %v", kid, pubX, err)
	}
	_, other, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	real := e.signingKey(t, kid)
	with := func(changes map[string]any) map[string]any {
		c := maps.Clone(claims)
		for k, v := range changes {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return c
	}
	now := time.Now().Unix()

	flipped := flipSignature(t, admin)
	member := e.delegate(t, "user-m", "p").Token
	mp := strings.Split(member, ".")

	cases := []struct {
		name, token, reason string
	}{
		{"signature byte flipped", flipped, "token signature invalid"},
		{"signature removed", parts[0] + "." + parts[1] + ".", "token signature invalid"},
		{"claims raised, signature kept", mp[0] + "." + b64json(t, with(map[string]any{"sub": "user-m", "scope": "system", "roles": []string{"admin"}})) + "." + mp[2], "token signature invalid"},
		{"another Ed25519 key with the real kid", sign(t, jwt.SigningMethodEdDSA, other, map[string]any{"kid": kid}, claims), "token signature invalid"},
		{"alg none", b64json(t, map[string]any{"alg": "none", "typ": "JWT", "kid": kid}) + "." + parts[1] + ".", "token algorithm not allowed"},
		{"alg none, signature kept", b64json(t, map[string]any{"alg": "none", "typ": "JWT", "kid": kid}) + "." + parts[1] + "." + parts[2], "token algorithm not allowed"},
		{"HS256 keyed with the public key", sign(t, jwt.SigningMethodHS256, []byte(pub), map[string]any{"kid": kid}, claims), "token algorithm not allowed"},
		{"HS256 keyed with the JWK's x", sign(t, jwt.SigningMethodHS256, []byte(pubX), map[string]any{"kid": kid}, claims), "token algorithm not allowed"},
		{"unknown kid", sign(t, jwt.SigningMethodEdDSA, other, map[string]any{"kid": "key-attacker"}, claims), "unknown signing key"},
		{"no kid", sign(t, jwt.SigningMethodEdDSA, other, map[string]any{"kid": nil}, claims), "token key id missing"},
		// Signed with IAM's real key (read from the store), bad claims:
		{"real key, not yet valid", sign(t, jwt.SigningMethodEdDSA, real, map[string]any{"kid": kid}, with(map[string]any{"iat": now, "nbf": now + 3600, "exp": now + 7200})), "token not yet valid"},
		{"real key, expired", sign(t, jwt.SigningMethodEdDSA, real, map[string]any{"kid": kid}, with(map[string]any{"iat": now - 7200, "nbf": now - 7200, "exp": now - 3600})), "token expired"},
		{"real key, issued in the future", sign(t, jwt.SigningMethodEdDSA, real, map[string]any{"kid": kid}, with(map[string]any{"iat": now + 3600, "nbf": now, "exp": now + 7200})), "token issued in the future"},
		{"real key, another issuer", sign(t, jwt.SigningMethodEdDSA, real, map[string]any{"kid": kid}, with(map[string]any{"iss": "evil-idp"})), "token issuer not accepted"},
		{"real key, no exp", sign(t, jwt.SigningMethodEdDSA, real, map[string]any{"kid": kid}, with(map[string]any{"exp": nil})), "token missing required claim"},
		{"real key, no jti", sign(t, jwt.SigningMethodEdDSA, real, map[string]any{"kid": kid}, with(map[string]any{"jti": nil})), "token missing required claim"},
		{"real key, unknown principal type", sign(t, jwt.SigningMethodEdDSA, real, map[string]any{"kid": kid}, with(map[string]any{"ptype": "root"})), "token principal type not accepted"},
		{"not a JWT", "let-me-in", "malformed token"},
	}
	// The real key really is IAM's: with good claims it is accepted, so
	// the rejections above are for the claims alone.
	genuine := sign(t, jwt.SigningMethodEdDSA, real, map[string]any{"kid": kid}, with(map[string]any{"jti": "tok-test-genuine"}))
	if v := e.verify(t, genuine); !v.Valid {
		t.Fatalf("a token signed with the key read from the store does not verify: %+v", v)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := e.verify(t, c.token)
			if v.Valid || v.Reason != c.reason || v.PrincipalID != "" || len(v.Roles) != 0 {
				t.Errorf("verify = %+v, want invalid: %s", v, c.reason)
			}
			e.refusedEverywhere(t, c.token)
			// Nor may a forgery be used to ask what it could do.
			fails(t, do(t, "POST", e.iam+"/api/v1/authz/check", "", map[string]any{"token": c.token, "permission": "iam.users.create"}),
				http.StatusUnauthorized, "UNAUTHENTICATED")
		})
	}

	t.Run("not a bearer token", func(t *testing.T) {
		for _, h := range []string{"Basic " + base64.StdEncoding.EncodeToString([]byte("photon-admin:x")), "Bearer", "Bearer   ", admin, "Token " + admin} {
			for _, g := range e.guarded() {
				req, err := http.NewRequestWithContext(t.Context(), g.method, g.url, nil)
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Authorization", h)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("Authorization %.20q on %s %s: %d, want 401", h, g.method, g.url, resp.StatusCode)
				}
			}
		}
	})
}

func TestExpiredToken(t *testing.T) {
	t.Parallel()
	e := startEnv(t, stackConfig{})
	tok := okAs[iam.IssuedToken](t, do(t, "POST", e.iam+"/api/v1/auth/token", "",
		map[string]any{"principal_id": "ops-brief", "scope_id": "system", "roles": []string{"admin"}, "ttl_seconds": 1}), http.StatusOK)
	// Used at once (so verifiers cache it, if it is still valid by then:
	// the test does not depend on how fast that is).
	for _, g := range e.guarded() {
		t.Logf("before expiry: %s %s → %d", g.method, g.url, do(t, g.method, g.url, tok.Token, nil).Status)
	}
	time.Sleep(time.Until(tok.ExpiresAt) + 200*time.Millisecond)
	if v := e.verify(t, tok.Token); v.Valid || v.Reason != "token expired" {
		t.Fatalf("verify after expiry = %+v", v)
	}
	e.refusedEverywhere(t, tok.Token)
}

// TestTenantIsolation: a token for project A reaches nothing of project B
// (nor of A's org beyond A), and whether B exists is not told by reads.
func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	e := startEnv(t, stackConfig{})
	e.createOrg(t, "acme", "proj-a", "proj-b")
	e.createOrg(t, "globex", "proj-c")
	e.createUser(t, "owner-a", "")
	e.bind(t, "owner-a", "admin", "proj-a")
	bBinding := e.bind(t, "photon-admin", "viewer", "proj-b")
	c := e.credential(t, "owner-a", "proj-a")
	bCred := e.credential(t, "owner-a", "proj-b")
	a := e.exchange(t, c)
	if a.ScopeID != "proj-a" || !slices.Equal(a.Roles, []string{"admin"}) {
		t.Fatalf("token = %+v", a)
	}

	// Its own project: full admin.
	okAs[iam.Project](t, do(t, "GET", e.iam+"/api/v1/projects/proj-a", a.Token, nil), http.StatusOK)
	okAs[iam.Project](t, do(t, "PATCH", e.iam+"/api/v1/projects/proj-a", a.Token, map[string]any{"description": "mine"}), http.StatusOK)

	e.unchanged(t, func() {
		// Reads of B answer exactly as for a project that does not exist.
		missing := fails(t, do(t, "GET", e.iam+"/api/v1/projects/proj-zzz", a.Token, nil), http.StatusNotFound, "NOT_FOUND")
		hidden := fails(t, do(t, "GET", e.iam+"/api/v1/projects/proj-b", a.Token, nil), http.StatusNotFound, "NOT_FOUND")
		if missing["kind"] != hidden["kind"] || hidden["id"] != "proj-b" {
			t.Errorf("hidden %v vs missing %v", hidden, missing)
		}
		fails(t, do(t, "GET", e.iam+"/api/v1/projects/proj-c", a.Token, nil), http.StatusNotFound, "NOT_FOUND")
		fails(t, do(t, "GET", e.iam+"/api/v1/orgs/globex", a.Token, nil), http.StatusNotFound, "NOT_FOUND")
		fails(t, do(t, "GET", e.iam+"/api/v1/bindings/"+bBinding.ID, a.Token, nil), http.StatusNotFound, "NOT_FOUND")
		fails(t, do(t, "GET", e.iam+"/api/v1/credentials/"+bCred.AccessKeyID, a.Token, nil), http.StatusNotFound, "NOT_FOUND")
		// Changing or deleting one of B's resources answers as for a
		// missing one too; creating in B (naming it) is refused.
		fails(t, do(t, "PATCH", e.iam+"/api/v1/projects/proj-b", a.Token, map[string]any{"name": "taken"}), http.StatusNotFound, "NOT_FOUND")
		fails(t, do(t, "DELETE", e.iam+"/api/v1/projects/proj-b", a.Token, nil), http.StatusNotFound, "NOT_FOUND")
		// Its own org it sees, so changing it is refused, not hidden.
		fails(t, do(t, "PATCH", e.iam+"/api/v1/orgs/acme", a.Token, map[string]any{"name": "taken"}), http.StatusForbidden, "FORBIDDEN")
		fails(t, do(t, "PATCH", e.iam+"/api/v1/orgs/globex", a.Token, map[string]any{"name": "taken"}), http.StatusNotFound, "NOT_FOUND")
		fails(t, do(t, "POST", e.iam+"/api/v1/projects", a.Token, map[string]any{"name": "new", "org_id": "acme"}), http.StatusForbidden, "FORBIDDEN")
		fails(t, do(t, "POST", e.iam+"/api/v1/bindings", a.Token, map[string]any{"principal_id": "owner-a", "role": "admin", "scope_id": "proj-b"}), http.StatusForbidden, "FORBIDDEN")
		fails(t, do(t, "POST", e.iam+"/api/v1/bindings", a.Token, map[string]any{"principal_id": "owner-a", "role": "admin", "scope_id": "acme"}), http.StatusForbidden, "FORBIDDEN")
		fails(t, do(t, "DELETE", e.iam+"/api/v1/bindings/"+bBinding.ID, a.Token, nil), http.StatusNotFound, "NOT_FOUND")
		fails(t, do(t, "POST", e.iam+"/api/v1/credentials", a.Token, map[string]any{"principal_id": "owner-a", "project_id": "proj-b"}), http.StatusForbidden, "FORBIDDEN")
		fails(t, do(t, "DELETE", e.iam+"/api/v1/credentials/"+bCred.AccessKeyID, a.Token, nil), http.StatusNotFound, "NOT_FOUND")
		fails(t, do(t, "POST", e.iam+"/api/v1/auth/token", a.Token, map[string]any{"principal_id": "owner-a", "scope_id": "proj-b", "roles": []string{"admin"}}), http.StatusForbidden, "FORBIDDEN")
		// Lists of elsewhere are refused; its own lists show only A.
		fails(t, do(t, "GET", e.iam+"/api/v1/projects?org_id=globex", a.Token, nil), http.StatusForbidden, "FORBIDDEN")
		fails(t, do(t, "GET", e.iam+"/api/v1/bindings?scope_id=proj-b", a.Token, nil), http.StatusForbidden, "FORBIDDEN")
		fails(t, do(t, "GET", e.iam+"/api/v1/credentials?project_id=proj-b", a.Token, nil), http.StatusForbidden, "FORBIDDEN")
		fails(t, do(t, "GET", e.iam+"/api/v1/users?scope_id=proj-b", a.Token, nil), http.StatusForbidden, "FORBIDDEN")
		// And ChainFire's system-wide keys are not a project's.
		fails(t, do(t, "GET", e.cf+"/api/v1/cluster/status", a.Token, nil), http.StatusForbidden, "FORBIDDEN")
		fails(t, do(t, "POST", e.cf+"/api/v1/kv/"+url.PathEscape("/photon/iam/bindings/x")+"/put", a.Token, map[string]any{"value": "{}"}), http.StatusForbidden, "FORBIDDEN")
	})
	l := okAs[iam.ProjectList](t, do(t, "GET", e.iam+"/api/v1/projects", a.Token, nil), http.StatusOK)
	if len(l.Projects) != 1 || l.Projects[0].ID != "proj-a" {
		t.Fatalf("A's project list = %+v", l.Projects)
	}
	creds := okAs[iam.CredentialList](t, do(t, "GET", e.iam+"/api/v1/credentials", a.Token, nil), http.StatusOK)
	if len(creds.Credentials) != 1 || creds.Credentials[0].AccessKeyID != c.AccessKeyID {
		t.Fatalf("A's credential list = %+v", creds.Credentials)
	}
	if p := okAs[iam.Project](t, do(t, "GET", e.iam+"/api/v1/projects/proj-b", "", nil), http.StatusOK); p.Name != "proj-b" {
		t.Fatalf("project B changed: %+v", p)
	}
}

// TestDelegationLimits: only a holder of iam.tokens.delegate over a scope,
// with its own (not a delegated) token, issues tokens there, and never
// more than it holds.
func TestDelegationLimits(t *testing.T) {
	t.Parallel()
	e := startEnv(t, stackConfig{})
	tokens := e.iam + "/api/v1/auth/token"
	e.createOrg(t, "acme", "web", "db")
	own := func(principal, role string) string {
		t.Helper()
		e.createUser(t, principal, "")
		e.bind(t, principal, role, "web")
		c := e.credential(t, principal, "web")
		return e.exchange(t, c).Token
	}
	member := own("mem", "member")
	projectAdmin := own("padmin", "admin")
	delegatedAdmin := e.delegate(t, "ops-bot", "system", "admin").Token

	// Positive control: a project admin may delegate in its project.
	got := okAs[iam.IssuedToken](t, do(t, "POST", tokens, projectAdmin, map[string]any{"principal_id": "helper", "scope_id": "web", "roles": []string{"viewer"}}), http.StatusOK)
	if v := e.verify(t, got.Token); !v.Valid || v.IssuedBy != "padmin" || !v.Delegated {
		t.Fatalf("project admin's delegated token: %+v", v)
	}

	for _, c := range []struct {
		name, bearer string
		body         map[string]any
	}{
		{"member for another principal", member, map[string]any{"principal_id": "someone", "scope_id": "web"}},
		{"member for itself", member, map[string]any{"principal_id": "mem", "scope_id": "web", "roles": []string{"admin"}}},
		{"delegated token", delegatedAdmin, map[string]any{"principal_id": "someone", "scope_id": "web"}},
		{"delegated token for itself", delegatedAdmin, map[string]any{"principal_id": "ops-bot", "scope_id": "system", "roles": []string{"admin"}}},
		{"project admin elsewhere", projectAdmin, map[string]any{"principal_id": "helper", "scope_id": "db"}},
		{"project admin at its org", projectAdmin, map[string]any{"principal_id": "helper", "scope_id": "acme"}},
		{"project admin at system", projectAdmin, map[string]any{"principal_id": "helper", "scope_id": "system", "roles": []string{"admin"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			fails(t, do(t, "POST", tokens, c.bearer, c.body), http.StatusForbidden, "FORBIDDEN")
		})
	}
	r := do(t, "POST", tokens, delegatedAdmin, map[string]any{"principal_id": "x", "scope_id": "web"})
	fails(t, r, http.StatusForbidden, "FORBIDDEN")
	if !strings.Contains(r.Error.Message, "delegated") {
		t.Errorf("message %q does not say why", r.Error.Message)
	}
}

// TestViewerCannotWrite: a viewer's token reads and writes nothing.
func TestViewerCannotWrite(t *testing.T) {
	t.Parallel()
	e := startEnv(t, stackConfig{})
	e.createOrg(t, "acme", "web")
	e.createUser(t, "watcher", "")
	e.bind(t, "watcher", "viewer", "web")
	b := e.bind(t, "photon-admin", "member", "web")
	c := e.credential(t, "watcher", "web")
	viewer := e.exchange(t, c).Token

	okAs[iam.Project](t, do(t, "GET", e.iam+"/api/v1/projects/web", viewer, nil), http.StatusOK)
	okAs[iam.BindingList](t, do(t, "GET", e.iam+"/api/v1/bindings?scope_id=web", viewer, nil), http.StatusOK)
	e.unchanged(t, func() {
		for _, w := range []struct {
			method, path string
			body         any
		}{
			{"POST", "/api/v1/projects", map[string]any{"name": "new", "org_id": "acme"}},
			{"PATCH", "/api/v1/projects/web", map[string]any{"name": "renamed"}},
			{"DELETE", "/api/v1/projects/web", nil},
			{"POST", "/api/v1/bindings", map[string]any{"principal_id": "watcher", "role": "viewer", "scope_id": "web"}},
			{"POST", "/api/v1/bindings", map[string]any{"principal_id": "watcher", "role": "admin", "scope_id": "web"}},
			{"DELETE", "/api/v1/bindings/" + b.ID, nil},
			{"POST", "/api/v1/credentials", map[string]any{"principal_id": "watcher", "project_id": "web"}},
			{"DELETE", "/api/v1/credentials/" + c.AccessKeyID, nil},
			{"POST", "/api/v1/orgs", map[string]any{"name": "mine"}},
			{"POST", "/api/v1/users", map[string]any{"name": "sock puppet"}},
			{"POST", "/api/v1/roles", map[string]any{"name": "god", "permissions": []string{"*"}}},
			{"POST", "/api/v1/auth/token", map[string]any{"principal_id": "watcher", "scope_id": "web", "roles": []string{"admin"}}},
			{"POST", "/api/v1/auth/keys/rotate", nil},
		} {
			fails(t, do(t, w.method, e.iam+w.path, viewer, w.body), http.StatusForbidden, "FORBIDDEN")
		}
		fails(t, do(t, "POST", e.cf+"/api/v1/kv/x/put", viewer, map[string]any{"value": "v"}), http.StatusForbidden, "FORBIDDEN")
		fails(t, do(t, "GET", e.cf+"/api/v1/kv/x", viewer, nil), http.StatusForbidden, "FORBIDDEN")
	})
}

// TestLoginBruteForce: after LoginFailures (5) failures from one source the
// pair is locked: 429 with Retry-After, even for the right password.
func TestLoginBruteForce(t *testing.T) {
	t.Parallel()
	e := startEnv(t, stackConfig{cheapPasswords: true})
	login := e.iam + "/api/v1/auth/login"
	e.createUser(t, "target", "the-right-password")
	e.createUser(t, "bystander", "bystander-password")
	e.bind(t, "target", "member", "p")
	e.bind(t, "bystander", "member", "p")

	for i := range 5 {
		fails(t, do(t, "POST", login, "", map[string]any{"principal_id": "target", "password": "guess-" + strconv.Itoa(i), "scope_id": "p"}),
			http.StatusUnauthorized, "UNAUTHENTICATED")
	}
	for _, pw := range []string{"the-right-password", "guess-5"} {
		r := do(t, "POST", login, "", map[string]any{"principal_id": "target", "password": pw, "scope_id": "p"})
		d := fails(t, r, http.StatusTooManyRequests, "RATE_LIMITED")
		after, err := strconv.Atoi(r.Header.Get("Retry-After"))
		if err != nil || after < 1 || after > 60 {
			t.Fatalf("Retry-After %q, want 1..60 seconds", r.Header.Get("Retry-After"))
		}
		if secs, _ := d["retry_after_seconds"].(float64); int(secs) != after {
			t.Fatalf("details.retry_after_seconds = %v, header %d", d["retry_after_seconds"], after)
		}
		if strings.Contains(string(r.Raw), `"token"`) {
			t.Fatalf("a locked login answered a token: %s", r)
		}
	}
	// Guessing at a principal that does not exist locks the same way, so
	// the lock does not tell who exists.
	for range 5 {
		fails(t, do(t, "POST", login, "", map[string]any{"principal_id": "ghost", "password": "whatever-1", "scope_id": "p"}), http.StatusUnauthorized, "UNAUTHENTICATED")
	}
	fails(t, do(t, "POST", login, "", map[string]any{"principal_id": "ghost", "password": "whatever-1", "scope_id": "p"}), http.StatusTooManyRequests, "RATE_LIMITED")
	// Another user from the same source is not locked out.
	e.login(t, "bystander", "bystander-password", "p")
}

// TestEnforceMode: without a token every route but /health (and the routes
// that hand out or check tokens) answers 401; DATA/admin.token (0600) is
// the way in.
func TestEnforceMode(t *testing.T) {
	t.Parallel()
	e := startEnv(t, stackConfig{authMode: "enforce", cheapPasswords: true})
	fi, err := os.Stat(filepath.Join(e.dir, platform.AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin.token mode %v, want 0600", fi.Mode().Perm())
	}
	e.createOrg(t, "acme", "web")
	e.createUser(t, "dev", "dev-password")
	b := e.bind(t, "dev", "member", "web")
	c := e.credential(t, "dev", "web")
	ok(t, do(t, "GET", e.cf+"/api/v1/cluster/status", e.admin, nil), http.StatusOK, nil)
	ok(t, do(t, "GET", e.iam+"/api/v1/users", e.admin, nil), http.StatusOK, nil)

	// Path values are ids that exist, so that a 401 cannot be a 404 in
	// disguise and a route that forgot to authenticate would answer 200.
	values := strings.NewReplacer("{id}", "web", "{name}", "member", "{node_id}", "1", "{key...}", "x")
	paths := map[string]string{
		"GET /api/v1/orgs/{id}":           "/api/v1/orgs/acme",
		"PATCH /api/v1/orgs/{id}":         "/api/v1/orgs/acme",
		"DELETE /api/v1/orgs/{id}":        "/api/v1/orgs/acme",
		"GET /api/v1/users/{id}":          "/api/v1/users/dev",
		"PATCH /api/v1/users/{id}":        "/api/v1/users/dev",
		"DELETE /api/v1/users/{id}":       "/api/v1/users/dev",
		"GET /api/v1/bindings/{id}":       "/api/v1/bindings/" + b.ID,
		"DELETE /api/v1/bindings/{id}":    "/api/v1/bindings/" + b.ID,
		"GET /api/v1/credentials/{id}":    "/api/v1/credentials/" + c.AccessKeyID,
		"DELETE /api/v1/credentials/{id}": "/api/v1/credentials/" + c.AccessKeyID,
	}
	// Routes that must answer without a token (how one gets or checks a
	// token, and the public keys): each with what it answers anonymously.
	public := map[string]struct {
		body   any
		status int
	}{
		"GET /health":                {nil, http.StatusOK},
		"GET /.well-known/jwks.json": {nil, http.StatusOK},
		"GET /api/v1/auth/jwks":      {nil, http.StatusOK},
		"POST /api/v1/auth/verify":   {map[string]any{"token": e.admin}, http.StatusOK},
		"POST /api/v1/auth/login":    {map[string]any{"principal_id": "dev", "password": "dev-password", "scope_id": "web"}, http.StatusOK},
		"POST /api/v1/auth/revoke":   {map[string]any{"principal_id": "photon-admin"}, http.StatusUnauthorized},
		"POST /api/v1/authz/check":   {map[string]any{"permission": "iam.users.create"}, http.StatusUnauthorized},
		"POST /api/v1/auth/token":    {map[string]any{"principal_id": "dev", "scope_id": "web", "roles": []string{"admin"}}, http.StatusUnauthorized},
	}
	seen := map[string]bool{}
	for svc, routes := range map[string][]string{e.iam: iam.Routes(), e.cf: chainfire.Routes()} {
		for _, route := range routes {
			method, pattern, _ := strings.Cut(route, " ")
			path, found := paths[route]
			if !found || svc == e.cf {
				path = values.Replace(pattern)
			}
			if p, isPublic := public[route]; isPublic {
				seen[route] = true
				r := do(t, method, svc+path, "", p.body)
				if r.Status != p.status {
					t.Errorf("anonymous %s%s: %s, want %d", svc, route, r, p.status)
				}
				continue
			}
			e.unchanged(t, func() {
				fails(t, do(t, method, svc+path, "", nil), http.StatusUnauthorized, "UNAUTHENTICATED")
				// A body does not help.
				if method != "GET" {
					fails(t, do(t, method, svc+path, "", map[string]any{"name": "x"}), http.StatusUnauthorized, "UNAUTHENTICATED")
				}
			})
		}
	}
	for route := range public {
		if !seen[route] {
			t.Errorf("%s is listed as public but no service serves it", route)
		}
	}
	// The anonymous answers of public routes give nothing away.
	if v := e.verify(t, "forged.token.here"); v.Valid {
		t.Fatalf("verify = %+v", v)
	}
	fails(t, do(t, "POST", e.iam+"/api/v1/auth/token", "", map[string]any{"access_key_id": c.AccessKeyID, "secret_access_key": "wrong"}), http.StatusUnauthorized, "UNAUTHENTICATED")
	// Self-issue by access key needs no bearer token.
	tok := e.exchange(t, c)
	okAs[iam.Project](t, do(t, "GET", e.iam+"/api/v1/projects/web", tok.Token, nil), http.StatusOK)
	// The admin token file works on both services, and a forged token does
	// not.
	ok(t, do(t, "GET", e.cf+"/api/v1/kv/"+url.PathEscape("/photon/iam/orgs/acme"), e.admin, nil), http.StatusOK, nil)
	okAs[iam.Org](t, do(t, "POST", e.iam+"/api/v1/orgs", e.admin, map[string]any{"id": "by-file", "name": "x"}), http.StatusCreated)
	e.refusedEverywhere(t, flipSignature(t, e.admin))
}
