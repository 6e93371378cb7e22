package creditservice

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/auth"
	"github.com/photoncloud/photon/internal/rest"
)

// handler is CreditService's REST transport: decode, call the Service, return.
type handler struct {
	svc     *Service
	timeout time.Duration
}

type route struct {
	pattern string
	serve   rest.Handler
}

// moneyCall is a change that moves money: it takes the request's
// Idempotency-Key and answers with a status.
type moneyCall[Req any] func(ctx context.Context, path string, req Req, idem *IdempotencyKey) (int, any, error)

func (h *handler) routes() []route {
	s := h.svc
	return []route{
		{"POST /api/v1/wallets", money(h, func(ctx context.Context, _ string, req CreateWalletRequest, k *IdempotencyKey) (int, any, error) {
			return s.CreateWallet(ctx, req, k)
		})},
		{"GET /api/v1/wallets/{project_id}", onID(h, s.GetWallet)},
		{"PATCH /api/v1/wallets/{project_id}", func(r *http.Request) (any, error) {
			var req UpdateWalletRequest
			if err := decode(r, &req); err != nil {
				return nil, err
			}
			ctx, cancel := h.ctx(r)
			defer cancel()
			return s.UpdateWallet(ctx, r.PathValue("project_id"), req)
		}},
		{"POST /api/v1/wallets/{project_id}/topup", money(h, s.TopUp)},
		{"POST /api/v1/wallets/{project_id}/charge", money(h, s.Charge)},
		{"GET /api/v1/wallets/{project_id}/transactions", h.listTransactions},

		{"POST /api/v1/reservations", money(h, func(ctx context.Context, _ string, req ReserveRequest, k *IdempotencyKey) (int, any, error) {
			return s.Reserve(ctx, req, k)
		})},
		{"GET /api/v1/reservations", h.listReservations},
		{"GET /api/v1/reservations/{id}", onID(h, s.GetReservation)},
		{"POST /api/v1/reservations/{id}/commit", money(h, s.Commit)},
		{"POST /api/v1/reservations/{id}/release", money(h, s.Release)},

		{"GET /api/v1/quotas/{project_id}", onID(h, s.GetQuota)},
		{"PUT /api/v1/quotas/{project_id}", withID(h, s.SetQuota)},
		{"POST /api/v1/quotas/{project_id}/check", withID(h, s.CheckQuota)},
		{"POST /api/v1/quotas/{project_id}/usage", withID(h, s.AddUsage)},
	}
}

// Routes lists every REST route of CreditService; the OpenAPI test checks
// docs/api/openapi/creditservice.yaml against it.
func Routes() []string {
	out := []string{"GET /health", "GET /metrics"}
	for _, r := range (&handler{}).routes() {
		out = append(out, r.pattern)
	}
	return out
}

// NewHandler returns CreditService's REST API; authn authenticates every
// request and every route needs a caller.
func NewHandler(svc *Service, authn rest.Authn) http.Handler {
	h := &handler{svc: svc, timeout: svc.cfg.RequestTimeout}
	rt := rest.NewRouter("creditservice", nil)
	rt.SetMaxBody(svc.cfg.MaxBodyBytes)
	rt.SetAuthn(authn)
	rt.MountHealth("", "creditservice", svc.cfg.Version, map[string]rest.Check{"store": svc.Healthy})
	for _, r := range h.routes() {
		rt.Handle(r.pattern, auth.Authenticated(r.serve))
	}
	return rt
}

func (h *handler) ctx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), h.timeout)
}

func decode(r *http.Request, v any) error {
	if _, err := rest.Query(r); err != nil {
		return err
	}
	return rest.Decode(r, v)
}

// money serves a money-moving route. The body is read once, hashed with
// the method and path for the Idempotency-Key, and decoded strictly.
func money[Req any](h *handler, call moneyCall[Req]) rest.Handler {
	return func(r *http.Request) (any, error) {
		if _, err := rest.Query(r); err != nil {
			return nil, err
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, rest.Decode(r, new(Req)) // the size limit's typed error
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		var req Req
		if err := rest.Decode(r, &req); err != nil {
			return nil, err
		}
		idem, err := NewIdempotencyKey(r.Header.Get("Idempotency-Key"), r.Method, r.URL.Path, canonical(body))
		if err != nil {
			return nil, err
		}
		ctx, cancel := h.ctx(r)
		defer cancel()
		status, data, err := call(ctx, pathID(r), req, idem)
		if err != nil {
			return nil, err
		}
		return rest.Status{Code: status, Data: data}, nil
	}
}

// canonical is body with insignificant whitespace removed, so that a client
// re-sending the same JSON formatted differently is the same request.
func canonical(body []byte) []byte {
	var buf bytes.Buffer
	if json.Compact(&buf, body) != nil {
		return body
	}
	return buf.Bytes()
}

// pathID is the route's one path value, if it has one.
func pathID(r *http.Request) string {
	if id := r.PathValue("project_id"); id != "" {
		return id
	}
	return r.PathValue("id")
}

// onID serves a read of the resource a path value names.
func onID[Resp any](h *handler, call func(context.Context, string) (Resp, error)) rest.Handler {
	return func(r *http.Request) (any, error) {
		if _, err := rest.Query(r); err != nil {
			return nil, err
		}
		ctx, cancel := h.ctx(r)
		defer cancel()
		return call(ctx, pathID(r))
	}
}

// withID serves a route whose input is a path value and a JSON body.
func withID[Req, Resp any](h *handler, call func(context.Context, string, Req) (Resp, error)) rest.Handler {
	return func(r *http.Request) (any, error) {
		var req Req
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		ctx, cancel := h.ctx(r)
		defer cancel()
		return call(ctx, pathID(r), req)
	}
}

const (
	defListLimit = 50
	maxListLimit = 1000
)

func (h *handler) listTransactions(r *http.Request) (any, error) {
	q, err := rest.Query(r, "limit", "page_token", "type", "since", "until")
	if err != nil {
		return nil, err
	}
	limit, err := rest.Limit(q, defListLimit, maxListLimit)
	if err != nil {
		return nil, err
	}
	var since, until time.Time
	for field, dst := range map[string]*time.Time{"since": &since, "until": &until} {
		if v := q.Get(field); v != "" {
			if *dst, err = time.Parse(time.RFC3339, v); err != nil {
				return nil, apierr.Validation(field, apierr.Format, "%s must be an RFC 3339 time such as 2025-12-12T08:00:00Z", field)
			}
		}
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.ListTransactions(ctx, r.PathValue("project_id"), q.Get("type"), since, until, limit, q.Get("page_token"))
}

func (h *handler) listReservations(r *http.Request) (any, error) {
	q, err := rest.Query(r, "project_id", "status", "limit", "page_token")
	if err != nil {
		return nil, err
	}
	limit, err := rest.Limit(q, defListLimit, maxListLimit)
	if err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.ListReservations(ctx, q.Get("project_id"), q.Get("status"), limit, q.Get("page_token"))
}
