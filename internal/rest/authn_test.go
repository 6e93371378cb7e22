package rest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/photoncloud/photon/internal/apierr"
)

// authnFake stands in for internal/auth's Authenticator, the router's
// collaborator: the real one is tested in internal/auth. It treats
// "Bearer good" as a caller, "Bearer bad" as a refused credential, "Bearer
// slow" as rate-limited, and no header as anonymous; it logs every call.
type authnFake struct {
	mu  sync.Mutex
	log []string // "authn <method> <path>", "handler <path>", "require <path>"
}

type authnCallerKey struct{}

func (f *authnFake) record(s string) {
	f.mu.Lock()
	f.log = append(f.log, s)
	f.mu.Unlock()
}

func (f *authnFake) calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.log)
}

func (f *authnFake) reset() {
	f.mu.Lock()
	f.log = nil
	f.mu.Unlock()
}

func (f *authnFake) Authenticate(r *http.Request) (*http.Request, error) {
	f.record("authn " + r.Method + " " + r.URL.Path)
	switch r.Header.Get("Authorization") {
	case "":
		return r.WithContext(context.WithValue(r.Context(), authnCallerKey{}, "anonymous")), nil
	case "Bearer good":
		return r.WithContext(context.WithValue(r.Context(), authnCallerKey{}, "alice")), nil
	case "Bearer slow":
		return r, &apierr.Error{Code: apierr.CodeRateLimited, Message: "slow down",
			Details: map[string]any{"retry_after_seconds": 7}}
	default:
		return r, apierr.New(apierr.CodeUnauthenticated, "bad token")
	}
}

func (f *authnFake) RequireAuthenticated(r *http.Request) error {
	f.record("require " + r.URL.Path)
	if who, _ := r.Context().Value(authnCallerKey{}).(string); who == "" || who == "anonymous" {
		return apierr.New(apierr.CodeUnauthenticated, "authentication required")
	}
	return nil
}

var _ Authn = (*authnFake)(nil)

// authnReply is one answer over real HTTP.
type authnReply struct {
	status int
	header http.Header
	body   []byte
}

// authnDo sends one request; headers are "Name: value" pairs.
func authnDo(t *testing.T, method, url string, body io.Reader, headers ...string) authnReply {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok {
			t.Fatalf("bad header %q", h)
		}
		req.Header.Set(name, strings.TrimSpace(value))
	}
	// Never follow ServeMux's redirects: the router's own answer is checked.
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return authnReply{status: resp.StatusCode, header: resp.Header, body: b}
}

// authnError checks r is the error envelope with status and code, its meta
// carrying the request id of the X-Request-ID header, and returns the error.
func authnError(t *testing.T, r authnReply, status int, code apierr.Code) ErrorBody {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var env map[string]json.RawMessage
	if err := json.Unmarshal(r.body, &env); err != nil {
		t.Fatalf("not JSON: %v: %s", err, r.body)
	}
	if len(env) != 2 || env["error"] == nil || env["meta"] == nil {
		t.Fatalf("envelope %s, want exactly error and meta", r.body)
	}
	var e ErrorEnvelope
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatal(err)
	}
	if e.Error.Code != code || e.Error.Message == "" {
		t.Errorf("error = %+v, want code %s with a message", e.Error, code)
	}
	if e.Meta.RequestID == "" || e.Meta.RequestID != r.header.Get(HeaderRequestID) {
		t.Errorf("meta.request_id %q, X-Request-ID %q: want the same, non-empty", e.Meta.RequestID, r.header.Get(HeaderRequestID))
	}
	if e.Meta.Timestamp == "" {
		t.Error("meta.timestamp is empty")
	}
	return e.Error
}

// authnRouter is a router with every kind of route, a fake Authn, and
// /health and /metrics under prefix.
func authnRouter(t *testing.T, prefix string) (*authnFake, string) {
	t.Helper()
	f := &authnFake{}
	rt := NewRouter("authn", nil)
	rt.SetAuthn(f)
	caller := func(r *http.Request) string { s, _ := r.Context().Value(authnCallerKey{}).(string); return s }
	rt.Handle("GET /things/{id}", func(r *http.Request) (any, error) {
		f.record("handler " + r.URL.Path)
		return map[string]string{"id": r.PathValue("id"), "caller": caller(r)}, nil
	})
	rt.Handle("POST /things", func(r *http.Request) (any, error) {
		f.record("handler " + r.URL.Path)
		return Created(map[string]string{"caller": caller(r)}), nil
	})
	rt.Handle("GET /dir/", func(r *http.Request) (any, error) {
		f.record("handler " + r.URL.Path)
		return caller(r), nil
	})
	rt.HandleStream("GET /stream", func(w http.ResponseWriter, r *http.Request) error {
		f.record("handler " + r.URL.Path)
		w.Header().Set("Content-Type", "text/event-stream")
		_, err := io.WriteString(w, "data: "+caller(r)+"\n\n")
		return err
	})
	rt.HandleHTTP("GET /plain", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.record("handler " + r.URL.Path)
		_, _ = io.WriteString(w, "plain "+caller(r))
	}))
	rt.Handle("GET /limited", func(r *http.Request) (any, error) {
		f.record("handler " + r.URL.Path)
		return nil, &apierr.Error{Code: apierr.CodeRateLimited, Message: "too many", Details: map[string]any{"retry_after_seconds": 42}}
	})
	rt.MountHealth(prefix, "authn", "v1", nil)
	srv := httptest.NewServer(rt)
	t.Cleanup(srv.Close)
	return f, srv.URL
}

