package rest_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/rest"
)

// TestRouterAnswers checks that every answer the router gives, including
// the ones ServeMux would write as plain text (404, 405, path-cleaning
// redirects) and panics, is the seed's envelope with the right status.
func TestRouterAnswers(t *testing.T) {
	rt := rest.NewRouter("test", nil)
	rt.Handle("GET /things/{id}", func(r *http.Request) (any, error) {
		return map[string]string{"id": r.PathValue("id")}, nil
	})
	rt.Handle("DELETE /things/{id}", func(*http.Request) (any, error) { return nil, nil })
	rt.Handle("POST /things", func(*http.Request) (any, error) {
		return rest.Created(map[string]string{"id": "new"}), nil
	})
	rt.Handle("PUT /accepted", func(*http.Request) (any, error) {
		return rest.Status{Code: http.StatusAccepted, Data: "queued"}, nil
	})
	rt.Handle("GET /panic", func(*http.Request) (any, error) {
		panic("secret-panic-text: db password is hunter2")
	})
	rt.Handle("GET /panic-error", func(*http.Request) (any, error) {
		panic(errors.New("secret-panic-error"))
	})
	rt.Handle("GET /dir/", func(*http.Request) (any, error) { return "dir", nil })
	rt.HandleHTTP("GET /plain", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "plain "+rest.RequestID(r.Context()))
	}))
	srv := serve(t, rt)

	t.Run("path value", func(t *testing.T) {
		data := dataOf(t, do(t, "GET", srv.URL+"/things/abc", nil), 200)
		if string(data) != `{"id":"abc"}` {
			t.Errorf("data = %s", data)
		}
	})
	t.Run("created is 201", func(t *testing.T) {
		data := dataOf(t, do(t, "POST", srv.URL+"/things", nil), 201)
		if string(data) != `{"id":"new"}` {
			t.Errorf("data = %s (the Status wrapper must not leak into data)", data)
		}
	})
	t.Run("any status", func(t *testing.T) {
		if data := dataOf(t, do(t, "PUT", srv.URL+"/accepted", nil), 202); string(data) != `"queued"` {
			t.Errorf("data = %s", data)
		}
	})
	t.Run("HEAD of a GET route", func(t *testing.T) {
		r := do(t, "HEAD", srv.URL+"/things/abc", nil)
		if r.Status != 200 || len(r.Body) != 0 {
			t.Errorf("HEAD = %d %q", r.Status, r.Body)
		}
	})
	t.Run("unknown route", func(t *testing.T) {
		e := errorOf(t, do(t, "GET", srv.URL+"/nothing/here", nil), 404, "NOT_FOUND")
		if !strings.Contains(e.Message, "/nothing/here") {
			t.Errorf("message %q does not name the path", e.Message)
		}
	})
	t.Run("unknown route with a body", func(t *testing.T) {
		errorOf(t, do(t, "POST", srv.URL+"/nothing", jsonBody(`{"a":1}`), "Content-Type: application/json"), 404, "NOT_FOUND")
	})
	t.Run("wrong method", func(t *testing.T) {
		r := do(t, "PATCH", srv.URL+"/things/abc", nil)
		e := errorOf(t, r, 405, "METHOD_NOT_ALLOWED")
		allow := r.Header.Get("Allow")
		for _, m := range []string{"GET", "HEAD", "DELETE"} {
			if !strings.Contains(allow, m) {
				t.Errorf("Allow %q lacks %s", allow, m)
			}
		}
		if strings.Contains(allow, "PATCH") || strings.Contains(allow, "POST") {
			t.Errorf("Allow %q names a method the route lacks", allow)
		}
		if !strings.Contains(e.Message, "PATCH") {
			t.Errorf("message %q does not name the method", e.Message)
		}
	})
	t.Run("wrong method on a collection", func(t *testing.T) {
		r := do(t, "GET", srv.URL+"/things", nil)
		errorOf(t, r, 405, "METHOD_NOT_ALLOWED")
		if allow := r.Header.Get("Allow"); allow != "POST" {
			t.Errorf("Allow %q, want POST", allow)
		}
	})
	for _, path := range []string{"/panic", "/panic-error"} {
		t.Run("panic "+path, func(t *testing.T) {
			r := do(t, "GET", srv.URL+path, nil)
			e := errorOf(t, r, 500, "INTERNAL")
			if e.Message != "internal error" || strings.Contains(string(r.Body), "secret") {
				t.Errorf("panic text leaked: %s", r.Body)
			}
			// The server survived and still answers.
			dataOf(t, do(t, "GET", srv.URL+"/things/x", nil), 200)
		})
	}
	t.Run("path cleaning", func(t *testing.T) {
		// A client that does not clean paths itself (curl --path-as-is) gets
		// the envelope and the clean path, not ServeMux's HTML redirect.
		req, err := http.NewRequest("GET", srv.URL+"/things/../things/abc", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.URL.Opaque = "/things/../things/abc"
		resp, err := noRedirectClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r := readReply(t, resp)
		errorOf(t, r, 404, "NOT_FOUND")
		if loc := r.Header.Get("Location"); loc != "/things/abc" {
			t.Errorf("Location %q, want /things/abc", loc)
		}
	})
	t.Run("trailing slash", func(t *testing.T) {
		resp, err := noRedirectClient().Get(srv.URL + "/dir")
		if err != nil {
			t.Fatal(err)
		}
		r := readReply(t, resp)
		errorOf(t, r, 404, "NOT_FOUND")
		if loc := r.Header.Get("Location"); loc != "/dir/" {
			t.Errorf("Location %q, want /dir/", loc)
		}
	})
	t.Run("plain handler", func(t *testing.T) {
		r := do(t, "GET", srv.URL+"/plain", nil, "X-Request-ID: plain-1")
		if r.Status != 200 || string(r.Body) != "plain plain-1" || r.Header.Get(rest.HeaderRequestID) != "plain-1" {
			t.Errorf("plain = %d %q %v", r.Status, r.Body, r.Header)
		}
	})
}

