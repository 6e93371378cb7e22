package token

import (
	"crypto/ed25519"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/photoncloud/photon/internal/apierr"
)

// Sign returns the compact JWS of c signed with k (header: alg EdDSA, typ
// JWT, kid k.ID). Times are truncated to whole seconds, as NumericDates are.
// A zero NotBefore becomes IssuedAt and an empty IssuedBy becomes Subject
// (a self-issued token), so that every token carries every claim Verify
// relies on. Sign refuses claims Verify would reject, so IAM can never hand
// out a token that does not work.
func Sign(k SigningKey, c Claims) (string, error) {
	if len(k.Private) != ed25519.PrivateKeySize || k.ID == "" {
		return "", apierr.New(apierr.CodeInternal, "signing key is invalid")
	}
	if c.IssuedBy == "" {
		c.IssuedBy = c.Subject
	}
	if c.NotBefore.IsZero() {
		c.NotBefore = c.IssuedAt
	}
	for _, f := range []struct{ name, v string }{
		{"sub", c.Subject}, {"jti", c.ID}, {"scope", c.Scope}, {"ptype", c.PrincipalType},
	} {
		if f.v == "" {
			return "", apierr.Validation(f.name, apierr.Required, "claim %s is required", f.name)
		}
	}
	if !validPrincipalType(c.PrincipalType) {
		return "", apierr.Validation("ptype", apierr.Enum, "claim ptype must be %q or %q", PrincipalUser, PrincipalServiceAccount)
	}
	iat, iatOK := date(c.IssuedAt)
	nbf, nbfOK := date(c.NotBefore)
	exp, expOK := date(c.ExpiresAt)
	switch {
	case c.IssuedAt.IsZero():
		return "", apierr.Validation("iat", apierr.Required, "claim iat is required")
	case c.ExpiresAt.IsZero():
		return "", apierr.Validation("exp", apierr.Required, "claim exp is required")
	case !iatOK || !nbfOK || !expOK:
		return "", apierr.Validation("exp", apierr.Range, "token times must lie between 1970 and 9999")
	case exp.sec <= iat.sec:
		return "", apierr.Validation("exp", apierr.Range, "claim exp must be after iat")
	case exp.sec <= nbf.sec:
		return "", apierr.Validation("nbf", apierr.Range, "claim nbf must be before exp")
	}
	w := &wire{
		Issuer:        Issuer,
		Subject:       c.Subject,
		ID:            c.ID,
		PrincipalType: c.PrincipalType,
		Scope:         c.Scope,
		Roles:         c.Roles,
		IssuedBy:      c.IssuedBy,
		IssuedAt:      iat,
		NotBefore:     nbf,
		ExpiresAt:     exp,
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, w)
	t.Header["kid"] = k.ID
	s, err := t.SignedString(k.Private)
	if err != nil {
		return "", apierr.Wrap(apierr.CodeInternal, err, "signing token")
	}
	return s, nil
}

// date converts t to a NumericDate, reporting whether it is in the range
// Verify accepts.
func date(t time.Time) (numericDate, bool) {
	sec := t.Unix()
	return numericDate{sec: sec, set: true}, sec >= 0 && sec <= maxNumericDate
}
