package iam

import (
	"context"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/auth"
	"github.com/photoncloud/photon/internal/auth/policy"
	"github.com/photoncloud/photon/internal/ids"
	"github.com/photoncloud/photon/internal/state"
)

const (
	minPasswordLen = 8
	maxPasswordLen = 256
)

func validType(t string) error { return validTypeField("type", t) }

func validPassword(p string) error {
	switch {
	case len(p) < minPasswordLen:
		return apierr.Validation("password", apierr.Range, "password must be at least %d characters", minPasswordLen)
	case len(p) > maxPasswordLen:
		return apierr.Validation("password", apierr.MaxLength, "password must be at most %d characters", maxPasswordLen)
	}
	return nil
}

// CreatePrincipal creates a user or service account (system admins only;
// principals are global and join scopes through bindings).
func (s *Service) CreatePrincipal(ctx context.Context, req CreatePrincipalRequest) (Principal, error) {
	if req.Type == "" {
		req.Type = policy.TypeUser
	}
	if err := validType(req.Type); err != nil {
		return Principal{}, err
	}
	if req.ID == "" {
		kind := "user"
		if req.Type == policy.TypeServiceAccount {
			kind = "sa"
		}
		req.ID = ids.New(kind)
	}
	if err := firstErr(validID("id", req.ID), validName("name", req.Name, true), validEmail(req.Email)); err != nil {
		return Principal{}, err
	}
	if req.Password != "" {
		if req.Type != policy.TypeUser {
			return Principal{}, apierr.Validation("password", apierr.Format, "only users have passwords; service accounts use credentials")
		}
		if err := validPassword(req.Password); err != nil {
			return Principal{}, err
		}
	}
	if err := auth.Require(ctx, permUsersCreate, policy.System); err != nil {
		return Principal{}, err
	}
	now := s.now().UTC()
	p := Principal{ID: req.ID, Name: req.Name, Email: req.Email, Type: req.Type, CreatedAt: now, UpdatedAt: now}
	create, err := s.st.principals.CreateOp(p.ID, p)
	if err != nil {
		return Principal{}, err
	}
	ops := []state.Op{create}
	if req.Password != "" {
		op, err := s.passwordOp(p.ID, req.Password)
		if err != nil {
			return Principal{}, err
		}
		ops = append(ops, op)
	}
	if _, err := state.Commit(ctx, s.st.cli, ops...); err != nil {
		return Principal{}, err
	}
	return p, nil
}

func (s *Service) passwordOp(id, password string) (state.Op, error) {
	h, err := s.hasher.hash(password)
	if err != nil {
		return state.Op{}, apierr.Wrap(apierr.CodeInternal, err, "hashing the password")
	}
	return s.st.passwords.PutOp(id, passwordRecord{Hash: h, UpdatedAt: s.now().UTC()}, 0)
}

// visible reports whether the caller may read principal id: itself, or a
// principal bound somewhere the caller may read users.
func (s *Service) visible(ctx context.Context, id string) error {
	caller, err := auth.Caller(ctx)
	if err != nil {
		return err
	}
	if caller.PrincipalID == id && !caller.Bootstrap {
		return nil
	}
	if auth.Require(ctx, permUsersGet, policy.System) == nil {
		return nil
	}
	for _, b := range s.cache.Bindings(id) {
		if auth.Require(ctx, permUsersGet, s.scopeTarget(b.Scope)) == nil {
			return nil
		}
	}
	return apierr.NotFound("user", id)
}

// GetPrincipal returns a principal the caller can see.
func (s *Service) GetPrincipal(ctx context.Context, id string) (Principal, error) {
	if err := s.visible(ctx, id); err != nil {
		return Principal{}, err
	}
	it, err := s.st.principals.Get(ctx, id)
	return it.Value, err
}

// ListPrincipals lists principals: all of them for a system-wide caller
// asking for no scope, else those bound at scope (default: the caller's),
// at a scope above it, or — for an org — at one of its projects.
func (s *Service) ListPrincipals(ctx context.Context, scope, typ string, limit int, pageToken string) (UserList, error) {
	if typ != "" {
		if err := validType(typ); err != nil {
			return UserList{}, err
		}
	}
	caller, err := auth.Caller(ctx)
	if err != nil {
		return UserList{}, err
	}
	named := scope != ""
	if !named {
		scope = caller.Scope
	}
	if err := validScope("scope_id", scope); err != nil {
		return UserList{}, err
	}
	target := s.scopeTarget(scope)
	if err := auth.Require(ctx, permUsersList, target); err != nil {
		return UserList{}, err
	}
	var members map[string]bool
	if named || scope != policy.SystemScope {
		members = map[string]bool{}
		for _, b := range s.cache.Bindings("") {
			if b.Scope == scope || b.Scope == policy.SystemScope || b.Scope == target.OrgID && target.OrgID != "" {
				members[b.PrincipalID] = true
			} else if p, ok := s.cache.Project(b.Scope); ok && target.ProjectID == "" && p.OrgID == scope {
				members[b.PrincipalID] = true
			}
		}
	}
	page, err := s.st.principals.List(ctx, "", limit, pageToken)
	if err != nil {
		return UserList{}, err
	}
	out := UserList{Users: []Principal{}, NextPageToken: page.NextPageToken}
	for _, it := range page.Items {
		if (members == nil || members[it.ID]) && (typ == "" || it.Value.Type == typ) {
			out.Users = append(out.Users, it.Value)
		}
	}
	return out, nil
}

