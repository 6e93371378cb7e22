package iam

import (
	"context"
	"log/slog"
	"net/mail"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/auth"
	"github.com/photoncloud/photon/internal/auth/policy"
	"github.com/photoncloud/photon/internal/auth/token"
	"github.com/photoncloud/photon/internal/ids"
	"github.com/photoncloud/photon/internal/state"
)

// Service is IAM's domain logic: identities, projects, roles, bindings,
// credentials and tokens, all in ChainFire. Every method authorizes the
// caller in ctx (internal/auth) before it reads or changes anything.
type Service struct {
	cfg      Config
	st       *store
	cache    *policy.Cache
	keys     *keyring
	verifier *token.Verifier
	hasher   passwordHasher
	limiter  *loginLimiter
	now      func() time.Time
	log      *slog.Logger
}

// NewService returns IAM over cli, deciding from cache (which must follow
// the same store).
func NewService(cfg Config, cli *clientv3.Client, cache *policy.Cache) *Service {
	cfg.Defaults()
	st := newStore(cli)
	s := &Service{
		cfg:    cfg,
		st:     st,
		cache:  cache,
		hasher: passwordHasher{memoryKiB: cfg.PasswordMemoryKiB, time: cfg.PasswordTime},
		now:    time.Now,
		log:    slog.Default().With("service", "iam"),
	}
	s.keys = &keyring{coll: st.signingKeys, rotation: cfg.KeyRotation, maxTTL: cfg.MaxTokenTTL, now: s.now, log: s.log}
	s.verifier = token.NewVerifier(s.keys)
	s.limiter = newLoginLimiter(cfg.LoginFailures, cfg.LoginWindow, s.now)
	return s
}

// Permissions IAM checks.
const (
	permOrgsCreate        = "iam.orgs.create"
	permOrgsGet           = "iam.orgs.get"
	permOrgsList          = "iam.orgs.list"
	permOrgsUpdate        = "iam.orgs.update"
	permOrgsDelete        = "iam.orgs.delete"
	permProjectsCreate    = "iam.projects.create"
	permProjectsGet       = "iam.projects.get"
	permProjectsList      = "iam.projects.list"
	permProjectsUpdate    = "iam.projects.update"
	permProjectsDelete    = "iam.projects.delete"
	permUsersCreate       = "iam.users.create"
	permUsersGet          = "iam.users.get"
	permUsersList         = "iam.users.list"
	permUsersUpdate       = "iam.users.update"
	permUsersDelete       = "iam.users.delete"
	permRolesCreate       = "iam.roles.create"
	permRolesUpdate       = "iam.roles.update"
	permRolesDelete       = "iam.roles.delete"
	permBindingsCreate    = "iam.bindings.create"
	permBindingsGet       = "iam.bindings.get"
	permBindingsList      = "iam.bindings.list"
	permBindingsDelete    = "iam.bindings.delete"
	permCredentialsCreate = "iam.credentials.create"
	permCredentialsGet    = "iam.credentials.get"
	permCredentialsList   = "iam.credentials.list"
	permCredentialsDelete = "iam.credentials.delete"
	permTokensDelegate    = "iam.tokens.delegate"
	permTokensRevoke      = "iam.tokens.revoke"
	permKeysList          = "iam.keys.list"
	permKeysRotate        = "iam.keys.rotate"
)

// Bootstrap makes sure the bootstrap admin exists with admin at system
// scope, and that a signing key does. Safe to run on every start, by any
// number of replicas at once.
func (s *Service) Bootstrap(ctx context.Context) error {
	now := s.now().UTC()
	_, err := s.st.principals.Create(ctx, policy.BootstrapAdmin, Principal{ID: policy.BootstrapAdmin, Name: "PhotonCloud bootstrap admin",
		Type: policy.TypeServiceAccount, CreatedAt: now, UpdatedAt: now})
	if err != nil && apierr.CodeOf(err) != apierr.CodeAlreadyExists {
		return err
	}
	b := Binding{PrincipalID: policy.BootstrapAdmin, Role: policy.RoleAdmin, Scope: policy.SystemScope, CreatedAt: now}
	b.ID = bindingID(b)
	if _, err := s.st.bindings.Create(ctx, b.ID, b); err != nil && apierr.CodeOf(err) != apierr.CodeAlreadyExists {
		return err
	}
	if err := s.keys.refresh(ctx); err != nil {
		return err
	}
	return s.cache.Sync(ctx)
}

// scopeTarget is where a scope id lives, for authorization: the system, an
// org IAM knows, or a project (registered or not).
func (s *Service) scopeTarget(scope string) policy.Target {
	switch {
	case scope == policy.SystemScope:
		return policy.System
	case s.cache.IsOrg(scope):
		return policy.Target{OrgID: scope}
	}
	t := policy.Target{ProjectID: scope}
	if p, ok := s.cache.Project(scope); ok {
		t.OrgID = p.OrgID
	}
	return t
}

