// The authenticator is tested from outside the package: testutil starts a
// real ChainFire, and testutil imports the platform, which imports auth.
package auth_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/auth"
	"github.com/photoncloud/photon/internal/auth/policy"
	"github.com/photoncloud/photon/internal/auth/token"
	"github.com/photoncloud/photon/internal/testutil"
)

func TestResolveMode(t *testing.T) {
	tests := []struct {
		name  string
		flag  string
		addrs []string
		want  auth.Mode
	}{
		{"auto, all loopback", "auto", []string{"127.0.0.1:1", "localhost:1", "[::1]:2"}, auth.ModeLoopback},
		{"empty is auto", "", []string{"127.0.0.1:8081", "[::1]:8083"}, auth.ModeLoopback},
		{"auto, 127/8 is loopback", "auto", []string{"127.0.0.2:1"}, auth.ModeLoopback},
		{"auto, bare localhost", "auto", []string{"localhost"}, auth.ModeLoopback},
		{"auto, no listeners", "auto", nil, auth.ModeLoopback},
		{"auto, any IPv4", "auto", []string{"127.0.0.1:1", "0.0.0.0:1"}, auth.ModeEnforce},
		{"auto, empty host is every address", "auto", []string{"localhost:1", ":8080"}, auth.ModeEnforce},
		{"auto, private address", "auto", []string{"10.0.0.1:1", "[::1]:2"}, auth.ModeEnforce},
		{"auto, any IPv6", "auto", []string{"[::]:1"}, auth.ModeEnforce},
		{"auto, a host name", "auto", []string{"photon.example.com:8083"}, auth.ModeEnforce},
		{"auto, public last", "", []string{"127.0.0.1:1", "[::1]:2", "192.0.2.7:9"}, auth.ModeEnforce},
		{"explicit loopback kept", "loopback", []string{"0.0.0.0:1", "10.0.0.1:1"}, auth.ModeLoopback},
		{"explicit enforce kept", "enforce", []string{"127.0.0.1:1"}, auth.ModeEnforce},
		{"explicit enforce, no listeners", "enforce", nil, auth.ModeEnforce},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := auth.ResolveMode(tc.flag, tc.addrs...)
			if err != nil {
				t.Fatalf("ResolveMode(%q, %q): %v", tc.flag, tc.addrs, err)
			}
			if got != tc.want {
				t.Errorf("ResolveMode(%q, %q) = %q, want %q", tc.flag, tc.addrs, got, tc.want)
			}
		})
	}
	for _, bad := range []string{"strict", "Loopback", "ENFORCE", " auto", "none"} {
		t.Run("bad "+bad, func(t *testing.T) {
			got, err := auth.ResolveMode(bad, "127.0.0.1:1")
			e := testutil.WantCode(t, err, apierr.CodeValidation)
			if e.Details["field"] != "auth-mode" || e.Details["constraint"] != string(apierr.Enum) {
				t.Errorf("details = %v, want field auth-mode, constraint enum", e.Details)
			}
			if got != "" {
				t.Errorf("mode = %q with the error, want none", got)
			}
		})
	}
}

