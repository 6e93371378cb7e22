package iam

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"slices"
	"strconv"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/auth"
	"github.com/photoncloud/photon/internal/auth/policy"
	"github.com/photoncloud/photon/internal/auth/token"
	"github.com/photoncloud/photon/internal/ids"
	"github.com/photoncloud/photon/internal/state"
)

// ttl resolves a request's ttl_seconds against the configured bounds.
func (s *Service) ttl(seconds *int64) (time.Duration, error) {
	if seconds == nil {
		return s.cfg.DefaultTokenTTL, nil
	}
	max := int64(s.cfg.MaxTokenTTL / time.Second)
	if *seconds < 1 || *seconds > max {
		return 0, &apierr.Error{Code: apierr.CodeValidation, Message: "ttl_seconds must be between 1 and " + itoa(max),
			Details: map[string]any{"field": "ttl_seconds", "constraint": string(apierr.Range), "min": 1, "max": max}}
	}
	return time.Duration(*seconds) * time.Second, nil
}

// IssueToken issues a token for a principal in a scope, in one of two ways:
//   - the principal proves itself with an access key: the token carries
//     exactly its roles at the scope (none → 403), or the subset it names;
//   - the caller holds iam.tokens.delegate over the scope: the token
//     carries the roles named (default member), never more than the caller
//     could hand out, and its issuer's rights bound it for its whole life.
func (s *Service) IssueToken(ctx context.Context, req IssueTokenRequest) (IssuedToken, error) {
	ttl, err := s.ttl(req.TTLSeconds)
	if err != nil {
		return IssuedToken{}, err
	}
	if req.PrincipalType != "" {
		if err := validTypeField("principal_type", req.PrincipalType); err != nil {
			return IssuedToken{}, err
		}
	}
	for _, r := range req.Roles {
		if err := validID("roles", r); err != nil {
			return IssuedToken{}, err
		}
	}
	if req.AccessKeyID != "" || req.SecretAccessKey != "" {
		return s.issueWithCredential(ctx, req, ttl)
	}
	if err := firstErr(validID("principal_id", req.PrincipalID), validScope("scope_id", req.ScopeID)); err != nil {
		return IssuedToken{}, err
	}
	caller, err := auth.Caller(ctx)
	if err != nil {
		return IssuedToken{}, err
	}
	if !caller.Bootstrap && caller.IssuedBy != caller.PrincipalID {
		return IssuedToken{}, apierr.New(apierr.CodeForbidden, "a delegated token cannot issue tokens")
	}
	if err := auth.Require(ctx, permTokensDelegate, s.scopeTarget(req.ScopeID)); err != nil {
		return IssuedToken{}, err
	}
	roles := req.Roles
	if len(roles) == 0 {
		roles = []string{policy.RoleMember}
	}
	for _, r := range roles {
		if _, ok := s.cache.Rules(r); !ok {
			return IssuedToken{}, apierr.Validation("roles", apierr.Enum, "role %q does not exist", r)
		}
		if err := s.mayGrant(ctx, r); err != nil {
			return IssuedToken{}, err
		}
	}
	typ, err := s.principalType(ctx, req.PrincipalID)
	if err != nil {
		return IssuedToken{}, err
	}
	switch {
	case typ == "" && req.PrincipalType == "":
		// A principal IAM does not know (an external identity, as the
		// seed's user-alice): taken as given, as projects are.
		typ = policy.TypeUser
	case typ == "":
		typ = req.PrincipalType
	case req.PrincipalType != "" && req.PrincipalType != typ:
		return IssuedToken{}, apierr.Validation("principal_type", apierr.Enum, "principal %q is a %s, not a %s", req.PrincipalID, typ, req.PrincipalType)
	}
	return s.sign(ctx, token.Claims{Subject: req.PrincipalID, PrincipalType: typ, Scope: req.ScopeID,
		Roles: dedupe(roles), IssuedBy: caller.PrincipalID}, ttl)
}

