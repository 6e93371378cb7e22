package e2e

// Black-box tests of IAM and of token checking on ChainFire's REST: the
// built binary's `photon up` on free ports, driven only over HTTP.

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/photoncloud/photon/internal/auth/token"
	"github.com/photoncloud/photon/internal/testutil"
)

// upStack is `photon up` on free ports. Its addresses and data dir are
// kept, so a restart is the same installation.
type upStack struct {
	dataDir                    string
	cfAddr, grpcAddr, peerAddr string
	iamListen                  string // --iam-http-addr
	iamAddr                    string // where the test reaches IAM
	csAddr                     string // --creditservice-http-addr
	pnAddr                     string // --prismnet-http-addr
	vmAddr                     string // --plasmavmc-http-addr
	s3Addr                     string // --lightningstor-addr
	nlAddr                     string // --nightlight-addr
	fdbAddr, fdbRaft           string // --flaredb-http-addr, --flaredb-raft-addr
	flags                      []string
	proc                       *upProcess
	hc                         *http.Client
}

// newUpStack allocates ports and a data dir; flags are added to `photon
// up`'s. A non-empty iamHost makes IAM listen on iamHost:<port> (reached
// over 127.0.0.1).
func newUpStack(t *testing.T, iamHost string, flags ...string) *upStack {
	t.Helper()
	s := &upStack{
		dataDir:  t.TempDir(),
		cfAddr:   testutil.FreeAddr(t),
		grpcAddr: testutil.FreeAddr(t),
		peerAddr: testutil.FreeAddr(t),
		iamAddr:  testutil.FreeAddr(t),
		csAddr:   testutil.FreeAddr(t),
		pnAddr:   testutil.FreeAddr(t),
		vmAddr:   testutil.FreeAddr(t),
		s3Addr:   testutil.FreeAddr(t),
		nlAddr:   testutil.FreeAddr(t),
		fdbAddr:  testutil.FreeAddr(t),
		fdbRaft:  testutil.FreeAddr(t),
		flags:    flags,
		hc:       &http.Client{Timeout: 15 * time.Second},
	}
	s.iamListen = s.iamAddr
	if iamHost != "" {
		_, port, _ := net.SplitHostPort(s.iamAddr)
		s.iamListen = net.JoinHostPort(iamHost, port)
	}
	t.Cleanup(s.hc.CloseIdleConnections)
	return s
}

// startUpStack starts a new stack on loopback ports with flags.
func startUpStack(t *testing.T, flags ...string) *upStack {
	t.Helper()
	s := newUpStack(t, "", flags...)
	s.start(t)
	return s
}

// start runs `photon up` and waits for its endpoint banner, whose last line
// is printed once every service serves and DATA/admin.token is written.
func (s *upStack) start(t *testing.T) {
	t.Helper()
	args := append([]string{"up",
		"--data-dir", s.dataDir,
		"--chainfire-http-addr", s.cfAddr,
		"--chainfire-grpc-addr", s.grpcAddr,
		"--chainfire-peer-addr", s.peerAddr,
		"--iam-http-addr", s.iamListen,
		"--creditservice-http-addr", s.csAddr,
		"--prismnet-http-addr", s.pnAddr,
		"--plasmavmc-http-addr", s.vmAddr,
		"--lightningstor-addr", s.s3Addr,
		"--nightlight-addr", s.nlAddr,
		"--flaredb-http-addr", s.fdbAddr,
		"--flaredb-raft-addr", s.fdbRaft,
		"--hypervisor", "off",
		// The data plane would program this machine's own namespace;
		// the tests that want it say so (a later flag wins).
		"--prismnet-dataplane", "off",
	}, s.flags...)
	cmd := exec.Command(testutil.PhotonBinary(t), args...)
	cmd.Env = cleanEnv()
	s.proc = startUp(t, cmd, func(p *upProcess) bool { return strings.Contains(p.stdout.String(), "admin token in ") })
}

// restart stops the stack with SIGTERM (exit 0 required) and starts it
// again on the same data dir and ports.
func (s *upStack) restart(t *testing.T) {
	t.Helper()
	s.proc.stop(t)
	s.hc.CloseIdleConnections()
	s.start(t)
}

