package rest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/rest"
)

// TestEnvelopeShapes pins the seed's two envelopes byte-for-byte in their
// keys: clients parse {"data","meta"} and {"error":{"code","message",
// "details"},"meta"} and nothing else, so every key must be there (details
// and data even when null) and no other key may appear.
func TestEnvelopeShapes(t *testing.T) {
	rt := rest.NewRouter("test", nil)
	rt.Handle("GET /obj", func(*http.Request) (any, error) {
		return map[string]any{"name": "vpc-1", "size": 3}, nil
	})
	rt.Handle("GET /nil", func(*http.Request) (any, error) { return nil, nil })
	rt.Handle("GET /list", func(*http.Request) (any, error) { return []string{"a", "b"}, nil })
	rt.Handle("GET /validation", func(*http.Request) (any, error) {
		return nil, apierr.Validation("cidr_block", apierr.Required, "cidr_block is required")
	})
	rt.Handle("GET /plain-typed", func(*http.Request) (any, error) {
		return nil, apierr.New(apierr.CodeConflict, "busy")
	})
	srv := serve(t, rt)

	t.Run("data object", func(t *testing.T) {
		data := dataOf(t, do(t, "GET", srv.URL+"/obj", nil), 200)
		var got map[string]any
		if err := json.Unmarshal(data, &got); err != nil {
			t.Fatal(err)
		}
		if got["name"] != "vpc-1" || got["size"] != float64(3) || len(got) != 2 {
			t.Errorf("data = %v", got)
		}
	})
	t.Run("data null", func(t *testing.T) {
		if data := dataOf(t, do(t, "GET", srv.URL+"/nil", nil), 200); string(data) != "null" {
			t.Errorf("data = %s, want null", data)
		}
	})
	t.Run("data array", func(t *testing.T) {
		if data := dataOf(t, do(t, "GET", srv.URL+"/list", nil), 200); string(data) != `["a","b"]` {
			t.Errorf("data = %s", data)
		}
	})
	t.Run("error with details", func(t *testing.T) {
		e := errorOf(t, do(t, "GET", srv.URL+"/validation", nil), 400, "VALIDATION_ERROR")
		if e.Message != "cidr_block is required" || e.Details["field"] != "cidr_block" || e.Details["constraint"] != "required" {
			t.Errorf("error = %+v", e)
		}
	})
	t.Run("error without details is null", func(t *testing.T) {
		r := do(t, "GET", srv.URL+"/plain-typed", nil)
		errorOf(t, r, 409, "CONFLICT")
		var env struct {
			Error map[string]json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal(r.Body, &env); err != nil {
			t.Fatal(err)
		}
		if string(env.Error["details"]) != "null" {
			t.Errorf("details = %s, want null", env.Error["details"])
		}
	})
}

// TestStatusFromTable checks handlers' typed errors get the status of
// apierr's one table, and untyped errors become a 500 whose cause stays in
// the logs: the body must never carry internal error text.
func TestStatusFromTable(t *testing.T) {
	codes := []apierr.Code{
		apierr.CodeValidation, apierr.CodeInvalidJSON, apierr.CodeUnauthenticated, apierr.CodeForbidden,
		apierr.CodeNotFound, apierr.CodeMethodNotAllowed, apierr.CodeConflict, apierr.CodeAlreadyExists,
		apierr.CodeFailedPrecondition, apierr.CodePayloadTooLarge, apierr.CodeUnsupportedMediaType,
		apierr.CodeInternal, apierr.CodeUnavailable,
	}
	rt := rest.NewRouter("test", nil)
	rt.Handle("GET /err/{code}", func(r *http.Request) (any, error) {
		return nil, apierr.New(apierr.Code(r.PathValue("code")), "failed with %s", r.PathValue("code"))
	})
	rt.Handle("GET /untyped", func(*http.Request) (any, error) {
		return nil, errors.New("password=hunter2 leaked from the db driver")
	})
	rt.Handle("GET /wrapped", func(*http.Request) (any, error) {
		return nil, errors.Join(errors.New("ctx"), apierr.NotFound("vpc", "v1"))
	})
	srv := serve(t, rt)
	for _, c := range codes {
		t.Run(string(c), func(t *testing.T) {
			e := errorOf(t, do(t, "GET", srv.URL+"/err/"+string(c), nil), apierr.HTTPStatus(c), string(c))
			if e.Message != "failed with "+string(c) {
				t.Errorf("message %q", e.Message)
			}
		})
	}
	t.Run("untyped", func(t *testing.T) {
		r := do(t, "GET", srv.URL+"/untyped", nil)
		e := errorOf(t, r, 500, "INTERNAL")
		if e.Message != "internal error" || strings.Contains(string(r.Body), "hunter2") {
			t.Errorf("untyped error leaked: %s", r.Body)
		}
	})
	t.Run("wrapped typed", func(t *testing.T) {
		e := errorOf(t, do(t, "GET", srv.URL+"/wrapped", nil), 404, "NOT_FOUND")
		if e.Details["kind"] != "vpc" || e.Details["id"] != "v1" {
			t.Errorf("details = %v", e.Details)
		}
	})
}

// TestRequestID checks the caller's X-Request-ID is honoured only when it is
// short printable ASCII (anything else could forge log lines or bloat them),
// that a fresh uuid v4 replaces it otherwise, and that the ID is the same in
// the header, the envelope's meta and the handler's context.
func TestRequestID(t *testing.T) {
	rt := rest.NewRouter("test", nil)
	rt.Handle("GET /id", func(r *http.Request) (any, error) { return rest.RequestID(r.Context()), nil })
	rt.Handle("GET /fail", func(*http.Request) (any, error) { return nil, apierr.New(apierr.CodeForbidden, "no") })
	srv := serve(t, rt)

	printable := func() string {
		var b strings.Builder
		for c := byte(0x21); c <= 0x7e; c++ {
			b.WriteByte(c)
		}
		return b.String()
	}()
	tests := []struct {
		name   string
		header string // "" sends none
		keep   bool
	}{
		{"absent", "", false},
		{"simple", "req-123", true},
		{"every printable ASCII byte", printable, true},
		{"exactly 128 chars", strings.Repeat("a", 128), true},
		{"129 chars", strings.Repeat("a", 129), false},
		{"inner space", "req 123", false},
		{"inner tab", "req\t123", false},
		{"non-ASCII", "réq-1", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/id", "/fail", "/no-such-route"} {
				var hdrs []string
				if tc.header != "" {
					hdrs = append(hdrs, rest.HeaderRequestID+": "+tc.header)
				}
				r := do(t, "GET", srv.URL+path, nil, hdrs...)
				var env struct {
					Data json.RawMessage `json:"data"`
					Meta rest.Meta       `json:"meta"`
				}
				if err := json.Unmarshal(r.Body, &env); err != nil {
					t.Fatalf("%s: %v", path, err)
				}
				got := r.Header.Get(rest.HeaderRequestID)
				if got != env.Meta.RequestID {
					t.Errorf("%s: header %q != meta %q", path, got, env.Meta.RequestID)
				}
				if tc.keep {
					if got != tc.header {
						t.Errorf("%s: request ID %q, want the caller's %q", path, got, tc.header)
					}
				} else {
					u, err := uuid.Parse(got)
					if err != nil || u.Version() != 4 || u.Variant() != uuid.RFC4122 || u.String() != got {
						t.Errorf("%s: request ID %q is not a canonical uuid v4 (err %v)", path, got, err)
					}
				}
				if path == "/id" {
					var fromCtx string
					if err := json.Unmarshal(env.Data, &fromCtx); err != nil || fromCtx != got {
						t.Errorf("handler saw request ID %q, header %q", fromCtx, got)
					}
				}
			}
		})
	}
	t.Run("fresh IDs differ", func(t *testing.T) {
		a := do(t, "GET", srv.URL+"/id", nil).Header.Get(rest.HeaderRequestID)
		b := do(t, "GET", srv.URL+"/id", nil).Header.Get(rest.HeaderRequestID)
		if a == b {
			t.Errorf("two requests got the same fresh ID %q", a)
		}
	})
	t.Run("outside a request", func(t *testing.T) {
		if id := rest.RequestID(context.Background()); id != "" {
			t.Errorf("RequestID(background) = %q, want empty", id)
		}
	})
}

