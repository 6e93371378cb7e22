package rest

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/photoncloud/photon/internal/apierr"
)

// Handler serves one route: it returns the "data" of the envelope (or a
// Status wrapping it) or an error, and never writes a status itself.
type Handler func(r *http.Request) (any, error)

// StreamHandler serves a route that writes its own body (Server-Sent Events).
// An error it returns before writing anything is sent in the envelope.
type StreamHandler func(w http.ResponseWriter, r *http.Request) error

// Router is a ServeMux whose every answer — including unknown routes, wrong
// methods and panics — is the seed's envelope, with request IDs, a body
// limit and per-route metrics.
type Router struct {
	mux     *http.ServeMux
	maxBody int64
	metrics *httpMetrics
	reg     *prometheus.Registry
	authn   Authn
	public  map[string]bool // patterns served without authentication (health)

	healthInfo func() map[string]string
	bodyLimits map[string]int64 // by pattern; maxBody otherwise
}

// Authn attaches the caller to each request before its route runs;
// internal/auth implements it. Authenticate fails only for a credential
// that is present and bad (a request without one passes on, anonymous, and
// routes decide); RequireAuthenticated guards /metrics.
type Authn interface {
	Authenticate(r *http.Request) (*http.Request, error)
	RequireAuthenticated(r *http.Request) error
}

// SetAuthn makes every route but /health authenticate its caller first.
func (rt *Router) SetAuthn(a Authn) { rt.authn = a }

// NewRouter returns a router for service whose metrics go to reg (a fresh
// registry if nil).
func NewRouter(service string, reg *prometheus.Registry) *Router {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	return &Router{mux: http.NewServeMux(), maxBody: DefaultMaxBody, metrics: newHTTPMetrics(service, reg), reg: reg, public: map[string]bool{}}
}

// SetMaxBody changes the request body limit (DefaultMaxBody otherwise).
func (rt *Router) SetMaxBody(n int64) { rt.maxBody = n }

// SetRouteMaxBody gives one route (its pattern) its own body limit: an
// upload of disk images, say, that streams its body to a file.
func (rt *Router) SetRouteMaxBody(pattern string, n int64) {
	if rt.bodyLimits == nil {
		rt.bodyLimits = map[string]int64{}
	}
	rt.bodyLimits[pattern] = n
}

// Registry is where the router's metrics (and the service's own) live.
func (rt *Router) Registry() *prometheus.Registry { return rt.reg }

// route marks the handlers registered through the router, so ServeHTTP can
// tell them from ServeMux's own 404, 405 and redirect handlers: for a
// redirect to a registered route ServeMux reports that route's pattern, so
// the pattern alone does not say whether a route was matched.
type route struct{ http.Handler }

func (rt *Router) register(pattern string, h http.Handler) {
	if h == nil {
		panic("rest: nil handler for " + pattern) // as ServeMux would, at registration
	}
	rt.mux.Handle(pattern, route{h})
}

// Handle registers h for a ServeMux pattern such as "POST /api/v1/vpcs".
func (rt *Router) Handle(pattern string, h Handler) {
	rt.register(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, err := h(r)
		if err != nil {
			WriteError(w, r, err)
			return
		}
		status := http.StatusOK
		if s, ok := data.(Status); ok {
			status, data = s.Code, s.Data
		}
		WriteData(w, r, status, data)
	}))
}

// HandleStream registers a handler that writes its own body.
func (rt *Router) HandleStream(pattern string, h StreamHandler) {
	rt.register(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		if err := h(sw, r); err != nil && sw.status == 0 {
			WriteError(w, r, err)
		}
	}))
}

// HandleHTTP registers a plain http.Handler (e.g. Prometheus's exposition).
func (rt *Router) HandleHTTP(pattern string, h http.Handler) { rt.register(pattern, h) }

// ServeHTTP dispatches r with the shared middleware around the route.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := requestIDFrom(r.Header.Get(HeaderRequestID))
	w.Header().Set(HeaderRequestID, id)
	r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))
	h, pattern := rt.mux.Handler(r)
	if r.Body != nil {
		limit := rt.maxBody
		if n, ok := rt.bodyLimits[pattern]; ok {
			limit = n
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
	}
	sw := &statusWriter{ResponseWriter: w}

	// Only a route of ours is a match: for ServeMux's own redirect answers
	// pattern is the target's (or, for CONNECT, a raw path, which must not
	// become a metric label).
	_, matched := h.(route)
	label := ""
	if matched {
		label = pattern
	}
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			slog.Default().ErrorContext(r.Context(), "handler panicked", "panic", p, "stack", string(debug.Stack()))
			if sw.status == 0 {
				WriteError(sw, r, apierr.Wrap(apierr.CodeInternal, fmt.Errorf("panic: %v", p), "internal error"))
			}
		}
		if label == "" {
			label = "unmatched"
		}
		rt.metrics.observe(r.Method, label, sw.status, time.Since(start))
	}()

	if rt.authn != nil && !(matched && rt.public[pattern]) {
		// A bad token is refused before anything else is answered.
		ar, err := rt.authn.Authenticate(r)
		if err != nil {
			WriteError(sw, r, err)
			return
		}
		r = ar
	}
	if !matched {
		// ServeMux's own 404/405/redirect answers are plain text: learn which
		// one it chose, then answer in the envelope.
		probe := &headerProbe{header: http.Header{}}
		h.ServeHTTP(probe, r)
		switch probe.status {
		case http.StatusMethodNotAllowed:
			sw.Header().Set("Allow", probe.header.Get("Allow"))
			WriteError(sw, r, apierr.New(apierr.CodeMethodNotAllowed, "method %s is not allowed on %s", r.Method, r.URL.Path))
		case http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
			// Path cleaning (e.g. "//" or "/a/../b"): send the client on.
			sw.Header().Set("Location", probe.header.Get("Location"))
			WriteError(sw, r, &apierr.Error{Code: apierr.CodeNotFound, Message: "no route for " + r.URL.Path + "; the clean path is " + probe.header.Get("Location")})
		default:
			WriteError(sw, r, apierr.New(apierr.CodeNotFound, "no route for %s %s", r.Method, r.URL.Path))
		}
		return
	}
	// Dispatch through the mux itself: it sets r's path values.
	rt.mux.ServeHTTP(sw, r)
}

// statusWriter remembers the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush lets stream handlers push events through the wrapper.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// headerProbe records what ServeMux's fallback handlers would answer.
type headerProbe struct {
	header http.Header
	status int
}

func (p *headerProbe) Header() http.Header         { return p.header }
func (p *headerProbe) Write(b []byte) (int, error) { return len(b), nil }
func (p *headerProbe) WriteHeader(code int)        { p.status = code }

// httpMetrics are the per-route request counts and latencies of a service.
type httpMetrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newHTTPMetrics(service string, reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "photon_http_requests_total",
			Help:        "HTTP requests served, by route pattern, method and status code.",
			ConstLabels: prometheus.Labels{"service": service},
		}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:        "photon_http_request_duration_seconds",
			Help:        "HTTP request latency, by route pattern and method.",
			ConstLabels: prometheus.Labels{"service": service},
			Buckets:     prometheus.ExponentialBuckets(0.0001, 2.5, 14),
		}, []string{"route", "method"}),
	}
	reg.MustRegister(m.requests, m.latency)
	return m
}

func (m *httpMetrics) observe(method, route string, status int, d time.Duration) {
	if status == 0 {
		status = http.StatusOK
	}
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route, method).Observe(d.Seconds())
}
