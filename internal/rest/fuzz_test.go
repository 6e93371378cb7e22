package rest_test

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/rest"
)

// fuzzMaxBody lets the fuzzer reach the body limit with small inputs.
const fuzzMaxBody = 512

// decodeCodes are the only codes Decode may return: anything else (or an
// untyped error) would reach a client as a 500 for what is its own mistake.
var decodeCodes = map[apierr.Code]bool{
	apierr.CodeValidation:           true,
	apierr.CodeInvalidJSON:          true,
	apierr.CodePayloadTooLarge:      true,
	apierr.CodeUnsupportedMediaType: true,
}

// FuzzDecode feeds rest.Decode arbitrary bodies and Content-Types, as any
// client can: it must never panic and must answer nil or a typed client
// error, and a validation error must name the field it is about.
func FuzzDecode(f *testing.F) {
	seeds := []struct{ body, ct string }{
		{`{"name":"a","count":1,"ratio":0.5,"enabled":true,"tags":["x"],"labels":{"k":1},"spec":{"size":1,"inner":{"deep":true}}}`, "application/json"},
		{`{"count":"1"}`, "application/json"},
		{`{"spec":{"size":300}}`, ""},
		{`{"spec":{"inner":{"deep":1}}}`, ""},
		{`{"unknown":1}`, "application/json"},
		{`{"a\"b\u0000":1}`, "application/json"},
		{`[1,2]`, "application/json"},
		{`{"count":1}{}`, "application/json"},
		{`{"name":"`, "application/json"},
		{`null`, "application/problem+json"},
		{`{"count":1}`, "text/plain"},
		{`{"count":1}`, "application/json; charset=utf-8"},
		{`{"count":1}`, ";;;"},
		{"", ""},
		{"\xff\xfe", "application/json"},
		{string(bytes.Repeat([]byte("["), 600)), ""},
		{`{"labels":{"":1,"k":-1e400}}`, ""},
	}
	for _, s := range seeds {
		f.Add([]byte(s.body), s.ct)
	}
	f.Fuzz(func(t *testing.T, body []byte, ct string) {
		r := httptest.NewRequest("POST", "/", bytes.NewReader(body))
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, fuzzMaxBody)
		var p payload
		err := rest.Decode(r, &p)
		if err == nil {
			if len(body) > fuzzMaxBody {
				t.Fatalf("a %d-byte body passed the %d-byte limit", len(body), fuzzMaxBody)
			}
			return
		}
		var e *apierr.Error
		if !errors.As(err, &e) {
			t.Fatalf("untyped error %T: %v", err, err)
		}
		if !decodeCodes[e.Code] {
			t.Fatalf("code %s is not a client error code: %v", e.Code, err)
		}
		if e.Message == "" {
			t.Fatalf("empty message: %v", err)
		}
		if e.Code == apierr.CodeValidation {
			if field, _ := e.Details["field"].(string); field == "" && e.Details["constraint"] != string(apierr.Unknown) {
				t.Fatalf("validation error names no field: %v %v", err, e.Details)
			}
		}
		if e.Code == apierr.CodePayloadTooLarge && len(body) <= fuzzMaxBody {
			t.Fatalf("a %d-byte body was too large for a %d-byte limit", len(body), fuzzMaxBody)
		}
	})
}

// FuzzQuery feeds rest.Query and rest.Limit arbitrary raw query strings:
// they must never panic, must reject with a VALIDATION_ERROR naming a field,
// and what they accept must hold only known parameters and a limit in range.
func FuzzQuery(f *testing.F) {
	for _, s := range []string{
		"", "limit=5", "limit=0", "limit=101", "limit=-1", "limit=%2B7", "prefix=a%2Fb&page_token=abc",
		"prefx=a", "a=%zz", "limit=1;prefix=2", "=", "&&&", "limit=1&limit=2", "%", "limit=99999999999999999999",
	} {
		f.Add(s)
	}
	known := []string{"limit", "prefix", "page_token"}
	f.Fuzz(func(t *testing.T, raw string) {
		r := &http.Request{Method: "GET", URL: &url.URL{Path: "/", RawQuery: raw}, Header: http.Header{}}
		q, err := rest.Query(r, known...)
		if err != nil {
			e := apierr.As(err)
			if e.Code != apierr.CodeValidation || e.Details["constraint"] == nil {
				t.Fatalf("Query(%q) = %v, want a VALIDATION_ERROR with details", raw, err)
			}
			return
		}
		for k := range q {
			if k != "limit" && k != "prefix" && k != "page_token" {
				t.Fatalf("Query(%q) accepted unknown parameter %q", raw, k)
			}
		}
		n, err := rest.Limit(q, 10, 100)
		if err != nil {
			if e := apierr.As(err); e.Code != apierr.CodeValidation || e.Details["field"] != "limit" {
				t.Fatalf("Limit(%q) = %v", q.Get("limit"), err)
			}
			return
		}
		if n < 1 || n > 100 {
			t.Fatalf("Limit(%q) = %d, out of [1, 100]", q.Get("limit"), n)
		}
	})
}