// TestAuthnRunsBeforeEveryRoute checks the hook runs first on every route
// and on every answer the router gives by itself (404, 405, redirects), that
// the route sees the request it returned, and that a refused credential is
// refused before anything else is answered.
func TestAuthnRunsBeforeEveryRoute(t *testing.T) {
	f, base := authnRouter(t, "")
	routes := []struct {
		method, path string
		status       int
		body         string // a substring of a good answer
		handled      bool   // whether a route of ours runs
	}{
		{"GET", "/things/t1", 200, `"caller":"alice"`, true},
		{"POST", "/things", 201, `"caller":"alice"`, true},
		{"GET", "/dir/x/y", 200, `"alice"`, true},
		{"GET", "/stream", 200, "data: alice", true},
		{"GET", "/plain", 200, "plain alice", true},
		{"HEAD", "/things/t1", 200, "", true},
		{"GET", "/nowhere", 404, `"NOT_FOUND"`, false},
		{"DELETE", "/things/t1", 405, `"METHOD_NOT_ALLOWED"`, false},
		{"GET", "/dir", 404, `"NOT_FOUND"`, false},              // ServeMux would redirect to /dir/
		{"GET", "/things//t1", 404, `"NOT_FOUND"`, false},       // path cleaning redirect
		{"POST", "/health", 405, `"METHOD_NOT_ALLOWED"`, false}, // only GET /health is exempt
	}
	for _, tc := range routes {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			f.reset()
			r := authnDo(t, tc.method, base+tc.path, nil, "Authorization: Bearer good")
			if r.status != tc.status || !strings.Contains(string(r.body), tc.body) {
				t.Errorf("with a good token: %d %s, want %d containing %q", r.status, r.body, tc.status, tc.body)
			}
			want := []string{"authn " + tc.method + " " + tc.path}
			if tc.handled {
				want = append(want, "handler "+tc.path)
			}
			if got := f.calls(); !slices.Equal(got, want) {
				t.Errorf("calls %q, want %q (authentication first, once)", got, want)
			}

			// A bad credential: 401 in the envelope, and no route runs —
			// not even the router's own 404/405/redirect answers.
			f.reset()
			r = authnDo(t, tc.method, base+tc.path, nil, "Authorization: Bearer bad")
			if tc.method == "HEAD" {
				if r.status != 401 || len(r.body) != 0 {
					t.Errorf("HEAD with a bad token: %d %q, want 401 without a body", r.status, r.body)
				}
			} else {
				authnError(t, r, 401, apierr.CodeUnauthenticated)
			}
			if r.header.Get("Location") != "" || r.header.Get("Allow") != "" {
				t.Errorf("a refused request still got Location %q / Allow %q", r.header.Get("Location"), r.header.Get("Allow"))
			}
			if got := f.calls(); !slices.Equal(got, want[:1]) {
				t.Errorf("calls %q with a bad token, want only %q", got, want[:1])
			}
		})
	}
}

// TestAuthnHealthAndMetrics checks /health is served without
// authentication — a bad token is not even looked at — while /metrics
// needs a caller.
func TestAuthnHealthAndMetrics(t *testing.T) {
	for _, prefix := range []string{"", "/svc"} {
		t.Run("prefix "+prefix, func(t *testing.T) {
			f, base := authnRouter(t, prefix)
			for _, h := range []string{"", "Authorization: Bearer bad", "Authorization: Bearer slow", "Authorization: Basic x"} {
				f.reset()
				var headers []string
				if h != "" {
					headers = append(headers, h)
				}
				r := authnDo(t, "GET", base+prefix+"/health", nil, headers...)
				if r.status != 200 || !strings.Contains(string(r.body), `"status":"ok"`) {
					t.Errorf("GET %s/health with %q = %d %s, want 200 ok", prefix, h, r.status, r.body)
				}
				if got := f.calls(); len(got) != 0 {
					t.Errorf("GET %s/health with %q called the authenticator: %q", prefix, h, got)
				}
			}
			// HEAD is served by the GET pattern: exempt too.
			f.reset()
			if r := authnDo(t, "HEAD", base+prefix+"/health", nil, "Authorization: Bearer bad"); r.status != 200 {
				t.Errorf("HEAD %s/health with a bad token = %d", prefix, r.status)
			}
			if got := f.calls(); len(got) != 0 {
				t.Errorf("HEAD %s/health called the authenticator: %q", prefix, got)
			}

			metrics := base + prefix + "/metrics"
			for _, tc := range []struct {
				name   string
				header []string
				status int
				calls  []string
			}{
				{"anonymous", nil, 401, []string{"authn GET " + prefix + "/metrics", "require " + prefix + "/metrics"}},
				{"bad token", []string{"Authorization: Bearer bad"}, 401, []string{"authn GET " + prefix + "/metrics"}},
				{"caller", []string{"Authorization: Bearer good"}, 200, []string{"authn GET " + prefix + "/metrics", "require " + prefix + "/metrics"}},
			} {
				f.reset()
				r := authnDo(t, "GET", metrics, nil, tc.header...)
				if tc.status == 200 {
					if r.status != 200 || !strings.Contains(string(r.body), "photon_http_requests_total") {
						t.Errorf("/metrics as %s = %d %.200s", tc.name, r.status, r.body)
					}
				} else {
					authnError(t, r, tc.status, apierr.CodeUnauthenticated)
					if strings.Contains(string(r.body), "photon_http") {
						t.Errorf("/metrics as %s leaked metrics: %.200s", tc.name, r.body)
					}
				}
				if got := f.calls(); !slices.Equal(got, tc.calls) {
					t.Errorf("/metrics as %s: calls %q, want %q", tc.name, got, tc.calls)
				}
			}
		})
	}
}

