package iam_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/photoncloud/photon/internal/auth/token"
	"github.com/photoncloud/photon/services/iam"
)

// TestSeedExample3 is the seed's "User Authentication Flow" over HTTP, with
// its exact paths and bodies.
func TestSeedExample3(t *testing.T) {
	t.Parallel()
	e := startEnv(t, stackConfig{})

	// 1. Create User
	u := okAs[iam.Principal](t, do(t, "POST", e.iam+"/api/v1/users", "", `{
"id": "user-charlie",
"name": "Charlie Brown",
"email": "charlie@example.com",
"type": "user"
}`), http.StatusCreated)
	if u.ID != "user-charlie" || u.Name != "Charlie Brown" || u.Email != "charlie@example.com" || u.Type != "user" {
		t.Fatalf("user = %+v", u)
	}

	// 2. Issue Token
	before := time.Now()
	issued := okAs[iam.IssuedToken](t, do(t, "POST", e.iam+"/api/v1/auth/token", "", `{
"principal_id": "user-charlie",
"scope_id": "project-prod",
"ttl_seconds": 7200
}`), http.StatusOK)
	after := time.Now()
	if issued.Token == "" || issued.PrincipalID != "user-charlie" || issued.ScopeID != "project-prod" {
		t.Fatalf("issued = %+v", issued)
	}
	lo, hi := before.Truncate(time.Second).Add(7200*time.Second), after.Add(7200*time.Second)
	if issued.ExpiresAt.Before(lo) || issued.ExpiresAt.After(hi) {
		t.Fatalf("expires_at = %s, want now+7200s (between %s and %s)", issued.ExpiresAt, lo, hi)
	}

	// 3. Verify Token
	v := okAs[iam.Verification](t, do(t, "POST", e.iam+"/api/v1/auth/verify", "", `{"token": "`+issued.Token+`"}`), http.StatusOK)
	if !v.Valid || v.PrincipalID != "user-charlie" || v.ScopeID != "project-prod" || !slices.Equal(v.Roles, []string{"member"}) ||
		v.IssuedBy != "photon-admin" || !v.Delegated || v.PrincipalType != "user" || v.TokenID != issued.TokenID {
		t.Fatalf("verify = %+v", v)
	}
	if v.ExpiresAt == nil || !v.ExpiresAt.Equal(issued.ExpiresAt) || v.IssuedAt == nil || v.ExpiresAt.Sub(*v.IssuedAt) != 7200*time.Second {
		t.Fatalf("verify times = %v .. %v, want 7200 s ending %s", v.IssuedAt, v.ExpiresAt, issued.ExpiresAt)
	}

	// 4. Use Token: it authenticates (a member may list roles) but grants
	// no more than member at project-prod.
	ok(t, do(t, "GET", e.iam+"/api/v1/roles", issued.Token, nil), http.StatusOK, nil)
	fails(t, do(t, "GET", e.cf+"/api/v1/cluster/status", issued.Token, nil), http.StatusForbidden, "FORBIDDEN")
	e.unchanged(t, func() {
		fails(t, do(t, "POST", e.iam+"/api/v1/users", issued.Token, map[string]any{"name": "x"}), http.StatusForbidden, "FORBIDDEN")
	})

	// The seed's other token example (user-alice, typed) works as given.
	alice := okAs[iam.IssuedToken](t, do(t, "POST", e.iam+"/api/v1/auth/token", "", `{
"principal_id": "user-alice",
"principal_type": "user",
"scope_id": "project-prod",
"ttl_seconds": 3600
}`), http.StatusOK)
	if v := e.verify(t, alice.Token); !v.Valid || v.PrincipalID != "user-alice" || v.ScopeID != "project-prod" {
		t.Fatalf("verify alice = %+v", v)
	}
}