func noRedirectClient() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func readReply(t *testing.T, resp *http.Response) reply {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// TestHandleStream checks a stream handler's error becomes the envelope only
// while nothing was written (afterwards the status is sent and an envelope
// would corrupt the stream), and that events are flushed through the
// router's status-recording wrapper as they are written.
func TestHandleStream(t *testing.T) {
	rt := rest.NewRouter("test", nil)
	rt.HandleStream("GET /early", func(http.ResponseWriter, *http.Request) error {
		return apierr.New(apierr.CodeFailedPrecondition, "revision compacted")
	})
	rt.HandleStream("GET /untyped", func(http.ResponseWriter, *http.Request) error {
		return errors.New("watch channel broke: secret detail")
	})
	rt.HandleStream("GET /late", func(w http.ResponseWriter, _ *http.Request) error {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: one\n\n")
		return apierr.New(apierr.CodeInternal, "broke mid-stream")
	})
	release := make(chan struct{})
	rt.HandleStream("GET /flush", func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		_, _ = io.WriteString(w, "data: first\n\n")
		if err := http.NewResponseController(w).Flush(); err != nil {
			return err
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		_, _ = io.WriteString(w, "data: second\n\n")
		return nil
	})
	srv := serve(t, rt)

	t.Run("error before writing", func(t *testing.T) {
		errorOf(t, do(t, "GET", srv.URL+"/early", nil), 409, "FAILED_PRECONDITION")
	})
	t.Run("untyped error before writing", func(t *testing.T) {
		r := do(t, "GET", srv.URL+"/untyped", nil)
		errorOf(t, r, 500, "INTERNAL")
		if strings.Contains(string(r.Body), "secret") {
			t.Errorf("cause leaked: %s", r.Body)
		}
	})
	t.Run("error after writing", func(t *testing.T) {
		r := do(t, "GET", srv.URL+"/late", nil)
		if r.Status != 200 || string(r.Body) != "data: one\n\n" {
			t.Errorf("late error = %d %q, want the stream untouched", r.Status, r.Body)
		}
	})
	t.Run("flush reaches the client", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/flush", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		line, err := br.ReadString('\n')
		if err != nil || line != "data: first\n" {
			t.Fatalf("first line %q, %v (the event was not flushed before the handler blocked)", line, err)
		}
		close(release)
		remaining, err := io.ReadAll(br)
		if err != nil || string(remaining) != "\ndata: second\n\n" {
			t.Errorf("remaining %q, %v", remaining, err)
		}
	})
}