func TestBearer(t *testing.T) {
	tests := []struct {
		name        string
		header      []string // Authorization values; none: no header
		raw         string
		present     bool
		unauthentic bool
	}{
		{name: "no header"},
		{name: "Bearer", header: []string{"Bearer x"}, raw: "x", present: true},
		{name: "lower-case scheme", header: []string{"bearer x"}, raw: "x", present: true},
		{name: "upper-case scheme", header: []string{"BEARER abc.def.ghi"}, raw: "abc.def.ghi", present: true},
		{name: "extra spaces before the token", header: []string{"Bearer    x"}, raw: "x", present: true},
		{name: "trailing spaces", header: []string{"Bearer x  "}, raw: "x", present: true},
		{name: "another scheme", header: []string{"Basic abc"}, present: true, unauthentic: true},
		{name: "empty token", header: []string{"Bearer "}, present: true, unauthentic: true},
		{name: "only spaces after the scheme", header: []string{"Bearer     "}, present: true, unauthentic: true},
		{name: "scheme alone", header: []string{"Bearer"}, present: true, unauthentic: true},
		{name: "token alone", header: []string{"eyJhbGciOiJFZERTQSJ9.e30.sig"}, present: true, unauthentic: true},
		{name: "scheme glued to the token", header: []string{"Bearerx"}, present: true, unauthentic: true},
		{name: "first of two headers counts", header: []string{"Basic abc", "Bearer x"}, present: true, unauthentic: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			for _, h := range tc.header {
				r.Header.Add("Authorization", h)
			}
			raw, present, err := auth.Bearer(r)
			if present != tc.present {
				t.Errorf("present = %v, want %v", present, tc.present)
			}
			if tc.unauthentic {
				testutil.WantCode(t, err, apierr.CodeUnauthenticated)
				if raw != "" {
					t.Errorf("raw = %q with the error, want none", raw)
				}
				return
			}
			if err != nil {
				t.Fatalf("Bearer: %v", err)
			}
			if raw != tc.raw {
				t.Errorf("raw = %q, want %q", raw, tc.raw)
			}
		})
	}
}

func TestIsLoopback(t *testing.T) {
	tests := []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:1", true},
		{"127.9.8.7:65535", true},
		{"[::1]:1", true},
		{"[::ffff:127.0.0.1]:1", true},
		{"127.0.0.1", true}, // no port: still the peer's address
		{"192.168.1.2:1", false},
		{"10.0.0.1:80", false},
		{"[::]:1", false},
		{"0.0.0.0:1", false},
		{"[2001:db8::1]:443", false},
		{"localhost:1", false}, // only addresses count, never names
		{"garbage", false},
		{"", false},
		{"127.0.0.1:1:2", false},
	}
	for _, tc := range tests {
		if got := auth.IsLoopback(tc.addr); got != tc.want {
			t.Errorf("IsLoopback(%q) = %v, want %v", tc.addr, got, tc.want)
		}
	}
}

// world is a real ChainFire holding IAM records, a cache following it, and
// a signing key whose public half the verifier knows.
type world struct {
	cli      *clientv3.Client
	cache    *policy.Cache
	key      token.SigningKey
	verifier *token.Verifier
}

// newWorld starts ChainFire and writes:
//
//	org-a: proj-a1        org-b: proj-b1
//	root  admin  @ system     olga  member @ org-a
//	alice member @ proj-a1    vera  viewer @ proj-a1
func newWorld(t *testing.T) *world {
	t.Helper()
	srv := testutil.StartChainFire(t)
	w := &world{cli: testutil.EtcdClient(t, srv.GRPCAddr())}
	testutil.PutJSON(t, w.cli, policy.OrgsPrefix+"org-a", policy.Org{ID: "org-a", Name: "A"})
	testutil.PutJSON(t, w.cli, policy.OrgsPrefix+"org-b", policy.Org{ID: "org-b", Name: "B"})
	testutil.PutJSON(t, w.cli, policy.ProjectsPrefix+"proj-a1", policy.Project{ID: "proj-a1", Name: "a1", OrgID: "org-a"})
	testutil.PutJSON(t, w.cli, policy.ProjectsPrefix+"proj-b1", policy.Project{ID: "proj-b1", Name: "b1", OrgID: "org-b"})
	for _, b := range []policy.Binding{
		{ID: "b-root", PrincipalID: "root", Role: policy.RoleAdmin, Scope: policy.SystemScope},
		{ID: "b-olga", PrincipalID: "olga", Role: policy.RoleMember, Scope: "org-a"},
		{ID: "b-alice", PrincipalID: "alice", Role: policy.RoleMember, Scope: "proj-a1"},
		{ID: "b-vera", PrincipalID: "vera", Role: policy.RoleViewer, Scope: "proj-a1"},
	} {
		testutil.PutJSON(t, w.cli, policy.BindingsPrefix+b.ID, b)
	}

	w.cache = testutil.StartPolicyCache(t, w.cli, nil)

	k, err := token.GenerateKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	w.key = k
	w.verifier = token.NewVerifier(token.StaticKeys{k.ID: k.Public()})
	return w
}