func TestTokenTTL(t *testing.T) {
	t.Parallel()
	e := startEnv(t, stackConfig{cheapPasswords: true})
	e.createUser(t, "ttl-user", "ttl-password")
	e.bind(t, "ttl-user", "viewer", "system")
	for _, ttl := range []int64{0, -1, -7200, 24*3600 + 1, 1 << 40} {
		e.unchanged(t, func() {
			d := fails(t, do(t, "POST", e.iam+"/api/v1/auth/token", "", map[string]any{"principal_id": "u", "scope_id": "p", "ttl_seconds": ttl}),
				http.StatusBadRequest, "VALIDATION_ERROR")
			if d["field"] != "ttl_seconds" || d["constraint"] != "range" || d["min"] != 1.0 || d["max"] != 86400.0 {
				t.Errorf("ttl %d: details = %v", ttl, d)
			}
			failsOn(t, do(t, "POST", e.iam+"/api/v1/auth/login", "", map[string]any{"principal_id": "ttl-user", "password": "ttl-password", "scope_id": "system", "ttl_seconds": ttl}),
				"ttl_seconds", "range")
		})
	}
	for _, c := range []struct {
		ttl  any
		want time.Duration
	}{{nil, time.Hour}, {1, time.Second}, {86400, 24 * time.Hour}} {
		body := map[string]any{"principal_id": "u", "scope_id": "p"}
		if c.ttl != nil {
			body["ttl_seconds"] = c.ttl
		}
		before := time.Now().Truncate(time.Second)
		tok := okAs[iam.IssuedToken](t, do(t, "POST", e.iam+"/api/v1/auth/token", "", body), http.StatusOK)
		after := time.Now()
		if tok.ExpiresAt.Before(before.Add(c.want)) || tok.ExpiresAt.After(after.Add(c.want)) {
			t.Errorf("ttl %v: expires_at %s, want about now+%s", c.ttl, tok.ExpiresAt, c.want)
		}
	}
}

func TestLogin(t *testing.T) {
	t.Parallel()
	e := startEnv(t, stackConfig{})
	e.createOrg(t, "acme", "web")
	e.createUser(t, "lee", "lee-password-1")
	e.createUser(t, "nopass", "")
	e.bind(t, "lee", "member", "web")
	e.bind(t, "lee", "viewer", "acme")
	login := e.iam + "/api/v1/auth/login"

	tok := e.login(t, "lee", "lee-password-1", "web")
	if tok.PrincipalID != "lee" || tok.ScopeID != "web" || tok.IssuedBy != "lee" || !slices.Equal(tok.Roles, []string{"member", "viewer"}) {
		t.Fatalf("login token = %+v", tok)
	}
	v := e.verify(t, tok.Token)
	if !v.Valid || v.Delegated || v.PrincipalType != "user" || !slices.Equal(v.EffectiveRoles, []string{"member", "viewer"}) {
		t.Fatalf("verify = %+v", v)
	}
	if p := okAs[iam.Project](t, do(t, "GET", e.iam+"/api/v1/projects/web", tok.Token, nil), http.StatusOK); p.ID != "web" {
		t.Fatalf("project = %+v", p)
	}

	// One failure each: the rate limit (5) is TestLoginBruteForce's.
	e.unchanged(t, func() {
		for _, c := range []struct {
			name string
			body map[string]any
		}{
			{"wrong password", map[string]any{"principal_id": "lee", "password": "lee-password-2", "scope_id": "web"}},
			{"unknown principal", map[string]any{"principal_id": "ghost", "password": "lee-password-1", "scope_id": "web"}},
			{"no password set", map[string]any{"principal_id": "nopass", "password": "anything-at-all", "scope_id": "web"}},
		} {
			r := do(t, "POST", login, "", c.body)
			fails(t, r, http.StatusUnauthorized, "UNAUTHENTICATED")
			// The same answer whichever was wrong: no user enumeration.
			if r.Error.Message != "invalid principal or password" {
				t.Errorf("%s: message %q", c.name, r.Error.Message)
			}
		}
		failsOn(t, do(t, "POST", login, "", map[string]any{"principal_id": "lee", "scope_id": "web"}), "password", "required")
		failsOn(t, do(t, "POST", login, "", map[string]any{"principal_id": "lee", "password": "lee-password-1"}), "scope_id", "required")
		// Right password, but no role there.
		fails(t, do(t, "POST", login, "", map[string]any{"principal_id": "lee", "password": "lee-password-1", "scope_id": "system"}), http.StatusForbidden, "FORBIDDEN")
	})
}