// TestHealth checks /health is 200 with every check "ok" when all pass, and
// 503 with status "unavailable" and each failing check's safe message when
// one fails — load balancers read the status, operators the messages.
func TestHealth(t *testing.T) {
	var calls atomic.Int32
	ok := func(ctx context.Context) error {
		calls.Add(1)
		if _, has := ctx.Deadline(); !has {
			return errors.New("check got no deadline")
		}
		return nil
	}
	down := func(context.Context) error {
		return apierr.New(apierr.CodeUnavailable, "chainfire has no leader")
	}
	untyped := func(context.Context) error { return errors.New("dial tcp 10.0.0.7:2379: secret topology") }

	tests := []struct {
		name   string
		prefix string
		checks map[string]rest.Check
		status int
		want   map[string]string
	}{
		{"no checks", "", nil, 200, map[string]string{}},
		{"all ok", "", map[string]rest.Check{"store": ok, "raft": ok}, 200, map[string]string{"store": "ok", "raft": "ok"}},
		{"one down", "/api/v1", map[string]rest.Check{"store": ok, "raft": down}, 503,
			map[string]string{"store": "ok", "raft": "chainfire has no leader"}},
		{"untyped cause hidden", "", map[string]rest.Check{"net": untyped}, 503, map[string]string{"net": "internal error"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rt := rest.NewRouter("svc", nil)
			rt.MountHealth(tc.prefix, "svc", "1.2.3", tc.checks)
			srv := serve(t, rt)
			data := dataOf(t, do(t, "GET", srv.URL+tc.prefix+"/health", nil), tc.status)
			keysOf(t, "health", data, "status", "service", "version", "checks")
			var h rest.Health
			if err := json.Unmarshal(data, &h); err != nil {
				t.Fatal(err)
			}
			wantStatus := "ok"
			if tc.status != 200 {
				wantStatus = "unavailable"
			}
			if h.Status != wantStatus || h.Service != "svc" || h.Version != "1.2.3" {
				t.Errorf("health = %+v", h)
			}
			if fmt.Sprint(h.Checks) != fmt.Sprint(tc.want) {
				t.Errorf("checks = %v, want %v", h.Checks, tc.want)
			}
			if strings.Contains(string(data), "secret") {
				t.Errorf("check cause leaked: %s", data)
			}
			errorOf(t, do(t, "POST", srv.URL+tc.prefix+"/health", nil), 405, "METHOD_NOT_ALLOWED")
		})
	}
	if calls.Load() == 0 {
		t.Error("the ok check never ran")
	}
}

// series is one sample line of the Prometheus text exposition.
type series struct {
	name   string
	labels map[string]string
	value  float64
}

// parseExposition reads the text format line by line (comments skipped),
// unescaping label values, so the test sees exactly what a scraper would.
func parseExposition(t *testing.T, body string) []series {
	t.Helper()
	var out []series
	for _, line := range strings.Split(body, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s := series{labels: map[string]string{}}
		tail := line
		if i := strings.IndexAny(tail, "{ "); i >= 0 && tail[i] == '{' {
			s.name = tail[:i]
			tail = tail[i+1:]
			for {
				if strings.HasPrefix(tail, "}") {
					tail = tail[1:]
					break
				}
				eq := strings.Index(tail, `="`)
				if eq < 0 {
					t.Fatalf("bad labels in %q", line)
				}
				key := strings.TrimPrefix(tail[:eq], ",")
				tail = tail[eq+2:]
				var val strings.Builder
				for {
					if tail == "" {
						t.Fatalf("unterminated label value in %q", line)
					}
					c := tail[0]
					tail = tail[1:]
					if c == '"' {
						break
					}
					if c == '\\' && tail != "" {
						switch tail[0] {
						case 'n':
							val.WriteByte('\n')
						default:
							val.WriteByte(tail[0])
						}
						tail = tail[1:]
						continue
					}
					val.WriteByte(c)
				}
				s.labels[key] = val.String()
				tail = strings.TrimPrefix(tail, ",")
			}
		} else {
			name, after, _ := strings.Cut(tail, " ")
			s.name, tail = name, " "+after
		}
		v, err := strconv.ParseFloat(strings.Fields(tail)[0], 64)
		if err != nil {
			t.Fatalf("bad value in %q: %v", line, err)
		}
		s.value = v
		out = append(out, s)
	}
	return out
}

