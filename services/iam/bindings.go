package iam

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/auth"
	"github.com/photoncloud/photon/internal/auth/policy"
	"github.com/photoncloud/photon/internal/state"
)

const maxRules = 100

// bindingID is derived from what the binding says, so the same grant twice
// is ALREADY_EXISTS rather than a duplicate.
func bindingID(b Binding) string {
	sum := sha256.Sum256([]byte(b.PrincipalID + "\x00" + b.Role + "\x00" + b.Scope))
	return "bnd-" + hex.EncodeToString(sum[:10])
}

// --- roles ----------------------------------------------------------------

// ListRoles lists built-in and custom roles; any authenticated caller may.
func (s *Service) ListRoles(ctx context.Context) (RoleList, error) {
	if _, err := auth.Caller(ctx); err != nil {
		return RoleList{}, err
	}
	out := RoleList{Roles: policy.BuiltinRoles()}
	token := ""
	for {
		page, err := s.st.roles.List(ctx, "", 1000, token)
		if err != nil {
			return RoleList{}, err
		}
		for _, it := range page.Items {
			out.Roles = append(out.Roles, it.Value)
		}
		if token = page.NextPageToken; token == "" {
			return out, nil
		}
	}
}

// GetRole returns a role; any authenticated caller may.
func (s *Service) GetRole(ctx context.Context, name string) (Role, error) {
	if _, err := auth.Caller(ctx); err != nil {
		return Role{}, err
	}
	for _, r := range policy.BuiltinRoles() {
		if r.Name == name {
			return r, nil
		}
	}
	it, err := s.st.roles.Get(ctx, name)
	return it.Value, err
}

func validRules(rules []string) error {
	if len(rules) == 0 {
		return apierr.Validation("permissions", apierr.Required, "permissions must list at least one permission")
	}
	if len(rules) > maxRules {
		return apierr.Validation("permissions", apierr.MaxLength, "permissions may list at most %d entries", maxRules)
	}
	for _, r := range rules {
		if err := policy.ValidateRule("permissions", r); err != nil {
			return err
		}
	}
	return nil
}

// CreateRole creates a custom role (system admins only).
func (s *Service) CreateRole(ctx context.Context, req CreateRoleRequest) (Role, error) {
	if err := firstErr(validID("name", req.Name), validDescription(req.Description), validRules(req.Permissions)); err != nil {
		return Role{}, err
	}
	if policy.IsBuiltin(req.Name) {
		return Role{}, &apierr.Error{Code: apierr.CodeAlreadyExists, Message: "role " + req.Name + " is built in", Details: map[string]any{"kind": "role", "id": req.Name}}
	}
	if err := auth.Require(ctx, permRolesCreate, policy.System); err != nil {
		return Role{}, err
	}
	now := s.now().UTC()
	r := Role{Name: req.Name, Description: req.Description, Permissions: req.Permissions, CreatedAt: now, UpdatedAt: now}
	it, err := s.st.roles.Create(ctx, r.Name, r)
	if err != nil {
		return Role{}, err
	}
	return r, s.cache.WaitFor(ctx, it.ModRevision)
}

// UpdateRole changes a custom role; every token using it changes with it.
func (s *Service) UpdateRole(ctx context.Context, name string, req UpdateRoleRequest) (Role, error) {
	if err := validPtrDesc(req.Description); err != nil {
		return Role{}, err
	}
	if req.Permissions != nil {
		if err := validRules(*req.Permissions); err != nil {
			return Role{}, err
		}
	}
	if err := auth.Require(ctx, permRolesUpdate, policy.System); err != nil {
		return Role{}, err
	}
	if policy.IsBuiltin(name) {
		return Role{}, apierr.New(apierr.CodeFailedPrecondition, "built-in role %q cannot be changed", name)
	}
	it, err := s.st.roles.Get(ctx, name)
	if err != nil {
		return Role{}, err
	}
	r := it.Value
	setIf(&r.Description, req.Description)
	if req.Permissions != nil {
		r.Permissions = *req.Permissions
	}
	r.UpdatedAt = s.now().UTC()
	upd, err := s.st.roles.Update(ctx, name, r, it.ModRevision)
	if err != nil {
		return Role{}, err
	}
	return r, s.cache.WaitFor(ctx, upd.ModRevision)
}