func TestPrincipalType(t *testing.T) {
	t.Parallel()
	e := startEnv(t, stackConfig{})
	e.createUser(t, "user-charlie", "")
	e.unchanged(t, func() {
		failsOn(t, do(t, "POST", e.iam+"/api/v1/auth/token", "", map[string]any{"principal_id": "user-charlie", "principal_type": "service_account", "scope_id": "p"}),
			"principal_type", "enum")
		failsOn(t, do(t, "POST", e.iam+"/api/v1/auth/token", "", map[string]any{"principal_id": "user-charlie", "principal_type": "robot", "scope_id": "p"}),
			"principal_type", "enum")
		failsOn(t, do(t, "POST", e.iam+"/api/v1/auth/token", "", map[string]any{"principal_id": "photon-admin", "principal_type": "user", "scope_id": "p"}),
			"principal_type", "enum")
	})
	for _, c := range []struct{ principal, typ, want string }{
		{"user-charlie", "user", "user"},
		{"user-charlie", "", "user"},
		{"photon-admin", "", "service_account"},
		{"external-bot", "service_account", "service_account"}, // unregistered: taken as given
		{"external-person", "", "user"},
	} {
		tok := okAs[iam.IssuedToken](t, do(t, "POST", e.iam+"/api/v1/auth/token", "",
			map[string]any{"principal_id": c.principal, "principal_type": c.typ, "scope_id": "p"}), http.StatusOK)
		if v := e.verify(t, tok.Token); !v.Valid || v.PrincipalType != c.want {
			t.Errorf("%s as %q: verify = %+v, want type %s", c.principal, c.typ, v, c.want)
		}
	}
}

