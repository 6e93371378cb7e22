package rest_test

import (
	"net/http"
	"net/url"
	"strconv"
	"testing"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/rest"
)

// requestWithQuery is a request carrying raw exactly as sent, so malformed
// escapes reach Query as they would from the wire.
func requestWithQuery(raw string) *http.Request {
	return &http.Request{Method: "GET", URL: &url.URL{Path: "/x", RawQuery: raw}, Header: http.Header{}}
}

// TestQuery checks Query rejects what url.Query would silently drop or
// accept: malformed escapes, semicolons, and parameters the route does not
// know (a typo like ?prefx= must not list everything).
func TestQuery(t *testing.T) {
	known := []string{"limit", "prefix", "page_token"}
	tests := []struct {
		name       string
		raw        string
		field      string // "" means success
		constraint string
		want       url.Values
	}{
		{name: "empty", raw: "", want: url.Values{}},
		{name: "known", raw: "limit=5&prefix=a%2Fb", want: url.Values{"limit": {"5"}, "prefix": {"a/b"}}},
		{name: "repeated", raw: "prefix=a&prefix=b", want: url.Values{"prefix": {"a", "b"}}},
		{name: "plus is space", raw: "prefix=a+b", want: url.Values{"prefix": {"a b"}}},
		{name: "no value", raw: "prefix", want: url.Values{"prefix": {""}}},
		{name: "unknown", raw: "prefx=a", field: "prefx", constraint: "unknown_field"},
		{name: "unknown among known", raw: "limit=1&zeta=1&alpha=2", field: "alpha", constraint: "unknown_field"},
		{name: "escaped unknown name", raw: "pre%66ix=1&b%61d=2", field: "bad", constraint: "unknown_field"},
		{name: "empty name", raw: "=x", field: "", constraint: "unknown_field"},
		{name: "bad escape", raw: "prefix=%zz", field: "query", constraint: "format"},
		{name: "truncated escape", raw: "prefix=abc%2", field: "query", constraint: "format"},
		{name: "bad escape in name", raw: "pre%fix=1", field: "query", constraint: "format"},
		{name: "semicolon", raw: "limit=1;prefix=2", field: "query", constraint: "format"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, err := rest.Query(requestWithQuery(tc.raw), known...)
			if tc.want != nil {
				if err != nil {
					t.Fatalf("Query(%q) = %v", tc.raw, err)
				}
				if len(q) != len(tc.want) {
					t.Fatalf("Query(%q) = %v, want %v", tc.raw, q, tc.want)
				}
				for k, v := range tc.want {
					if len(q[k]) != len(v) || (len(v) > 0 && q[k][0] != v[0]) || (len(v) > 1 && q[k][1] != v[1]) {
						t.Errorf("Query(%q)[%s] = %q, want %q", tc.raw, k, q[k], v)
					}
				}
				return
			}
			e := apierr.As(err)
			if err == nil || e.Code != apierr.CodeValidation {
				t.Fatalf("Query(%q) = %v, want VALIDATION_ERROR", tc.raw, err)
			}
			if e.Details["field"] != tc.field || e.Details["constraint"] != tc.constraint {
				t.Errorf("details %v, want field %q constraint %q", e.Details, tc.field, tc.constraint)
			}
			if q != nil {
				t.Errorf("values returned with an error: %v", q)
			}
		})
	}
}

// TestLimit pins Limit's bounds: absent means the default, anything that is
// not an integer in [1, max] names "limit" so the client can fix it.
func TestLimit(t *testing.T) {
	const def, max = 20, 100
	tests := []struct {
		raw  string // the value; "-" means absent
		want int    // 0 means a VALIDATION_ERROR
	}{
		{"-", def},
		{"", def},
		{"1", 1},
		{"57", 57},
		{"100", 100},
		{"+3", 3},
		{"0", 0},
		{"101", 0},
		{"-1", 0},
		{"abc", 0},
		{"1.5", 0},
		{" 5", 0},
		{"5 ", 0},
		{"0x10", 0},
		{"99999999999999999999", 0},
	}
	for _, tc := range tests {
		t.Run(strconv.Quote(tc.raw), func(t *testing.T) {
			q := url.Values{}
			if tc.raw != "-" {
				q.Set("limit", tc.raw)
			}
			n, err := rest.Limit(q, def, max)
			if tc.want != 0 {
				if err != nil || n != tc.want {
					t.Errorf("Limit(%q) = %d, %v; want %d", tc.raw, n, err, tc.want)
				}
				return
			}
			e := apierr.As(err)
			if err == nil || e.Code != apierr.CodeValidation || e.Details["field"] != "limit" || e.Details["constraint"] != "range" {
				t.Errorf("Limit(%q) = %d, %v; want VALIDATION_ERROR on limit", tc.raw, n, err)
			}
		})
	}
}

// TestQueryOverHTTP checks the error reaches a client as a 400 envelope
// naming the parameter, through a real server and a real URL.
func TestQueryOverHTTP(t *testing.T) {
	rt := rest.NewRouter("test", nil)
	rt.Handle("GET /list", func(r *http.Request) (any, error) {
		q, err := rest.Query(r, "limit")
		if err != nil {
			return nil, err
		}
		return rest.Limit(q, 10, 50)
	})
	srv := serve(t, rt)
	if data := dataOf(t, do(t, "GET", srv.URL+"/list?limit=7", nil), 200); string(data) != "7" {
		t.Errorf("limit = %s", data)
	}
	if data := dataOf(t, do(t, "GET", srv.URL+"/list", nil), 200); string(data) != "10" {
		t.Errorf("default limit = %s", data)
	}
	e := errorOf(t, do(t, "GET", srv.URL+"/list?limt=7", nil), 400, "VALIDATION_ERROR")
	if e.Details["field"] != "limt" {
		t.Errorf("details %v", e.Details)
	}
	e = errorOf(t, do(t, "GET", srv.URL+"/list?limit=%G1", nil), 400, "VALIDATION_ERROR")
	if e.Details["field"] != "query" {
		t.Errorf("details %v", e.Details)
	}
	e = errorOf(t, do(t, "GET", srv.URL+"/list?limit=51", nil), 400, "VALIDATION_ERROR")
	if e.Details["field"] != "limit" {
		t.Errorf("details %v", e.Details)
	}
}