// wantAuthLine checks the banner's auth line ("auth: <mode> mode; admin
// token in …") names mode.
func (s *upStack) wantAuthLine(t *testing.T, mode string) {
	t.Helper()
	for _, l := range strings.Split(s.proc.stdout.String(), "\n") {
		if strings.HasPrefix(l, "auth: ") {
			if !strings.HasPrefix(l, "auth: "+mode+" mode") {
				t.Errorf("banner auth line %q, want %s mode", l, mode)
			}
			return
		}
	}
	t.Errorf("no banner auth line, want %s mode", mode)
}

// cf and iam send one request to ChainFire's or IAM's REST (with a bearer
// token unless tok is "") and fail the test if there is no envelope.
func (s *upStack) cf(t *testing.T, tok, method, path string, body any) response {
	t.Helper()
	return s.call(t, s.cfAddr, tok, method, path, body)
}

func (s *upStack) iam(t *testing.T, tok, method, path string, body any) response {
	t.Helper()
	return s.call(t, s.iamAddr, tok, method, path, body)
}

func (s *upStack) call(t *testing.T, addr, tok, method, path string, body any) response {
	t.Helper()
	r, err := callAddr(context.Background(), s.hc, addr, tok, method, path, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// adminToken reads DATA/admin.token.
func (s *upStack) adminToken(t *testing.T) string {
	t.Helper()
	return testutil.AdminToken(t, s.dataDir)
}

// privateAdminToken checks DATA/admin.token is its owner's alone (mode
// 0600) and returns the token in it.
func (s *upStack) privateAdminToken(t *testing.T) string {
	t.Helper()
	fi, err := os.Stat(filepath.Join(s.dataDir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("admin.token mode %v, want 0600", fi.Mode().Perm())
	}
	return s.adminToken(t)
}

// issued is the data of a token answer.
type issued struct {
	Token     string    `json:"token"`
	TokenID   string    `json:"token_id"`
	Principal string    `json:"principal_id"`
	Scope     string    `json:"scope_id"`
	Roles     []string  `json:"roles"`
	ExpiresAt time.Time `json:"expires_at"`
}

// issue asks IAM for a token (as the holder of bearer, or the loopback
// bootstrap admin when bearer is "") and requires 200.
func (s *upStack) issue(t *testing.T, bearer string, body map[string]any) issued {
	t.Helper()
	r := s.iam(t, bearer, "POST", "/api/v1/auth/token", body)
	var it issued
	if r.status != http.StatusOK {
		t.Fatalf("issue %v: %s", body, r)
	}
	if err := r.decode(&it); err != nil || it.Token == "" {
		t.Fatalf("issue %v: %v %s", body, err, r)
	}
	return it
}

// systemAdmin issues, as the loopback bootstrap admin, a delegated token
// with roles ["admin"] at scope "system": it may use ChainFire's REST.
func (s *upStack) systemAdmin(t *testing.T, principal string, ttl int) issued {
	t.Helper()
	return s.issue(t, "", map[string]any{"principal_id": principal, "principal_type": "service_account",
		"scope_id": "system", "roles": []string{"admin"}, "ttl_seconds": ttl})
}

// verification is the data of POST /api/v1/auth/verify.
type verification struct {
	Valid          bool      `json:"valid"`
	Reason         string    `json:"reason"`
	TokenID        string    `json:"token_id"`
	Principal      string    `json:"principal_id"`
	Scope          string    `json:"scope_id"`
	Roles          []string  `json:"roles"`
	EffectiveRoles []string  `json:"effective_roles"`
	IssuedBy       string    `json:"issued_by"`
	Delegated      bool      `json:"delegated"`
	ExpiresAt      time.Time `json:"expires_at"`
}

func (s *upStack) verify(t *testing.T, tok string) verification {
	t.Helper()
	r := s.iam(t, "", "POST", "/api/v1/auth/verify", map[string]string{"token": tok})
	var v verification
	if r.status != http.StatusOK {
		t.Fatalf("verify: %s", r)
	}
	if err := r.decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// wantCode fails unless r has status and (for an error) code.
func wantCode(t *testing.T, what string, r response, status int, code string) {
	t.Helper()
	if r.status != status || r.errCode() != code {
		t.Errorf("%s: %s, want %d %s", what, r, status, code)
	}
}

// TestIAMAdminTokenLoopback: in the default mode (every listener on
// loopback) the banner says loopback, DATA/admin.token is the bootstrap
// admin's own token, mode 0600, and it is checked — not ignored — as a
// bearer token on ChainFire and IAM.
func TestIAMAdminTokenLoopback(t *testing.T) {
	s := startUpStack(t)
	s.wantAuthLine(t, "loopback")
	admin := s.privateAdminToken(t)
	v := s.verify(t, admin)
	if !v.Valid || v.Principal != "photon-admin" || v.Scope != "system" || fmt.Sprint(v.Roles) != "[admin]" || v.Delegated {
		t.Errorf("admin token verifies as %+v", v)
	}
	wantCode(t, "ChainFire with the admin token", s.cf(t, admin, "GET", "/api/v1/cluster/status", nil), 200, "")
	wantCode(t, "IAM with the admin token", s.iam(t, admin, "GET", "/api/v1/users", nil), 200, "")
	// A token that is present is verified even from loopback: a broken one
	// is not waved through as the bootstrap admin.
	broken := admin[:len(admin)-4] + "AAAA"
	if broken == admin {
		broken = admin[:len(admin)-4] + "BBBB"
	}
	wantCode(t, "ChainFire with a broken admin token", s.cf(t, broken, "GET", "/api/v1/cluster/status", nil), 401, "UNAUTHENTICATED")
	wantCode(t, "IAM with a broken admin token", s.iam(t, broken, "GET", "/api/v1/users", nil), 401, "UNAUTHENTICATED")
}

// enforceRoute is one request of the enforce-mode table.
type enforceRoute struct {
	svc          string // "chainfire" or "iam"
	method, path string
	body         any
	adminStatus  int // with the admin token; 0: not a JSON answer (not sent)
}

// enforceRoutes covers every ChainFire route and every IAM route that acts
// for a caller. IAM's token endpoints that are how a caller gets or checks
// a token (JWKS, verify, login, self-issue with an access key) answer
// without one by design.
var enforceRoutes = []enforceRoute{
	{"chainfire", "GET", "/api/v1/cluster/status", nil, 200},
	{"chainfire", "GET", "/api/v1/cluster/members", nil, 200},
	{"chainfire", "GET", "/api/v1/kv/enforce-key", nil, 404}, // 404 (not 401) before the admin's put
	{"chainfire", "POST", "/api/v1/kv/enforce-key/put", map[string]string{"value": "v"}, 200},
	{"chainfire", "GET", "/api/v1/kv?prefix=enforce-", nil, 200},
	{"chainfire", "POST", "/api/v1/kv/enforce-key/delete", nil, 200},
	{"chainfire", "POST", "/api/v1/cluster/members", map[string]any{"node_id": 2, "address": "127.0.0.1:1"}, 0},
	{"chainfire", "DELETE", "/api/v1/cluster/members/2", nil, 0},
	{"chainfire", "GET", "/api/v1/watch?prefix=enforce-", nil, 0},
	{"chainfire", "GET", "/metrics", nil, 0},
	{"iam", "GET", "/api/v1/users", nil, 200},
	{"iam", "POST", "/api/v1/users", map[string]string{"id": "user-enforce", "name": "Enforce"}, 201},
	{"iam", "GET", "/api/v1/users/photon-admin", nil, 200},
	{"iam", "GET", "/api/v1/orgs", nil, 200},
	{"iam", "POST", "/api/v1/orgs", map[string]string{"id": "org-enforce", "name": "Enforce"}, 201},
	{"iam", "GET", "/api/v1/projects", nil, 200},
	{"iam", "POST", "/api/v1/projects", map[string]string{"id": "proj-enforce", "name": "Enforce", "org_id": "org-enforce"}, 201},
	{"iam", "GET", "/api/v1/roles", nil, 200},
	{"iam", "GET", "/api/v1/bindings", nil, 200},
	{"iam", "POST", "/api/v1/bindings", map[string]string{"principal_id": "user-enforce", "role": "viewer", "scope_id": "proj-enforce"}, 201},
	{"iam", "GET", "/api/v1/credentials", nil, 200},
	{"iam", "POST", "/api/v1/auth/token", map[string]string{"principal_id": "user-enforce", "scope_id": "proj-enforce"}, 200},
	{"iam", "POST", "/api/v1/auth/revoke", map[string]string{"principal_id": "user-enforce"}, 200},
	{"iam", "POST", "/api/v1/authz/check", map[string]string{"permission": "chainfire.kv.get"}, 200},
	{"iam", "GET", "/api/v1/auth/keys", nil, 200},
	{"iam", "GET", "/metrics", nil, 0},
}

// TestIAMEnforceMode: with --auth-mode enforce every route but /health
// answers 401 UNAUTHENTICATED to a tokenless request — even from loopback —
// and changes nothing; the admin token from DATA/admin.token passes.
func TestIAMEnforceMode(t *testing.T) {
	s := startUpStack(t, "--auth-mode", "enforce")
	s.wantAuthLine(t, "enforce")
	admin := s.privateAdminToken(t)
	addr := map[string]string{"chainfire": s.cfAddr, "iam": s.iamAddr}

	for _, svc := range []string{"chainfire", "iam"} {
		r := s.call(t, addr[svc], "", "GET", "/health", nil)
		wantCode(t, svc+" /health without a token", r, 200, "")
	}
	t.Run("without a token", func(t *testing.T) {
		for _, rt := range enforceRoutes {
			r := s.call(t, addr[rt.svc], "", rt.method, rt.path, rt.body)
			wantCode(t, rt.svc+" "+rt.method+" "+rt.path, r, 401, "UNAUTHENTICATED")
		}
	})
	// Nothing the tokenless requests tried happened.
	wantCode(t, "the tokenless put", s.cf(t, admin, "GET", "/api/v1/kv/enforce-key", nil), 404, "NOT_FOUND")
	wantCode(t, "the tokenless user create", s.iam(t, admin, "GET", "/api/v1/users/user-enforce", nil), 404, "NOT_FOUND")
	wantCode(t, "the tokenless member add", s.cf(t, admin, "GET", "/api/v1/cluster/members", nil), 200, "")
	if r := s.cf(t, admin, "GET", "/api/v1/cluster/members", nil); strings.Contains(string(r.env.Data), `127.0.0.1:1"`) {
		t.Errorf("the tokenless member add happened: %s", r)
	}

	t.Run("with the admin token", func(t *testing.T) {
		for _, rt := range enforceRoutes {
			if rt.adminStatus == 0 {
				continue
			}
			r := s.call(t, addr[rt.svc], admin, rt.method, rt.path, rt.body)
			if r.status != rt.adminStatus {
				t.Errorf("%s %s %s: %s, want %d", rt.svc, rt.method, rt.path, r, rt.adminStatus)
			}
		}
	})

	t.Run("token endpoints answer without a token", func(t *testing.T) {
		// What a caller needs to get or check a token cannot require one.
		v := s.verify(t, admin)
		if !v.Valid || v.Principal != "photon-admin" {
			t.Errorf("verify of the admin token: %+v", v)
		}
		wantCode(t, "GET /api/v1/auth/jwks", s.iam(t, "", "GET", "/api/v1/auth/jwks", nil), 200, "")
		wantCode(t, "login with a wrong password", s.iam(t, "", "POST", "/api/v1/auth/login",
			map[string]string{"principal_id": "user-enforce", "password": "not-the-password", "scope_id": "proj-enforce"}), 401, "UNAUTHENTICATED")
		wantCode(t, "self-issue with an unknown access key", s.iam(t, "", "POST", "/api/v1/auth/token",
			map[string]string{"access_key_id": "PKNOSUCHKEY0000000000", "secret_access_key": "x"}), 401, "UNAUTHENTICATED")
	})
}

// TestIAMAutoModeOffLoopback: --auth-mode auto (the default) with IAM
// listening on 0.0.0.0 is enforce for the whole process: a tokenless
// request from loopback is refused on IAM and ChainFire alike.
func TestIAMAutoModeOffLoopback(t *testing.T) {
	s := newUpStack(t, "0.0.0.0")
	s.start(t)
	s.wantAuthLine(t, "enforce")
	wantCode(t, "IAM without a token", s.iam(t, "", "GET", "/api/v1/users", nil), 401, "UNAUTHENTICATED")
	wantCode(t, "ChainFire without a token", s.cf(t, "", "GET", "/api/v1/cluster/status", nil), 401, "UNAUTHENTICATED")
	wantCode(t, "IAM /health", s.iam(t, "", "GET", "/health", nil), 200, "")
	admin := s.adminToken(t)
	// ChainFire reaches IAM's JWKS over loopback although IAM listens on
	// the wildcard address.
	wantCode(t, "ChainFire with the admin token", s.cf(t, admin, "GET", "/api/v1/cluster/status", nil), 200, "")
	wantCode(t, "IAM with the admin token", s.iam(t, admin, "GET", "/api/v1/users", nil), 200, "")
}

// TestIAMRevocationReachesChainFire: a token revoked at IAM stops working
// on ChainFire within the 5 s contract of docs/iam.md.
func TestIAMRevocationReachesChainFire(t *testing.T) {
	s := startUpStack(t)
	tok := s.systemAdmin(t, "ops-robot", 600)
	other := s.systemAdmin(t, "ops-robot-2", 600)
	wantCode(t, "ChainFire with the token", s.cf(t, tok.Token, "GET", "/api/v1/cluster/status", nil), 200, "")

	r := s.iam(t, "", "POST", "/api/v1/auth/revoke", map[string]string{"token": tok.Token})
	var rev struct {
		Revoked bool   `json:"revoked"`
		TokenID string `json:"token_id"`
	}
	if r.status != 200 || r.decode(&rev) != nil || !rev.Revoked || rev.TokenID != tok.TokenID {
		t.Fatalf("revoke: %s", r)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := s.cf(t, tok.Token, "GET", "/api/v1/cluster/status", nil)
		if r.status == 401 && r.errCode() == "UNAUTHENTICATED" {
			break
		}
		if r.status != 200 {
			t.Fatalf("ChainFire with the revoked token: %s", r)
		}
		if time.Now().After(deadline) {
			t.Fatalf("ChainFire still accepts the token 5 s after its revocation")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if v := s.verify(t, tok.Token); v.Valid || v.Reason == "" {
		t.Errorf("IAM verifies the revoked token as %+v", v)
	}
	// Only that token: another one of the same issuer still works.
	wantCode(t, "ChainFire with another token", s.cf(t, other.Token, "GET", "/api/v1/cluster/status", nil), 200, "")
}

// TestIAMTokenAttacks sends ChainFire's REST tokens an attacker can make:
// each is refused with 401, although the request comes from loopback (where
// sending no token at all would act as the bootstrap admin).
func TestIAMTokenAttacks(t *testing.T) {
	s := startUpStack(t)
	genuine := s.systemAdmin(t, "attack-target", 600)
	wantCode(t, "ChainFire with the genuine token", s.cf(t, genuine.Token, "GET", "/api/v1/cluster/status", nil), 200, "")
	parts := strings.Split(genuine.Token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a compact JWS", genuine.Token)
	}
	var hdr struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil || json.Unmarshal(b, &hdr) != nil || hdr.Alg != "EdDSA" || hdr.Kid == "" {
		t.Fatalf("token header %s: %v", b, err)
	}
	var jwks token.JWKS
	resp, err := s.hc.Get("http://" + s.iamAddr + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&jwks)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	var pubX string
	for _, k := range jwks.Keys {
		if k.Kid == hdr.Kid {
			pubX = k.X
		}
	}
	pub, err := base64.RawURLEncoding.DecodeString(pubX)
	if err != nil || len(pub) != 32 {
		t.Fatalf("no Ed25519 key %s in the JWKS %+v", hdr.Kid, jwks)
	}

	// The genuine token's claims, for tokens signed some other way.
	now := time.Now().UTC().Truncate(time.Second)
	claims := token.Claims{ID: "tok-forged", Subject: "attack-target", PrincipalType: "service_account", Scope: "system",
		Roles: []string{"admin"}, IssuedBy: "photon-admin", IssuedAt: now, ExpiresAt: now.Add(10 * time.Minute)}
	signWith := func(kid string) string {
		t.Helper()
		k, err := token.GenerateKey(kid)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := token.Sign(k, claims)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	seg := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	hs256 := func(key []byte) string {
		signing := seg(map[string]string{"alg": "HS256", "typ": "JWT", "kid": hdr.Kid}) + "." + parts[1]
		m := hmac.New(sha256.New, key)
		m.Write([]byte(signing))
		return signing + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	// flip changes the first character of a base64url segment, which keeps
	// it canonical (the last one carries padding bits).
	flip := func(s string) string {
		if s[0] == 'A' {
			return "B" + s[1:]
		}
		return "A" + s[1:]
	}
	// A payload the holder would like better: another principal, same
	// signature.
	var payload map[string]any
	b, _ = base64.RawURLEncoding.DecodeString(parts[1])
	if err := json.Unmarshal(b, &payload); err != nil {
		t.Fatal(err)
	}
	payload["sub"] = "photon-admin"
	payload["ib"] = "photon-admin"

	expired := s.systemAdmin(t, "attack-target", 1)

	attacks := []struct {
		name, token string
	}{
		{"forged signature", parts[0] + "." + parts[1] + "." + flip(parts[2])},
		{"tampered payload", parts[0] + "." + seg(payload) + "." + parts[2]},
		{"signed by another Ed25519 key with the real kid", signWith(hdr.Kid)},
		{"alg none", seg(map[string]string{"alg": "none", "typ": "JWT", "kid": hdr.Kid}) + "." + parts[1] + "."},
		{"alg none with the genuine signature", seg(map[string]string{"alg": "none", "typ": "JWT", "kid": hdr.Kid}) + "." + parts[1] + "." + parts[2]},
		{"HS256 keyed with the JWKS public key", hs256(pub)},
		{"HS256 keyed with the JWKS x string", hs256([]byte(pubX))},
		{"unknown kid", signWith("kid-nobody-published")},
		{"no kid", strings.Join(append([]string{seg(map[string]string{"alg": "EdDSA", "typ": "JWT"})}, parts[1:]...), ".")},
		{"not a JWT", "not-a-jwt"},
		{"expired", expired.Token},
	}
	// The expired token had ttl_seconds 1: wait until it is past.
	time.Sleep(time.Until(expired.ExpiresAt.Add(time.Second)))
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			for _, path := range []string{"/api/v1/cluster/status", "/api/v1/kv?prefix="} {
				r := s.cf(t, a.token, "GET", path, nil)
				wantCode(t, "ChainFire GET "+path, r, 401, "UNAUTHENTICATED")
				if r.env.Error != nil {
					t.Logf("%s: %s", path, r.env.Error.Message)
				}
			}
			// Nor may it write.
			r := s.cf(t, a.token, "POST", "/api/v1/kv/attack/put", map[string]string{"value": a.name})
			wantCode(t, "ChainFire put", r, 401, "UNAUTHENTICATED")
			// IAM's own routes refuse it too, and verify calls it invalid.
			wantCode(t, "IAM GET /api/v1/users", s.iam(t, a.token, "GET", "/api/v1/users", nil), 401, "UNAUTHENTICATED")
			if v := s.verify(t, a.token); v.Valid || v.Reason == "" {
				t.Errorf("IAM verifies it as %+v", v)
			}
		})
	}
	// No attack wrote anything.
	wantCode(t, "the attacks' key", s.cf(t, "", "GET", "/api/v1/kv/attack", nil), 404, "NOT_FOUND")
	// The genuine token still works: the attacks were refused for what
	// they changed, not because the test's requests were broken.
	wantCode(t, "ChainFire with the genuine token after the attacks", s.cf(t, genuine.Token, "GET", "/api/v1/cluster/status", nil), 200, "")
}

// TestIAMStateSurvivesRestart: a user, its binding and credential survive a
// SIGTERM and a second `photon up` on the same data dir; tokens issued
// before still verify (the signing keys are persisted) and the credential
// still issues tokens.
func TestIAMStateSurvivesRestart(t *testing.T) {
	s := startUpStack(t)
	r := s.iam(t, "", "POST", "/api/v1/projects", map[string]string{"id": "proj-keep", "name": "Keep", "org_id": "org-keep"})
	wantCode(t, "create project", r, 201, "")
	r = s.iam(t, "", "POST", "/api/v1/users", map[string]string{"id": "user-dana", "name": "Dana", "email": "dana@example.com"})
	wantCode(t, "create user", r, 201, "")
	r = s.iam(t, "", "POST", "/api/v1/bindings", map[string]string{"principal_id": "user-dana", "role": "member", "scope_id": "proj-keep"})
	wantCode(t, "create binding", r, 201, "")
	var binding struct {
		ID string `json:"id"`
	}
	if err := r.decode(&binding); err != nil || binding.ID == "" {
		t.Fatalf("binding: %v %s", err, r)
	}
	r = s.iam(t, "", "POST", "/api/v1/credentials", map[string]string{"principal_id": "user-dana", "project_id": "proj-keep"})
	wantCode(t, "create credential", r, 201, "")
	var cred struct {
		AccessKeyID     string `json:"access_key_id"`
		SecretAccessKey string `json:"secret_access_key"`
	}
	if err := r.decode(&cred); err != nil || cred.AccessKeyID == "" || cred.SecretAccessKey == "" {
		t.Fatalf("credential: %v %s", err, r)
	}
	// AWS-shaped, so S3 tools take it: a 20-character key id, a
	// 40-character secret.
	if len(cred.AccessKeyID) != 20 || strings.ToUpper(cred.AccessKeyID) != cred.AccessKeyID || len(cred.SecretAccessKey) != 40 {
		t.Errorf("access key %q / secret of %d characters", cred.AccessKeyID, len(cred.SecretAccessKey))
	}
	withKey := map[string]any{"access_key_id": cred.AccessKeyID, "secret_access_key": cred.SecretAccessKey}
	own := s.issue(t, "", withKey)
	ops := s.systemAdmin(t, "ops-robot", 3600)
	adminBefore := s.adminToken(t)

	s.restart(t)

	r = s.iam(t, "", "GET", "/api/v1/users/user-dana", nil)
	var user map[string]any
	if r.status != 200 || r.decode(&user) != nil || user["name"] != "Dana" || user["email"] != "dana@example.com" {
		t.Errorf("user after restart: %s", r)
	}
	wantCode(t, "binding after restart", s.iam(t, "", "GET", "/api/v1/bindings/"+binding.ID, nil), 200, "")
	wantCode(t, "project after restart", s.iam(t, "", "GET", "/api/v1/projects/proj-keep", nil), 200, "")
	r = s.iam(t, "", "GET", "/api/v1/credentials/"+cred.AccessKeyID, nil)
	if r.status != 200 || strings.Contains(string(r.body), cred.SecretAccessKey) {
		t.Errorf("credential after restart: %s", r)
	}

	if v := s.verify(t, own.Token); !v.Valid || v.Principal != "user-dana" || v.Scope != "proj-keep" || fmt.Sprint(v.EffectiveRoles) != "[member]" {
		t.Errorf("the credential's token from before the restart verifies as %+v", v)
	}
	// ChainFire checks tokens from before the restart against the JWKS of
	// the restarted IAM.
	wantCode(t, "ChainFire with a system token from before the restart", s.cf(t, ops.Token, "GET", "/api/v1/cluster/status", nil), 200, "")
	wantCode(t, "ChainFire with the old admin.token", s.cf(t, adminBefore, "GET", "/api/v1/cluster/status", nil), 200, "")
	wantCode(t, "ChainFire with the new admin.token", s.cf(t, s.adminToken(t), "GET", "/api/v1/cluster/status", nil), 200, "")
	// A member at proj-keep is authenticated on ChainFire but has no
	// chainfire permission.
	wantCode(t, "ChainFire with the member token", s.cf(t, own.Token, "GET", "/api/v1/cluster/status", nil), 403, "FORBIDDEN")

	again := s.issue(t, "", withKey)
	if again.Principal != "user-dana" || again.Scope != "proj-keep" || fmt.Sprint(again.Roles) != "[member]" {
		t.Errorf("the credential after restart issues %+v", again)
	}
	if v := s.verify(t, again.Token); !v.Valid || v.Delegated {
		t.Errorf("the new credential token verifies as %+v", v)
	}
}
