package flaredb

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/auth"
	"github.com/photoncloud/photon/internal/auth/policy"
	"github.com/photoncloud/photon/internal/ids"
	"github.com/photoncloud/photon/internal/rest"
	"github.com/photoncloud/photon/services/flaredb/engine"
)

// Permissions. Reads of data are get/list (so viewers may query); SQL that
// changes anything is execute.
const (
	permKVGet       = "flaredb.kv.get"
	permKVList      = "flaredb.kv.list"
	permKVPut       = "flaredb.kv.put"
	permKVDelete    = "flaredb.kv.delete"
	permSQLGet      = "flaredb.sql.get"
	permSQLExecute  = "flaredb.sql.execute"
	permTablesList  = "flaredb.tables.list"
	permTablesGet   = "flaredb.tables.get"
	permClusterGet  = "flaredb.cluster.get"
	permClusterEdit = "flaredb.cluster.update"
)

// handler is FlareDB's REST transport: resolve the database, decode, call
// the Service, return; requests that need the leader are forwarded to it.
type handler struct {
	svc     *Service
	fwd     *forwarder
	timeout time.Duration
}

type route struct {
	pattern string
	serve   rest.Handler
	// leader reports whether the request must be served by the leader
	// (writes, and reads that are not stale); its body is buffered.
	leader func(r *http.Request, body []byte) bool
}

func always(*http.Request, []byte) bool { return true }

func (h *handler) routes() []route {
	return []route{
		{"PUT /api/v1/kv/{key...}", h.putKV, always},
		{"GET /api/v1/kv/{key...}", h.getKV, notStale},
		{"DELETE /api/v1/kv/{key...}", h.deleteKV, always},
		{"GET /api/v1/scan", h.scan, notStale},
		{"POST /api/v1/sql", h.sql, sqlNeedsLeader},
		{"GET /api/v1/tables", h.tables, notStale},
		{"GET /api/v1/tables/{name}", h.table, notStale},
		{"GET /api/v1/cluster", h.cluster, nil},
		{"POST /api/v1/cluster/members", h.addMember, always},
		{"DELETE /api/v1/cluster/members/{id}", h.removeMember, always},
	}
}

// Routes lists every REST route of FlareDB.
func Routes() []string {
	out := []string{"GET /health", "GET /metrics"}
	for _, r := range (&handler{}).routes() {
		out = append(out, r.pattern)
	}
	return out
}

// NewHandler returns FlareDB's REST API over svc; authn authenticates every
// request and every route but /health needs a caller.
func NewHandler(svc *Service, authn rest.Authn, cfg Config) http.Handler {
	h := &handler{svc: svc, fwd: newForwarder(svc.node, cfg.LeaderWait), timeout: cfg.RequestTimeout}
	rt := rest.NewRouter("flaredb", nil)
	registerMetrics(rt.Registry(), svc.node)
	rt.SetMaxBody(cfg.MaxBodyBytes)
	rt.SetAuthn(authn)
	rt.MountHealth("", "flaredb", cfg.Version, map[string]rest.Check{"raft": svc.Healthy})
	for _, r := range h.routes() {
		serve := auth.Authenticated(r.serve)
		if r.leader == nil {
			rt.Handle(r.pattern, serve)
			continue
		}
		rt.HandleStream(r.pattern, h.fwd.leaderRoute(serve, r.leader))
	}
	return rt
}

// Healthy reports whether the node knows a leader: without one, nothing
// that needs consensus can be served.
func (s *Service) Healthy(ctx context.Context) error {
	if id, _ := s.node.Leader(); id == "" {
		return apierr.New(apierr.CodeUnavailable, "no leader")
	}
	return nil
}

func (h *handler) ctx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), h.timeout)
}

