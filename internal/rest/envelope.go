// Package rest is the HTTP plumbing every PhotonCloud service shares: the
// seed's response envelopes, request IDs, strict JSON decoding, a router whose
// handlers return values or typed errors, /health and /metrics.
package rest

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/photoncloud/photon/internal/apierr"
)

// Meta is the "meta" object of every envelope.
type Meta struct {
	RequestID string `json:"request_id"`
	Timestamp string `json:"timestamp"`
}

// Envelope is the seed's success response: {"data":…, "meta":…}.
type Envelope struct {
	Data any  `json:"data"`
	Meta Meta `json:"meta"`
}

// ErrorBody is the "error" object of the seed's error response.
type ErrorBody struct {
	Code    apierr.Code    `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details"`
}

// ErrorEnvelope is the seed's error response: {"error":…, "meta":…}.
type ErrorEnvelope struct {
	Error ErrorBody `json:"error"`
	Meta  Meta      `json:"meta"`
}

func metaFor(r *http.Request) Meta {
	return Meta{RequestID: RequestID(r.Context()), Timestamp: time.Now().UTC().Format(time.RFC3339)}
}

// Status wraps a handler's result to answer with a status other than 200.
type Status struct {
	Code int
	Data any
}

// Created answers 201 with data.
func Created(data any) Status { return Status{Code: http.StatusCreated, Data: data} }

// WriteData writes data in the success envelope with status.
func WriteData(w http.ResponseWriter, r *http.Request, status int, data any) {
	writeJSON(w, status, Envelope{Data: data, Meta: metaFor(r)})
}

// WriteError writes err in the error envelope with the status apierr's table
// gives its code. Internal causes are logged, never sent.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	e := apierr.As(err)
	status := apierr.HTTPStatus(e.Code)
	// A request its client abandoned is not a server fault worth an ERROR.
	if status >= 500 && !errors.Is(err, context.Canceled) {
		slog.Default().ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path,
			"request_id", RequestID(r.Context()), "code", e.Code, "err", err)
	}
	// A rate limit says when to come back, in the header clients know.
	if secs, ok := e.Details["retry_after_seconds"].(int); ok && status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	writeJSON(w, status, ErrorEnvelope{
		Error: ErrorBody{Code: e.Code, Message: e.Message, Details: e.Details},
		Meta:  metaFor(r),
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// Only a programming error (an unmarshalable value) gets here.
		status = http.StatusInternalServerError
		body = []byte(`{"error":{"code":"INTERNAL","message":"response encoding failed","details":null}}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// WriteRaw writes v as JSON without the envelope, for documents whose shape
// a standard fixes (e.g. /.well-known/jwks.json).
func WriteRaw(w http.ResponseWriter, status int, v any) { writeJSON(w, status, v) }
