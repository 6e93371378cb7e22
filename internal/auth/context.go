package auth

import (
	"context"
	"net/http"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/auth/policy"
	"github.com/photoncloud/photon/internal/rest"
)

type callerKey struct{}

// caller is what Authenticate attaches: the authenticator that decides, and
// the subject (nil for an anonymous request).
type caller struct {
	auth    *Authenticator
	subject *policy.Subject
}

// WithSubject returns ctx acting as s, decided by a.
func WithSubject(ctx context.Context, a *Authenticator, s *policy.Subject) context.Context {
	return context.WithValue(ctx, callerKey{}, caller{auth: a, subject: s})
}

func callerOf(ctx context.Context) (caller, error) {
	c, ok := ctx.Value(callerKey{}).(caller)
	if !ok || c.auth == nil {
		// No authenticator ran: a wiring mistake, and it must fail closed.
		return caller{}, apierr.New(apierr.CodeUnauthenticated, "authentication required")
	}
	if c.subject == nil {
		return c, apierr.New(apierr.CodeUnauthenticated, "authentication required: send \"Authorization: Bearer <token>\"")
	}
	return c, nil
}

// Caller returns the subject ctx acts as, or UNAUTHENTICATED.
func Caller(ctx context.Context) (*policy.Subject, error) {
	c, err := callerOf(ctx)
	return c.subject, err
}

// Require fails unless the caller may do perm on t: 401 without a caller,
// 403 otherwise (writes and lists; reads of one resource use RequireOn).
func Require(ctx context.Context, perm string, t policy.Target) error {
	c, err := callerOf(ctx)
	if err != nil {
		return err
	}
	d, err := c.auth.cache.Decide(c.subject, perm, t)
	if err != nil {
		return err
	}
	if d != policy.Allow {
		return forbidden(c.subject, perm)
	}
	return nil
}

// RequireOn is Require for acting on one existing resource (kind, id) at t
// — reading, changing or deleting it: outside the caller's scope it is
// NOT_FOUND, exactly as a missing one, so that a token never learns what
// exists in another project; inside it, a missing permission is 403.
func RequireOn(ctx context.Context, perm string, t policy.Target, kind, id string) error {
	c, err := callerOf(ctx)
	if err != nil {
		return err
	}
	d, err := c.auth.cache.Decide(c.subject, perm, t)
	if err != nil {
		return err
	}
	switch d {
	case policy.Allow:
		return nil
	case policy.OutOfScope:
		return apierr.NotFound(kind, id)
	default:
		return forbidden(c.subject, perm)
	}
}

// ListTarget is where a list may look: what the request names, which must
// lie inside the caller's scope (403 otherwise), or — when it names nothing
// — the caller's own scope. The caller must hold perm there.
func ListTarget(ctx context.Context, perm string, named policy.Target) (policy.Target, error) {
	c, err := callerOf(ctx)
	if err != nil {
		return policy.Target{}, err
	}
	t := named
	if t == policy.System && c.subject.Scope != policy.SystemScope {
		if c.auth.cache.IsOrg(c.subject.Scope) {
			t = policy.Target{OrgID: c.subject.Scope}
		} else {
			t = policy.Target{ProjectID: c.subject.Scope}
		}
	}
	if err := Require(ctx, perm, t); err != nil {
		return policy.Target{}, err
	}
	return t, nil
}

func forbidden(s *policy.Subject, perm string) error {
	return &apierr.Error{Code: apierr.CodeForbidden,
		Message: "the caller may not " + perm + " here",
		Details: map[string]any{"permission": perm, "scope_id": s.Scope}}
}

// Authenticated refuses an anonymous caller (401) before h runs, so that
// without a token nothing — not even whether an id exists — can be learnt.
func Authenticated(h rest.Handler) rest.Handler {
	return func(r *http.Request) (any, error) {
		if _, err := Caller(r.Context()); err != nil {
			return nil, err
		}
		return h(r)
	}
}

// CallerIsOrg reports whether the caller's scope is an org: its token
// covers the org's projects rather than naming one.
func CallerIsOrg(ctx context.Context) bool {
	c, err := callerOf(ctx)
	if err != nil || c.subject.Bootstrap || c.subject.Scope == policy.SystemScope || c.auth.cache == nil {
		return false
	}
	return c.auth.cache.IsOrg(c.subject.Scope)
}