// query parses the URL's query as FlareDB does (';' is data, see
// parseQuery) and refuses parameters a route does not know.
func query(r *http.Request, known ...string) (url.Values, error) {
	q, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, apierr.Validation("query", apierr.Format, "malformed query string: %v", err)
	}
	allowed := map[string]bool{"project_id": true, "org_id": true}
	for _, k := range known {
		allowed[k] = true
	}
	for k, vs := range q {
		if !allowed[k] {
			return nil, apierr.Validation(k, apierr.Unknown, "unknown query parameter %q", k)
		}
		if len(vs) > 1 {
			return nil, apierr.Validation(k, apierr.Format, "query parameter %q given %d times", k, len(vs))
		}
	}
	return q, nil
}

// database resolves the database a request acts on and checks the caller
// may do perm there. A request names its project with project_id; a
// project token that names none acts on its own project; a system caller
// that names none acts on the platform database. Reads outside the
// caller's scope are NOT_FOUND (existence does not leak), writes FORBIDDEN.
func database(ctx context.Context, q url.Values, perm string, read bool) (string, error) {
	subj, err := auth.Caller(ctx)
	if err != nil {
		return "", err
	}
	project := q.Get("project_id")
	if project == "" && subj.Scope != policy.SystemScope {
		if auth.CallerIsOrg(ctx) {
			return "", apierr.Validation("project_id", apierr.Required, "an org token must name the project_id whose database it uses")
		}
		project = subj.Scope
	}
	target := policy.System
	db := engine.PlatformDB
	if project != "" {
		if err := ids.Check("project_id", project); err != nil {
			return "", err
		}
		target = policy.Target{OrgID: q.Get("org_id"), ProjectID: project}
		db = project
	}
	if read {
		return db, auth.RequireOn(ctx, perm, target, "database", project)
	}
	return db, auth.Require(ctx, perm, target)
}

// consistency reads a request's read consistency ("" is linearizable).
func consistency(v string) (engine.Consistency, error) {
	c, err := engine.ParseConsistency(v)
	if err != nil {
		return 0, apierr.Validation("consistency", apierr.Enum, "consistency must be linearizable, lease or stale")
	}
	return c, nil
}

func notStale(r *http.Request, _ []byte) bool {
	q, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		return false // answered locally with the error
	}
	c, err := engine.ParseConsistency(q.Get("consistency"))
	return err == nil && c != engine.Stale
}

func sqlNeedsLeader(r *http.Request, body []byte) bool {
	var req struct {
		Consistency string `json:"consistency"`
	}
	if bytes.Contains(body, []byte(`"consistency"`)) { // else not worth decoding twice
		_ = json.Unmarshal(body, &req)
	}
	c := req.Consistency
	if q, err := parseQuery(r.URL.RawQuery); err == nil && q.Get("consistency") != "" {
		c = q.Get("consistency")
	}
	// A stale read is served here; a stale request that writes is told
	// it must go to the leader by the engine, and forwarded then.
	cons, err := engine.ParseConsistency(c)
	return err != nil || cons != engine.Stale
}

// request is what a data route first works out: its query, the database
// it acts on (checked against the caller's rights) and, for reads, the
// consistency asked for.
type request struct {
	q  url.Values
	db string
	c  engine.Consistency
}

// begin parses r's query (the route's known parameters, plus project_id
// and org_id), its consistency when the route takes one, and resolves the
// database for perm; one marks a read of one thing (NOT_FOUND outside the
// caller's scope).
func begin(r *http.Request, perm string, one bool, known ...string) (request, error) {
	q, err := query(r, known...)
	if err != nil {
		return request{}, err
	}
	out := request{q: q}
	if out.c, err = consistency(q.Get("consistency")); err != nil {
		return request{}, err
	}
	out.db, err = database(r.Context(), q, perm, one)
	return out, err
}