// TestMetrics checks /metrics counts requests by route pattern (not raw
// path, which would explode cardinality), method and status — including
// unmatched routes, 405s and panics — and exposes extra gatherers.
func TestMetrics(t *testing.T) {
	rt := rest.NewRouter("metricsvc", nil)
	rt.Handle("GET /things/{id}", func(r *http.Request) (any, error) {
		if r.PathValue("id") == "missing" {
			return nil, apierr.NotFound("thing", "missing")
		}
		return "ok", nil
	})
	rt.Handle("GET /boom", func(*http.Request) (any, error) { panic("boom") })
	extra := prometheus.NewRegistry()
	ctr := prometheus.NewCounter(prometheus.CounterOpts{Name: "etcd_like_total", Help: "an extra gatherer's metric"})
	extra.MustRegister(ctr)
	ctr.Add(7)
	rt.MountHealth("", "metricsvc", "v", nil, extra)
	srv := serve(t, rt)

	do(t, "GET", srv.URL+"/things/a", nil)
	do(t, "GET", srv.URL+"/things/b", nil)
	do(t, "GET", srv.URL+"/things/missing", nil)
	do(t, "GET", srv.URL+"/nowhere", nil)
	do(t, "DELETE", srv.URL+"/things/a", nil)
	do(t, "GET", srv.URL+"/boom", nil)
	do(t, "GET", srv.URL+"/health", nil)
	// Path-cleaning redirects answer 404 and must not be counted under the
	// route they point at (nor under their raw path).
	do(t, "GET", srv.URL+"/things//x1", nil)
	do(t, "GET", srv.URL+"/things//x2", nil)

	r := do(t, "GET", srv.URL+"/metrics", nil)
	if r.Status != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics = %d %s", r.Status, r.Header.Get("Content-Type"))
	}
	all := parseExposition(t, string(r.Body))
	counts := map[string]float64{}
	histCounts := map[string]float64{}
	for _, s := range all {
		switch s.name {
		case "photon_http_requests_total":
			if s.labels["service"] != "metricsvc" || len(s.labels) != 4 {
				t.Errorf("labels %v, want service, route, method, code", s.labels)
			}
			counts[s.labels["route"]+"|"+s.labels["method"]+"|"+s.labels["code"]] = s.value
		case "photon_http_request_duration_seconds_count":
			histCounts[s.labels["route"]+"|"+s.labels["method"]] = s.value
		case "etcd_like_total":
			if s.value != 7 {
				t.Errorf("extra gatherer value %v", s.value)
			}
			histCounts["extra"] = s.value
		}
	}
	want := map[string]float64{
		"GET /things/{id}|GET|200": 2,
		"GET /things/{id}|GET|404": 1,
		"unmatched|GET|404":        3,
		"unmatched|DELETE|405":     1,
		"GET /boom|GET|500":        1,
		"GET /health|GET|200":      1,
	}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("photon_http_requests_total = %v, want %v", counts, want)
	}
	if histCounts["GET /things/{id}|GET"] != 3 || histCounts["unmatched|GET"] != 3 {
		t.Errorf("latency counts = %v", histCounts)
	}
	if histCounts["extra"] != 7 {
		t.Error("extra gatherer missing from /metrics")
	}
	if rt.Registry() == nil {
		t.Error("Registry() is nil")
	}
}

// TestNilHandlerPanicsAtRegistration checks a nil handler fails when the
// route is registered (at startup), not on the first request in production.
func TestNilHandlerPanicsAtRegistration(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("HandleHTTP with a nil handler did not panic")
		}
	}()
	rest.NewRouter("test", nil).HandleHTTP("GET /x", nil)
}
