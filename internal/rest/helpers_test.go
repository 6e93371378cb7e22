package rest_test

import (
	"bytes"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/photoncloud/photon/internal/rest"
)

// reply is one HTTP answer as the tests inspect it: the raw bytes are kept so
// that envelope shapes can be checked key by key, not just through a struct
// that would silently ignore extra or missing keys.
type reply struct {
	Status int
	Header http.Header
	Body   []byte
}

// serve runs rt behind a real HTTP server (httptest) for the test's life,
// so every test goes through net/http's real request parsing and writing.
func serve(t *testing.T, rt http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(rt)
	t.Cleanup(srv.Close)
	return srv
}

// do sends one request and reads the whole answer. Headers are given as
// "Name: value" pairs so tables can list them inline.
func do(t *testing.T, method, url string, body io.Reader, headers ...string) reply {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	for _, h := range headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok {
			t.Fatalf("bad header %q", h)
		}
		req.Header.Set(name, strings.TrimSpace(value))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return reply{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// keysOf decodes a JSON object and returns it as raw members, failing the
// test unless its keys are exactly want: the seed's envelopes are a contract,
// so an extra or missing key is a bug, not a detail.
func keysOf(t *testing.T, what string, raw []byte, want ...string) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s is not a JSON object: %v\n%s", what, err, raw)
	}
	if len(m) != len(want) {
		t.Errorf("%s has keys %v, want exactly %v", what, sortedKeys(m), want)
	}
	for _, k := range want {
		if _, ok := m[k]; !ok {
			t.Errorf("%s lacks key %q: %s", what, k, raw)
		}
	}
	return m
}

func sortedKeys(m map[string]json.RawMessage) []string {
	return slices.Sorted(maps.Keys(m))
}

// checkMeta checks the meta object: exactly request_id and timestamp, the
// ID equal to the X-Request-ID header, and the timestamp RFC 3339 in UTC and
// close to now (a stale or local-time stamp would mislead log correlation).
func checkMeta(t *testing.T, raw json.RawMessage, header http.Header) rest.Meta {
	t.Helper()
	keysOf(t, "meta", raw, "request_id", "timestamp")
	var m rest.Meta
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("meta: %v", err)
	}
	if m.RequestID == "" {
		t.Error("meta.request_id is empty")
	}
	if got := header.Get(rest.HeaderRequestID); got != m.RequestID {
		t.Errorf("X-Request-ID header %q != meta.request_id %q", got, m.RequestID)
	}
	ts, err := time.Parse(time.RFC3339, m.Timestamp)
	if err != nil {
		t.Errorf("meta.timestamp %q is not RFC 3339: %v", m.Timestamp, err)
	} else {
		if !strings.HasSuffix(m.Timestamp, "Z") {
			t.Errorf("meta.timestamp %q is not UTC", m.Timestamp)
		}
		if d := time.Since(ts); d < -2*time.Second || d > time.Minute {
			t.Errorf("meta.timestamp %q is %v away from now", m.Timestamp, d)
		}
	}
	return m
}

// dataOf checks r is the success envelope with status and returns its data.
func dataOf(t *testing.T, r reply, status int) json.RawMessage {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d; body %s", r.Status, status, r.Body)
	}
	checkJSONHeaders(t, r)
	env := keysOf(t, "envelope", r.Body, "data", "meta")
	checkMeta(t, env["meta"], r.Header)
	return env["data"]
}

// apiError is the error object of the error envelope.
type apiError struct {
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details"`
}

// errorOf checks r is the error envelope with status and code and returns
// its error object.
func errorOf(t *testing.T, r reply, status int, code string) apiError {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d; body %s", r.Status, status, r.Body)
	}
	checkJSONHeaders(t, r)
	env := keysOf(t, "error envelope", r.Body, "error", "meta")
	checkMeta(t, env["meta"], r.Header)
	keysOf(t, "error", env["error"], "code", "message", "details")
	var e apiError
	if err := json.Unmarshal(env["error"], &e); err != nil {
		t.Fatalf("error object: %v", err)
	}
	if e.Code != code {
		t.Errorf("error.code %q, want %q (message %q)", e.Code, code, e.Message)
	}
	if e.Message == "" {
		t.Error("error.message is empty")
	}
	return e
}

func checkJSONHeaders(t *testing.T, r reply) {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	if v := r.Header.Get("X-Content-Type-Options"); v != "nosniff" {
		t.Errorf("X-Content-Type-Options %q, want nosniff", v)
	}
}

// jsonBody is a request body from a string.
func jsonBody(s string) io.Reader { return bytes.NewBufferString(s) }
