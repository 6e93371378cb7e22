package token

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/ids"
)

// t0 is the tests' fixed "now": whole seconds, so signed times round-trip.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is a settable clock for WithClock and RemoteKeys.now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// countingKeys counts PublicKey calls, to see whether Verify used its cache.
type countingKeys struct {
	KeySource
	n atomic.Int64
}

func (c *countingKeys) PublicKey(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	c.n.Add(1)
	return c.KeySource.PublicKey(ctx, kid)
}

func mustKey(t testing.TB, kid string) SigningKey {
	t.Helper()
	k, err := GenerateKey(kid)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// claimsAt are valid claims issued at now for an hour.
func claimsAt(now time.Time) Claims {
	return Claims{
		ID:            "tok-01jd3k0000000000000000000",
		Subject:       "user-alice",
		PrincipalType: PrincipalUser,
		Scope:         "proj-42",
		Roles:         []string{"viewer", "vpc.admin"},
		IssuedBy:      "user-alice",
		IssuedAt:      now,
		NotBefore:     now,
		ExpiresAt:     now.Add(time.Hour),
	}
}

func mustSign(t testing.TB, k SigningKey, c Claims) string {
	t.Helper()
	s, err := Sign(k, c)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return s
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func b64JSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b64(b)
}

// signRaw builds a token from an arbitrary header and payload with a
// genuine Ed25519 signature, to test the checks a signature cannot make.
func signRaw(t testing.TB, k SigningKey, header, payload map[string]any) string {
	t.Helper()
	in := b64JSON(t, header) + "." + b64JSON(t, payload)
	return in + "." + b64(ed25519.Sign(k.Private, []byte(in)))
}

// payloadAt is claimsAt's wire form, as a map tests can edit.
func payloadAt(now time.Time) map[string]any {
	return map[string]any{
		"iss": Issuer, "sub": "user-alice", "jti": "tok-1", "ptype": "user",
		"scope": "proj-42", "roles": []string{"viewer"}, "ib": "user-alice",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
}

// wantCode fails unless err is an *apierr.Error of code (and, if msg is not
// empty, with that message).
func wantCode(t testing.TB, err error, code apierr.Code, msg string) {
	t.Helper()
	var ae *apierr.Error
	if !errors.As(err, &ae) {
		t.Fatalf("error = %v (%T), want *apierr.Error %s", err, err, code)
	}
	if ae.Code != code || (msg != "" && ae.Message != msg) {
		t.Fatalf("error = %s %q, want %s %q", ae.Code, ae.Message, code, msg)
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	k := mustKey(t, "k1")
	v := NewVerifier(StaticKeys{"k1": k.Public()}, WithClock(newClock(t0).Now))
	for _, tc := range []struct {
		name string
		in   Claims
	}{
		{"user", claimsAt(t0)},
		{"delegated service account", func() Claims {
			c := claimsAt(t0.Add(-time.Minute))
			c.ID = ids.New("tok")
			c.Subject, c.PrincipalType, c.IssuedBy, c.Scope = "sa-builder", PrincipalServiceAccount, "user-admin", "system"
			return c
		}()},
		{"no roles", func() Claims { c := claimsAt(t0); c.Roles = nil; return c }()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := mustSign(t, k, tc.in)
			got, err := v.Verify(context.Background(), raw)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !reflect.DeepEqual(*got, tc.in) {
				t.Fatalf("claims = %+v\nwant     %+v", *got, tc.in)
			}
			if got.Delegated() != (tc.in.IssuedBy != tc.in.Subject) {
				t.Fatalf("Delegated() = %v", got.Delegated())
			}
		})
	}
}

// TestSignTimes: times are whole seconds, an unset nbf is iat and an unset
// issuer is the subject, and the header is what verifiers elsewhere expect.
func TestSignTimes(t *testing.T) {
	k := mustKey(t, "k1")
	c := claimsAt(t0.Add(700 * time.Millisecond))
	c.NotBefore, c.IssuedBy = time.Time{}, ""
	raw := mustSign(t, k, c)
	got, err := NewVerifier(StaticKeys{"k1": k.Public()}, WithClock(newClock(t0.Add(time.Second)).Now)).Verify(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	if !got.IssuedAt.Equal(t0) || !got.NotBefore.Equal(t0) || !got.ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("times = %v %v %v, want whole seconds from %v", got.IssuedAt, got.NotBefore, got.ExpiresAt, t0)
	}
	if got.IssuedBy != c.Subject || got.Delegated() {
		t.Fatalf("IssuedBy = %q, want the subject", got.IssuedBy)
	}
	hdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[0])
	if string(hdr) != `{"alg":"EdDSA","kid":"k1","typ":"JWT"}` {
		t.Fatalf("header = %s", hdr)
	}
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[1])
	var p map[string]any
	if err := json.Unmarshal(payload, &p); err != nil {
		t.Fatal(err)
	}
	if p["iss"] != Issuer || p["iat"] != float64(t0.Unix()) || p["exp"] != float64(t0.Add(time.Hour).Unix()) {
		t.Fatalf("payload = %s", payload)
	}
}

