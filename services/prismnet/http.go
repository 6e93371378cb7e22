package prismnet

import (
	"context"
	"net/http"
	"time"

	"github.com/photoncloud/photon/internal/auth"
	"github.com/photoncloud/photon/internal/rest"
)

// handler is PrismNET's REST transport: decode, call the Service, return.
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
		{"POST /api/v1/vpcs", create(h, s.CreateVPC)},
		{"GET /api/v1/vpcs", list(h, func(ctx context.Context, q scopeQuery) (any, error) {
			return s.ListVPCs(ctx, q.org, q.project, q.limit, q.token)
		})},
		{"GET /api/v1/vpcs/{id}", get(h, s.GetVPC)},
		{"DELETE /api/v1/vpcs/{id}", del(h, s.DeleteVPC)},

		{"POST /api/v1/subnets", create(h, s.CreateSubnet)},
		{"GET /api/v1/subnets", list(h, func(ctx context.Context, q scopeQuery) (any, error) {
			return s.ListSubnets(ctx, q.get("vpc_id"), q.org, q.project, q.limit, q.token)
		}, "vpc_id")},
		{"GET /api/v1/subnets/{id}", get(h, s.GetSubnet)},
		{"DELETE /api/v1/subnets/{id}", h.deleteSubnet},

		{"POST /api/v1/ports", create(h, s.CreatePort)},
		{"GET /api/v1/ports", list(h, func(ctx context.Context, q scopeQuery) (any, error) {
			return s.ListPorts(ctx, q.get("subnet_id"), q.org, q.project, q.limit, q.token)
		}, "subnet_id")},
		{"GET /api/v1/ports/{id}", get(h, s.GetPort)},
		{"DELETE /api/v1/ports/{id}", del(h, s.DeletePort)},
		{"POST /api/v1/ports/{id}/bind", h.bindPort},
		{"POST /api/v1/ports/{id}/unbind", h.unbindPort},
		{"GET /api/v1/nodes", h.listNodes},

		{"POST /api/v1/security-groups", create(h, s.CreateSecurityGroup)},
		{"GET /api/v1/security-groups", list(h, func(ctx context.Context, q scopeQuery) (any, error) {
			return s.ListSecurityGroups(ctx, q.org, q.project, q.limit, q.token)
		})},
		{"GET /api/v1/security-groups/{id}", get(h, s.GetSecurityGroup)},
		{"DELETE /api/v1/security-groups/{id}", del(h, s.DeleteSecurityGroup)},
		{"POST /api/v1/security-groups/{id}/rules", h.addRule},
		{"DELETE /api/v1/security-groups/{id}/rules/{rule_id}", h.deleteRule},
	}
}

// Routes lists every REST route of PrismNET.
func Routes() []string {
	out := []string{"GET /health", "GET /metrics"}
	for _, r := range (&handler{}).routes() {
		out = append(out, r.pattern)
	}
	return out
}

// NewHandler returns PrismNET's REST API; authn authenticates every request
// and every route but /health needs a caller.
func NewHandler(svc *Service, authn rest.Authn) http.Handler {
	h := &handler{svc: svc, timeout: svc.cfg.RequestTimeout}
	rt := rest.NewRouter("prismnet", nil)
	rt.SetMaxBody(svc.cfg.MaxBodyBytes)
	rt.SetAuthn(authn)
	rt.SetHealthInfo(svc.DataplaneInfo)
	rt.MountHealth("", "prismnet", svc.cfg.Version, map[string]rest.Check{"store": svc.Healthy})
	for _, r := range h.routes() {
		rt.Handle(r.pattern, auth.Authenticated(r.serve))
	}
	return rt
}

func (h *handler) ctx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), h.timeout)
}

// create serves a POST that creates a resource: 201 with it.
func create[Req, Resp any](h *handler, call func(context.Context, Req) (Resp, error)) rest.Handler {
	return func(r *http.Request) (any, error) {
		if _, err := rest.Query(r); err != nil {
			return nil, err
		}
		var req Req
		if err := rest.Decode(r, &req); err != nil {
			return nil, err
		}
		ctx, cancel := h.ctx(r)
		defer cancel()
		v, err := call(ctx, req)
		if err != nil {
			return nil, err
		}
		return rest.Created(v), nil
	}
}