// issueWithCredential issues a principal's own token on proof of an access
// key, scoped to the key's project.
func (s *Service) issueWithCredential(ctx context.Context, req IssueTokenRequest, ttl time.Duration) (IssuedToken, error) {
	if req.AccessKeyID == "" {
		return IssuedToken{}, apierr.Validation("access_key_id", apierr.Required, "access_key_id is required with secret_access_key")
	}
	if req.SecretAccessKey == "" {
		return IssuedToken{}, apierr.Validation("secret_access_key", apierr.Required, "secret_access_key is required with access_key_id")
	}
	bad := apierr.New(apierr.CodeUnauthenticated, "invalid access key or secret")
	it, err := s.st.credentials.Get(ctx, req.AccessKeyID)
	if apierr.CodeOf(err) == apierr.CodeNotFound {
		return IssuedToken{}, bad
	} else if err != nil {
		return IssuedToken{}, err
	}
	c := it.Value
	if subtle.ConstantTimeCompare([]byte(c.Secret), []byte(req.SecretAccessKey)) != 1 {
		return IssuedToken{}, bad
	}
	if req.PrincipalID != "" && req.PrincipalID != c.PrincipalID {
		return IssuedToken{}, apierr.New(apierr.CodeForbidden, "the access key belongs to another principal")
	}
	if req.ScopeID != "" && req.ScopeID != c.ProjectID {
		return IssuedToken{}, &apierr.Error{Code: apierr.CodeForbidden, Message: "the access key is for project " + c.ProjectID + " only",
			Details: map[string]any{"scope_id": c.ProjectID}}
	}
	return s.issueOwn(ctx, c.PrincipalID, c.ProjectID, req.Roles, ttl)
}

// issueOwn issues a principal's own token carrying its live roles at scope
// (or the subset named).
func (s *Service) issueOwn(ctx context.Context, principal, scope string, want []string, ttl time.Duration) (IssuedToken, error) {
	if err := s.cache.Sync(ctx); err != nil {
		return IssuedToken{}, err
	}
	live := s.cache.LiveRoles(principal, scope)
	if len(live) == 0 {
		return IssuedToken{}, &apierr.Error{Code: apierr.CodeForbidden, Message: "principal " + principal + " holds no role at " + scope,
			Details: map[string]any{"principal_id": principal, "scope_id": scope}}
	}
	roles := live
	if len(want) > 0 {
		for _, r := range want {
			if !slices.Contains(live, r) {
				return IssuedToken{}, &apierr.Error{Code: apierr.CodeForbidden, Message: "principal " + principal + " does not hold role " + r + " at " + scope,
					Details: map[string]any{"role": r, "scope_id": scope}}
			}
		}
		roles = dedupe(want)
	}
	typ, err := s.principalType(ctx, principal)
	if err != nil {
		return IssuedToken{}, err
	}
	return s.sign(ctx, token.Claims{Subject: principal, PrincipalType: typ, Scope: scope, Roles: roles, IssuedBy: principal}, ttl)
}

func (s *Service) sign(ctx context.Context, c token.Claims, ttl time.Duration) (IssuedToken, error) {
	key, err := s.keys.signer(ctx)
	if err != nil {
		return IssuedToken{}, err
	}
	now := s.now().UTC().Truncate(time.Second)
	c.ID = ids.New("tok")
	c.IssuedAt, c.NotBefore, c.ExpiresAt = now, now, now.Add(ttl)
	raw, err := token.Sign(key, c)
	if err != nil {
		return IssuedToken{}, apierr.Wrap(apierr.CodeInternal, err, "signing the token")
	}
	return IssuedToken{Token: raw, TokenID: c.ID, PrincipalID: c.Subject, ScopeID: c.Scope, Roles: c.Roles,
		IssuedBy: c.IssuedBy, ExpiresAt: c.ExpiresAt}, nil
}

// Login issues a user's own token on proof of its password. Failures are
// counted per (principal, source) and per principal; past the limit the
// answer is 429 until the window passes, whatever the password.
func (s *Service) Login(ctx context.Context, req LoginRequest, source string) (IssuedToken, error) {
	if err := firstErr(validID("principal_id", req.PrincipalID), validScope("scope_id", req.ScopeID)); err != nil {
		return IssuedToken{}, err
	}
	if req.Password == "" {
		return IssuedToken{}, apierr.Validation("password", apierr.Required, "password is required")
	}
	ttl, err := s.ttl(req.TTLSeconds)
	if err != nil {
		return IssuedToken{}, err
	}
	if wait := s.limiter.blocked(req.PrincipalID, source); wait > 0 {
		secs := int((wait + time.Second - 1) / time.Second)
		return IssuedToken{}, &apierr.Error{Code: apierr.CodeRateLimited, Message: "too many failed logins; try again later",
			Details: map[string]any{"retry_after_seconds": secs}}
	}
	hash := s.hasher.dummy()
	it, err := s.st.passwords.Get(ctx, req.PrincipalID)
	switch {
	case err == nil:
		hash = it.Value.Hash
	case apierr.CodeOf(err) != apierr.CodeNotFound:
		return IssuedToken{}, err
	}
	// Always hash, so a missing principal answers as slowly as a wrong password.
	if !s.hasher.verify(hash, req.Password) || err != nil {
		s.limiter.fail(req.PrincipalID, source)
		s.log.InfoContext(ctx, "iam: failed login", "principal_id", req.PrincipalID, "source", source)
		return IssuedToken{}, apierr.New(apierr.CodeUnauthenticated, "invalid principal or password")
	}
	s.limiter.succeed(req.PrincipalID, source)
	return s.issueOwn(ctx, req.PrincipalID, req.ScopeID, nil, ttl)
}