// --- validation -----------------------------------------------------------

const (
	maxNameLen = 128
	maxDescLen = 1024
)

// validID checks a caller-chosen id by the rule every service shares.
func validID(field, id string) error { return ids.Check(field, id) }

// validNewID is validID for a new org or project, which may not take the
// name of the system scope.
func validNewID(field, id string) error {
	if err := validID(field, id); err != nil {
		return err
	}
	if id == policy.SystemScope {
		return apierr.Validation(field, apierr.Format, "%q is reserved for the system scope", id)
	}
	return nil
}

func validScope(field, scope string) error { return validID(field, scope) }

func validName(field, name string, required bool) error {
	switch {
	case strings.TrimSpace(name) == "" && required:
		return apierr.Validation(field, apierr.Required, "%s is required", field)
	case len(name) > maxNameLen:
		return apierr.Validation(field, apierr.MaxLength, "%s must be at most %d characters", field, maxNameLen)
	}
	return nil
}

func validDescription(d string) error {
	if len(d) > maxDescLen {
		return apierr.Validation("description", apierr.MaxLength, "description must be at most %d characters", maxDescLen)
	}
	return nil
}

func validEmail(e string) error {
	if e == "" {
		return nil
	}
	if len(e) > 254 {
		return apierr.Validation("email", apierr.MaxLength, "email must be at most 254 characters")
	}
	if a, err := mail.ParseAddress(e); err != nil || a.Address != e {
		return apierr.Validation("email", apierr.Format, "email %q is not an address like name@example.com", e)
	}
	return nil
}

// --- orgs -----------------------------------------------------------------

// CreateOrg creates an org (system admins only).
func (s *Service) CreateOrg(ctx context.Context, req CreateOrgRequest) (Org, error) {
	if req.ID == "" {
		req.ID = ids.New("org")
	}
	if err := firstErr(validNewID("id", req.ID), validName("name", req.Name, true), validDescription(req.Description)); err != nil {
		return Org{}, err
	}
	if err := auth.Require(ctx, permOrgsCreate, policy.System); err != nil {
		return Org{}, err
	}
	// A scope id must say by itself whether it is an org or a project.
	if _, isProject := s.cache.Project(req.ID); isProject {
		return Org{}, &apierr.Error{Code: apierr.CodeAlreadyExists, Message: "id " + req.ID + " is taken by a project", Details: map[string]any{"kind": "project", "id": req.ID}}
	}
	now := s.now().UTC()
	o := Org{ID: req.ID, Name: req.Name, Description: req.Description, CreatedAt: now, UpdatedAt: now}
	it, err := s.st.orgs.Create(ctx, o.ID, o)
	if err != nil {
		return Org{}, err
	}
	return o, s.cache.WaitFor(ctx, it.ModRevision)
}

// GetOrg returns an org the caller can see: one in its scope, or the org of
// its project (as ListOrgs shows it).
func (s *Service) GetOrg(ctx context.Context, id string) (Org, error) {
	if err := s.orgAccess(ctx, permOrgsGet, id); err != nil {
		return Org{}, err
	}
	it, err := s.st.orgs.Get(ctx, id)
	return it.Value, err
}

// orgAccess decides perm on org id. A project-scoped caller sees its own
// project's org — it may read it (with the permission), and changing it is
// 403, not 404, since its existence is no secret to that caller; any other
// org outside the scope is NOT_FOUND.
func (s *Service) orgAccess(ctx context.Context, perm, id string) error {
	err := auth.RequireOn(ctx, perm, policy.Target{OrgID: id}, "org", id)
	if apierr.CodeOf(err) != apierr.CodeNotFound {
		return err
	}
	caller, cerr := auth.Caller(ctx)
	if cerr != nil {
		return cerr
	}
	p, ok := s.cache.Project(caller.Scope)
	if !ok || p.OrgID != id {
		return err
	}
	if perm == permOrgsGet {
		return auth.Require(ctx, perm, policy.Target{OrgID: id, ProjectID: p.ID})
	}
	return &apierr.Error{Code: apierr.CodeForbidden, Message: "a project-scoped caller may not " + perm + " its org",
		Details: map[string]any{"permission": perm, "scope_id": caller.Scope}}
}

