package token

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"reflect"
	"strings"
	"testing"

	"github.com/photoncloud/photon/internal/apierr"
)

// reasons are the only messages Verify may give a StaticKeys-backed caller:
// short, fixed, and so never an echo of the token.
var reasons = map[string]bool{
	"malformed token":                   true,
	"token algorithm not allowed":       true,
	"token signature invalid":           true,
	"token key id missing":              true,
	"unknown signing key":               true,
	"token issuer not accepted":         true,
	"token missing required claim":      true,
	"token principal type not accepted": true,
	"token expired":                     true,
	"token not yet valid":               true,
	"token issued in the future":        true,
}

// FuzzVerify feeds Verify anything a client can put in a bearer header. It
// must never panic, must refuse with UNAUTHENTICATED and a fixed reason,
// and may accept only what the test key really signed — and then give the
// same claims from the cache and from a fresh, uncached verifier.
func FuzzVerify(f *testing.F) {
	k := seedKey(f)
	keys := StaticKeys{"k1": k.Public()}
	clk := newClock(t0).Now

	f.Add(mustSign(f, k, claimsAt(t0)))
	sa := claimsAt(t0.Add(-30 * 60e9))
	sa.PrincipalType, sa.Subject, sa.IssuedBy, sa.Roles = PrincipalServiceAccount, "sa-1", "user-admin", nil
	f.Add(mustSign(f, k, sa))
	for _, a := range attacks(f, k, t0) {
		f.Add(a.raw)
	}

	f.Fuzz(func(t *testing.T, raw string) {
		ctx := context.Background()
		v := NewVerifier(keys, WithClock(clk), WithCacheSize(4))
		c, err := v.Verify(ctx, raw)
		if err != nil {
			if ae := apierr.As(err); ae.Code != apierr.CodeUnauthenticated || !reasons[ae.Message] {
				t.Fatalf("refused with %s %q", ae.Code, ae.Message)
			}
			return
		}
		parts := strings.Split(raw, ".")
		if len(parts) != 3 {
			t.Fatalf("accepted a token of %d segments", len(parts))
		}
		sig, serr := base64.RawURLEncoding.DecodeString(parts[2])
		if serr != nil || !ed25519.Verify(k.Public(), []byte(parts[0]+"."+parts[1]), sig) {
			t.Fatalf("accepted a token the test key did not sign: %q", raw)
		}
		again, err := v.Verify(ctx, raw)
		if err != nil || again != c {
			t.Fatalf("cached re-verify = %+v, %v; want %+v", again, err, c)
		}
		fresh, err := NewVerifier(keys, WithClock(clk), WithoutCache()).Verify(ctx, raw)
		if err != nil || !reflect.DeepEqual(fresh, c) {
			t.Fatalf("fresh re-verify = %+v, %v; want %+v", fresh, err, c)
		}
	})
}

// seedKey is a fixed key so that committed corpus entries stay meaningful
// across runs.
func seedKey(t testing.TB) SigningKey {
	t.Helper()
	seed := make([]byte, ed25519.SeedSize)
	copy(seed, "photon fuzz key, not a secret!!!")
	return SigningKey{ID: "k1", Private: ed25519.NewKeyFromSeed(seed)}
}
