package iam

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/photoncloud/photon/internal/auth"
	"github.com/photoncloud/photon/internal/rest"
)

// handler is IAM's REST transport: decode, call the Service, return.
type handler struct {
	svc     *Service
	timeout time.Duration
}

type route struct {
	pattern string
	serve   rest.Handler
}

func (h *handler) routes() []route {
	return []route{
		{"POST /api/v1/orgs", h.createOrg},
		{"GET /api/v1/orgs", h.listOrgs},
		{"GET /api/v1/orgs/{id}", h.getOrg},
		{"PATCH /api/v1/orgs/{id}", h.updateOrg},
		{"DELETE /api/v1/orgs/{id}", h.deleteOrg},

		{"POST /api/v1/projects", h.createProject},
		{"GET /api/v1/projects", h.listProjects},
		{"GET /api/v1/projects/{id}", h.getProject},
		{"PATCH /api/v1/projects/{id}", h.updateProject},
		{"DELETE /api/v1/projects/{id}", h.deleteProject},

		{"POST /api/v1/users", h.createUser},
		{"GET /api/v1/users", h.listUsers},
		{"GET /api/v1/users/{id}", h.getUser},
		{"PATCH /api/v1/users/{id}", h.updateUser},
		{"DELETE /api/v1/users/{id}", h.deleteUser},

		{"POST /api/v1/roles", h.createRole},
		{"GET /api/v1/roles", h.listRoles},
		{"GET /api/v1/roles/{name}", h.getRole},
		{"PATCH /api/v1/roles/{name}", h.updateRole},
		{"DELETE /api/v1/roles/{name}", h.deleteRole},

		{"POST /api/v1/bindings", h.createBinding},
		{"GET /api/v1/bindings", h.listBindings},
		{"GET /api/v1/bindings/{id}", h.getBinding},
		{"DELETE /api/v1/bindings/{id}", h.deleteBinding},

		{"POST /api/v1/credentials", h.createCredential},
		{"GET /api/v1/credentials", h.listCredentials},
		{"GET /api/v1/credentials/{id}", h.getCredential},
		{"DELETE /api/v1/credentials/{id}", h.deleteCredential},

		{"POST /api/v1/auth/token", h.issueToken},
		{"POST /api/v1/auth/login", h.login},
		{"POST /api/v1/auth/verify", h.verify},
		{"POST /api/v1/auth/revoke", h.revoke},
		{"GET /api/v1/auth/jwks", h.jwks},
		{"GET /api/v1/auth/keys", h.listKeys},
		{"POST /api/v1/auth/keys/rotate", h.rotateKeys},
		{"POST /api/v1/authz/check", h.check},
	}
}

// wellKnownJWKS is the standard JWKS location; it answers the bare JWKS
// document (no envelope), as OIDC libraries expect.
const wellKnownJWKS = "GET /.well-known/jwks.json"

// Routes lists every REST route of IAM; the OpenAPI test checks
// docs/api/openapi/iam.yaml against it.
func Routes() []string {
	out := []string{"GET /health", "GET /metrics", wellKnownJWKS}
	for _, r := range (&handler{}).routes() {
		out = append(out, r.pattern)
	}
	return out
}

// NewHandler returns IAM's REST API; authn authenticates every request.
func NewHandler(svc *Service, authn rest.Authn) http.Handler {
	h := &handler{svc: svc, timeout: svc.cfg.RequestTimeout}
	rt := rest.NewRouter("iam", nil)
	rt.SetMaxBody(svc.cfg.MaxBodyBytes)
	rt.SetAuthn(authn)
	rt.MountHealth("", "iam", svc.cfg.Version, map[string]rest.Check{"store": svc.Healthy})
	for _, r := range h.routes() {
		serve := r.serve
		if !public(r.pattern) {
			serve = authenticated(serve)
		}
		rt.Handle(r.pattern, serve)
	}
	rt.HandleHTTP(wellKnownJWKS, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		rest.WriteRaw(w, http.StatusOK, svc.JWKS())
	}))
	return rt
}

// public reports whether a route answers callers without a token: the
// routes that get, check or give up a token (login, self-issue with an
// access key, verify, revoke by possession, check for a token's holder) and
// the keys verifiers fetch. Every other route refuses an anonymous caller
// (401) before it reads anything, so that without a token nothing — not
// even whether an id exists — can be learnt.
func public(pattern string) bool {
	switch pattern {
	case "POST /api/v1/auth/token", "POST /api/v1/auth/login", "POST /api/v1/auth/verify",
		"POST /api/v1/auth/revoke", "GET /api/v1/auth/jwks", "POST /api/v1/authz/check":
		return true
	}
	return false
}