func TestSignRejects(t *testing.T) {
	k := mustKey(t, "k1")
	for _, tc := range []struct {
		name  string
		key   SigningKey
		edit  func(*Claims)
		code  apierr.Code
		field string
	}{
		{"no subject", k, func(c *Claims) { c.Subject = "" }, apierr.CodeValidation, "sub"},
		{"no id", k, func(c *Claims) { c.ID = "" }, apierr.CodeValidation, "jti"},
		{"no scope", k, func(c *Claims) { c.Scope = "" }, apierr.CodeValidation, "scope"},
		{"no principal type", k, func(c *Claims) { c.PrincipalType = "" }, apierr.CodeValidation, "ptype"},
		{"unknown principal type", k, func(c *Claims) { c.PrincipalType = "robot" }, apierr.CodeValidation, "ptype"},
		{"no iat", k, func(c *Claims) { c.IssuedAt = time.Time{} }, apierr.CodeValidation, "iat"},
		{"no exp", k, func(c *Claims) { c.ExpiresAt = time.Time{} }, apierr.CodeValidation, "exp"},
		{"exp at iat", k, func(c *Claims) { c.ExpiresAt = c.IssuedAt.Add(500 * time.Millisecond) }, apierr.CodeValidation, "exp"},
		{"exp before iat", k, func(c *Claims) { c.ExpiresAt = c.IssuedAt.Add(-time.Hour) }, apierr.CodeValidation, "exp"},
		{"nbf after exp", k, func(c *Claims) { c.NotBefore = c.ExpiresAt }, apierr.CodeValidation, "nbf"},
		{"before 1970", k, func(c *Claims) { c.IssuedAt = time.Unix(-10, 0) }, apierr.CodeValidation, "exp"},
		{"no key", SigningKey{ID: "k1"}, func(*Claims) {}, apierr.CodeInternal, ""},
		{"no key id", SigningKey{Private: k.Private}, func(*Claims) {}, apierr.CodeInternal, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := claimsAt(t0)
			tc.edit(&c)
			raw, err := Sign(tc.key, c)
			if err == nil {
				t.Fatalf("Sign accepted, token %q", raw)
			}
			wantCode(t, err, tc.code, "")
			if f := apierr.As(err).Details["field"]; tc.field != "" && f != tc.field {
				t.Fatalf("field = %v, want %s", f, tc.field)
			}
		})
	}
}

func TestGenerateKey(t *testing.T) {
	a, b := mustKey(t, "a"), mustKey(t, "b")
	if a.ID != "a" || len(a.Public()) != ed25519.PublicKeySize || a.Public().Equal(b.Public()) {
		t.Fatalf("keys %q %x %x", a.ID, a.Public(), b.Public())
	}
	if _, err := GenerateKey(""); err == nil {
		t.Fatal("GenerateKey accepted an empty kid")
	}
	if (SigningKey{}).Public() != nil {
		t.Fatal("zero key has a public half")
	}
}

// attack is a token an attacker can present and the reason it must fail.
type attack struct {
	name, raw, msg string
}

