package rest_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/rest"
)

// payload is a request body with the field types services decode: strings,
// integers, floats, booleans, arrays, nested objects and maps.
type payload struct {
	Name    string         `json:"name"`
	Count   int            `json:"count"`
	Ratio   float64        `json:"ratio"`
	Enabled bool           `json:"enabled"`
	Tags    []string       `json:"tags"`
	Labels  map[string]int `json:"labels"`
	Spec    struct {
		Size  uint8 `json:"size"`
		Inner struct {
			Deep bool `json:"deep"`
		} `json:"inner"`
	} `json:"spec"`
}

// testMaxBody is small so the limit can be crossed without megabyte bodies.
const testMaxBody = 256

// decodeServer is a router whose POST /things decodes strictly and echoes
// what it decoded, so a test sees both the error path and what succeeded.
func decodeServer(t *testing.T) string {
	t.Helper()
	rt := rest.NewRouter("test", nil)
	rt.SetMaxBody(testMaxBody)
	rt.Handle("POST /things", func(r *http.Request) (any, error) {
		var p payload
		p.Name = "default" // an empty body must leave this alone
		if err := rest.Decode(r, &p); err != nil {
			return nil, err
		}
		return p, nil
	})
	return serve(t, rt).URL
}

// TestDecode drives rest.Decode through real HTTP with every kind of bad
// body a client sends, checking the status, code and the field the error
// names, since the field is what a client shows its user.
func TestDecode(t *testing.T) {
	url := decodeServer(t) + "/things"
	const jsonCT = "application/json"
	tests := []struct {
		name       string
		ct         string // Content-Type; "" sends none
		body       string
		status     int
		code       string // "" means success
		field      string
		constraint string
		msg        string // substring of the message, if set
		check      func(t *testing.T, p payload)
	}{
		{name: "valid", ct: jsonCT, body: `{"name":"a","count":2,"ratio":0.5,"enabled":true,"tags":["x"],"labels":{"k":1},"spec":{"size":7,"inner":{"deep":true}}}`,
			status: 200, check: func(t *testing.T, p payload) {
				if p.Name != "a" || p.Count != 2 || p.Ratio != 0.5 || !p.Enabled || len(p.Tags) != 1 || p.Labels["k"] != 1 || p.Spec.Size != 7 || !p.Spec.Inner.Deep {
					t.Errorf("decoded %+v", p)
				}
			}},
		{name: "charset parameter", ct: "application/json; charset=utf-8", body: `{"count":1}`, status: 200},
		{name: "+json media type", ct: "application/merge-patch+json", body: `{"count":1}`, status: 200},
		{name: "upper-case media type", ct: "Application/JSON", body: `{"count":1}`, status: 200},
		{name: "no content type with JSON body", body: `{"count":1}`, status: 200},
		{name: "empty body no content type", body: "", status: 200, check: func(t *testing.T, p payload) {
			if p.Name != "default" {
				t.Errorf("empty body changed the value: %+v", p)
			}
		}},
		{name: "whitespace body", body: " \n\t ", status: 200},
		{name: "empty body with JSON content type", ct: jsonCT, body: "", status: 200},
		{name: "null", ct: jsonCT, body: "null", status: 200},
		{name: "trailing whitespace", ct: jsonCT, body: "{\"count\":1}\n\n  ", status: 200},

		{name: "unknown field", ct: jsonCT, body: `{"name":"a","colour":"red"}`, status: 400, code: "VALIDATION_ERROR",
			field: "colour", constraint: "unknown_field"},
		// encoding/json names only the leaf of an unknown nested field.
		{name: "unknown nested field", ct: jsonCT, body: `{"spec":{"colour":1}}`, status: 400, code: "VALIDATION_ERROR",
			field: "colour", constraint: "unknown_field"},
		{name: "unknown field with a quote", ct: jsonCT, body: `{"a\"b":1}`, status: 400, code: "VALIDATION_ERROR",
			field: `a"b`, constraint: "unknown_field"},
		{name: "string for int", ct: jsonCT, body: `{"count":"3"}`, status: 400, code: "VALIDATION_ERROR",
			field: "count", constraint: "type", msg: "count must be of type integer"},
		{name: "number for string", ct: jsonCT, body: `{"name":3}`, status: 400, code: "VALIDATION_ERROR",
			field: "name", constraint: "type", msg: "name must be of type string"},
		{name: "string for bool", ct: jsonCT, body: `{"enabled":"yes"}`, status: 400, code: "VALIDATION_ERROR",
			field: "enabled", constraint: "type", msg: "enabled must be of type boolean"},
		{name: "string for float", ct: jsonCT, body: `{"ratio":"x"}`, status: 400, code: "VALIDATION_ERROR",
			field: "ratio", constraint: "type", msg: "ratio must be of type number"},
		{name: "fraction for int", ct: jsonCT, body: `{"count":1.5}`, status: 400, code: "VALIDATION_ERROR",
			field: "count", constraint: "type", msg: "count must be of type integer"},
		{name: "overflow", ct: jsonCT, body: `{"spec":{"size":300}}`, status: 400, code: "VALIDATION_ERROR",
			field: "spec.size", constraint: "type"},
		{name: "object for array", ct: jsonCT, body: `{"tags":{}}`, status: 400, code: "VALIDATION_ERROR",
			field: "tags", constraint: "type", msg: "tags must be of type array"},
		{name: "array element", ct: jsonCT, body: `{"tags":["a",2]}`, status: 400, code: "VALIDATION_ERROR",
			field: "tags", constraint: "type", msg: "must be of type string"},
		{name: "map value", ct: jsonCT, body: `{"labels":{"k":"v"}}`, status: 400, code: "VALIDATION_ERROR",
			field: "labels", constraint: "type"},
		{name: "number for object", ct: jsonCT, body: `{"spec":5}`, status: 400, code: "VALIDATION_ERROR",
			field: "spec", constraint: "type", msg: "spec must be of type object"},
		{name: "nested wrong type", ct: jsonCT, body: `{"spec":{"size":"big"}}`, status: 400, code: "VALIDATION_ERROR",
			field: "spec.size", constraint: "type"},
		{name: "deeply nested wrong type", ct: jsonCT, body: `{"spec":{"inner":{"deep":1}}}`, status: 400, code: "VALIDATION_ERROR",
			field: "spec.inner.deep", constraint: "type", msg: "spec.inner.deep must be of type boolean"},

		{name: "syntax error", ct: jsonCT, body: `{"name":}`, status: 400, code: "INVALID_JSON"},
		{name: "single quotes", ct: jsonCT, body: `{'name':'a'}`, status: 400, code: "INVALID_JSON"},
		{name: "truncated", ct: jsonCT, body: `{"name":"a"`, status: 400, code: "INVALID_JSON"},
		{name: "truncated string", ct: jsonCT, body: `{"name":"a`, status: 400, code: "INVALID_JSON"},
		{name: "trailing object", ct: jsonCT, body: `{"count":1}{"count":2}`, status: 400, code: "INVALID_JSON"},
		{name: "trailing brace", ct: jsonCT, body: `{"count":1}}`, status: 400, code: "INVALID_JSON"},
		{name: "trailing garbage", ct: jsonCT, body: `{"count":1} x`, status: 400, code: "INVALID_JSON"},
		{name: "array for object", ct: jsonCT, body: `[{"count":1}]`, status: 400, code: "INVALID_JSON", msg: "must be a JSON object"},
		{name: "string for object", ct: jsonCT, body: `"hello"`, status: 400, code: "INVALID_JSON", msg: "must be a JSON object"},
		{name: "number for object", ct: jsonCT, body: `42`, status: 400, code: "INVALID_JSON", msg: "must be a JSON object"},

		{name: "over the limit", ct: jsonCT, body: `{"name":"` + strings.Repeat("x", testMaxBody) + `"}`, status: 413,
			code: "PAYLOAD_TOO_LARGE", msg: "256 bytes"},
		{name: "over the limit without content type", body: strings.Repeat(" ", testMaxBody+1), status: 413, code: "PAYLOAD_TOO_LARGE"},
		{name: "exactly the limit", ct: jsonCT, body: `{"name":"` + strings.Repeat("x", testMaxBody-11) + `"}`, status: 200},

		{name: "text/plain", ct: "text/plain", body: `{"count":1}`, status: 415, code: "UNSUPPORTED_MEDIA_TYPE"},
		{name: "form", ct: "application/x-www-form-urlencoded", body: `count=1`, status: 415, code: "UNSUPPORTED_MEDIA_TYPE"},
		{name: "malformed content type", ct: "application/json;;=", body: `{"count":1}`, status: 415, code: "UNSUPPORTED_MEDIA_TYPE"},
		{name: "json prefix is not json", ct: "application/jsonx", body: `{"count":1}`, status: 415, code: "UNSUPPORTED_MEDIA_TYPE"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var hdrs []string
			if tc.ct != "" {
				hdrs = append(hdrs, "Content-Type: "+tc.ct)
			}
			r := do(t, "POST", url, jsonBody(tc.body), hdrs...)
			if tc.code == "" {
				data := dataOf(t, r, tc.status)
				var p payload
				if err := json.Unmarshal(data, &p); err != nil {
					t.Fatal(err)
				}
				if tc.check != nil {
					tc.check(t, p)
				}
				return
			}
			e := errorOf(t, r, tc.status, tc.code)
			if tc.field != "" {
				if e.Details["field"] != tc.field || e.Details["constraint"] != tc.constraint {
					t.Errorf("details = %v, want field %q constraint %q", e.Details, tc.field, tc.constraint)
				}
			} else if tc.code == "VALIDATION_ERROR" {
				t.Fatal("table case lacks a field")
			}
			if tc.msg != "" && !strings.Contains(e.Message, tc.msg) {
				t.Errorf("message %q lacks %q", e.Message, tc.msg)
			}
			if tc.code == "UNSUPPORTED_MEDIA_TYPE" && e.Details["content_type"] != tc.ct {
				t.Errorf("details = %v, want content_type %q", e.Details, tc.ct)
			}
		})
	}
}

