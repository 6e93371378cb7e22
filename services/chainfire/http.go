package chainfire

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/auth"
	"github.com/photoncloud/photon/internal/auth/policy"
	"github.com/photoncloud/photon/internal/rest"
	"github.com/photoncloud/photon/internal/state"
)

// handler is the REST transport: decode, call the Service, return.
type handler struct {
	svc     *Service
	timeout time.Duration
}

// route is one REST route: a ServeMux pattern and what serves it.
type route struct {
	pattern string
	perm    string // what the caller needs, at system scope
	serve   rest.Handler
	stream  rest.StreamHandler
}

func (h *handler) routes() []route {
	return []route{
		{pattern: "GET /api/v1/cluster/status", perm: "chainfire.cluster.get", serve: h.status},
		{pattern: "GET /api/v1/cluster/members", perm: "chainfire.members.list", serve: h.listMembers},
		{pattern: "POST /api/v1/cluster/members", perm: "chainfire.members.create", serve: h.addMember},
		{pattern: "DELETE /api/v1/cluster/members/{node_id}", perm: "chainfire.members.delete", serve: h.removeMember},
		{pattern: "GET /api/v1/kv", perm: "chainfire.kv.list", serve: h.list},
		{pattern: "GET /api/v1/kv/{key...}", perm: "chainfire.kv.get", serve: h.get},
		// A key may hold "/", so the verb (put, delete) is the last segment;
		// action checks chainfire.kv.put or chainfire.kv.delete itself.
		{pattern: "POST /api/v1/kv/{key...}", serve: h.action},
		{pattern: "GET /api/v1/watch", perm: "chainfire.kv.watch", stream: h.watch},
	}
}

// Routes lists every REST route of ChainFire as ServeMux patterns; the
// OpenAPI test checks docs/api/openapi/chainfire.yaml against it.
func Routes() []string {
	out := []string{"GET /health", "GET /metrics"}
	for _, r := range (&handler{}).routes() {
		out = append(out, r.pattern)
	}
	return out
}

// NewHandler returns ChainFire's REST API. Its keys are system-scoped: every
// route needs its permission at system scope, which only admin holds among
// the built-in roles.
func NewHandler(svc *Service, cfg Config, authn rest.Authn) http.Handler {
	h := &handler{svc: svc, timeout: cfg.RequestTimeout}
	rt := rest.NewRouter("chainfire", nil)
	rt.SetMaxBody(cfg.MaxBodyBytes)
	rt.SetAuthn(authn)
	// etcd registers its own metrics (etcd_server_*, etcd_disk_*) with the
	// default registry: expose them beside ours.
	rt.MountHealth("", "chainfire", cfg.Version, map[string]rest.Check{"raft": svc.Healthy}, prometheus.DefaultGatherer)
	for _, r := range h.routes() {
		perm := r.perm
		if r.stream != nil {
			stream := r.stream
			rt.HandleStream(r.pattern, func(w http.ResponseWriter, req *http.Request) error {
				if err := require(req, perm); err != nil {
					return err
				}
				return stream(w, req)
			})
			continue
		}
		serve := r.serve
		rt.Handle(r.pattern, func(req *http.Request) (any, error) {
			if err := require(req, perm); err != nil {
				return nil, err
			}
			return serve(req)
		})
	}
	return rt
}

// permAuthenticated marks a route that checks its permission itself, once it
// knows which (the KV action route: put or delete).
const permAuthenticated = ""

// require checks the caller may do perm at system scope (or, for
// permAuthenticated, that there is a caller).
func require(r *http.Request, perm string) error {
	if perm == permAuthenticated {
		_, err := auth.Caller(r.Context())
		return err
	}
	return auth.Require(r.Context(), perm, policy.System)
}

func (h *handler) status(r *http.Request) (any, error) {
	if _, err := rest.Query(r); err != nil {
		return nil, err
	}
	return h.svc.Status(), nil
}

func (h *handler) listMembers(r *http.Request) (any, error) {
	if _, err := rest.Query(r); err != nil {
		return nil, err
	}
	ctx, cancel := contextWithTimeout(r, h.timeout)
	defer cancel()
	ms, err := h.svc.Members(ctx)
	if err != nil {
		return nil, err
	}
	return MemberList{Members: ms}, nil
}

func (h *handler) addMember(r *http.Request) (any, error) {
	var req AddMemberRequest
	if err := rest.Decode(r, &req); err != nil {
		return nil, err
	}
	ctx, cancel := contextWithTimeout(r, h.timeout)
	defer cancel()
	res, err := h.svc.AddMember(ctx, req)
	if err != nil {
		return nil, err
	}
	return rest.Created(res), nil
}

func (h *handler) removeMember(r *http.Request) (any, error) {
	id, err := strconv.ParseUint(r.PathValue("node_id"), 10, 64)
	if err != nil || id == 0 {
		return nil, apierr.Validation("node_id", apierr.Format, "node_id must be a positive integer")
	}
	ctx, cancel := contextWithTimeout(r, h.timeout)
	defer cancel()
	return h.svc.RemoveMember(ctx, id)
}

func (h *handler) list(r *http.Request) (any, error) {
	q, err := rest.Query(r, "prefix", "limit", "page_token", "consistency")
	if err != nil {
		return nil, err
	}
	limit, err := rest.Limit(q, DefListLimit, MaxListLimit)
	if err != nil {
		return nil, err
	}
	c, err := ParseConsistency(q.Get("consistency"))
	if err != nil {
		return nil, err
	}
	ctx, cancel := contextWithTimeout(r, h.timeout)
	defer cancel()
	return h.svc.List(ctx, q.Get("prefix"), limit, q.Get("page_token"), c)
}