// attacks builds every token Verify must refuse, given the real key k (kid
// "k1", the only key the verifier knows) and now.
func attacks(t testing.TB, k SigningKey, now time.Time) []attack {
	t.Helper()
	good := mustSign(t, k, claimsAt(now))
	parts := strings.Split(good, ".")
	head, body, sig := parts[0], parts[1], parts[2]
	input := head + "." + body

	flipped, _ := base64.RawURLEncoding.DecodeString(sig)
	flipped[10] ^= 0x01

	other := mustKey(t, "k1") // same kid, different key
	unknown := mustKey(t, "k2")

	hdr := func(m map[string]any) string { return b64JSON(t, m) }
	pub := k.Public()
	mac := hmac.New(sha256.New, pub)
	hsHead := hdr(map[string]any{"alg": "HS256", "typ": "JWT", "kid": "k1"})
	mac.Write([]byte(hsHead + "." + body))
	hs256 := hsHead + "." + body + "." + b64(mac.Sum(nil))
	libHS := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(payloadAt(now)))
	libHS.Header["kid"] = "k1"
	hs256lib, err := libHS.SignedString([]byte(pub))
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	libRS := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims(payloadAt(now)))
	libRS.Header["kid"] = "k1"
	rs256, err := libRS.SignedString(rsaKey)
	if err != nil {
		t.Fatal(err)
	}

	edit := func(f func(map[string]any)) string {
		p := payloadAt(now)
		f(p)
		return signRaw(t, k, map[string]any{"alg": "EdDSA", "typ": "JWT", "kid": "k1"}, p)
	}
	times := func(iat, nbf, exp time.Time) Claims {
		c := claimsAt(iat)
		c.NotBefore, c.ExpiresAt = nbf, exp
		return c
	}
	// Standard base64 has '+' and '/' where base64url has '-' and '_'.
	std := strings.NewReplacer("-", "+", "_", "/").Replace(good)
	if std == good {
		std = input + ".+" + sig[1:]
	}
	// The signature's last character carries 2 bits of the 64 bytes and 4
	// unused ones: setting one spells the same signature differently.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, good[len(good)-1])
	respelled := good[:len(good)-1] + string(alphabet[last^1])
	noneHead := hdr(map[string]any{"alg": "none", "typ": "JWT", "kid": "k1"})
	return []attack{
		{"flipped signature byte", input + "." + b64(flipped), "token signature invalid"},
		{"flipped payload byte", head + "." + flipChar(body, 20) + "." + sig, ""},
		{"other key same kid", mustSign(t, other, claimsAt(now)), "token signature invalid"},
		{"signature of another token", head + "." + strings.Split(mustSign(t, k, times(now, now, now.Add(2*time.Hour))), ".")[1] + "." + sig, "token signature invalid"},
		{"alg none empty signature", noneHead + "." + body + ".", "token algorithm not allowed"},
		{"alg none real signature", noneHead + "." + body + "." + sig, "token algorithm not allowed"},
		{"alg None", hdr(map[string]any{"alg": "None", "kid": "k1"}) + "." + body + ".", "token algorithm not allowed"},
		{"alg missing", hdr(map[string]any{"kid": "k1"}) + "." + body + "." + sig, "token algorithm not allowed"},
		{"alg not a string", hdr(map[string]any{"alg": 1, "kid": "k1"}) + "." + body + "." + sig, "token algorithm not allowed"},
		{"HS256 keyed with the public key", hs256, "token algorithm not allowed"},
		{"HS256 keyed with the public key (library-signed)", hs256lib, "token algorithm not allowed"},
		{"RS256", rs256, "token algorithm not allowed"},
		{"expired", mustSign(t, k, times(now.Add(-2*time.Hour), now.Add(-2*time.Hour), now.Add(-time.Hour))), "token expired"},
		{"expires now", mustSign(t, k, times(now.Add(-time.Hour), now.Add(-time.Hour), now)), "token expired"},
		{"not yet valid", mustSign(t, k, times(now, now.Add(time.Minute), now.Add(time.Hour))), "token not yet valid"},
		{"issued in the future", mustSign(t, k, times(now.Add(time.Minute), now.Add(time.Minute), now.Add(time.Hour))), "token not yet valid"},
		{"iat in the future, nbf now", edit(func(p map[string]any) { p["iat"] = now.Add(time.Minute).Unix() }), "token issued in the future"},
		{"unknown kid", mustSign(t, unknown, claimsAt(now)), "unknown signing key"},
		{"missing kid", signRaw(t, k, map[string]any{"alg": "EdDSA", "typ": "JWT"}, payloadAt(now)), "token key id missing"},
		{"empty kid", signRaw(t, k, map[string]any{"alg": "EdDSA", "kid": ""}, payloadAt(now)), "token key id missing"},
		{"kid not a string", signRaw(t, k, map[string]any{"alg": "EdDSA", "kid": 1}, payloadAt(now)), "token key id missing"},
		{"wrong iss", edit(func(p map[string]any) { p["iss"] = "evil-iam" }), "token issuer not accepted"},
		{"no iss", edit(func(p map[string]any) { delete(p, "iss") }), "token issuer not accepted"},
		{"missing jti", edit(func(p map[string]any) { delete(p, "jti") }), "token missing required claim"},
		{"missing sub", edit(func(p map[string]any) { delete(p, "sub") }), "token missing required claim"},
		{"empty sub", edit(func(p map[string]any) { p["sub"] = "" }), "token missing required claim"},
		{"missing scope", edit(func(p map[string]any) { delete(p, "scope") }), "token missing required claim"},
		{"missing ptype", edit(func(p map[string]any) { delete(p, "ptype") }), "token missing required claim"},
		{"missing ib", edit(func(p map[string]any) { delete(p, "ib") }), "token missing required claim"},
		{"missing exp", edit(func(p map[string]any) { delete(p, "exp") }), "token missing required claim"},
		{"null exp", edit(func(p map[string]any) { p["exp"] = nil }), "token missing required claim"},
		{"unknown ptype", edit(func(p map[string]any) { p["ptype"] = "admin" }), "token principal type not accepted"},
		{"exp as string", edit(func(p map[string]any) { p["exp"] = "9999999999" }), "malformed token"},
		{"exp past year 9999", edit(func(p map[string]any) { p["exp"] = 1e300 }), "malformed token"},
		{"negative exp", edit(func(p map[string]any) { p["exp"] = -1 }), "malformed token"},
		{"roles not strings", edit(func(p map[string]any) { p["roles"] = []int{1} }), "malformed token"},
		{"payload not an object", signRaw(t, k, map[string]any{"alg": "EdDSA", "kid": "k1"}, nil), ""},
		{"empty", "", "malformed token"},
		{"garbage", "not a token", "malformed token"},
		{"one dot", "abc.def", "malformed token"},
		{"dots only", "..", "malformed token"},
		{"truncated signature", good[:len(good)-5], ""},
		{"truncated to two parts", input, "malformed token"},
		{"truncated to two parts and a dot", input + ".", "token signature invalid"},
		{"extra dot at the end", good + ".", "malformed token"},
		{"extra segment", good + "." + sig, "malformed token"},
		{"extra dot inside", head + ".." + body + "." + sig, "malformed token"},
		{"non-canonical base64 of the real signature", respelled, "malformed token"},
		{"padded base64", head + "=." + body + "." + sig, "malformed token"},
		{"base64 std alphabet", std, "malformed token"},
		{"header not JSON", b64([]byte("{")) + "." + body + "." + sig, "malformed token"},
		{"huge", strings.Repeat("a", maxTokenLen) + "." + body + "." + sig, "malformed token"},
	}
}

