// Package apierr holds the typed errors every PhotonCloud service returns and
// the one table that maps them to HTTP statuses and gRPC codes, so that no
// handler ever picks a status code by hand.
package apierr

import (
	"errors"
	"fmt"
	"net/http"

	"google.golang.org/grpc/codes"
)

// Code is the stable, machine-readable error code of the seed's error envelope.
type Code string

// The codes of the seed's error envelope.
const (
	CodeValidation           Code = "VALIDATION_ERROR"
	CodeInvalidJSON          Code = "INVALID_JSON"
	CodeUnauthenticated      Code = "UNAUTHENTICATED"
	CodeForbidden            Code = "FORBIDDEN"
	CodeNotFound             Code = "NOT_FOUND"
	CodeMethodNotAllowed     Code = "METHOD_NOT_ALLOWED"
	CodeConflict             Code = "CONFLICT"
	CodeAlreadyExists        Code = "ALREADY_EXISTS"
	CodeFailedPrecondition   Code = "FAILED_PRECONDITION"
	CodePayloadTooLarge      Code = "PAYLOAD_TOO_LARGE"
	CodeUnsupportedMediaType Code = "UNSUPPORTED_MEDIA_TYPE"
	CodeRateLimited          Code = "RATE_LIMITED"
	CodeInsufficientCredit   Code = "INSUFFICIENT_CREDIT"
	CodeQuotaExceeded        Code = "QUOTA_EXCEEDED"
	CodeSubnetFull           Code = "SUBNET_FULL"
	CodeSQL                  Code = "SQL_ERROR"            // the database refused a statement (FlareDB)
	CodeConstraint           Code = "CONSTRAINT_VIOLATION" // a UNIQUE, NOT NULL, CHECK or FOREIGN KEY constraint
	CodeInternal             Code = "INTERNAL"
	CodeUnavailable          Code = "UNAVAILABLE"
)

// mapping is a code's transport status in each protocol.
type mapping struct {
	HTTP int
	GRPC codes.Code
}

// table is the one place a code becomes a status. Later services add rows
// here (and to its table test), never a status in a handler.
var table = map[Code]mapping{
	CodeValidation:           {http.StatusBadRequest, codes.InvalidArgument},
	CodeInvalidJSON:          {http.StatusBadRequest, codes.InvalidArgument},
	CodeUnauthenticated:      {http.StatusUnauthorized, codes.Unauthenticated},
	CodeForbidden:            {http.StatusForbidden, codes.PermissionDenied},
	CodeNotFound:             {http.StatusNotFound, codes.NotFound},
	CodeMethodNotAllowed:     {http.StatusMethodNotAllowed, codes.Unimplemented},
	CodeConflict:             {http.StatusConflict, codes.Aborted},
	CodeAlreadyExists:        {http.StatusConflict, codes.AlreadyExists},
	CodeFailedPrecondition:   {http.StatusConflict, codes.FailedPrecondition},
	CodePayloadTooLarge:      {http.StatusRequestEntityTooLarge, codes.ResourceExhausted},
	CodeUnsupportedMediaType: {http.StatusUnsupportedMediaType, codes.InvalidArgument},
	CodeRateLimited:          {http.StatusTooManyRequests, codes.ResourceExhausted},
	CodeInsufficientCredit:   {http.StatusPaymentRequired, codes.FailedPrecondition},
	CodeQuotaExceeded:        {http.StatusConflict, codes.ResourceExhausted},
	CodeSubnetFull:           {http.StatusConflict, codes.ResourceExhausted},
	CodeSQL:                  {http.StatusBadRequest, codes.InvalidArgument},
	CodeConstraint:           {http.StatusConflict, codes.FailedPrecondition},
	CodeInternal:             {http.StatusInternalServerError, codes.Internal},
	CodeUnavailable:          {http.StatusServiceUnavailable, codes.Unavailable},
}

// HTTPStatus is the HTTP status for code; unknown codes are 500.
func HTTPStatus(code Code) int {
	if m, ok := table[code]; ok {
		return m.HTTP
	}
	return http.StatusInternalServerError
}

// GRPCCode is the gRPC status code for code; unknown codes are Internal.
func GRPCCode(code Code) codes.Code {
	if m, ok := table[code]; ok {
		return m.GRPC
	}
	return codes.Internal
}

// Error is a typed API error. Message is safe to show to the caller; Err, if
// set, is the underlying cause kept for logs and errors.Is.
type Error struct {
	Code    Code
	Message string
	Details map[string]any
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, &Error{Code: X}) match any error of code X.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Message == "" && t.Code == e.Code
}

// New returns an error of code with a formatted message.
func New(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an error of code that keeps cause for logs and errors.Is.
func Wrap(code Code, cause error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: cause}
}

// Constraint names what rule a field broke, as details.constraint.
type Constraint string

// The constraints validation errors report.
const (
	Required  Constraint = "required"
	MaxLength Constraint = "max_length"
	Range     Constraint = "range"
	Format    Constraint = "format"
	Type      Constraint = "type"
	Unknown   Constraint = "unknown_field"
	Enum      Constraint = "enum"
)

// Validation reports that field broke constraint, as the seed's example shows:
// {"code":"VALIDATION_ERROR","details":{"field":…,"constraint":…}}.
func Validation(field string, c Constraint, format string, args ...any) *Error {
	return &Error{
		Code:    CodeValidation,
		Message: fmt.Sprintf(format, args...),
		Details: map[string]any{"field": field, "constraint": string(c)},
	}
}

// NotFound reports that a resource of kind with id does not exist.
func NotFound(kind, id string) *Error {
	return &Error{Code: CodeNotFound, Message: fmt.Sprintf("%s %q not found", kind, id),
		Details: map[string]any{"kind": kind, "id": id}}
}

// As returns err as an *Error; anything untyped becomes INTERNAL, with the
// cause kept but never shown.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: CodeInternal, Message: "internal error", Err: err}
}

// CodeOf is the code of err (INTERNAL for untyped errors, "" for nil).
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	return As(err).Code
}