func TestRevoke(t *testing.T) {
	t.Parallel()
	e := startEnv(t, stackConfig{})
	revoke := e.iam + "/api/v1/auth/revoke"

	t.Run("by token", func(t *testing.T) {
		tok := e.delegate(t, "ops-bot", "system", "admin")
		keep := e.delegate(t, "ops-bot", "system", "admin")
		ok(t, do(t, "GET", e.cf+"/api/v1/cluster/status", tok.Token, nil), http.StatusOK, nil)
		ok(t, do(t, "GET", e.iam+"/api/v1/users", tok.Token, nil), http.StatusOK, nil)

		got := okAs[iam.Revocation](t, do(t, "POST", revoke, "", map[string]any{"token": tok.Token}), http.StatusOK)
		if !got.Revoked || got.TokenID != tok.TokenID {
			t.Fatalf("revoke = %+v", got)
		}
		if v := e.verify(t, tok.Token); v.Valid || v.Reason != "token revoked" || v.TokenID != tok.TokenID {
			t.Fatalf("verify after revoke = %+v", v)
		}
		eventually(t, 5*time.Second, "ChainFire still accepts the revoked token", func() bool {
			return do(t, "GET", e.cf+"/api/v1/cluster/status", tok.Token, nil).Status == http.StatusUnauthorized
		})
		fails(t, do(t, "GET", e.cf+"/api/v1/kv/x", tok.Token, nil), http.StatusUnauthorized, "UNAUTHENTICATED")
		fails(t, do(t, "GET", e.iam+"/api/v1/users", tok.Token, nil), http.StatusUnauthorized, "UNAUTHENTICATED")
		// Only that token: another of the same principal works on.
		if v := e.verify(t, keep.Token); !v.Valid {
			t.Fatalf("a sibling token was revoked too: %+v", v)
		}
		ok(t, do(t, "GET", e.cf+"/api/v1/cluster/status", keep.Token, nil), http.StatusOK, nil)
		// A token that does not verify has nothing to revoke.
		if got := okAs[iam.Revocation](t, do(t, "POST", revoke, "", map[string]any{"token": "not.a.token"}), http.StatusOK); got.Revoked {
			t.Fatalf("revoking garbage = %+v", got)
		}
	})

	t.Run("by principal", func(t *testing.T) {
		a := e.delegate(t, "user-rev", "p1")
		b := e.delegate(t, "user-rev", "p2", "viewer")
		other := e.delegate(t, "user-stays", "p1")
		// Another principal may not revoke someone's tokens.
		e.unchanged(t, func() {
			fails(t, do(t, "POST", revoke, other.Token, map[string]any{"principal_id": "user-rev"}), http.StatusForbidden, "FORBIDDEN")
			failsOn(t, do(t, "POST", revoke, "", map[string]any{"principal_id": "user-rev", "token": a.Token}), "principal_id", "format")
			failsOn(t, do(t, "POST", revoke, "", map[string]any{}), "token", "required")
		})
		got := okAs[iam.Revocation](t, do(t, "POST", revoke, "", map[string]any{"principal_id": "user-rev"}), http.StatusOK)
		if !got.Revoked || got.PrincipalID != "user-rev" {
			t.Fatalf("revoke = %+v", got)
		}
		for _, tok := range []iam.IssuedToken{a, b} {
			if v := e.verify(t, tok.Token); v.Valid || v.Reason != "token revoked" {
				t.Errorf("token %s after revoking its principal: %+v", tok.TokenID, v)
			}
			fails(t, do(t, "GET", e.iam+"/api/v1/roles", tok.Token, nil), http.StatusUnauthorized, "UNAUTHENTICATED")
		}
		if v := e.verify(t, other.Token); !v.Valid {
			t.Fatalf("another principal's token was revoked: %+v", v)
		}
		// A principal may revoke its own tokens.
		got = okAs[iam.Revocation](t, do(t, "POST", revoke, other.Token, map[string]any{"principal_id": "user-stays"}), http.StatusOK)
		if !got.Revoked {
			t.Fatalf("self revoke = %+v", got)
		}
		if v := e.verify(t, other.Token); v.Valid {
			t.Fatalf("self-revoked token still valid: %+v", v)
		}
	})
}