// flipChar changes s[i] to another base64url character.
func flipChar(s string, i int) string {
	c := byte('A')
	if s[i] == 'A' {
		c = 'B'
	}
	return s[:i] + string(c) + s[i+1:]
}

// TestVerifyRejectsAttacks: every forged, confused, stale, incomplete or
// mangled token is a 401 with a short reason that never echoes the token,
// and algorithm attacks are refused before any key is looked up.
func TestVerifyRejectsAttacks(t *testing.T) {
	k := mustKey(t, "k1")
	for _, a := range attacks(t, k, t0) {
		t.Run(a.name, func(t *testing.T) {
			keys := &countingKeys{KeySource: StaticKeys{"k1": k.Public()}}
			v := NewVerifier(keys, WithClock(newClock(t0).Now))
			for range 2 { // the second time would come from the cache, were it (wrongly) there
				c, err := v.Verify(context.Background(), a.raw)
				if err == nil {
					t.Fatalf("accepted: %+v", c)
				}
				wantCode(t, err, apierr.CodeUnauthenticated, a.msg)
				if len(a.raw) > 3 && strings.Contains(err.Error(), a.raw) {
					t.Fatalf("error %q contains the token", err)
				}
			}
			if a.msg == "token algorithm not allowed" && keys.n.Load() != 0 {
				t.Fatalf("KeySource called %d times for a refused algorithm", keys.n.Load())
			}
		})
	}
}