// sync waits until the cache reflects every write so far.
func (w *world) sync(t *testing.T) {
	t.Helper()
	if err := w.cache.Sync(testutil.Context(t)); err != nil {
		t.Fatalf("sync: %v", err)
	}
}

func (w *world) authn(mode auth.Mode) *auth.Authenticator {
	return auth.New(mode, w.verifier, w.cache)
}

// tokenOpt changes the claims of a token before it is signed.
type tokenOpt func(*token.Claims)

func issuedAt(at time.Time) tokenOpt {
	return func(c *token.Claims) { c.IssuedAt, c.NotBefore, c.ExpiresAt = at, at, at.Add(time.Hour) }
}

// sign returns a real token of principal at scope carrying roles, valid for
// an hour from now, and its claims.
func (w *world) sign(t *testing.T, principal, scope string, roles []string, opts ...tokenOpt) (string, token.Claims) {
	t.Helper()
	now := time.Now().Truncate(time.Second)
	c := token.Claims{
		ID: "jti-" + principal + "-" + scope, Subject: principal, PrincipalType: token.PrincipalUser,
		Scope: scope, Roles: roles, IssuedAt: now, ExpiresAt: now.Add(time.Hour),
	}
	for _, o := range opts {
		o(&c)
	}
	raw, err := token.Sign(w.key, c)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	if c.IssuedBy == "" {
		c.IssuedBy = c.Subject
	}
	return raw, c
}

// request is a request from remoteAddr with an optional Authorization header.
func request(remoteAddr, authorization string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/api/v1/things", nil)
	r.RemoteAddr = remoteAddr
	if authorization != "" {
		r.Header.Set("Authorization", authorization)
	}
	return r
}

// authenticate runs a.Authenticate on r and fails the test unless it
// attaches a caller.
func authenticate(t *testing.T, a *auth.Authenticator, r *http.Request) context.Context {
	t.Helper()
	ar, err := a.Authenticate(r)
	if err != nil {
		t.Fatalf("Authenticate(%s, %q): %v", r.RemoteAddr, r.Header.Get("Authorization"), err)
	}
	if err := a.RequireAuthenticated(ar); err != nil {
		t.Fatalf("RequireAuthenticated: %v", err)
	}
	return ar.Context()
}

// as is the context of an enforce-mode request from a remote peer bearing
// a token of principal at scope carrying roles.
func (w *world) as(t *testing.T, principal, scope string, roles ...string) context.Context {
	t.Helper()
	raw, _ := w.sign(t, principal, scope, roles)
	return authenticate(t, w.authn(auth.ModeEnforce), request(remoteAddr, "Bearer "+raw))
}

// refusesAll checks every check an authorizing handler makes refuses ctx as
// UNAUTHENTICATED; perm is the permission Require is asked.
func refusesAll(t *testing.T, ctx context.Context, perm string) {
	t.Helper()
	_, err := auth.Caller(ctx)
	testutil.WantCode(t, err, apierr.CodeUnauthenticated)
	testutil.WantCode(t, auth.Require(ctx, perm, policy.System), apierr.CodeUnauthenticated)
	testutil.WantCode(t, auth.RequireOn(ctx, "iam.orgs.get", policy.Target{OrgID: "org-a"}, "org", "org-a"), apierr.CodeUnauthenticated)
	_, err = auth.ListTarget(ctx, "iam.orgs.list", policy.System)
	testutil.WantCode(t, err, apierr.CodeUnauthenticated)
}

const (
	loopbackAddr = "127.0.0.1:40000"
	remoteAddr   = "192.0.2.10:40000"
)