// jwks fetches both JWKS documents, checks they agree and returns the keys
// by kid.
func (e *env) jwks(t *testing.T) map[string]ed25519.PublicKey {
	t.Helper()
	var env token.JWKS
	ok(t, do(t, "GET", e.iam+"/api/v1/auth/jwks", "", nil), http.StatusOK, &env)
	bare := do(t, "GET", e.iam+"/.well-known/jwks.json", "", nil)
	if bare.Status != http.StatusOK {
		t.Fatalf("well-known JWKS: %s", bare)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(bare.Raw, &top); err != nil || len(top) != 1 || top["keys"] == nil {
		t.Fatalf("well-known JWKS is not a bare {\"keys\": [...]} document: %s", bare.Raw)
	}
	var doc token.JWKS
	if err := json.Unmarshal(bare.Raw, &doc); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(doc.Keys, env.Keys) {
		t.Fatalf("the two JWKS documents differ:\n%+v\n%+v", doc.Keys, env.Keys)
	}
	out := map[string]ed25519.PublicKey{}
	for _, k := range doc.Keys {
		x, err := base64.RawURLEncoding.DecodeString(k.X)
		if k.Kty != "OKP" || k.Crv != "Ed25519" || k.Alg != "EdDSA" || k.Use != "sig" || k.Kid == "" || err != nil || len(x) != ed25519.PublicKeySize {
			t.Fatalf("JWK = %+v (x: %v)", k, err)
		}
		out[k.Kid] = x
	}
	return out
}

// signedBy reports whether tok's signature verifies with pub, as any JOSE
// library would check it.
func signedBy(t *testing.T, tok string, pub ed25519.PublicKey) bool {
	t.Helper()
	i := strings.LastIndexByte(tok, '.')
	sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
	return err == nil && ed25519.Verify(pub, []byte(tok[:i]), sig)
}

func TestJWKS(t *testing.T) {
	t.Parallel()
	e := startEnv(t, stackConfig{})
	keys := e.jwks(t)
	if len(keys) != 1 {
		t.Fatalf("a fresh IAM publishes %d keys", len(keys))
	}
	tok := e.delegate(t, "user-jwks", "p").Token
	h := jwtPart(t, tok, 0)
	if h["alg"] != "EdDSA" || h["typ"] != "JWT" {
		t.Fatalf("header = %v", h)
	}
	pub, found := keys[kidOf(t, tok)]
	if !found || !signedBy(t, tok, pub) {
		t.Fatalf("the token's kid %s is not published or its key does not verify it", kidOf(t, tok))
	}
	c := jwtPart(t, tok, 1)
	if c["iss"] != "photon-iam" || c["sub"] != "user-jwks" || c["scope"] != "p" || c["ib"] != "photon-admin" || c["ptype"] != "user" {
		t.Fatalf("claims = %v", c)
	}
	if got := do(t, "GET", e.iam+"/.well-known/jwks.json", "", nil); !strings.Contains(got.Header.Get("Cache-Control"), "max-age") {
		t.Errorf("well-known JWKS without caching headers: %v", got.Header)
	}
	failsOn(t, do(t, "GET", e.iam+"/api/v1/auth/jwks?kid=x", "", nil), "kid", "unknown_field")
}

func TestKeyRotation(t *testing.T) {
	t.Parallel()
	e := startEnv(t, stackConfig{})
	old := e.delegate(t, "ops-old", "system", "admin").Token
	oldKid := kidOf(t, old)

	// Only a system admin rotates.
	member := e.delegate(t, "user-m", "p").Token
	e.unchanged(t, func() {
		fails(t, do(t, "POST", e.iam+"/api/v1/auth/keys/rotate", member, nil), http.StatusForbidden, "FORBIDDEN")
	})

	k := okAs[iam.SigningKeyInfo](t, do(t, "POST", e.iam+"/api/v1/auth/keys/rotate", "", nil), http.StatusCreated)
	if k.ID == "" || k.ID == oldKid || !k.ActiveUntil.After(time.Now()) {
		t.Fatalf("rotate answered %+v (old kid %s)", k, oldKid)
	}
	fresh := e.delegate(t, "ops-new", "system", "admin").Token
	if kidOf(t, fresh) != k.ID {
		t.Fatalf("a token issued after the rotation has kid %s, want %s", kidOf(t, fresh), k.ID)
	}
	keys := e.jwks(t)
	if len(keys) != 2 || !signedBy(t, old, keys[oldKid]) || !signedBy(t, fresh, keys[k.ID]) {
		t.Fatalf("after rotation the JWKS holds %d keys; want both kids, each verifying its token", len(keys))
	}
	list := okAs[iam.SigningKeyList](t, do(t, "GET", e.iam+"/api/v1/auth/keys", "", nil), http.StatusOK)
	if len(list.Keys) != 2 || list.Keys[0].ID != oldKid || list.Keys[0].ActiveUntil.After(time.Now()) || list.Keys[1].ID != k.ID {
		t.Fatalf("keys = %+v", list.Keys)
	}
	if bytes.Contains(do(t, "GET", e.iam+"/api/v1/auth/keys", "", nil).Raw, []byte("seed")) {
		t.Fatal("the key list shows private keys")
	}
	for _, tok := range []string{old, fresh} {
		if v := e.verify(t, tok); !v.Valid {
			t.Fatalf("after rotation verify = %+v", v)
		}
	}
	// Services fetch the new key on first sight of its kid (at most once a
	// second, so allow for one refusal window).
	ok(t, do(t, "GET", e.cf+"/api/v1/cluster/status", old, nil), http.StatusOK, nil)
	eventually(t, 5*time.Second, "ChainFire refuses a token of the new key", func() bool {
		return do(t, "GET", e.cf+"/api/v1/cluster/status", fresh, nil).Status == http.StatusOK
	})
	ok(t, do(t, "GET", e.iam+"/api/v1/users", fresh, nil), http.StatusOK, nil)
	ok(t, do(t, "GET", e.iam+"/api/v1/users", old, nil), http.StatusOK, nil)
}

func TestAuthzCheck(t *testing.T) {
	t.Parallel()
	e := startEnv(t, stackConfig{})
	check := e.iam + "/api/v1/authz/check"
	e.createOrg(t, "acme", "web", "db")
	e.createUser(t, "dev", "")
	b := e.bind(t, "dev", "member", "web")
	c := e.credential(t, "dev", "web")
	own := e.exchange(t, c).Token

	decide := func(bearer string, body map[string]any) iam.CheckResult {
		t.Helper()
		return okAs[iam.CheckResult](t, do(t, "POST", check, bearer, body), http.StatusOK)
	}
	if r := decide("", map[string]any{"permission": "iam.users.create"}); !r.Allowed || r.Decision != "allow" || r.PrincipalID != "photon-admin" || r.ScopeID != "system" {
		t.Fatalf("admin check = %+v", r)
	}
	for _, c := range []struct {
		perm, org, project, want string
	}{
		{"plasmavmc.vms.create", "acme", "web", "allow"},
		{"plasmavmc.vms.create", "", "web", "allow"},
		{"iam.projects.get", "acme", "web", "allow"},
		{"iam.users.create", "acme", "web", "denied"},
		{"creditservice.wallets.topup", "acme", "web", "denied"},
		{"plasmavmc.vms.create", "acme", "db", "out_of_scope"},
		{"plasmavmc.vms.create", "globex", "web", "out_of_scope"},
		{"chainfire.kv.get", "", "", "out_of_scope"},
	} {
		body := map[string]any{"permission": c.perm, "org_id": c.org, "project_id": c.project}
		// The holder asking for itself, and anyone asking about its token.
		byHolder := decide(own, body)
		body["token"] = own
		aboutToken := decide("", body)
		for _, r := range []iam.CheckResult{byHolder, aboutToken} {
			if r.Decision != c.want || r.Allowed != (c.want == "allow") || r.PrincipalID != "dev" || r.ScopeID != "web" || r.Permission != c.perm {
				t.Errorf("%s on %s/%s = %+v, want %s", c.perm, c.org, c.project, r, c.want)
			}
		}
	}
	// Authority is live: unbound, the same token is denied at once.
	ok(t, do(t, "DELETE", e.iam+"/api/v1/bindings/"+b.ID, "", nil), http.StatusOK, nil)
	if r := decide("", map[string]any{"token": own, "permission": "plasmavmc.vms.create", "project_id": "web"}); r.Allowed || r.Decision != "denied" {
		t.Fatalf("after unbinding = %+v", r)
	}
	failsOn(t, do(t, "POST", check, "", map[string]any{"permission": "iam.users"}), "permission", "format")
	failsOn(t, do(t, "POST", check, "", map[string]any{"permission": "iam.*.get"}), "permission", "format")
	failsOn(t, do(t, "POST", check, "", map[string]any{}), "permission", "required")
	failsOn(t, do(t, "POST", check, "", map[string]any{"permission": "a.b.c", "project_id": "Web"}), "project_id", "format")
	fails(t, do(t, "POST", check, "", map[string]any{"permission": "a.b.c", "token": "x.y.z"}), http.StatusUnauthorized, "UNAUTHENTICATED")
}
