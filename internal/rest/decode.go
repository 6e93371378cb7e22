package rest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/photoncloud/photon/internal/apierr"
)

// DefaultMaxBody is the request body limit unless a router sets another.
const DefaultMaxBody = 1 << 20

// Decode reads r's JSON body into v strictly: unknown fields, wrong types,
// trailing data and bodies over the router's limit are typed errors naming
// what was wrong. An empty body leaves v as it is, so requests whose fields
// are all optional (the seed's start/delete calls send none) need no body;
// required fields are the caller's validation to check.
func Decode(r *http.Request, v any) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return apierr.New(apierr.CodePayloadTooLarge, "request body exceeds %d bytes", mbe.Limit)
		}
		return apierr.Wrap(apierr.CodeInvalidJSON, err, "reading request body failed")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return &apierr.Error{Code: apierr.CodeUnsupportedMediaType,
				Message: "request body must be application/json, got " + ct,
				Details: map[string]any{"content_type": ct}}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return apierr.New(apierr.CodeInvalidJSON, "request body holds data after the JSON value")
	}
	return nil
}

// decodeError turns encoding/json's errors into typed ones. Unknown-field
// errors have no type in encoding/json, so their message is the only signal.
func decodeError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn), errors.Is(err, io.ErrUnexpectedEOF):
		return apierr.Wrap(apierr.CodeInvalidJSON, err, "request body is not valid JSON: %v", err)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return apierr.Wrap(apierr.CodeInvalidJSON, err, "request body must be a JSON object")
		}
		return &apierr.Error{Code: apierr.CodeValidation, Err: err,
			Message: field + " must be of type " + jsonType(typ.Type),
			Details: map[string]any{"field": field, "constraint": string(apierr.Type)}}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json quotes the name with %q: unquote it so a name with
		// quotes or escapes is reported as the client sent it.
		quoted := strings.TrimPrefix(err.Error(), "json: unknown field ")
		field, uerr := strconv.Unquote(quoted)
		if uerr != nil {
			field = strings.Trim(quoted, `"`)
		}
		return &apierr.Error{Code: apierr.CodeValidation, Err: err,
			Message: "unknown field " + field,
			Details: map[string]any{"field": field, "constraint": string(apierr.Unknown)}}
	default:
		return apierr.Wrap(apierr.CodeInvalidJSON, err, "request body is not valid JSON: %v", err)
	}
}

// jsonType names t's JSON type for messages; integers are "integer" so that
// 1.5 for a count is not reported as needing "a number".
func jsonType(t reflect.Type) string {
	if t == nil {
		return "value"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Map, reflect.Struct:
		return "object"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	default:
		return "value"
	}
}
