package testutil

import (
	"bytes"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/photoncloud/photon/internal/apierr"
)

// ErrorObject is the "error" of the seed's error envelope.
type ErrorObject struct {
	Code    apierr.Code    `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details"`
}

// Answer is an HTTP answer CheckEnvelope found to be the seed's envelope.
type Answer struct {
	Status int
	Raw    []byte          // the whole body
	Data   json.RawMessage // a success's "data"
	Err    *ErrorObject    // an error's "error"
}

func (a Answer) String() string {
	if a.Err != nil {
		return strconv.Itoa(a.Status) + " " + string(a.Err.Code) + ": " + a.Err.Message
	}
	return strconv.Itoa(a.Status) + " " + string(a.Data)
}

// Is reports whether a is an error of code.
func (a Answer) Is(code apierr.Code) bool { return a.Err != nil && a.Err.Code == code }

// ErrorCodes is every code of apierr's table, a fresh map a caller may
// narrow to what its service answers.
func ErrorCodes() map[apierr.Code]bool {
	return map[apierr.Code]bool{
		apierr.CodeValidation: true, apierr.CodeInvalidJSON: true, apierr.CodeUnauthenticated: true,
		apierr.CodeForbidden: true, apierr.CodeNotFound: true, apierr.CodeMethodNotAllowed: true,
		apierr.CodeConflict: true, apierr.CodeAlreadyExists: true, apierr.CodeFailedPrecondition: true,
		apierr.CodePayloadTooLarge: true, apierr.CodeUnsupportedMediaType: true, apierr.CodeRateLimited: true,
		apierr.CodeInternal: true, apierr.CodeUnavailable: true,
	}
}

// EnvelopeRules is what a service may answer, beyond the envelope's shape.
type EnvelopeRules struct {
	// Codes are the error codes it may answer (see ErrorCodes).
	Codes map[apierr.Code]bool
	// Allow5xx are the 5xx statuses it may answer (ChainFire's 503 while it
	// has no leader); any other 5xx fails.
	Allow5xx []int
}

// CheckEnvelope reads resp's body and fails unless it is the seed's
// envelope: {"data","meta"} for 2xx, {"error","meta"} otherwise, as
// application/json, with a request ID that X-Request-ID repeats, an RFC 3339
// timestamp, a code of rules.Codes whose status in apierr's table is the
// one answered, a message, VALIDATION_ERROR's details.field and
// details.constraint, and no 5xx but rules.Allow5xx. what names the request
// in failures.
func CheckEnvelope(t testing.TB, what string, resp *http.Response, rules EnvelopeRules) Answer {
	t.Helper()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s: reading the answer: %v", what, err)
	}
	a := Answer{Status: resp.StatusCode, Raw: raw}
	if resp.StatusCode >= 500 && !slices.Contains(rules.Allow5xx, resp.StatusCode) {
		t.Fatalf("%s: status %d: %s", what, resp.StatusCode, raw)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s: status %d with Content-Type %q: %q", what, resp.StatusCode, ct, raw)
	}
	var top map[string]json.RawMessage
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		top = ExactKeys(t, what+": success envelope", raw, "data", "meta")
		a.Data = top["data"]
	} else {
		top = ExactKeys(t, what+": error envelope", raw, "error", "meta")
		ExactKeys(t, what+": error object", top["error"], "code", "message", "details")
		a.Err = &ErrorObject{}
		if err := json.Unmarshal(top["error"], a.Err); err != nil {
			t.Fatalf("%s: error object: %v: %s", what, err, raw)
		}
		e := a.Err
		if !rules.Codes[e.Code] {
			t.Fatalf("%s: code %q is not one this service answers (apierr's table): %s", what, e.Code, raw)
		}
		if want := apierr.HTTPStatus(e.Code); resp.StatusCode != want {
			t.Fatalf("%s: code %s answered with status %d, the table says %d: %s", what, e.Code, resp.StatusCode, want, raw)
		}
		if e.Message == "" {
			t.Fatalf("%s: empty error message: %s", what, raw)
		}
		if e.Code == apierr.CodeValidation {
			field, isString := e.Details["field"].(string)
			constraint, _ := e.Details["constraint"].(string)
			// An unknown body field may be literally named "".
			if !isString || (field == "" && constraint != string(apierr.Unknown)) {
				t.Fatalf("%s: VALIDATION_ERROR without details.field: %s", what, raw)
			}
			if constraint == "" {
				t.Fatalf("%s: VALIDATION_ERROR without details.constraint: %s", what, raw)
			}
		}
	}
	meta := ExactKeys(t, what+": meta", top["meta"], "request_id", "timestamp")
	var id, ts string
	if json.Unmarshal(meta["request_id"], &id) != nil || id == "" {
		t.Fatalf("%s: meta.request_id is not a non-empty string: %s", what, raw)
	}
	if h := resp.Header.Get("X-Request-ID"); h != id {
		t.Fatalf("%s: X-Request-ID %q, meta.request_id %q", what, h, id)
	}
	if json.Unmarshal(meta["timestamp"], &ts) != nil {
		t.Fatalf("%s: meta.timestamp is not a string: %s", what, raw)
	}
	if _, err := time.Parse(time.RFC3339, ts); err != nil {
		t.Fatalf("%s: meta.timestamp %q: %v", what, ts, err)
	}
	return a
}

// ExactKeys fails unless raw is a JSON object with exactly keys, and
// returns its members.
func ExactKeys(t testing.TB, what string, raw json.RawMessage, keys ...string) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		t.Fatalf("%s is not a JSON object (%v): %s", what, err, raw)
	}
	if len(m) != len(keys) {
		t.Fatalf("%s has keys %v, want exactly %v: %s", what, slices.Sorted(maps.Keys(m)), keys, raw)
	}
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			t.Fatalf("%s lacks %q: %s", what, k, raw)
		}
	}
	return m
}

// StrictData decodes an answer's data into v, failing the test on any field
// v lacks: an answer may not carry more than its type says.
func StrictData(t testing.TB, what string, data json.RawMessage, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: data %s: %v", what, data, err)
	}
}

// DecodesStrictly reports whether internal/rest.Decode takes body into v:
// an all-blank body leaves v as it is; otherwise one JSON value, no field v
// lacks, no wrong type, nothing after it. Fuzz tests predict from it which
// bodies a handler must refuse.
func DecodesStrictly(body []byte, v any) bool {
	if len(bytes.TrimSpace(body)) == 0 {
		return true
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if dec.Decode(v) != nil {
		return false
	}
	_, err := dec.Token()
	return err == io.EOF
}

// RequestOf is body decoded as a service decodes a T (see
// DecodesStrictly), and whether it decodes; when it does not, the answer a
// must refuse it: PAYLOAD_TOO_LARGE past maxBody, else INVALID_JSON or
// VALIDATION_ERROR. Fuzz targets call it before judging an answer further.
func RequestOf[T any](t testing.TB, what string, body []byte, maxBody int, a Answer) (T, bool) {
	t.Helper()
	var req T
	switch {
	case len(body) > maxBody:
		if !a.Is(apierr.CodePayloadTooLarge) {
			t.Fatalf("%s: a %d-byte body answered %s, want PAYLOAD_TOO_LARGE", what, len(body), a)
		}
		return req, false
	case !DecodesStrictly(body, &req):
		if !a.Is(apierr.CodeInvalidJSON) && !a.Is(apierr.CodeValidation) {
			t.Fatalf("%s: a body that does not decode answered %s, want INVALID_JSON or VALIDATION_ERROR", what, a)
		}
		return req, false
	}
	return req, true
}