// authenticated refuses an anonymous caller before serve runs.
func authenticated(serve rest.Handler) rest.Handler {
	return func(r *http.Request) (any, error) {
		if _, err := auth.Caller(r.Context()); err != nil {
			return nil, err
		}
		return serve(r)
	}
}

func (h *handler) ctx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), h.timeout)
}

// decode reads a JSON body after checking the query carries nothing.
func decode(r *http.Request, v any) error {
	if _, err := rest.Query(r); err != nil {
		return err
	}
	return rest.Decode(r, v)
}

func noQuery(r *http.Request) error {
	_, err := rest.Query(r)
	return err
}

const (
	defListLimit = 100
	maxListLimit = 1000
)

// --- orgs ---

func (h *handler) createOrg(r *http.Request) (any, error) {
	var req CreateOrgRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	o, err := h.svc.CreateOrg(ctx, req)
	if err != nil {
		return nil, err
	}
	return rest.Created(o), nil
}

func (h *handler) listOrgs(r *http.Request) (any, error) {
	q, err := rest.Query(r, "limit", "page_token")
	if err != nil {
		return nil, err
	}
	limit, err := rest.Limit(q, defListLimit, maxListLimit)
	if err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.ListOrgs(ctx, limit, q.Get("page_token"))
}

func (h *handler) getOrg(r *http.Request) (any, error) {
	if err := noQuery(r); err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.GetOrg(ctx, r.PathValue("id"))
}

func (h *handler) updateOrg(r *http.Request) (any, error) {
	var req UpdateOrgRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.UpdateOrg(ctx, r.PathValue("id"), req)
}

func (h *handler) deleteOrg(r *http.Request) (any, error) {
	if err := noQuery(r); err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	id := r.PathValue("id")
	if err := h.svc.DeleteOrg(ctx, id); err != nil {
		return nil, err
	}
	return deleted{ID: id, Deleted: true}, nil
}

// deleted answers a successful delete.
type deleted struct {
	ID      string `json:"id"`
	Deleted bool   `json:"deleted"`
}

// --- projects ---

func (h *handler) createProject(r *http.Request) (any, error) {
	var req CreateProjectRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	p, err := h.svc.CreateProject(ctx, req)
	if err != nil {
		return nil, err
	}
	return rest.Created(p), nil
}

func (h *handler) listProjects(r *http.Request) (any, error) {
	q, err := rest.Query(r, "org_id", "limit", "page_token")
	if err != nil {
		return nil, err
	}
	limit, err := rest.Limit(q, defListLimit, maxListLimit)
	if err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.ListProjects(ctx, q.Get("org_id"), limit, q.Get("page_token"))
}

func (h *handler) getProject(r *http.Request) (any, error) {
	if err := noQuery(r); err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.GetProject(ctx, r.PathValue("id"))
}

func (h *handler) updateProject(r *http.Request) (any, error) {
	var req UpdateProjectRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.UpdateProject(ctx, r.PathValue("id"), req)
}

func (h *handler) deleteProject(r *http.Request) (any, error) {
	if err := noQuery(r); err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	id := r.PathValue("id")
	if err := h.svc.DeleteProject(ctx, id); err != nil {
		return nil, err
	}
	return deleted{ID: id, Deleted: true}, nil
}

// --- users ---

func (h *handler) createUser(r *http.Request) (any, error) {
	var req CreatePrincipalRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	p, err := h.svc.CreatePrincipal(ctx, req)
	if err != nil {
		return nil, err
	}
	return rest.Created(p), nil
}

func (h *handler) listUsers(r *http.Request) (any, error) {
	q, err := rest.Query(r, "scope_id", "type", "limit", "page_token")
	if err != nil {
		return nil, err
	}
	limit, err := rest.Limit(q, defListLimit, maxListLimit)
	if err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.ListPrincipals(ctx, q.Get("scope_id"), q.Get("type"), limit, q.Get("page_token"))
}

func (h *handler) getUser(r *http.Request) (any, error) {
	if err := noQuery(r); err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.GetPrincipal(ctx, r.PathValue("id"))
}

func (h *handler) updateUser(r *http.Request) (any, error) {
	var req UpdatePrincipalRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.UpdatePrincipal(ctx, r.PathValue("id"), req)
}