func TestAuthenticateWithoutToken(t *testing.T) {
	w := newWorld(t)
	anyTarget := policy.Target{OrgID: "org-b", ProjectID: "proj-b1"}

	t.Run("loopback mode, loopback peer: bootstrap admin", func(t *testing.T) {
		a := w.authn(auth.ModeLoopback)
		for _, addr := range []string{loopbackAddr, "[::1]:5000"} {
			ctx := authenticate(t, a, request(addr, ""))
			s, err := auth.Caller(ctx)
			if err != nil {
				t.Fatalf("Caller from %s: %v", addr, err)
			}
			if s.PrincipalID != policy.BootstrapAdmin || !s.Bootstrap || s.Scope != policy.SystemScope ||
				!slices.Equal(s.Roles, []string{policy.RoleAdmin}) {
				t.Errorf("caller from %s = %+v, want the bootstrap admin", addr, s)
			}
			for _, tt := range []policy.Target{policy.System, anyTarget} {
				if err := auth.Require(ctx, "chainfire.kv.put", tt); err != nil {
					t.Errorf("bootstrap Require(%+v): %v", tt, err)
				}
			}
			if err := auth.RequireOn(ctx, "iam.users.get", anyTarget, "user", "u1"); err != nil {
				t.Errorf("bootstrap RequireOn: %v", err)
			}
			if got, err := auth.ListTarget(ctx, "iam.orgs.list", policy.System); err != nil || got != policy.System {
				t.Errorf("bootstrap ListTarget = %+v, %v; want System", got, err)
			}
			if err := auth.Require(ctx, "iam.keys.rotate", policy.System); err != nil {
				t.Errorf("bootstrap Require = %v", err)
			}
		}
	})

	anonymous := func(t *testing.T, a *auth.Authenticator, r *http.Request) {
		t.Helper()
		ar, err := a.Authenticate(r)
		if err != nil {
			t.Fatalf("Authenticate of a tokenless request: %v (it passes on, anonymous)", err)
		}
		testutil.WantCode(t, a.RequireAuthenticated(ar), apierr.CodeUnauthenticated)
		refusesAll(t, ar.Context(), "iam.orgs.list")
	}
	t.Run("loopback mode, remote peer: anonymous", func(t *testing.T) {
		anonymous(t, w.authn(auth.ModeLoopback), request(remoteAddr, ""))
	})
	t.Run("loopback mode, proxy headers are not the peer", func(t *testing.T) {
		r := request(remoteAddr, "")
		r.Header.Set("X-Forwarded-For", "127.0.0.1")
		r.Header.Set("X-Real-IP", "127.0.0.1")
		r.Header.Set("Forwarded", "for=127.0.0.1")
		anonymous(t, w.authn(auth.ModeLoopback), r)
	})
	t.Run("enforce mode, loopback peer: anonymous", func(t *testing.T) {
		anonymous(t, w.authn(auth.ModeEnforce), request(loopbackAddr, ""))
	})
	t.Run("enforce mode, remote peer: anonymous", func(t *testing.T) {
		anonymous(t, w.authn(auth.ModeEnforce), request(remoteAddr, ""))
	})
}

