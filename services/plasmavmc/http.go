package plasmavmc

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/auth"
	"github.com/photoncloud/photon/internal/rest"
)

// handler is PlasmaVMC's REST transport: decode, call the Service, return.
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
		{"POST /api/v1/vms", h.create},
		{"GET /api/v1/vms", h.list},
		{"GET /api/v1/vms/{id}", h.one(s.GetVM)},
		{"DELETE /api/v1/vms/{id}", h.one(s.DeleteVM)},
		{"POST /api/v1/vms/{id}/start", h.one(s.StartVM)},
		{"POST /api/v1/vms/{id}/stop", h.stop},
		{"POST /api/v1/vms/{id}/reboot", h.one(s.RebootVM)},
		{"GET /api/v1/vms/{id}/console", h.console},
	}
}

// Routes lists every REST route of PlasmaVMC.
func Routes() []string {
	out := []string{"GET /health", "GET /metrics"}
	for _, r := range (&handler{}).routes() {
		out = append(out, r.pattern)
	}
	return out
}

// NewHandler returns PlasmaVMC's REST API; authn authenticates every
// request and every route but /health needs a caller.
func NewHandler(svc *Service, authn rest.Authn) http.Handler {
	h := &handler{svc: svc, timeout: svc.cfg.RequestTimeout}
	rt := rest.NewRouter("plasmavmc", nil)
	rt.SetMaxBody(svc.cfg.MaxBodyBytes)
	rt.SetAuthn(authn)
	rt.MountHealth("", "plasmavmc", svc.cfg.Version, map[string]rest.Check{"store": svc.Healthy})
	for _, r := range h.routes() {
		rt.Handle(r.pattern, auth.Authenticated(r.serve))
	}
	return rt
}

func (h *handler) ctx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), h.timeout)
}

func (h *handler) create(r *http.Request) (any, error) {
	if _, err := rest.Query(r); err != nil {
		return nil, err
	}
	var req CreateVMRequest
	if err := rest.Decode(r, &req); err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	vm, err := h.svc.CreateVM(ctx, req)
	if err != nil {
		return nil, err
	}
	return rest.Created(vm), nil
}

const (
	defListLimit = 50
	maxListLimit = 1000
)

func (h *handler) list(r *http.Request) (any, error) {
	q, err := rest.Query(r, "org_id", "project_id", "limit", "page_token")
	if err != nil {
		return nil, err
	}
	limit, err := rest.Limit(q, defListLimit, maxListLimit)
	if err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.ListVMs(ctx, q.Get("org_id"), q.Get("project_id"), limit, q.Get("page_token"))
}

// one serves an action on one VM whose query may name its org and project
// (which must then be its own) and whose body, if any, is an empty object.
func (h *handler) one(call func(ctx context.Context, id, org, project string) (VM, error)) rest.Handler {
	return func(r *http.Request) (any, error) {
		q, err := rest.Query(r, "org_id", "project_id")
		if err != nil {
			return nil, err
		}
		if err := rest.Decode(r, &struct{}{}); err != nil {
			return nil, err
		}
		ctx, cancel := h.ctx(r)
		defer cancel()
		return call(ctx, r.PathValue("id"), q.Get("org_id"), q.Get("project_id"))
	}
}

func (h *handler) stop(r *http.Request) (any, error) {
	q, err := rest.Query(r, "org_id", "project_id")
	if err != nil {
		return nil, err
	}
	var req StopRequest
	if err := rest.Decode(r, &req); err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.StopVM(ctx, r.PathValue("id"), q.Get("org_id"), q.Get("project_id"), req)
}

func (h *handler) console(r *http.Request) (any, error) {
	q, err := rest.Query(r, "org_id", "project_id", "bytes")
	if err != nil {
		return nil, err
	}
	n := 0
	if b := q.Get("bytes"); b != "" {
		if n, err = strconv.Atoi(b); err != nil || n < 1 {
			return nil, apierr.Validation("bytes", apierr.Format, "bytes must be a positive integer")
		}
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.ConsoleOf(ctx, r.PathValue("id"), q.Get("org_id"), q.Get("project_id"), n)
}