// UpdatePrincipal changes a principal's name, email or password: a system
// admin may change anyone, a principal itself.
func (s *Service) UpdatePrincipal(ctx context.Context, id string, req UpdatePrincipalRequest) (Principal, error) {
	if err := firstErr(validPtrName("name", req.Name)); err != nil {
		return Principal{}, err
	}
	if req.Email != nil {
		if err := validEmail(*req.Email); err != nil {
			return Principal{}, err
		}
	}
	if req.Password != nil {
		if err := validPassword(*req.Password); err != nil {
			return Principal{}, err
		}
	}
	caller, err := auth.Caller(ctx)
	if err != nil {
		return Principal{}, err
	}
	// A principal may change itself with a token of its own (not one an
	// admin delegated to it).
	self := !caller.Bootstrap && caller.PrincipalID == id && caller.IssuedBy == id
	if !self {
		if err := auth.Require(ctx, permUsersUpdate, policy.System); err != nil {
			return Principal{}, err
		}
	}
	it, err := s.st.principals.Get(ctx, id)
	if err != nil {
		return Principal{}, err
	}
	p := it.Value
	if req.Password != nil && p.Type != policy.TypeUser {
		return Principal{}, apierr.Validation("password", apierr.Format, "only users have passwords; service accounts use credentials")
	}
	setIf(&p.Name, req.Name)
	setIf(&p.Email, req.Email)
	p.UpdatedAt = s.now().UTC()
	update, err := s.st.principals.UpdateOp(id, p, it.ModRevision)
	if err != nil {
		return Principal{}, err
	}
	ops := []state.Op{update}
	if req.Password != nil {
		op, err := s.passwordOp(id, *req.Password)
		if err != nil {
			return Principal{}, err
		}
		ops = append(ops, op)
	}
	if _, err := state.Commit(ctx, s.st.cli, ops...); err != nil {
		return Principal{}, err
	}
	return p, nil
}

// DeletePrincipal deletes a principal with its password, bindings and
// credentials, and revokes every token issued to or by it — in one
// transaction, so nothing of it outlives it.
func (s *Service) DeletePrincipal(ctx context.Context, id string) error {
	if err := auth.Require(ctx, permUsersDelete, policy.System); err != nil {
		return err
	}
	if id == policy.BootstrapAdmin {
		return apierr.New(apierr.CodeFailedPrecondition, "the bootstrap admin %q cannot be deleted", id)
	}
	it, err := s.st.principals.Get(ctx, id)
	if err != nil {
		return err
	}
	revoke, lease, err := s.revokePrincipalOp(ctx, id)
	if err != nil {
		return err
	}
	defer lease.release()
	ops := []state.Op{s.st.principals.DeleteOp(id, it.ModRevision), s.st.passwords.DeleteAnyOp(id), revoke}
	for _, b := range s.cache.Bindings(id) {
		ops = append(ops, s.st.bindings.DeleteAnyOp(b.ID))
	}
	creds, err := s.credentialsOf(ctx, id)
	if err != nil {
		return err
	}
	for _, c := range creds {
		ops = append(ops, s.st.credentials.DeleteAnyOp(c.AccessKeyID))
	}
	rev, err := state.Commit(ctx, s.st.cli, ops...)
	if err != nil {
		return err
	}
	lease.keep()
	return s.cache.WaitFor(ctx, rev)
}

// credentialsOf lists principal's credentials.
func (s *Service) credentialsOf(ctx context.Context, principal string) ([]storedCredential, error) {
	var out []storedCredential
	token := ""
	for {
		page, err := s.st.credentials.List(ctx, "", 1000, token)
		if err != nil {
			return nil, err
		}
		for _, it := range page.Items {
			if principal == "" || it.Value.PrincipalID == principal {
				out = append(out, it.Value)
			}
		}
		if page.NextPageToken == "" {
			return out, nil
		}
		token = page.NextPageToken
	}
}

// principalType is the type of a registered principal, or "" if IAM does
// not know it.
func (s *Service) principalType(ctx context.Context, id string) (string, error) {
	it, err := s.st.principals.Get(ctx, id)
	if apierr.CodeOf(err) == apierr.CodeNotFound {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return it.Value.Type, nil
}