func (h *handler) deleteUser(r *http.Request) (any, error) {
	if err := noQuery(r); err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	id := r.PathValue("id")
	if err := h.svc.DeletePrincipal(ctx, id); err != nil {
		return nil, err
	}
	return deleted{ID: id, Deleted: true}, nil
}

// --- roles ---

func (h *handler) createRole(r *http.Request) (any, error) {
	var req CreateRoleRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	role, err := h.svc.CreateRole(ctx, req)
	if err != nil {
		return nil, err
	}
	return rest.Created(role), nil
}

func (h *handler) listRoles(r *http.Request) (any, error) {
	if err := noQuery(r); err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.ListRoles(ctx)
}

func (h *handler) getRole(r *http.Request) (any, error) {
	if err := noQuery(r); err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.GetRole(ctx, r.PathValue("name"))
}

func (h *handler) updateRole(r *http.Request) (any, error) {
	var req UpdateRoleRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.UpdateRole(ctx, r.PathValue("name"), req)
}

func (h *handler) deleteRole(r *http.Request) (any, error) {
	if err := noQuery(r); err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	name := r.PathValue("name")
	if err := h.svc.DeleteRole(ctx, name); err != nil {
		return nil, err
	}
	return deleted{ID: name, Deleted: true}, nil
}

// --- bindings ---

func (h *handler) createBinding(r *http.Request) (any, error) {
	var req CreateBindingRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	b, err := h.svc.CreateBinding(ctx, req)
	if err != nil {
		return nil, err
	}
	return rest.Created(b), nil
}

func (h *handler) listBindings(r *http.Request) (any, error) {
	q, err := rest.Query(r, "principal_id", "scope_id")
	if err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.ListBindings(ctx, q.Get("principal_id"), q.Get("scope_id"))
}

func (h *handler) getBinding(r *http.Request) (any, error) {
	if err := noQuery(r); err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.GetBinding(ctx, r.PathValue("id"))
}

func (h *handler) deleteBinding(r *http.Request) (any, error) {
	if err := noQuery(r); err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	id := r.PathValue("id")
	if err := h.svc.DeleteBinding(ctx, id); err != nil {
		return nil, err
	}
	return deleted{ID: id, Deleted: true}, nil
}

// --- credentials ---

func (h *handler) createCredential(r *http.Request) (any, error) {
	var req CreateCredentialRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	c, err := h.svc.CreateCredential(ctx, req)
	if err != nil {
		return nil, err
	}
	return rest.Created(c), nil
}

func (h *handler) listCredentials(r *http.Request) (any, error) {
	q, err := rest.Query(r, "principal_id", "project_id")
	if err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.ListCredentials(ctx, q.Get("principal_id"), q.Get("project_id"))
}

func (h *handler) getCredential(r *http.Request) (any, error) {
	if err := noQuery(r); err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.GetCredential(ctx, r.PathValue("id"))
}

func (h *handler) deleteCredential(r *http.Request) (any, error) {
	if err := noQuery(r); err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	id := r.PathValue("id")
	if err := h.svc.DeleteCredential(ctx, id); err != nil {
		return nil, err
	}
	return deleted{ID: id, Deleted: true}, nil
}

// --- tokens ---

func (h *handler) issueToken(r *http.Request) (any, error) {
	var req IssueTokenRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.IssueToken(ctx, req)
}

func (h *handler) login(r *http.Request) (any, error) {
	var req LoginRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	// Only the socket's peer: a header would let an attacker pick a new
	// "source" for every guess.
	source, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		source = r.RemoteAddr
	}
	return h.svc.Login(ctx, req, source)
}

func (h *handler) verify(r *http.Request) (any, error) {
	var req VerifyRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.Verify(ctx, req.Token)
}

func (h *handler) revoke(r *http.Request) (any, error) {
	var req RevokeRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.Revoke(ctx, req)
}

func (h *handler) jwks(r *http.Request) (any, error) {
	if err := noQuery(r); err != nil {
		return nil, err
	}
	return h.svc.JWKS(), nil
}

func (h *handler) listKeys(r *http.Request) (any, error) {
	if err := noQuery(r); err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.ListKeys(ctx)
}

func (h *handler) rotateKeys(r *http.Request) (any, error) {
	var req struct{}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	k, err := h.svc.RotateKeys(ctx)
	if err != nil {
		return nil, err
	}
	return rest.Created(k), nil
}

func (h *handler) check(r *http.Request) (any, error) {
	var req CheckRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.Check(ctx, req)
}
