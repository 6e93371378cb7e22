// Package auth puts PhotonCloud's authentication and authorization on HTTP
// requests: it verifies bearer tokens locally (internal/auth/token), lets a
// tokenless loopback caller act as the bootstrap admin in loopback-trust
// mode, and answers handlers' "may the caller do this here?" from the IAM
// watch-cache (internal/auth/policy).
package auth

import (
	"context"
	"net"
	"net/http"
	"strings"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/auth/policy"
	"github.com/photoncloud/photon/internal/auth/token"
)

// Mode says what a request without a token may do.
type Mode string

// The modes (see DESIGN.md, "Tenancy and auth").
const (
	// ModeLoopback: a tokenless request from a loopback address acts as the
	// bootstrap admin, so the seed's plain curl examples work on a laptop.
	ModeLoopback Mode = "loopback"
	// ModeEnforce: no token, no access (except /health).
	ModeEnforce Mode = "enforce"
)

// ResolveMode turns the --auth-mode flag into a mode: "loopback" or
// "enforce" as given; "" or "auto" is loopback only while every listener is
// on a loopback address — as soon as one is reachable from elsewhere,
// tokenless requests are refused.
func ResolveMode(flag string, listenAddrs ...string) (Mode, error) {
	switch flag {
	case string(ModeLoopback), string(ModeEnforce):
		return Mode(flag), nil
	case "", "auto":
	default:
		return "", apierr.Validation("auth-mode", apierr.Enum, "auth mode %q is not one of auto, loopback, enforce", flag)
	}
	for _, a := range listenAddrs {
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			host = a
		}
		if host == "localhost" {
			continue
		}
		ip := net.ParseIP(host)
		if ip == nil || !ip.IsLoopback() {
			return ModeEnforce, nil
		}
	}
	return ModeLoopback, nil
}

// Authenticator verifies callers and authorizes their requests. It
// implements rest.Authn.
type Authenticator struct {
	mode     Mode
	verifier *token.Verifier
	cache    *policy.Cache
}

// New returns an authenticator in mode over a token verifier and the IAM
// cache.
func New(mode Mode, v *token.Verifier, c *policy.Cache) *Authenticator {
	return &Authenticator{mode: mode, verifier: v, cache: c}
}

// Mode is the authenticator's mode.
func (a *Authenticator) Mode() Mode { return a.mode }

// Cache is the IAM cache decisions are made from.
func (a *Authenticator) Cache() *policy.Cache { return a.cache }

// bootstrap is the loopback-trust caller.
var bootstrap = &policy.Subject{
	PrincipalID:   policy.BootstrapAdmin,
	PrincipalType: policy.TypeServiceAccount,
	Scope:         policy.SystemScope,
	Roles:         []string{policy.RoleAdmin},
	Bootstrap:     true,
}

// Authenticate attaches the caller to r: the subject of a valid bearer
// token; the bootstrap admin for a tokenless loopback request in loopback
// mode; otherwise nobody (routes that need a caller then answer 401). A
// token that is present is always verified: bad, expired or revoked → 401.
func (a *Authenticator) Authenticate(r *http.Request) (*http.Request, error) {
	raw, present, err := Bearer(r)
	if err != nil {
		return r, err
	}
	if !present {
		if a.mode == ModeLoopback && IsLoopback(r.RemoteAddr) {
			return r.WithContext(WithSubject(r.Context(), a, bootstrap)), nil
		}
		return r.WithContext(context.WithValue(r.Context(), callerKey{}, caller{auth: a})), nil
	}
	s, err := a.Verify(r.Context(), raw)
	if err != nil {
		return r, err
	}
	return r.WithContext(WithSubject(r.Context(), a, s)), nil
}

// Verify checks a raw token — signature, times, revocation — and returns
// its subject.
func (a *Authenticator) Verify(ctx context.Context, raw string) (*policy.Subject, error) {
	c, err := a.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, err
	}
	s := SubjectOf(c)
	revoked, err := a.cache.Revoked(s)
	if err != nil {
		return nil, err
	}
	if revoked {
		return nil, apierr.New(apierr.CodeUnauthenticated, "token revoked")
	}
	return s, nil
}

// SubjectOf is the subject a token's claims describe.
func SubjectOf(c *token.Claims) *policy.Subject {
	return &policy.Subject{
		PrincipalID:   c.Subject,
		PrincipalType: c.PrincipalType,
		Scope:         c.Scope,
		Roles:         c.Roles,
		IssuedBy:      c.IssuedBy,
		TokenID:       c.ID,
		IssuedAt:      c.IssuedAt,
		ExpiresAt:     c.ExpiresAt,
	}
}

// RequireAuthenticated fails unless r has a caller.
func (a *Authenticator) RequireAuthenticated(r *http.Request) error {
	_, err := Caller(r.Context())
	return err
}

// Bearer extracts the token of an "Authorization: Bearer" header. Another
// scheme is refused rather than ignored, so that a credential the caller
// meant to use is never silently dropped.
func Bearer(r *http.Request) (raw string, present bool, err error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", false, nil
	}
	scheme, raw, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", true, apierr.New(apierr.CodeUnauthenticated, "the Authorization header must be \"Bearer <token>\"")
	}
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", true, apierr.New(apierr.CodeUnauthenticated, "empty bearer token")
	}
	return raw, true, nil
}

// IsLoopback reports whether a RemoteAddr is a loopback address. Proxy
// headers are never consulted: only the socket's peer counts.
func IsLoopback(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// AsBootstrap is ctx acting as the bootstrap admin: for what the platform
// itself does in-process at start (issuing S3's bootstrap access key),
// never for a request.
func (a *Authenticator) AsBootstrap(ctx context.Context) context.Context {
	return WithSubject(ctx, a, bootstrap)
}