func (h *handler) putKV(r *http.Request) (any, error) {
	rq, err := begin(r, permKVPut, false, "namespace")
	if err != nil {
		return nil, err
	}
	var req PutKVRequest
	if err := rest.Decode(r, &req); err != nil {
		return nil, err
	}
	// The namespace may be in the body (the seed's way) or in the query,
	// as GET and DELETE take it; two different ones are a mistake.
	if ns := rq.q.Get("namespace"); ns != "" {
		if req.Namespace != "" && req.Namespace != ns {
			return nil, apierr.Validation("namespace", apierr.Format, "the body's namespace %q differs from the query's %q", req.Namespace, ns)
		}
		req.Namespace = ns
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.PutKV(ctx, rq.db, r.PathValue("key"), req)
}

func (h *handler) getKV(r *http.Request) (any, error) {
	rq, err := begin(r, permKVGet, true, "namespace", "consistency")
	if err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.GetKV(ctx, rq.db, rq.c, rq.q.Get("namespace"), r.PathValue("key"))
}

func (h *handler) deleteKV(r *http.Request) (any, error) {
	rq, err := begin(r, permKVDelete, false, "namespace")
	if err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.DeleteKV(ctx, rq.db, rq.q.Get("namespace"), r.PathValue("key"))
}

func (h *handler) scan(r *http.Request) (any, error) {
	rq, err := begin(r, permKVList, false, "namespace", "start", "end", "limit", "page_token", "consistency")
	if err != nil {
		return nil, err
	}
	limit, err := rest.Limit(rq.q, defScanLimit, maxScanLimit)
	if err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.Scan(ctx, rq.db, rq.c, ScanQuery{Namespace: rq.q.Get("namespace"), Start: rq.q.Get("start"),
		End: rq.q.Get("end"), PageToken: rq.q.Get("page_token"), Limit: limit})
}

// sql needs the body before the database: whether it writes decides the
// permission.
func (h *handler) sql(r *http.Request) (any, error) {
	q, err := query(r, "consistency")
	if err != nil {
		return nil, err
	}
	var req SQLRequest
	if err := rest.Decode(r, &req); err != nil {
		return nil, err
	}
	cv := req.Consistency
	if q.Get("consistency") != "" {
		cv = q.Get("consistency")
	}
	c, err := consistency(cv)
	if err != nil {
		return nil, err
	}
	b, err := ParseSQL(req)
	if err != nil {
		return nil, err
	}
	perm := permSQLGet
	if b.Writes() {
		perm = permSQLExecute
	}
	db, err := database(r.Context(), q, perm, false)
	if err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.Run(ctx, db, c, b)
}

func (h *handler) tables(r *http.Request) (any, error) {
	rq, err := begin(r, permTablesList, false, "consistency")
	if err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.Tables(ctx, rq.db, rq.c)
}

func (h *handler) table(r *http.Request) (any, error) {
	rq, err := begin(r, permTablesGet, true, "consistency")
	if err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.Table(ctx, rq.db, rq.c, r.PathValue("name"))
}

func (h *handler) cluster(r *http.Request) (any, error) {
	if _, err := query(r); err != nil {
		return nil, err
	}
	if err := auth.Require(r.Context(), permClusterGet, policy.System); err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	return h.svc.Cluster(ctx)
}

func (h *handler) addMember(r *http.Request) (any, error) {
	if _, err := query(r); err != nil {
		return nil, err
	}
	if err := auth.Require(r.Context(), permClusterEdit, policy.System); err != nil {
		return nil, err
	}
	var req AddMemberRequest
	if err := rest.Decode(r, &req); err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	m, err := h.svc.AddMember(ctx, req)
	if err != nil {
		return nil, err
	}
	return rest.Created(m), nil
}

func (h *handler) removeMember(r *http.Request) (any, error) {
	if _, err := query(r); err != nil {
		return nil, err
	}
	if err := auth.Require(r.Context(), permClusterEdit, policy.System); err != nil {
		return nil, err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	id := r.PathValue("id")
	if err := h.svc.RemoveMember(ctx, id); err != nil {
		return nil, err
	}
	return map[string]any{"id": id, "deleted": true}, nil
}