// Verify reports what a token says and whether it is valid now, including
// revocation. An invalid token is an answer, not an error.
func (s *Service) Verify(ctx context.Context, raw string) (Verification, error) {
	if raw == "" {
		return Verification{}, apierr.Validation("token", apierr.Required, "token is required")
	}
	c, err := s.verifier.Verify(ctx, raw)
	if err != nil {
		e := apierr.As(err)
		if e.Code != apierr.CodeUnauthenticated {
			return Verification{}, err
		}
		return Verification{Valid: false, Reason: e.Message}, nil
	}
	sub := auth.SubjectOf(c)
	revoked, err := s.cache.Revoked(sub)
	if err != nil {
		return Verification{}, err
	}
	if revoked {
		return Verification{Valid: false, Reason: "token revoked", TokenID: c.ID}, nil
	}
	iat, exp := c.IssuedAt, c.ExpiresAt
	return Verification{Valid: true, TokenID: c.ID, PrincipalID: c.Subject, PrincipalType: c.PrincipalType, ScopeID: c.Scope,
		Roles: c.Roles, EffectiveRoles: s.cache.EffectiveRoles(sub), IssuedBy: c.IssuedBy, Delegated: c.Delegated(),
		IssuedAt: &iat, ExpiresAt: &exp}, nil
}

// Revoke revokes one token — its holder proves the right by presenting it,
// or an admin over its scope — or every token issued to or by a principal
// (the principal itself, or whoever may revoke at system scope).
func (s *Service) Revoke(ctx context.Context, req RevokeRequest) (Revocation, error) {
	switch {
	case req.Token == "" && req.PrincipalID == "":
		return Revocation{}, apierr.Validation("token", apierr.Required, "name a token or a principal_id")
	case req.Token != "" && req.PrincipalID != "":
		return Revocation{}, apierr.Validation("principal_id", apierr.Format, "name a token or a principal_id, not both")
	case req.Token != "":
		return s.revokeToken(ctx, req.Token)
	}
	if err := validID("principal_id", req.PrincipalID); err != nil {
		return Revocation{}, err
	}
	caller, err := auth.Caller(ctx)
	if err != nil {
		return Revocation{}, err
	}
	if caller.PrincipalID != req.PrincipalID || caller.Bootstrap {
		if err := auth.Require(ctx, permTokensRevoke, policy.System); err != nil {
			return Revocation{}, err
		}
	}
	op, lease, err := s.revokePrincipalOp(ctx, req.PrincipalID)
	if err != nil {
		return Revocation{}, err
	}
	defer lease.release()
	rev, err := state.Commit(ctx, s.st.cli, op)
	if err != nil {
		return Revocation{}, err
	}
	lease.keep()
	return Revocation{Revoked: true, PrincipalID: req.PrincipalID, Before: s.now().UTC().Truncate(time.Second)}, s.cache.WaitFor(ctx, rev)
}

func (s *Service) revokeToken(ctx context.Context, raw string) (Revocation, error) {
	c, err := s.verifier.Verify(ctx, raw)
	if err != nil {
		// Nothing to revoke: it does not work anyway (RFC 7009 answers the
		// same way).
		if apierr.CodeOf(err) == apierr.CodeUnauthenticated {
			return Revocation{Revoked: false}, nil
		}
		return Revocation{}, err
	}
	lease, err := s.grantLease(ctx, time.Until(c.ExpiresAt)+time.Minute)
	if err != nil {
		return Revocation{}, err
	}
	defer lease.release()
	op, err := s.st.revokedTokens.PutOp(c.ID, policy.RevokedToken{ID: c.ID, ExpiresAt: c.ExpiresAt}, lease.id)
	if err != nil {
		return Revocation{}, err
	}
	rev, err := state.Commit(ctx, s.st.cli, op)
	if err != nil {
		return Revocation{}, err
	}
	lease.keep()
	return Revocation{Revoked: true, TokenID: c.ID}, s.cache.WaitFor(ctx, rev)
}

// revokePrincipalOp writes the marker that revokes every token issued to or
// by principal until now, on a lease that outlives the longest token.
func (s *Service) revokePrincipalOp(ctx context.Context, principal string) (state.Op, *leaseHandle, error) {
	lease, err := s.grantLease(ctx, s.cfg.MaxTokenTTL+time.Minute)
	if err != nil {
		return state.Op{}, nil, err
	}
	op, err := s.st.revokedPrincipals.PutOp(principal, policy.RevokedPrincipal{PrincipalID: principal, Before: s.now().UTC().Truncate(time.Second)}, lease.id)
	if err != nil {
		lease.release()
		return state.Op{}, nil, err
	}
	return op, lease, nil
}

