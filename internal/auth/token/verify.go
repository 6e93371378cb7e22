package token

import (
	"context"
	"errors"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/photoncloud/photon/internal/apierr"
)

// maxTokenLen bounds what Verify will even split: PhotonCloud tokens are a
// few hundred bytes, and a bound keeps a hostile header from costing more
// than a small allocation.
const maxTokenLen = 8 << 10

// defaultCacheSize bounds the verified-token cache by default: at a few
// hundred bytes per token that is tens of MiB at most.
const defaultCacheSize = 100_000

// Verifier checks tokens locally: the EdDSA signature against the key named
// by kid, the issuer, the required claims and the validity window. A
// Verifier is safe for concurrent use.
//
// Successful results are cached by the exact token string until the token
// expires, so a busy client costs one Ed25519 verification per token rather
// than per request. A consequence: a key removed from the KeySource keeps
// its already-verified tokens valid until they expire — revocation is by
// short token lifetimes, as with any locally verified JWT.
type Verifier struct {
	keys   KeySource
	parser *jwt.Parser
	now    func() time.Time
	leeway time.Duration
	cache  *cache // nil when caching is off
	size   int    // the cache's bound, from the options
}

// VerifierOption configures a Verifier.
type VerifierOption func(*Verifier)

// WithClock sets the clock validity windows are checked against (tests).
func WithClock(now func() time.Time) VerifierOption {
	return func(v *Verifier) { v.now = now }
}

// WithLeeway allows clock skew between IAM and this node: exp and nbf are
// stretched by d, and iat may be up to d in the future. The default is 0,
// which suits one clock; across nodes a few seconds avoids rejecting fresh
// tokens from a node whose clock is ahead. Negative values count as 0.
func WithLeeway(d time.Duration) VerifierOption {
	return func(v *Verifier) { v.leeway = max(d, 0) }
}

// WithCacheSize bounds the verified-token cache to n entries (default
// 100 000); n < 1 turns the cache off.
func WithCacheSize(n int) VerifierOption {
	return func(v *Verifier) { v.size = n }
}

// WithoutCache turns the verified-token cache off, so every Verify checks
// the signature and asks the KeySource.
func WithoutCache() VerifierOption {
	return func(v *Verifier) { v.size = 0 }
}

// NewVerifier returns a Verifier that finds public keys in keys.
func NewVerifier(keys KeySource, opts ...VerifierOption) *Verifier {
	v := &Verifier{keys: keys, now: time.Now, size: defaultCacheSize}
	for _, o := range opts {
		o(v)
	}
	// EdDSA only: "none", HMAC (including HMAC keyed with our public key,
	// the classic algorithm-confusion attack) and RSA/ECDSA are refused by
	// the library before the key function runs. Claims are validated by
	// checkTimes/checkClaims, the same code the cached path uses. Strict
	// base64 gives each token exactly one spelling, so the cache cannot be
	// filled with variants of one token.
	v.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithoutClaimsValidation(),
		jwt.WithStrictDecoding(),
	)
	if v.size > 0 {
		v.cache = newCache(v.size)
	}
	return v
}

// Verify checks raw and returns its claims. Every rejection is an
// apierr UNAUTHENTICATED error with a short reason that never contains the
// token, except that a KeySource which cannot reach its keys yields its
// UNAVAILABLE error. The returned *Claims may be shared with other callers
// through the cache: callers must not modify it (nor its Roles).
func (v *Verifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	if v.cache != nil && len(raw) <= maxTokenLen {
		if c, ok := v.cache.get(raw); ok {
			// Cached tokens were fully checked once; only time moves.
			if err := v.checkTimes(c, v.now()); err != nil {
				return nil, err
			}
			return c, nil
		}
	}
	c, err := v.verify(ctx, raw)
	if err != nil {
		return nil, err
	}
	if v.cache != nil {
		now := v.now()
		v.cache.put(raw, c, func(c *Claims) bool { return !now.Before(c.ExpiresAt.Add(v.leeway)) })
	}
	return c, nil
}

func (v *Verifier) verify(ctx context.Context, raw string) (*Claims, error) {
	if raw == "" || len(raw) > maxTokenLen || !compactJWS(raw) {
		return nil, unauthenticated("malformed token")
	}
	var w wire
	t, err := v.parser.ParseWithClaims(raw, &w, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, unauthenticated("token key id missing")
		}
		k, err := v.keys.PublicKey(ctx, kid)
		if err != nil {
			var ae *apierr.Error
			if !errors.As(err, &ae) {
				// A KeySource outside this package failed untyped: we
				// could not check the token, which is not its fault.
				err = apierr.Wrap(apierr.CodeUnavailable, err, "signing keys unavailable")
			}
			return nil, err
		}
		return k, nil
	})
	if err != nil {
		return nil, parseError(t, err)
	}
	c := w.claims()
	if err := checkClaims(&w); err != nil {
		return nil, err
	}
	if err := v.checkTimes(c, v.now()); err != nil {
		return nil, err
	}
	return c, nil
}

// compactJWS reports whether raw holds only what a compact JWS can:
// base64url characters and dots. Go's base64 decoders (strict ones too)
// skip '\r' and '\n', so without this check one token would have endless
// spellings, each verified and cached apart.
func compactJWS(raw string) bool {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// parseError turns the library's error into our short, safe reasons. Key
// source errors come through as they are (they are already typed).
func parseError(t *jwt.Token, err error) error {
	var ae *apierr.Error
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, jwt.ErrTokenMalformed):
		return unauthenticated("malformed token")
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		// Unknown or missing alg; with a keyfunc error handled above,
		// nothing else makes the library call a token unverifiable.
		return unauthenticated("token algorithm not allowed")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		if t != nil && t.Method != nil && t.Method.Alg() != jwt.SigningMethodEdDSA.Alg() {
			return unauthenticated("token algorithm not allowed")
		}
		return unauthenticated("token signature invalid")
	}
	return unauthenticated("invalid token")
}

// checkClaims checks what a signature cannot: that the token is ours and
// says everything the rest of PhotonCloud relies on.
func checkClaims(w *wire) error {
	if w.Issuer != Issuer {
		return unauthenticated("token issuer not accepted")
	}
	for _, f := range []struct{ name, v string }{
		{"sub", w.Subject}, {"jti", w.ID}, {"scope", w.Scope}, {"ptype", w.PrincipalType}, {"ib", w.IssuedBy},
	} {
		if f.v == "" {
			return missingClaim(f.name)
		}
	}
	if !w.ExpiresAt.set {
		return missingClaim("exp")
	}
	if !validPrincipalType(w.PrincipalType) {
		return unauthenticated("token principal type not accepted")
	}
	return nil
}

func missingClaim(name string) error {
	e := unauthenticated("token missing required claim")
	e.Details = map[string]any{"claim": name}
	return e
}

// checkTimes is the one validity-window rule, for fresh and cached tokens:
// valid from nbf (if set) until strictly before exp, each stretched by the
// leeway, and not issued in the future.
func (v *Verifier) checkTimes(c *Claims, now time.Time) error {
	switch {
	case !now.Before(c.ExpiresAt.Add(v.leeway)):
		return unauthenticated("token expired")
	case !c.NotBefore.IsZero() && now.Before(c.NotBefore.Add(-v.leeway)):
		return unauthenticated("token not yet valid")
	case !c.IssuedAt.IsZero() && now.Before(c.IssuedAt.Add(-v.leeway)):
		return unauthenticated("token issued in the future")
	}
	return nil
}