func TestAuthenticateToken(t *testing.T) {
	w := newWorld(t)
	good, claims := w.sign(t, "alice", "proj-a1", []string{policy.RoleMember})

	for _, mode := range []auth.Mode{auth.ModeLoopback, auth.ModeEnforce} {
		a := w.authn(mode)
		t.Run(string(mode)+" valid token", func(t *testing.T) {
			for _, addr := range []string{loopbackAddr, remoteAddr} {
				ctx := authenticate(t, a, request(addr, "Bearer "+good))
				s, err := auth.Caller(ctx)
				if err != nil {
					t.Fatal(err)
				}
				// A token wins over loopback trust: the caller is who it says.
				if s.Bootstrap || s.PrincipalID != "alice" || s.Scope != "proj-a1" || s.TokenID != claims.ID ||
					s.IssuedBy != "alice" || !slices.Equal(s.Roles, []string{policy.RoleMember}) ||
					!s.ExpiresAt.Equal(claims.ExpiresAt) || !s.IssuedAt.Equal(claims.IssuedAt) {
					t.Errorf("subject from %s = %+v, want alice's token %+v", addr, s, claims)
				}
			}
		})

		other, err := token.GenerateKey("k1") // same kid, another key: a forgery
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().Truncate(time.Second)
		forged, err := token.Sign(other, token.Claims{ID: "jti-f", Subject: "root", PrincipalType: token.PrincipalUser,
			Scope: policy.SystemScope, Roles: []string{policy.RoleAdmin}, IssuedAt: now, ExpiresAt: now.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		unknownKey, err := token.GenerateKey("k-unknown")
		if err != nil {
			t.Fatal(err)
		}
		unknown, err := token.Sign(unknownKey, token.Claims{ID: "jti-u", Subject: "root", PrincipalType: token.PrincipalUser,
			Scope: policy.SystemScope, Roles: []string{policy.RoleAdmin}, IssuedAt: now, ExpiresAt: now.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		expired, _ := w.sign(t, "alice", "proj-a1", []string{policy.RoleMember}, issuedAt(now.Add(-2*time.Hour)))
		notYet, _ := w.sign(t, "alice", "proj-a1", []string{policy.RoleMember}, func(c *token.Claims) {
			c.NotBefore = now.Add(30 * time.Minute)
		})
		for _, tc := range []struct{ name, header string }{
			{"garbage", "Bearer not-a-token"},
			{"forged signature", "Bearer " + forged},
			{"unknown key", "Bearer " + unknown},
			{"expired", "Bearer " + expired},
			{"not yet valid", "Bearer " + notYet},
			{"truncated", "Bearer " + good[:len(good)-4]},
			{"other scheme", "Basic YWxpY2U6cHc="},
			{"empty bearer", "Bearer "},
		} {
			t.Run(string(mode)+" bad token "+tc.name, func(t *testing.T) {
				// Loopback trust never rescues a bad token.
				for _, addr := range []string{loopbackAddr, remoteAddr} {
					r := request(addr, tc.header)
					ar, err := a.Authenticate(r)
					testutil.WantCode(t, err, apierr.CodeUnauthenticated)
					if ar != r {
						t.Errorf("Authenticate changed the request on failure")
					}
				}
			})
		}
	}
}

func TestAuthenticateRevoked(t *testing.T) {
	w := newWorld(t)
	now := time.Now().Truncate(time.Second)
	a := w.authn(auth.ModeLoopback)

	before := now.Add(-time.Minute) // vera's revocation covers tokens issued up to here
	one, c1 := w.sign(t, "alice", "proj-a1", []string{policy.RoleMember})
	sibling, _ := w.sign(t, "alice", "org-a", []string{policy.RoleMember}) // another jti of alice
	old, _ := w.sign(t, "vera", "proj-a1", []string{policy.RoleViewer}, issuedAt(before.Add(-time.Minute)))
	atBefore, _ := w.sign(t, "vera", "proj-a1", []string{policy.RoleViewer}, issuedAt(before), func(c *token.Claims) {
		c.ID = "jti-vera-at"
	})
	fresh, _ := w.sign(t, "vera", "proj-a1", []string{policy.RoleViewer}, issuedAt(before.Add(time.Second)), func(c *token.Claims) {
		c.ID = "jti-vera-fresh"
	})
	// A token issued by vera to someone else falls with vera's revocation.
	byVera, _ := w.sign(t, "bot", "proj-a1", []string{policy.RoleViewer}, issuedAt(before.Add(-time.Minute)), func(c *token.Claims) {
		c.IssuedBy = "vera"
	})
	for _, raw := range []string{one, sibling, old, atBefore, byVera} {
		authenticate(t, a, request(remoteAddr, "Bearer "+raw))
	}

	testutil.PutJSON(t, w.cli, policy.RevokedTokensPrefix+c1.ID, policy.RevokedToken{ID: c1.ID, ExpiresAt: c1.ExpiresAt})
	testutil.PutJSON(t, w.cli, policy.RevokedPrincipalsPrefix+"vera", policy.RevokedPrincipal{PrincipalID: "vera", Before: before})
	w.sync(t)

	for _, tc := range []struct {
		name    string
		raw     string
		revoked bool
	}{
		{"the revoked token", one, true},
		{"another token of the same principal", sibling, false},
		{"token of a revoked principal", old, true},
		{"token issued at the revocation's second", atBefore, true},
		{"token issued by a revoked principal", byVera, true},
		{"token issued after the principal's revocation", fresh, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, mode := range []auth.Mode{auth.ModeLoopback, auth.ModeEnforce} {
				for _, addr := range []string{loopbackAddr, remoteAddr} {
					_, err := w.authn(mode).Authenticate(request(addr, "Bearer "+tc.raw))
					if tc.revoked {
						e := testutil.WantCode(t, err, apierr.CodeUnauthenticated)
						if e.Message != "token revoked" {
							t.Errorf("message %q, want \"token revoked\"", e.Message)
						}
					} else if err != nil {
						t.Errorf("%s from %s: %v", mode, addr, err)
					}
				}
			}
		})
	}
}

// TestAuthenticateBeforeCacheLoads checks that a valid token is not let
// through while revocations cannot be known: the cache says UNAVAILABLE.
func TestAuthenticateBeforeCacheLoads(t *testing.T) {
	w := newWorld(t)
	cold := policy.NewCache(w.cli, slog.New(slog.DiscardHandler)) // never started
	t.Cleanup(func() { _ = cold.Stop(context.Background()) })
	a := auth.New(auth.ModeEnforce, w.verifier, cold)
	raw, _ := w.sign(t, "alice", "proj-a1", []string{policy.RoleMember})
	_, err := a.Authenticate(request(remoteAddr, "Bearer "+raw))
	testutil.WantCode(t, err, apierr.CodeUnavailable)

	// Loopback trust needs no records, so it works before the load; a
	// decision about a token holder does not.
	boot := authenticate(t, auth.New(auth.ModeLoopback, w.verifier, cold), request(loopbackAddr, ""))
	if err := auth.Require(boot, "iam.orgs.create", policy.System); err != nil {
		t.Errorf("bootstrap Require before load: %v", err)
	}
	holder := auth.WithSubject(context.Background(), a, auth.SubjectOf(&token.Claims{
		ID: "j", Subject: "alice", PrincipalType: token.PrincipalUser, Scope: "proj-a1", Roles: []string{policy.RoleMember}, IssuedBy: "alice",
	}))
	testutil.WantCode(t, auth.Require(holder, "plasmavmc.vms.get", policy.Target{ProjectID: "proj-a1"}), apierr.CodeUnavailable)
}

func TestRequireAndRequireOn(t *testing.T) {
	w := newWorld(t)
	a1 := policy.Target{OrgID: "org-a", ProjectID: "proj-a1"}
	b1 := policy.Target{OrgID: "org-b", ProjectID: "proj-b1"}

	tests := []struct {
		name string
		ctx  context.Context
		perm string
		t    policy.Target
		// want is the code of Require and of RequireOn ("" = allowed);
		// readCode differs only for out-of-scope targets.
		want, readCode apierr.Code
	}{
		{"member in own project", w.as(t, "alice", "proj-a1", "member"), "plasmavmc.vms.create", a1, "", ""},
		{"member reads iam", w.as(t, "alice", "proj-a1", "member"), "iam.users.get", a1, "", ""},
		{"member denied in own project", w.as(t, "alice", "proj-a1", "member"), "iam.users.create", a1, apierr.CodeForbidden, apierr.CodeForbidden},
		{"member, raw kv denied", w.as(t, "alice", "proj-a1", "member"), "chainfire.kv.get", a1, apierr.CodeForbidden, apierr.CodeForbidden},
		{"member, other org's project", w.as(t, "alice", "proj-a1", "member"), "plasmavmc.vms.get", b1, apierr.CodeForbidden, apierr.CodeNotFound},
		{"member, system target", w.as(t, "alice", "proj-a1", "member"), "plasmavmc.vms.get", policy.System, apierr.CodeForbidden, apierr.CodeNotFound},
		{"viewer reads", w.as(t, "vera", "proj-a1", "viewer"), "plasmavmc.vms.get", a1, "", ""},
		{"viewer cannot create", w.as(t, "vera", "proj-a1", "viewer"), "plasmavmc.vms.create", a1, apierr.CodeForbidden, apierr.CodeForbidden},
		{"org member, org's project", w.as(t, "olga", "org-a", "member"), "plasmavmc.vms.create", a1, "", ""},
		{"org member, other org", w.as(t, "olga", "org-a", "member"), "plasmavmc.vms.get", b1, apierr.CodeForbidden, apierr.CodeNotFound},
		{"token role the principal does not hold", w.as(t, "alice", "proj-a1", "admin"), "plasmavmc.vms.get", a1, apierr.CodeForbidden, apierr.CodeForbidden},
		{"unbound principal", w.as(t, "mallory", "proj-a1", "admin"), "plasmavmc.vms.get", a1, apierr.CodeForbidden, apierr.CodeForbidden},
		{"system admin anywhere", w.as(t, "root", policy.SystemScope, "admin"), "chainfire.kv.put", policy.System, "", ""},
		{"system admin in a project", w.as(t, "root", policy.SystemScope, "admin"), "iam.users.create", b1, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			caller, err := auth.Caller(tc.ctx)
			if err != nil {
				t.Fatal(err)
			}
			check := func(what string, err error, want apierr.Code) {
				t.Helper()
				if want == "" {
					if err != nil {
						t.Errorf("%s: %v, want allowed", what, err)
					}
					return
				}
				var e *apierr.Error
				if !errors.As(err, &e) || e.Code != want {
					t.Fatalf("%s: %v, want %s", what, err, want)
				}
				switch want {
				case apierr.CodeForbidden:
					if e.Details["permission"] != tc.perm || e.Details["scope_id"] != caller.Scope {
						t.Errorf("%s: details %v, want permission %q and scope_id %q", what, e.Details, tc.perm, caller.Scope)
					}
				case apierr.CodeNotFound:
					if e.Details["kind"] != "vm" || e.Details["id"] != "vm-42" {
						t.Errorf("%s: details %v, want kind vm, id vm-42", what, e.Details)
					}
				}
			}
			check("Require", auth.Require(tc.ctx, tc.perm, tc.t), tc.want)
			check("RequireOn", auth.RequireOn(tc.ctx, tc.perm, tc.t, "vm", "vm-42"), tc.readCode)
		})
	}

	// A 403 names the permission, never the token, and each error is its
	// own value: details changed by one caller do not leak to the next.
	ctx := w.as(t, "vera", "proj-a1", "viewer")
	e1 := testutil.WantCode(t, auth.Require(ctx, "plasmavmc.vms.create", a1), apierr.CodeForbidden)
	e1.Details["permission"] = "tampered"
	e2 := testutil.WantCode(t, auth.Require(ctx, "plasmavmc.vms.create", a1), apierr.CodeForbidden)
	if e2.Details["permission"] != "plasmavmc.vms.create" {
		t.Errorf("a second 403 carries %v", e2.Details)
	}

	// Removing the binding takes effect on the same token at once.
	if _, err := w.cli.Delete(testutil.Context(t), policy.BindingsPrefix+"b-vera"); err != nil {
		t.Fatal(err)
	}
	w.sync(t)
	testutil.WantCode(t, auth.Require(ctx, "plasmavmc.vms.get", a1), apierr.CodeForbidden)
}

func TestListTarget(t *testing.T) {
	w := newWorld(t)
	const list = "plasmavmc.vms.list"
	tests := []struct {
		name  string
		ctx   context.Context
		perm  string
		named policy.Target
		want  policy.Target
		code  apierr.Code
	}{
		{"project token, nothing named", w.as(t, "alice", "proj-a1", "member"), list, policy.System, policy.Target{ProjectID: "proj-a1"}, ""},
		{"project token names its project", w.as(t, "alice", "proj-a1", "member"), list, policy.Target{OrgID: "org-a", ProjectID: "proj-a1"}, policy.Target{OrgID: "org-a", ProjectID: "proj-a1"}, ""},
		{"project token names another project", w.as(t, "alice", "proj-a1", "member"), list, policy.Target{ProjectID: "proj-b1"}, policy.Target{}, apierr.CodeForbidden},
		{"project token names a sibling in its org", w.as(t, "alice", "proj-a1", "member"), list, policy.Target{OrgID: "org-a", ProjectID: "proj-a2"}, policy.Target{}, apierr.CodeForbidden},
		{"project token names its org", w.as(t, "alice", "proj-a1", "member"), list, policy.Target{OrgID: "org-a"}, policy.Target{}, apierr.CodeForbidden},
		{"project token without the permission", w.as(t, "alice", "proj-a1", "member"), "chainfire.kv.list", policy.System, policy.Target{}, apierr.CodeForbidden},
		{"org token, nothing named", w.as(t, "olga", "org-a", "member"), list, policy.System, policy.Target{OrgID: "org-a"}, ""},
		{"org token names a project of its org", w.as(t, "olga", "org-a", "member"), list, policy.Target{OrgID: "org-a", ProjectID: "proj-a1"}, policy.Target{OrgID: "org-a", ProjectID: "proj-a1"}, ""},
		{"org token names another org", w.as(t, "olga", "org-a", "member"), list, policy.Target{OrgID: "org-b"}, policy.Target{}, apierr.CodeForbidden},
		{"system token, nothing named", w.as(t, "root", policy.SystemScope, "admin"), list, policy.System, policy.System, ""},
		{"system token names a project", w.as(t, "root", policy.SystemScope, "admin"), list, policy.Target{ProjectID: "proj-b1"}, policy.Target{ProjectID: "proj-b1"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := auth.ListTarget(tc.ctx, tc.perm, tc.named)
			if tc.code != "" {
				e := testutil.WantCode(t, err, tc.code)
				if e.Details["permission"] != tc.perm {
					t.Errorf("details %v, want permission %q", e.Details, tc.perm)
				}
				if got != (policy.Target{}) {
					t.Errorf("target %+v with the error, want none", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ListTarget: %v", err)
			}
			if got != tc.want {
				t.Errorf("ListTarget(%+v) = %+v, want %+v", tc.named, got, tc.want)
			}
		})
	}
}

// TestNoAuthenticatorFailsClosed checks that a handler reached without any
// authenticator in its context (a wiring mistake) refuses rather than
// allows.
func TestNoAuthenticatorFailsClosed(t *testing.T) {
	w := newWorld(t)
	admin := &policy.Subject{PrincipalID: "root", Scope: policy.SystemScope, Roles: []string{policy.RoleAdmin}, IssuedBy: "root"}
	boot := &policy.Subject{PrincipalID: policy.BootstrapAdmin, Scope: policy.SystemScope, Roles: []string{policy.RoleAdmin}, Bootstrap: true}
	for name, ctx := range map[string]context.Context{
		"empty context":                   context.Background(),
		"subject without authenticator":   auth.WithSubject(context.Background(), nil, admin),
		"bootstrap without authenticator": auth.WithSubject(context.Background(), nil, boot),
		"request never authenticated":     httptest.NewRequest(http.MethodGet, "/", nil).Context(),
	} {
		t.Run(name, func(t *testing.T) {
			refusesAll(t, ctx, "iam.orgs.create")
		})
	}
	// The same subject with the authenticator is allowed: the refusal above
	// is for the missing authenticator, not the subject.
	ctx := auth.WithSubject(context.Background(), w.authn(auth.ModeEnforce), admin)
	if err := auth.Require(ctx, "iam.orgs.create", policy.System); err != nil {
		t.Errorf("with an authenticator: %v", err)
	}
}