// ListOrgs lists the orgs in the caller's scope.
func (s *Service) ListOrgs(ctx context.Context, limit int, pageToken string) (OrgList, error) {
	t, err := auth.ListTarget(ctx, permOrgsList, policy.System)
	if err != nil {
		return OrgList{}, err
	}
	out := OrgList{Orgs: []Org{}}
	if t == policy.System {
		page, err := s.st.orgs.List(ctx, "", limit, pageToken)
		if err != nil {
			return OrgList{}, err
		}
		for _, it := range page.Items {
			out.Orgs = append(out.Orgs, it.Value)
		}
		out.NextPageToken = page.NextPageToken
		return out, nil
	}
	org := t.OrgID
	if org == "" {
		if p, ok := s.cache.Project(t.ProjectID); ok {
			org = p.OrgID
		}
	}
	if org != "" && pageToken == "" {
		if it, err := s.st.orgs.Get(ctx, org); err == nil {
			out.Orgs = append(out.Orgs, it.Value)
		} else if apierr.CodeOf(err) != apierr.CodeNotFound {
			return OrgList{}, err
		}
	}
	return out, nil
}

// UpdateOrg changes an org's name or description.
func (s *Service) UpdateOrg(ctx context.Context, id string, req UpdateOrgRequest) (Org, error) {
	if err := firstErr(validPtrName("name", req.Name), validPtrDesc(req.Description)); err != nil {
		return Org{}, err
	}
	if err := s.orgAccess(ctx, permOrgsUpdate, id); err != nil {
		return Org{}, err
	}
	it, err := s.st.orgs.Get(ctx, id)
	if err != nil {
		return Org{}, err
	}
	o := it.Value
	setIf(&o.Name, req.Name)
	setIf(&o.Description, req.Description)
	o.UpdatedAt = s.now().UTC()
	if _, err := s.st.orgs.Update(ctx, id, o, it.ModRevision); err != nil {
		return Org{}, err
	}
	return o, nil
}

// DeleteOrg deletes an org that has no projects, with the bindings at it.
func (s *Service) DeleteOrg(ctx context.Context, id string) error {
	if err := s.orgAccess(ctx, permOrgsDelete, id); err != nil {
		return err
	}
	ops := []state.Op{
		s.st.orgs.DeleteOp(id, 0),
		state.NoneUnderOp(orgProjectsPrefix+id+"/", &apierr.Error{Code: apierr.CodeFailedPrecondition,
			Message: "org " + id + " still has projects; delete them first", Details: map[string]any{"kind": "org", "id": id}}),
	}
	ops = append(ops, s.bindingDeletesAt(id)...)
	rev, err := state.Commit(ctx, s.st.cli, ops...)
	if err != nil {
		return err
	}
	return s.cache.WaitFor(ctx, rev)
}

// bindingDeletesAt removes the bindings at scope, so that a later org or
// project of the same id does not inherit them.
func (s *Service) bindingDeletesAt(scope string) []state.Op {
	var ops []state.Op
	for _, b := range s.cache.Bindings("") {
		if b.Scope == scope {
			ops = append(ops, s.st.bindings.DeleteAnyOp(b.ID))
		}
	}
	return ops
}

// --- projects -------------------------------------------------------------

// CreateProject creates a project in an org. An org IAM does not know yet
// is created with it when the caller may create orgs — the seed creates
// "production" in "org-123" without creating the org first.
func (s *Service) CreateProject(ctx context.Context, req CreateProjectRequest) (Project, error) {
	if req.ID == "" {
		req.ID = ids.New("proj")
	}
	if err := firstErr(validNewID("id", req.ID), validName("name", req.Name, true), validID("org_id", req.OrgID), validDescription(req.Description)); err != nil {
		return Project{}, err
	}
	if req.OrgID == policy.SystemScope {
		return Project{}, apierr.Validation("org_id", apierr.Format, "a project belongs to an org, not to the system scope")
	}
	if err := auth.Require(ctx, permProjectsCreate, policy.Target{OrgID: req.OrgID}); err != nil {
		return Project{}, err
	}
	now := s.now().UTC()
	p := Project{ID: req.ID, Name: req.Name, OrgID: req.OrgID, Description: req.Description, CreatedAt: now, UpdatedAt: now}
	if s.cache.IsOrg(p.ID) {
		return Project{}, &apierr.Error{Code: apierr.CodeAlreadyExists, Message: "id " + p.ID + " is taken by an org", Details: map[string]any{"kind": "org", "id": p.ID}}
	}
	create, err := s.st.projects.CreateOp(p.ID, p)
	if err != nil {
		return Project{}, err
	}
	index, err := s.st.orgProjects.PutOp(p.OrgID+"/"+p.ID, indexEntry{}, 0)
	if err != nil {
		return Project{}, err
	}
	ops := []state.Op{create, index}
	if _, err := s.st.orgs.Get(ctx, p.OrgID); apierr.CodeOf(err) == apierr.CodeNotFound {
		if auth.Require(ctx, permOrgsCreate, policy.System) != nil {
			return Project{}, apierr.NotFound("org", p.OrgID)
		}
		orgOp, err := s.st.orgs.CreateOp(p.OrgID, Org{ID: p.OrgID, Name: p.OrgID, CreatedAt: now, UpdatedAt: now})
		if err != nil {
			return Project{}, err
		}
		ops = append(ops, orgOp)
	} else if err != nil {
		return Project{}, err
	} else {
		ops = append(ops, s.st.orgs.ExistsOp(p.OrgID))
	}
	rev, err := state.Commit(ctx, s.st.cli, ops...)
	if err != nil {
		return Project{}, err
	}
	return p, s.cache.WaitFor(ctx, rev)
}