// TestVerifyLeeway: a leeway stretches exp and nbf by exactly its length.
func TestVerifyLeeway(t *testing.T) {
	k := mustKey(t, "k1")
	c := claimsAt(t0)
	raw := mustSign(t, k, c)
	for _, tc := range []struct {
		name   string
		now    time.Time
		leeway time.Duration
		msg    string
	}{
		{"just before exp", c.ExpiresAt.Add(-time.Nanosecond), 0, ""},
		{"at exp", c.ExpiresAt, 0, "token expired"},
		{"at exp with leeway", c.ExpiresAt, 5 * time.Second, ""},
		{"at exp+leeway", c.ExpiresAt.Add(5 * time.Second), 5 * time.Second, "token expired"},
		{"before nbf", c.NotBefore.Add(-time.Second), 0, "token not yet valid"},
		{"before nbf within leeway", c.NotBefore.Add(-5 * time.Second), 5 * time.Second, ""},
		{"before nbf beyond leeway", c.NotBefore.Add(-6 * time.Second), 5 * time.Second, "token not yet valid"},
		{"negative leeway is none", c.ExpiresAt.Add(-time.Second), -time.Hour, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := NewVerifier(StaticKeys{"k1": k.Public()}, WithClock(newClock(tc.now).Now), WithLeeway(tc.leeway))
			_, err := v.Verify(context.Background(), raw)
			if tc.msg == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			wantCode(t, err, apierr.CodeUnauthenticated, tc.msg)
		})
	}
}

// failingKeys is a KeySource outside this package's error conventions.
type failingKeys struct{}

func (failingKeys) PublicKey(context.Context, string) (ed25519.PublicKey, error) {
	return nil, fmt.Errorf("disk on fire")
}

// TestVerifyKeySourceErrors: a KeySource that cannot answer makes Verify
// UNAVAILABLE (a 503), not a 401 blaming the caller's token.
func TestVerifyKeySourceErrors(t *testing.T) {
	k := mustKey(t, "k1")
	raw := mustSign(t, k, claimsAt(t0))
	_, err := NewVerifier(failingKeys{}, WithClock(newClock(t0).Now)).Verify(context.Background(), raw)
	wantCode(t, err, apierr.CodeUnavailable, "")
}