// TestDecodeDirect covers Decode outside a router: a read error that is not
// the body limit is a client problem (INVALID_JSON), and the decoded target
// decides what "the right shape" is, so an array target takes an array.
func TestDecodeDirect(t *testing.T) {
	t.Run("read error", func(t *testing.T) {
		r := httptest.NewRequest("POST", "/", iotest.ErrReader(errors.New("connection reset")))
		var p payload
		err := rest.Decode(r, &p)
		if apierr.CodeOf(err) != apierr.CodeInvalidJSON {
			t.Fatalf("err = %v, want INVALID_JSON", err)
		}
	})
	t.Run("array target", func(t *testing.T) {
		r := httptest.NewRequest("POST", "/", strings.NewReader(`[{"count":1},{"count":2}]`))
		var ps []payload
		if err := rest.Decode(r, &ps); err != nil || len(ps) != 2 || ps[1].Count != 2 {
			t.Fatalf("Decode = %v, %+v", err, ps)
		}
	})
	t.Run("array target with unknown field", func(t *testing.T) {
		r := httptest.NewRequest("POST", "/", strings.NewReader(`[{"count":1},{"nope":2}]`))
		var ps []payload
		err := rest.Decode(r, &ps)
		e := apierr.As(err)
		if e.Code != apierr.CodeValidation || e.Details["field"] != "nope" {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("limit from MaxBytesReader", func(t *testing.T) {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest("POST", "/", strings.NewReader(`{"name":"abcdefgh"}`))
		r.Body = http.MaxBytesReader(rec, r.Body, 8)
		var p payload
		e := apierr.As(rest.Decode(r, &p))
		if e.Code != apierr.CodePayloadTooLarge || !strings.Contains(e.Message, "8 bytes") {
			t.Fatalf("err = %v", e)
		}
	})
}

// TestRouteMaxBody: one route's own limit applies to it alone.
func TestRouteMaxBody(t *testing.T) {
	rt := rest.NewRouter("test", nil)
	rt.SetMaxBody(testMaxBody)
	rt.SetRouteMaxBody("POST /big", 4*testMaxBody)
	read := func(r *http.Request) (any, error) {
		var p payload
		if err := rest.Decode(r, &p); err != nil {
			return nil, err
		}
		return p, nil
	}
	rt.Handle("POST /big", read)
	rt.Handle("POST /small", read)
	url := serve(t, rt).URL
	body := `{"name":"` + strings.Repeat("x", 2*testMaxBody) + `"}`
	for path, want := range map[string]int{"/big": 200, "/small": 413} {
		resp, err := http.Post(url+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s with a %d-byte body: %d, want %d", path, len(body), resp.StatusCode, want)
		}
	}
}
