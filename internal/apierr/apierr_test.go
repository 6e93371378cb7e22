package apierr

import (
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
)

// TestTable pins the exact mapping of every code, both ways: each code the
// issue names has this status, and the table holds nothing else.
func TestTable(t *testing.T) {
	want := []struct {
		code Code
		http int
		grpc codes.Code
	}{
		{CodeValidation, 400, codes.InvalidArgument},
		{CodeInvalidJSON, 400, codes.InvalidArgument},
		{CodeUnauthenticated, 401, codes.Unauthenticated},
		{CodeForbidden, 403, codes.PermissionDenied},
		{CodeNotFound, 404, codes.NotFound},
		{CodeMethodNotAllowed, 405, codes.Unimplemented},
		{CodeConflict, 409, codes.Aborted},
		{CodeAlreadyExists, 409, codes.AlreadyExists},
		{CodeFailedPrecondition, 409, codes.FailedPrecondition},
		{CodePayloadTooLarge, 413, codes.ResourceExhausted},
		{CodeUnsupportedMediaType, 415, codes.InvalidArgument},
		{CodeRateLimited, 429, codes.ResourceExhausted},
		{CodeInsufficientCredit, 402, codes.FailedPrecondition},
		{CodeQuotaExceeded, 409, codes.ResourceExhausted},
		{CodeSubnetFull, 409, codes.ResourceExhausted},
		{CodeSQL, 400, codes.InvalidArgument},
		{CodeConstraint, 409, codes.FailedPrecondition},
		{CodeInternal, 500, codes.Internal},
		{CodeUnavailable, 503, codes.Unavailable},
	}
	for _, w := range want {
		if got := HTTPStatus(w.code); got != w.http {
			t.Errorf("HTTPStatus(%s) = %d, want %d", w.code, got, w.http)
		}
		if got := GRPCCode(w.code); got != w.grpc {
			t.Errorf("GRPCCode(%s) = %v, want %v", w.code, got, w.grpc)
		}
	}
	if len(table) != len(want) {
		t.Errorf("table has %d codes, the test pins %d: add the new code here", len(table), len(want))
	}
	if HTTPStatus("NO_SUCH_CODE") != 500 || GRPCCode("NO_SUCH_CODE") != codes.Internal {
		t.Error("unknown codes must map to 500 / Internal")
	}
}

func TestAsAndIs(t *testing.T) {
	base := NotFound("key", "a")
	wrapped := fmt.Errorf("lookup: %w", base)
	if got := As(wrapped); got != base {
		t.Fatalf("As(wrapped) = %v, want the typed error", got)
	}
	if !errors.Is(wrapped, &Error{Code: CodeNotFound}) {
		t.Error("errors.Is by code failed")
	}
	if errors.Is(wrapped, &Error{Code: CodeConflict}) {
		t.Error("errors.Is matched a different code")
	}
	plain := errors.New("disk on fire")
	got := As(plain)
	if got.Code != CodeInternal || got.Message != "internal error" || !errors.Is(got, plain) {
		t.Errorf("As(untyped) = %+v", got)
	}
	v := Validation("cidr_block", Required, "cidr_block is required")
	if v.Details["field"] != "cidr_block" || v.Details["constraint"] != "required" {
		t.Errorf("validation details = %v", v.Details)
	}
}