// get serves a read of one resource; the query may name its org and
// project (which must then be its own).
func get[Resp any](h *handler, call func(ctx context.Context, id, org, project string) (Resp, error)) rest.Handler {
	return func(r *http.Request) (any, error) {
		q, err := rest.Query(r, "org_id", "project_id")
		if err != nil {
			return nil, err
		}
		ctx, cancel := h.ctx(r)
		defer cancel()
		return call(ctx, r.PathValue("id"), q.Get("org_id"), q.Get("project_id"))
	}
}

// del serves a DELETE of one resource.
func del(h *handler, call func(ctx context.Context, id, org, project string) error) rest.Handler {
	return func(r *http.Request) (any, error) {
		q, err := rest.Query(r, "org_id", "project_id")
		if err != nil {
			return nil, err
		}
		ctx, cancel := h.ctx(r)
		defer cancel()
		id := r.PathValue("id")
		if err := call(ctx, id, q.Get("org_id"), q.Get("project_id")); err != nil {
			return nil, err
		}
		return Deleted{ID: id, Deleted: true}, nil
	}
}

// deleteSubnet is del with the seed's vpc_id, which must name the subnet's VPC.
func (h *handler) deleteSubnet(r *http.Request) (any, error) {
	q, err := rest.Query(r, "org_id", "project_id", "vpc_id")
	if err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	id := r.PathValue("id")
	if err := h.svc.DeleteSubnet(ctx, id, q.Get("vpc_id"), q.Get("org_id"), q.Get("project_id")); err != nil {
		return nil, err
	}
	return Deleted{ID: id, Deleted: true}, nil
}

const (
	defListLimit = 50
	maxListLimit = 1000
)

// scopeQuery is a list's query: the scope, paging and its filters.
type scopeQuery struct {
	org, project, token string
	limit               int
	extra               map[string]string
}

func (q scopeQuery) get(k string) string { return q.extra[k] }

// list serves a list whose query names a scope (org_id, project_id),
// paging (limit, page_token) and the filters given.
func list(h *handler, call func(context.Context, scopeQuery) (any, error), filters ...string) rest.Handler {
	return func(r *http.Request) (any, error) {
		q, err := rest.Query(r, append([]string{"org_id", "project_id", "limit", "page_token"}, filters...)...)
		if err != nil {
			return nil, err
		}
		limit, err := rest.Limit(q, defListLimit, maxListLimit)
		if err != nil {
			return nil, err
		}
		sq := scopeQuery{org: q.Get("org_id"), project: q.Get("project_id"), token: q.Get("page_token"), limit: limit, extra: map[string]string{}}
		for _, f := range filters {
			sq.extra[f] = q.Get(f)
		}
		ctx, cancel := h.ctx(r)
		defer cancel()
		return call(ctx, sq)
	}
}

func (h *handler) addRule(r *http.Request) (any, error) {
	if _, err := rest.Query(r); err != nil {
		return nil, err
	}
	var req CreateRuleRequest
	if err := rest.Decode(r, &req); err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	rule, err := h.svc.AddRule(ctx, r.PathValue("id"), req)
	if err != nil {
		return nil, err
	}
	return rest.Created(rule), nil
}

func (h *handler) deleteRule(r *http.Request) (any, error) {
	if _, err := rest.Query(r); err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	id := r.PathValue("rule_id")
	if err := h.svc.DeleteRule(ctx, r.PathValue("id"), id); err != nil {
		return nil, err
	}
	return Deleted{ID: id, Deleted: true}, nil
}

// bindPort serves POST /api/v1/ports/{id}/bind: 200 with the port.
func (h *handler) bindPort(r *http.Request) (any, error) {
	q, err := rest.Query(r, "org_id", "project_id")
	if err != nil {
		return nil, err
	}
	var req BindPortRequest
	if err := rest.Decode(r, &req); err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.BindPort(ctx, r.PathValue("id"), q.Get("org_id"), q.Get("project_id"), req)
}

// unbindPort serves POST /api/v1/ports/{id}/unbind (no body).
func (h *handler) unbindPort(r *http.Request) (any, error) {
	q, err := rest.Query(r, "org_id", "project_id")
	if err != nil {
		return nil, err
	}
	if err := rest.Decode(r, &struct{}{}); err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.UnbindPort(ctx, r.PathValue("id"), q.Get("org_id"), q.Get("project_id"))
}

// listNodes serves GET /api/v1/nodes.
func (h *handler) listNodes(r *http.Request) (any, error) {
	if _, err := rest.Query(r); err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.ListNodes(ctx)
}