// GetProject returns a project the caller can see.
func (s *Service) GetProject(ctx context.Context, id string) (Project, error) {
	it, err := s.st.projects.Get(ctx, id)
	if err != nil {
		return Project{}, err
	}
	if err := auth.RequireOn(ctx, permProjectsGet, policy.Target{OrgID: it.Value.OrgID, ProjectID: id}, "project", id); err != nil {
		return Project{}, err
	}
	return it.Value, nil
}

// ListProjects lists the projects in the caller's scope, optionally of one org.
func (s *Service) ListProjects(ctx context.Context, orgID string, limit int, pageToken string) (ProjectList, error) {
	if orgID != "" {
		if err := validID("org_id", orgID); err != nil {
			return ProjectList{}, err
		}
	}
	t, err := auth.ListTarget(ctx, permProjectsList, policy.Target{OrgID: orgID})
	if err != nil {
		return ProjectList{}, err
	}
	out := ProjectList{Projects: []Project{}}
	if t.ProjectID != "" {
		if pageToken != "" {
			return out, nil
		}
		if it, err := s.st.projects.Get(ctx, t.ProjectID); err == nil && (orgID == "" || it.Value.OrgID == orgID) {
			out.Projects = append(out.Projects, it.Value)
		} else if err != nil && apierr.CodeOf(err) != apierr.CodeNotFound {
			return ProjectList{}, err
		}
		return out, nil
	}
	page, err := s.st.projects.List(ctx, "", limit, pageToken)
	if err != nil {
		return ProjectList{}, err
	}
	for _, it := range page.Items {
		if t.OrgID == "" || it.Value.OrgID == t.OrgID {
			out.Projects = append(out.Projects, it.Value)
		}
	}
	out.NextPageToken = page.NextPageToken
	return out, nil
}

// UpdateProject changes a project's name or description.
func (s *Service) UpdateProject(ctx context.Context, id string, req UpdateProjectRequest) (Project, error) {
	if err := firstErr(validPtrName("name", req.Name), validPtrDesc(req.Description)); err != nil {
		return Project{}, err
	}
	it, err := s.st.projects.Get(ctx, id)
	if err != nil {
		return Project{}, err
	}
	p := it.Value
	if err := auth.RequireOn(ctx, permProjectsUpdate, policy.Target{OrgID: p.OrgID, ProjectID: id}, "project", id); err != nil {
		return Project{}, err
	}
	setIf(&p.Name, req.Name)
	setIf(&p.Description, req.Description)
	p.UpdatedAt = s.now().UTC()
	if _, err := s.st.projects.Update(ctx, id, p, it.ModRevision); err != nil {
		return Project{}, err
	}
	return p, nil
}

// DeleteProject deletes a project with the bindings at it. (Resources other
// services hold for it are theirs to clean up.)
func (s *Service) DeleteProject(ctx context.Context, id string) error {
	it, err := s.st.projects.Get(ctx, id)
	if err != nil {
		return err
	}
	if err := auth.RequireOn(ctx, permProjectsDelete, policy.Target{OrgID: it.Value.OrgID, ProjectID: id}, "project", id); err != nil {
		return err
	}
	ops := []state.Op{s.st.projects.DeleteOp(id, it.ModRevision), s.st.orgProjects.DeleteAnyOp(it.Value.OrgID + "/" + id)}
	ops = append(ops, s.bindingDeletesAt(id)...)
	rev, err := state.Commit(ctx, s.st.cli, ops...)
	if err != nil {
		return err
	}
	return s.cache.WaitFor(ctx, rev)
}

// --- small helpers --------------------------------------------------------

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func validPtrName(field string, v *string) error {
	if v == nil {
		return nil
	}
	return validName(field, *v, true)
}

func validPtrDesc(v *string) error {
	if v == nil {
		return nil
	}
	return validDescription(*v)
}

func setIf(dst *string, v *string) {
	if v != nil {
		*dst = *v
	}
}