func TestVerifyCache(t *testing.T) {
	k := mustKey(t, "k1")
	clk := newClock(t0)
	keys := &countingKeys{KeySource: StaticKeys{"k1": k.Public()}}
	v := NewVerifier(keys, WithClock(clk.Now))
	raw := mustSign(t, k, claimsAt(t0))
	ctx := context.Background()

	first, err := v.Verify(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	second, err := v.Verify(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	if second != first || keys.n.Load() != 1 {
		t.Fatalf("second Verify: same claims %v, KeySource calls %d; want the cached result and 1 call", second == first, keys.n.Load())
	}
	// A copy of the string (as from another request) hits the cache too.
	if c, err := v.Verify(ctx, strings.Clone(raw)); err != nil || c != first {
		t.Fatalf("Verify(copy) = %v, %v", c, err)
	}

	clk.Advance(time.Hour - time.Second)
	if _, err := v.Verify(ctx, raw); err != nil {
		t.Fatalf("a second before exp: %v", err)
	}
	clk.Advance(time.Second)
	_, err = v.Verify(ctx, raw)
	wantCode(t, err, apierr.CodeUnauthenticated, "token expired")
	if keys.n.Load() != 1 {
		t.Fatalf("KeySource calls = %d, want 1 (expiry decided from the cache)", keys.n.Load())
	}
}

func TestVerifyCacheNotBefore(t *testing.T) {
	// A token can only be cached once valid, so nbf matters on a cached hit
	// only when the clock goes back; it must still be checked.
	k := mustKey(t, "k1")
	clk := newClock(t0)
	v := NewVerifier(StaticKeys{"k1": k.Public()}, WithClock(clk.Now))
	raw := mustSign(t, k, claimsAt(t0))
	if _, err := v.Verify(context.Background(), raw); err != nil {
		t.Fatal(err)
	}
	clk.Advance(-time.Minute)
	_, err := v.Verify(context.Background(), raw)
	wantCode(t, err, apierr.CodeUnauthenticated, "token not yet valid")
}

func TestVerifyWithoutCache(t *testing.T) {
	k := mustKey(t, "k1")
	raw := mustSign(t, k, claimsAt(t0))
	for _, opt := range []VerifierOption{WithoutCache(), WithCacheSize(0), WithCacheSize(-1)} {
		keys := &countingKeys{KeySource: StaticKeys{"k1": k.Public()}}
		v := NewVerifier(keys, WithClock(newClock(t0).Now), opt)
		for range 3 {
			if _, err := v.Verify(context.Background(), raw); err != nil {
				t.Fatal(err)
			}
		}
		if keys.n.Load() != 3 || v.cache != nil {
			t.Fatalf("KeySource calls = %d, want 3 with the cache off", keys.n.Load())
		}
	}
}

// TestVerifyCacheBound: the cache never holds more than its size, evicts
// expired tokens first, and evicted tokens still verify (the slow way).
func TestVerifyCacheBound(t *testing.T) {
	k := mustKey(t, "k1")
	clk := newClock(t0)
	for _, size := range []int{1, 10, 100, 200} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			keys := &countingKeys{KeySource: StaticKeys{"k1": k.Public()}}
			v := NewVerifier(keys, WithClock(clk.Now), WithCacheSize(size))
			var toks []string
			for i := range 3 * size {
				c := claimsAt(t0)
				c.ID = fmt.Sprintf("tok-%d", i)
				toks = append(toks, mustSign(t, k, c))
			}
			for _, raw := range toks {
				if _, err := v.Verify(context.Background(), raw); err != nil {
					t.Fatal(err)
				}
				if n := v.cache.len(); n > size {
					t.Fatalf("cache holds %d > %d", n, size)
				}
			}
			for _, raw := range toks {
				if _, err := v.Verify(context.Background(), raw); err != nil {
					t.Fatal(err)
				}
			}
			if n := keys.n.Load(); n <= int64(3*size) {
				t.Fatalf("KeySource calls = %d: nothing was evicted", n)
			}
		})
	}

	t.Run("expired first", func(t *testing.T) {
		clk := newClock(t0)
		v := NewVerifier(StaticKeys{"k1": k.Public()}, WithClock(clk.Now), WithCacheSize(1))
		short := claimsAt(t0)
		short.ExpiresAt = t0.Add(time.Second)
		s := mustSign(t, k, short)
		if _, err := v.Verify(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		clk.Advance(2 * time.Second)
		long := mustSign(t, k, claimsAt(t0))
		if _, err := v.Verify(context.Background(), long); err != nil {
			t.Fatal(err)
		}
		if _, ok := v.cache.get(s); ok {
			t.Fatal("expired token still cached")
		}
		if _, ok := v.cache.get(long); !ok {
			t.Fatal("valid token not cached")
		}
	})
}

// TestVerifyConcurrent runs hits, misses and evictions from many goroutines
// (meaningful under -race).
func TestVerifyConcurrent(t *testing.T) {
	k := mustKey(t, "k1")
	v := NewVerifier(StaticKeys{"k1": k.Public()}, WithClock(newClock(t0).Now), WithCacheSize(16))
	var toks []string
	for i := range 40 {
		c := claimsAt(t0)
		c.ID = fmt.Sprintf("tok-%d", i)
		toks = append(toks, mustSign(t, k, c))
	}
	bad := attacks(t, k, t0)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				raw := toks[(g*7+i)%len(toks)]
				c, err := v.Verify(context.Background(), raw)
				if err != nil || c.ID != fmt.Sprintf("tok-%d", (g*7+i)%len(toks)) {
					t.Errorf("Verify = %v, %v", c, err)
					return
				}
				if _, err := v.Verify(context.Background(), bad[i%len(bad)].raw); err == nil {
					t.Errorf("accepted %s", bad[i%len(bad)].name)
					return
				}
			}
		})
	}
	wg.Wait()
}