// leaseHandle is a lease granted for a write that may not happen: release
// revokes it unless keep was called after the write succeeded.
type leaseHandle struct {
	cli  *clientv3.Client
	id   clientv3.LeaseID
	kept bool
}

func (s *Service) grantLease(ctx context.Context, ttl time.Duration) (*leaseHandle, error) {
	resp, err := s.st.cli.Grant(ctx, int64(ttl/time.Second)+1)
	if err != nil {
		return nil, state.FromEtcd(err)
	}
	return &leaseHandle{cli: s.st.cli, id: resp.ID}, nil
}

func (l *leaseHandle) keep() { l.kept = true }

func (l *leaseHandle) release() {
	if !l.kept {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, _ = l.cli.Revoke(ctx, l.id)
	}
}

// Check answers whether the caller (or the holder of req.Token) may do
// req.Permission on a resource of req.OrgID/req.ProjectID.
func (s *Service) Check(ctx context.Context, req CheckRequest) (CheckResult, error) {
	if req.Permission == "" {
		return CheckResult{}, apierr.Validation("permission", apierr.Required, "permission is required")
	}
	if err := policy.ValidatePermission("permission", req.Permission); err != nil {
		return CheckResult{}, err
	}
	for field, v := range map[string]string{"org_id": req.OrgID, "project_id": req.ProjectID} {
		if v != "" {
			if err := validID(field, v); err != nil {
				return CheckResult{}, err
			}
		}
	}
	var sub *policy.Subject
	if req.Token != "" {
		c, err := s.verifier.Verify(ctx, req.Token)
		if err != nil {
			return CheckResult{}, err
		}
		sub = auth.SubjectOf(c)
		revoked, err := s.cache.Revoked(sub)
		if err != nil {
			return CheckResult{}, err
		}
		if revoked {
			return CheckResult{}, apierr.New(apierr.CodeUnauthenticated, "token revoked")
		}
	} else {
		var err error
		if sub, err = auth.Caller(ctx); err != nil {
			return CheckResult{}, err
		}
	}
	d, err := s.cache.Decide(sub, req.Permission, policy.Target{OrgID: req.OrgID, ProjectID: req.ProjectID})
	if err != nil {
		return CheckResult{}, err
	}
	return CheckResult{Allowed: d == policy.Allow, Decision: d.String(), PrincipalID: sub.PrincipalID, ScopeID: sub.Scope, Permission: req.Permission}, nil
}

// JWKS is the public half of every published signing key.
func (s *Service) JWKS() token.JWKS { return token.NewJWKS(s.keys.public()) }

// ListKeys lists the signing keys' lifetimes (system admins).
func (s *Service) ListKeys(ctx context.Context) (SigningKeyList, error) {
	if err := auth.Require(ctx, permKeysList, policy.System); err != nil {
		return SigningKeyList{}, err
	}
	if err := s.keys.refresh(ctx); err != nil {
		return SigningKeyList{}, err
	}
	return SigningKeyList{Keys: s.keys.list()}, nil
}

// RotateKeys starts signing with a new key now (system admins); tokens
// signed with the old one stay valid until they expire.
func (s *Service) RotateKeys(ctx context.Context) (SigningKeyInfo, error) {
	if err := auth.Require(ctx, permKeysRotate, policy.System); err != nil {
		return SigningKeyInfo{}, err
	}
	return s.keys.rotate(ctx)
}

// AdminToken issues the bootstrap admin's own token for DATA/admin.token.
func (s *Service) AdminToken(ctx context.Context) (IssuedToken, error) {
	return s.issueOwn(ctx, policy.BootstrapAdmin, policy.SystemScope, nil, s.cfg.MaxTokenTTL)
}

// newAccessKey returns an AWS-shaped access key id (20 upper-case
// characters) and a 40-character secret.
func newAccessKey() (string, string, error) {
	idb := make([]byte, 15) // 24 base32 characters, of which the id keeps 18
	sb := make([]byte, 30)
	if _, err := rand.Read(idb); err != nil {
		return "", "", err
	}
	if _, err := rand.Read(sb); err != nil {
		return "", "", err
	}
	return "PK" + base32.StdEncoding.EncodeToString(idb)[:18], base64.RawURLEncoding.EncodeToString(sb), nil
}

func validTypeField(field, t string) error {
	if t != policy.TypeUser && t != policy.TypeServiceAccount {
		return apierr.Validation(field, apierr.Enum, "%s %q must be %q or %q", field, t, policy.TypeUser, policy.TypeServiceAccount)
	}
	return nil
}

func dedupe(in []string) []string {
	out := slices.Clone(in)
	slices.Sort(out)
	return slices.Compact(out)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