func (h *handler) get(r *http.Request) (any, error) {
	q, err := rest.Query(r, "consistency")
	if err != nil {
		return nil, err
	}
	c, err := ParseConsistency(q.Get("consistency"))
	if err != nil {
		return nil, err
	}
	ctx, cancel := contextWithTimeout(r, h.timeout)
	defer cancel()
	return h.svc.Get(ctx, r.PathValue("key"), c)
}

// action serves POST /api/v1/kv/{key}/put and /api/v1/kv/{key}/delete.
func (h *handler) action(r *http.Request) (any, error) {
	if _, err := rest.Query(r); err != nil {
		return nil, err
	}
	path := "/" + r.PathValue("key")
	ctx, cancel := contextWithTimeout(r, h.timeout)
	defer cancel()
	switch {
	case strings.HasSuffix(path, "/put"):
		if err := require(r, "chainfire.kv.put"); err != nil {
			return nil, err
		}
		var req PutRequest
		if err := rest.Decode(r, &req); err != nil {
			return nil, err
		}
		return h.svc.Put(ctx, strings.TrimPrefix(strings.TrimSuffix(path, "/put"), "/"), req)
	case strings.HasSuffix(path, "/delete"):
		if err := require(r, "chainfire.kv.delete"); err != nil {
			return nil, err
		}
		var req DeleteRequest
		if err := rest.Decode(r, &req); err != nil {
			return nil, err
		}
		return h.svc.Delete(ctx, strings.TrimPrefix(strings.TrimSuffix(path, "/delete"), "/"), req)
	}
	return nil, apierr.New(apierr.CodeNotFound, "no route for POST %s: use /api/v1/kv/{key}/put or /api/v1/kv/{key}/delete", r.URL.Path)
}

// watch streams changes as Server-Sent Events: "event: put|delete", "id:
// <mod_revision>" (so EventSource's Last-Event-ID resumes without a gap) and
// a WatchEvent as data. The response starts only once the watch is
// registered, so a write made after the headers arrive is always seen.
func (h *handler) watch(w http.ResponseWriter, r *http.Request) error {
	q, err := rest.Query(r, "prefix", "key", "start_revision")
	if err != nil {
		return err
	}
	prefix, exact := q.Get("prefix"), false
	if q.Has("key") {
		if q.Has("prefix") {
			return apierr.Validation("key", apierr.Format, "give key or prefix, not both")
		}
		prefix, exact = q.Get("key"), true
	}
	var from int64
	if s := q.Get("start_revision"); s != "" {
		if from, err = strconv.ParseInt(s, 10, 64); err != nil || from < 1 {
			return apierr.Validation("start_revision", apierr.Range, "start_revision must be a positive integer")
		}
	}
	if last := r.Header.Get("Last-Event-ID"); last != "" && from == 0 {
		if rev, err := strconv.ParseInt(last, 10, 64); err == nil && rev > 0 && rev < math.MaxInt64 {
			from = rev + 1
		}
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	wch, err := h.svc.Watch(ctx, prefix, exact, from)
	if err != nil {
		return err
	}
	// The first response only confirms the watch is registered (created
	// notify): answer the headers only then.
	select {
	case resp, ok := <-wch:
		if !ok {
			return apierr.New(apierr.CodeUnavailable, "watch closed before it started")
		}
		if err := resp.Err(); err != nil {
			return watchError(err, resp.CompactRevision, from)
		}
	case <-ctx.Done():
		return apierr.New(apierr.CodeUnavailable, "watch cancelled before it started")
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_, _ = fmt.Fprint(w, ": watching\n\n")
	_ = rc.Flush()
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-rest.ShuttingDown(r.Context()):
			return nil
		case <-keepalive.C:
			if _, err := fmt.Fprint(w, ": keepalive\n\n"); err != nil {
				return nil
			}
			_ = rc.Flush()
		case resp, ok := <-wch:
			if !ok {
				return nil
			}
			if err := resp.Err(); err != nil {
				e := apierr.As(watchError(err, resp.CompactRevision, from))
				b, _ := json.Marshal(rest.ErrorBody{Code: e.Code, Message: e.Message, Details: e.Details})
				_, _ = fmt.Fprintf(w, "event: error\ndata: %s\n\n", b)
				_ = rc.Flush()
				return nil
			}
			for _, ev := range resp.Events {
				we := WatchEvent{Type: "put", Key: string(ev.Kv.Key), Value: string(ev.Kv.Value),
					CreateRevision: ev.Kv.CreateRevision, ModRevision: ev.Kv.ModRevision, Version: ev.Kv.Version}
				if ev.Type == clientv3.EventTypeDelete {
					we = WatchEvent{Type: "delete", Key: string(ev.Kv.Key), ModRevision: ev.Kv.ModRevision}
				}
				b, _ := json.Marshal(we)
				if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", we.ModRevision, we.Type, b); err != nil {
					return nil
				}
			}
			_ = rc.Flush()
		}
	}
}

// watchError types a watch failure; a compacted start revision is a
// precondition the client can fix by starting later.
func watchError(err error, compactRevision, from int64) error {
	if compactRevision != 0 {
		return &apierr.Error{Code: apierr.CodeFailedPrecondition,
			Message: fmt.Sprintf("start_revision %d has been compacted; the oldest available is %d", from, compactRevision),
			Details: map[string]any{"field": "start_revision", "compact_revision": compactRevision}}
	}
	return state.FromEtcd(err)
}

func contextWithTimeout(r *http.Request, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), d)
}
