package iam

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/photoncloud/photon/internal/auth"
	"github.com/photoncloud/photon/internal/auth/token"
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
	s := h.svc
	return []route{
		{"POST /api/v1/orgs", withBody(h, http.StatusCreated, s.CreateOrg)},
		{"GET /api/v1/orgs", h.listOrgs},
		{"GET /api/v1/orgs/{id}", onID(h, "id", s.GetOrg)},
		{"PATCH /api/v1/orgs/{id}", onIDWithBody(h, "id", s.UpdateOrg)},
		{"DELETE /api/v1/orgs/{id}", deleteID(h, "id", s.DeleteOrg)},

		{"POST /api/v1/projects", withBody(h, http.StatusCreated, s.CreateProject)},
		{"GET /api/v1/projects", h.listProjects},
		{"GET /api/v1/projects/{id}", onID(h, "id", s.GetProject)},
		{"PATCH /api/v1/projects/{id}", onIDWithBody(h, "id", s.UpdateProject)},
		{"DELETE /api/v1/projects/{id}", deleteID(h, "id", s.DeleteProject)},

		{"POST /api/v1/users", withBody(h, http.StatusCreated, s.CreatePrincipal)},
		{"GET /api/v1/users", h.listUsers},
		{"GET /api/v1/users/{id}", onID(h, "id", s.GetPrincipal)},
		{"PATCH /api/v1/users/{id}", onIDWithBody(h, "id", s.UpdatePrincipal)},
		{"DELETE /api/v1/users/{id}", deleteID(h, "id", s.DeletePrincipal)},

		{"POST /api/v1/roles", withBody(h, http.StatusCreated, s.CreateRole)},
		{"GET /api/v1/roles", noInput(h, s.ListRoles)},
		{"GET /api/v1/roles/{name}", onID(h, "name", s.GetRole)},
		{"PATCH /api/v1/roles/{name}", onIDWithBody(h, "name", s.UpdateRole)},
		{"DELETE /api/v1/roles/{name}", deleteID(h, "name", s.DeleteRole)},

		{"POST /api/v1/bindings", withBody(h, http.StatusCreated, s.CreateBinding)},
		{"GET /api/v1/bindings", h.listBindings},
		{"GET /api/v1/bindings/{id}", onID(h, "id", s.GetBinding)},
		{"DELETE /api/v1/bindings/{id}", deleteID(h, "id", s.DeleteBinding)},

		{"POST /api/v1/credentials", withBody(h, http.StatusCreated, s.CreateCredential)},
		{"GET /api/v1/credentials", h.listCredentials},
		{"GET /api/v1/credentials/{id}", onID(h, "id", s.GetCredential)},
		{"DELETE /api/v1/credentials/{id}", deleteID(h, "id", s.DeleteCredential)},

		{"POST /api/v1/auth/token", withBody(h, http.StatusOK, s.IssueToken)},
		{"POST /api/v1/auth/login", h.login},
		{"POST /api/v1/auth/verify", withBody(h, http.StatusOK, func(ctx context.Context, req VerifyRequest) (Verification, error) {
			return s.Verify(ctx, req.Token)
		})},
		{"POST /api/v1/auth/revoke", withBody(h, http.StatusOK, s.Revoke)},
		{"GET /api/v1/auth/jwks", noInput(h, func(context.Context) (token.JWKS, error) { return s.JWKS(), nil })},
		{"GET /api/v1/auth/keys", noInput(h, s.ListKeys)},
		{"POST /api/v1/auth/keys/rotate", withBody(h, http.StatusCreated, func(ctx context.Context, _ struct{}) (SigningKeyInfo, error) {
			return s.RotateKeys(ctx)
		})},
		{"POST /api/v1/authz/check", withBody(h, http.StatusOK, s.Check)},
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
			serve = auth.Authenticated(serve)
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

// The shapes of IAM's routes: each decodes its input strictly (no query
// parameter it does not know, no unknown JSON field), bounds the call by the
// request timeout, and answers the call's result with status.

// withBody serves a route whose input is the JSON body.
func withBody[Req, Resp any](h *handler, status int, call func(context.Context, Req) (Resp, error)) rest.Handler {
	return func(r *http.Request) (any, error) {
		var req Req
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		ctx, cancel := h.ctx(r)
		defer cancel()
		resp, err := call(ctx, req)
		if err != nil {
			return nil, err
		}
		return rest.Status{Code: status, Data: resp}, nil
	}
}

// onID serves a route whose input is one path value.
func onID[Resp any](h *handler, param string, call func(context.Context, string) (Resp, error)) rest.Handler {
	return func(r *http.Request) (any, error) {
		if err := noQuery(r); err != nil {
			return nil, err
		}
		ctx, cancel := h.ctx(r)
		defer cancel()
		return call(ctx, r.PathValue(param))
	}
}

// onIDWithBody serves a route whose input is a path value and a JSON body.
func onIDWithBody[Req, Resp any](h *handler, param string, call func(context.Context, string, Req) (Resp, error)) rest.Handler {
	return func(r *http.Request) (any, error) {
		var req Req
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		ctx, cancel := h.ctx(r)
		defer cancel()
		return call(ctx, r.PathValue(param), req)
	}
}

// deleted answers a successful delete.
type deleted struct {
	ID      string `json:"id"`
	Deleted bool   `json:"deleted"`
}

// deleteID serves a delete of the resource a path value names.
func deleteID(h *handler, param string, call func(context.Context, string) error) rest.Handler {
	return func(r *http.Request) (any, error) {
		if err := noQuery(r); err != nil {
			return nil, err
		}
		ctx, cancel := h.ctx(r)
		defer cancel()
		id := r.PathValue(param)
		if err := call(ctx, id); err != nil {
			return nil, err
		}
		return deleted{ID: id, Deleted: true}, nil
	}
}

// noInput serves a route that takes nothing.
func noInput[Resp any](h *handler, call func(context.Context) (Resp, error)) rest.Handler {
	return func(r *http.Request) (any, error) {
		if err := noQuery(r); err != nil {
			return nil, err
		}
		ctx, cancel := h.ctx(r)
		defer cancel()
		return call(ctx)
	}
}

// listQuery parses a list route's query: the named filters plus limit and
// page_token when paged.
func listQuery(r *http.Request, paged bool, filters ...string) (q url.Values, limit int, err error) {
	known := filters
	if paged {
		known = append(known, "limit", "page_token")
	}
	if q, err = rest.Query(r, known...); err != nil {
		return nil, 0, err
	}
	if paged {
		if limit, err = rest.Limit(q, defListLimit, maxListLimit); err != nil {
			return nil, 0, err
		}
	}
	return q, limit, nil
}

func (h *handler) listOrgs(r *http.Request) (any, error) {
	q, limit, err := listQuery(r, true)
	if err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.ListOrgs(ctx, limit, q.Get("page_token"))
}

func (h *handler) listProjects(r *http.Request) (any, error) {
	q, limit, err := listQuery(r, true, "org_id")
	if err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.ListProjects(ctx, q.Get("org_id"), limit, q.Get("page_token"))
}

func (h *handler) listUsers(r *http.Request) (any, error) {
	q, limit, err := listQuery(r, true, "scope_id", "type")
	if err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.ListPrincipals(ctx, q.Get("scope_id"), q.Get("type"), limit, q.Get("page_token"))
}

func (h *handler) listBindings(r *http.Request) (any, error) {
	q, _, err := listQuery(r, false, "principal_id", "scope_id")
	if err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.ListBindings(ctx, q.Get("principal_id"), q.Get("scope_id"))
}

func (h *handler) listCredentials(r *http.Request) (any, error) {
	q, _, err := listQuery(r, false, "principal_id", "project_id")
	if err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.ListCredentials(ctx, q.Get("principal_id"), q.Get("project_id"))
}

// login counts failures per source: only the socket's peer, since a header
// would let an attacker pick a new "source" for every guess.
func (h *handler) login(r *http.Request) (any, error) {
	var req LoginRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	source, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		source = r.RemoteAddr
	}
	return h.svc.Login(ctx, req, source)
}
