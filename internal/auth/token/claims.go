package token

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Issuer is the "iss" claim of every PhotonCloud token. Verify requires it so
// that a JWT minted by some other system that happens to share a key id is
// never taken for one of ours.
const Issuer = "photon-iam"

// The principal types a token may act as ("ptype"). Verify rejects any other
// value so that authorization code never meets a type it does not know.
const (
	PrincipalUser           = "user"
	PrincipalServiceAccount = "service_account"
)

// Claims are what a PhotonCloud token says. Each field's comment names its
// JWT claim. Times carry whole seconds, as JWT NumericDates do.
type Claims struct {
	ID            string    // "jti": unique token id, so a token can be revoked or audited by id
	Subject       string    // "sub": the principal the token acts as
	PrincipalType string    // "ptype": PrincipalUser or PrincipalServiceAccount
	Scope         string    // "scope": "system", an org id or a project id
	Roles         []string  // "roles": role names the token may use
	IssuedBy      string    // "ib": principal that issued it (== Subject for self-issued tokens)
	IssuedAt      time.Time // "iat"
	NotBefore     time.Time // "nbf"
	ExpiresAt     time.Time // "exp"
}

// Delegated reports whether the token was issued by someone other than its
// subject, so that audit logs and policies can tell "alice acted" from
// "an admin acted as alice".
func (c *Claims) Delegated() bool { return c.IssuedBy != c.Subject }

// wire is the JSON payload of a token. It is separate from Claims so that
// Claims stays a plain value type while the payload keeps the JWT claim names
// and NumericDate encoding.
type wire struct {
	Issuer        string      `json:"iss"`
	Subject       string      `json:"sub"`
	ID            string      `json:"jti"`
	PrincipalType string      `json:"ptype"`
	Scope         string      `json:"scope"`
	Roles         []string    `json:"roles,omitempty"`
	IssuedBy      string      `json:"ib"`
	IssuedAt      numericDate `json:"iat"`
	NotBefore     numericDate `json:"nbf"`
	ExpiresAt     numericDate `json:"exp"`
}

// maxNumericDate is 9999-12-31T23:59:59Z: later (or negative) dates are
// rejected as malformed, so every accepted date converts to and from
// time.Time exactly.
const maxNumericDate = 253402300799

// numericDate is a JWT NumericDate (seconds since the epoch). It decodes
// with one strconv call instead of jwt.NumericDate's nested json.Unmarshal,
// which matters on the uncached verification path.
type numericDate struct {
	sec int64
	set bool
}

var errBadDate = errors.New("token: bad NumericDate")

func (d numericDate) MarshalJSON() ([]byte, error) {
	return strconv.AppendInt(nil, d.sec, 10), nil
}

func (d *numericDate) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		*d = numericDate{}
		return nil
	}
	sec, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		// RFC 7519 allows fractional seconds; we keep whole ones.
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || math.IsNaN(f) || f < 0 || f > maxNumericDate {
			return errBadDate
		}
		sec = int64(f)
	}
	if sec < 0 || sec > maxNumericDate {
		return errBadDate
	}
	*d = numericDate{sec: sec, set: true}
	return nil
}

func (d numericDate) time() time.Time {
	if !d.set {
		return time.Time{}
	}
	return time.Unix(d.sec, 0).UTC()
}

func (d numericDate) jwt() (*jwt.NumericDate, error) {
	if !d.set {
		return nil, nil
	}
	return jwt.NewNumericDate(d.time()), nil
}

// The jwt.Claims methods let the library carry wire through its parser. The
// library's own claim validation is switched off: Verifier.checkTimes applies
// one rule to cached and uncached tokens alike.
func (w *wire) GetExpirationTime() (*jwt.NumericDate, error) { return w.ExpiresAt.jwt() }
func (w *wire) GetIssuedAt() (*jwt.NumericDate, error)       { return w.IssuedAt.jwt() }
func (w *wire) GetNotBefore() (*jwt.NumericDate, error)      { return w.NotBefore.jwt() }
func (w *wire) GetIssuer() (string, error)                   { return w.Issuer, nil }
func (w *wire) GetSubject() (string, error)                  { return w.Subject, nil }
func (w *wire) GetAudience() (jwt.ClaimStrings, error)       { return nil, nil }

var _ jwt.Claims = (*wire)(nil)
var _ json.Unmarshaler = (*numericDate)(nil)

func (w *wire) claims() *Claims {
	return &Claims{
		ID:            w.ID,
		Subject:       w.Subject,
		PrincipalType: w.PrincipalType,
		Scope:         w.Scope,
		Roles:         w.Roles,
		IssuedBy:      w.IssuedBy,
		IssuedAt:      w.IssuedAt.time(),
		NotBefore:     w.NotBefore.time(),
		ExpiresAt:     w.ExpiresAt.time(),
	}
}

func validPrincipalType(t string) bool {
	return t == PrincipalUser || t == PrincipalServiceAccount
}