// TestAuthnErrorEnvelope checks a refusal by the authenticator is the
// seed's envelope with the request's own id, and is counted in the route's
// metrics like any other answer.
func TestAuthnErrorEnvelope(t *testing.T) {
	_, base := authnRouter(t, "")
	r := authnDo(t, "GET", base+"/things/t1", nil, "Authorization: Bearer bad", "X-Request-ID: req-authn-1")
	e := authnError(t, r, 401, apierr.CodeUnauthenticated)
	if r.header.Get(HeaderRequestID) != "req-authn-1" {
		t.Errorf("X-Request-ID %q, want the caller's req-authn-1", r.header.Get(HeaderRequestID))
	}
	if e.Message != "bad token" {
		t.Errorf("message %q, want the authenticator's", e.Message)
	}
	if r.header.Get("Retry-After") != "" {
		t.Errorf("a 401 carries Retry-After %q", r.header.Get("Retry-After"))
	}

	// Without a caller id one is made, and still matches meta.
	r = authnDo(t, "POST", base+"/things", strings.NewReader(`{}`), "Authorization: Bearer bad", "Content-Type: application/json")
	authnError(t, r, 401, apierr.CodeUnauthenticated)

	// The refusal is in the metrics under the route it was meant for.
	m := authnDo(t, "GET", base+"/metrics", nil, "Authorization: Bearer good")
	if m.status != 200 {
		t.Fatalf("/metrics = %d", m.status)
	}
	var found bool
	for _, line := range strings.Split(string(m.body), "\n") {
		if strings.HasPrefix(line, "photon_http_requests_total{") && strings.Contains(line, `code="401"`) &&
			strings.Contains(line, `route="GET /things/{id}"`) {
			found = true
		}
	}
	if !found {
		t.Errorf("no 401 counted for GET /things/{id} in:\n%s", m.body)
	}
}

// TestAuthnRetryAfter checks a 429 RATE_LIMITED with
// details.retry_after_seconds sets Retry-After, whether the authenticator
// or a handler returns it, and that nothing else does.
func TestAuthnRetryAfter(t *testing.T) {
	_, base := authnRouter(t, "")

	r := authnDo(t, "GET", base+"/things/t1", nil, "Authorization: Bearer slow")
	e := authnError(t, r, 429, apierr.CodeRateLimited)
	if got := r.header.Get("Retry-After"); got != "7" {
		t.Errorf("Retry-After %q from the authenticator, want 7", got)
	}
	if secs, _ := e.Details["retry_after_seconds"].(float64); secs != 7 {
		t.Errorf("details %v, want retry_after_seconds 7", e.Details)
	}

	r = authnDo(t, "GET", base+"/limited", nil, "Authorization: Bearer good")
	authnError(t, r, 429, apierr.CodeRateLimited)
	if got := r.header.Get("Retry-After"); got != "42" {
		t.Errorf("Retry-After %q from a handler, want 42", got)
	}

	// Straight through WriteError: only a 429 with the detail sets it.
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"rate limited", &apierr.Error{Code: apierr.CodeRateLimited, Message: "x", Details: map[string]any{"retry_after_seconds": 3}}, "3"},
		{"rate limited without the detail", apierr.New(apierr.CodeRateLimited, "x"), ""},
		{"unavailable with the detail", &apierr.Error{Code: apierr.CodeUnavailable, Message: "x", Details: map[string]any{"retry_after_seconds": 3}}, ""},
		{"validation with the detail", &apierr.Error{Code: apierr.CodeValidation, Message: "x", Details: map[string]any{"retry_after_seconds": 3}}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			WriteError(w, httptest.NewRequest("GET", "/", nil), tc.err)
			if got := w.Header().Get("Retry-After"); got != tc.want {
				t.Errorf("Retry-After %q, want %q", got, tc.want)
			}
			if w.Code != apierr.HTTPStatus(apierr.CodeOf(tc.err)) {
				t.Errorf("status %d", w.Code)
			}
		})
	}
}