// DeleteRole deletes a custom role no binding uses.
func (s *Service) DeleteRole(ctx context.Context, name string) error {
	if err := auth.Require(ctx, permRolesDelete, policy.System); err != nil {
		return err
	}
	if policy.IsBuiltin(name) {
		return apierr.New(apierr.CodeFailedPrecondition, "built-in role %q cannot be deleted", name)
	}
	if err := s.cache.Sync(ctx); err != nil {
		return err
	}
	var ops []state.Op
	ops = append(ops, s.st.roles.DeleteOp(name, 0))
	for _, b := range s.cache.Bindings("") {
		if b.Role == name {
			return &apierr.Error{Code: apierr.CodeFailedPrecondition, Message: "role " + name + " is still bound (binding " + b.ID + "); delete its bindings first",
				Details: map[string]any{"kind": "role", "id": name, "binding_id": b.ID}}
		}
	}
	rev, err := state.Commit(ctx, s.st.cli, ops...)
	if err != nil {
		return err
	}
	return s.cache.WaitFor(ctx, rev)
}

// --- bindings -------------------------------------------------------------

// CreateBinding grants a role at a scope. The caller must administer
// bindings there and may grant only what it could hand out itself.
func (s *Service) CreateBinding(ctx context.Context, req CreateBindingRequest) (Binding, error) {
	if err := firstErr(validID("principal_id", req.PrincipalID), validID("role", req.Role), validScope("scope_id", req.ScopeID)); err != nil {
		return Binding{}, err
	}
	if _, ok := s.cache.Rules(req.Role); !ok {
		if err := s.cache.Sync(ctx); err != nil {
			return Binding{}, err
		}
		if _, ok := s.cache.Rules(req.Role); !ok {
			return Binding{}, apierr.Validation("role", apierr.Enum, "role %q does not exist", req.Role)
		}
	}
	if err := auth.Require(ctx, permBindingsCreate, s.scopeTarget(req.ScopeID)); err != nil {
		return Binding{}, err
	}
	if err := s.mayGrant(ctx, req.Role); err != nil {
		return Binding{}, err
	}
	b := Binding{PrincipalID: req.PrincipalID, Role: req.Role, Scope: req.ScopeID, CreatedAt: s.now().UTC()}
	b.ID = bindingID(b)
	create, err := s.st.bindings.CreateOp(b.ID, b)
	if err != nil {
		return Binding{}, err
	}
	rev, err := state.Commit(ctx, s.st.cli, s.st.principals.ExistsOp(b.PrincipalID), create)
	if err != nil {
		return Binding{}, err
	}
	return b, s.cache.WaitFor(ctx, rev)
}

// mayGrant refuses handing out a role the caller could not hand out.
func (s *Service) mayGrant(ctx context.Context, role string) error {
	caller, err := auth.Caller(ctx)
	if err != nil {
		return err
	}
	if !s.cache.Grantable(caller, role) {
		return &apierr.Error{Code: apierr.CodeForbidden, Message: "the caller may not grant role " + role + ": it holds less",
			Details: map[string]any{"role": role}}
	}
	return nil
}

// GetBinding returns a binding the caller can see.
func (s *Service) GetBinding(ctx context.Context, id string) (Binding, error) {
	it, err := s.st.bindings.Get(ctx, id)
	if err != nil {
		return Binding{}, err
	}
	if err := auth.RequireOn(ctx, permBindingsGet, s.scopeTarget(it.Value.Scope), "binding", id); err != nil {
		return Binding{}, err
	}
	return it.Value, nil
}

// ListBindings lists the bindings the caller can see, optionally of one
// principal and/or at one scope.
func (s *Service) ListBindings(ctx context.Context, principal, scope string) (BindingList, error) {
	if principal != "" {
		if err := validID("principal_id", principal); err != nil {
			return BindingList{}, err
		}
	}
	if scope != "" {
		if err := validScope("scope_id", scope); err != nil {
			return BindingList{}, err
		}
		if err := auth.Require(ctx, permBindingsList, s.scopeTarget(scope)); err != nil {
			return BindingList{}, err
		}
	} else if _, err := auth.ListTarget(ctx, permBindingsList, policy.System); err != nil {
		return BindingList{}, err
	}
	if err := s.cache.Sync(ctx); err != nil {
		return BindingList{}, err
	}
	out := BindingList{Bindings: []Binding{}}
	for _, b := range s.cache.Bindings(principal) {
		if scope != "" && b.Scope != scope {
			continue
		}
		if auth.Require(ctx, permBindingsList, s.scopeTarget(b.Scope)) == nil {
			out.Bindings = append(out.Bindings, b)
		}
	}
	return out, nil
}