// lockedBuffer is a log sink safe for the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestInternalCausesAreLogged checks the other half of "never sent": the
// cause of a 500 (an untyped error or a panic) is in the log with the
// request ID the client was given, so an operator can find it from a bug
// report. It swaps the default slog logger, so it must not run in parallel.
func TestInternalCausesAreLogged(t *testing.T) {
	var logs lockedBuffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(&logs, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })

	rt := rest.NewRouter("test", nil)
	rt.Handle("GET /untyped", func(*http.Request) (any, error) { return nil, errors.New("cause-untyped-42") })
	rt.Handle("GET /panic", func(*http.Request) (any, error) { panic("cause-panic-43") })
	rt.Handle("GET /client", func(*http.Request) (any, error) { return nil, apierr.NotFound("vpc", "cause-client-44") })
	srv := serve(t, rt)

	for _, tc := range []struct{ path, cause string }{{"/untyped", "cause-untyped-42"}, {"/panic", "cause-panic-43"}} {
		r := do(t, "GET", srv.URL+tc.path, nil, rest.HeaderRequestID+": rid"+tc.path)
		errorOf(t, r, 500, "INTERNAL")
		if strings.Contains(string(r.Body), tc.cause) {
			t.Errorf("%s: cause sent to the client", tc.path)
		}
		found := false
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, tc.cause) && strings.Contains(line, `"request_id":"rid`+tc.path+`"`) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no log line with the cause and request ID:\n%s", tc.path, logs.String())
		}
	}
	// Client errors are the client's business, not the operator's.
	errorOf(t, do(t, "GET", srv.URL+"/client", nil), 404, "NOT_FOUND")
	if strings.Contains(logs.String(), "cause-client-44") {
		t.Errorf("a 404 was logged as a failure:\n%s", logs.String())
	}
}