// DeleteBinding removes a grant; tokens relying on it lose it at once.
func (s *Service) DeleteBinding(ctx context.Context, id string) error {
	it, err := s.st.bindings.Get(ctx, id)
	if err != nil {
		return err
	}
	if err := auth.RequireOn(ctx, permBindingsDelete, s.scopeTarget(it.Value.Scope), "binding", id); err != nil {
		return err
	}
	if err := s.mayGrant(ctx, it.Value.Role); err != nil {
		return err
	}
	rev, err := state.Commit(ctx, s.st.cli, s.st.bindings.DeleteOp(id, it.ModRevision))
	if err != nil {
		return err
	}
	return s.cache.WaitFor(ctx, rev)
}

// --- credentials ----------------------------------------------------------

// CreateCredential makes an access key for a principal in a project. The
// secret is in this answer and never again.
func (s *Service) CreateCredential(ctx context.Context, req CreateCredentialRequest) (Credential, error) {
	if err := firstErr(validID("principal_id", req.PrincipalID), validID("project_id", req.ProjectID), validDescription(req.Description)); err != nil {
		return Credential{}, err
	}
	t := s.scopeTarget(req.ProjectID)
	if t.ProjectID == "" {
		return Credential{}, apierr.Validation("project_id", apierr.Format, "%q is not a project", req.ProjectID)
	}
	if err := auth.Require(ctx, permCredentialsCreate, t); err != nil {
		return Credential{}, err
	}
	akid, secret, err := newAccessKey()
	if err != nil {
		return Credential{}, apierr.Wrap(apierr.CodeInternal, err, "generating an access key")
	}
	c := Credential{AccessKeyID: akid, PrincipalID: req.PrincipalID, ProjectID: req.ProjectID, Description: req.Description, CreatedAt: s.now().UTC()}
	create, err := s.st.credentials.CreateOp(akid, storedCredential{Credential: c, Secret: secret})
	if err != nil {
		return Credential{}, err
	}
	if _, err := state.Commit(ctx, s.st.cli, s.st.principals.ExistsOp(c.PrincipalID), create); err != nil {
		return Credential{}, err
	}
	c.SecretAccessKey = secret
	return c, nil
}

// GetCredential returns a credential (without its secret).
func (s *Service) GetCredential(ctx context.Context, akid string) (Credential, error) {
	it, err := s.st.credentials.Get(ctx, akid)
	if err != nil {
		return Credential{}, err
	}
	if err := auth.RequireOn(ctx, permCredentialsGet, s.scopeTarget(it.Value.ProjectID), "credential", akid); err != nil {
		return Credential{}, err
	}
	return it.Value.Credential, nil
}

// ListCredentials lists credentials in the caller's scope.
func (s *Service) ListCredentials(ctx context.Context, principal, project string) (CredentialList, error) {
	if principal != "" {
		if err := validID("principal_id", principal); err != nil {
			return CredentialList{}, err
		}
	}
	named := policy.System
	if project != "" {
		if err := validID("project_id", project); err != nil {
			return CredentialList{}, err
		}
		named = s.scopeTarget(project)
	}
	if _, err := auth.ListTarget(ctx, permCredentialsList, named); err != nil {
		return CredentialList{}, err
	}
	all, err := s.credentialsOf(ctx, principal)
	if err != nil {
		return CredentialList{}, err
	}
	out := CredentialList{Credentials: []Credential{}}
	for _, c := range all {
		if project != "" && c.ProjectID != project {
			continue
		}
		if auth.Require(ctx, permCredentialsList, s.scopeTarget(c.ProjectID)) == nil {
			out.Credentials = append(out.Credentials, c.Credential)
		}
	}
	slices.SortFunc(out.Credentials, func(a, b Credential) int { return strings.Compare(a.AccessKeyID, b.AccessKeyID) })
	return out, nil
}

// DeleteCredential revokes an access key.
func (s *Service) DeleteCredential(ctx context.Context, akid string) error {
	it, err := s.st.credentials.Get(ctx, akid)
	if err != nil {
		return err
	}
	if err := auth.RequireOn(ctx, permCredentialsDelete, s.scopeTarget(it.Value.ProjectID), "credential", akid); err != nil {
		return err
	}
	return s.st.credentials.Delete(ctx, akid, it.ModRevision)
}
