package state_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/state"
)

// TestFromEtcd pins how store failures reach clients: "the cluster cannot
// answer now" must be UNAVAILABLE (503, retry), size limits 413, and only
// the truly unexpected INTERNAL. Each error appears in the forms the etcd
// client produces: the client-side value, the gRPC status from the wire,
// and wrapped by a caller.
func TestFromEtcd(t *testing.T) {
	typed := apierr.NotFound("vpc", "v1")
	tests := []struct {
		name string
		err  error
		want apierr.Code
	}{
		{"deadline", context.DeadlineExceeded, apierr.CodeUnavailable},
		{"wrapped deadline", fmt.Errorf("get: %w", context.DeadlineExceeded), apierr.CodeUnavailable},
		{"cancelled", context.Canceled, apierr.CodeUnavailable},
		{"no leader", rpctypes.ErrNoLeader, apierr.CodeUnavailable},
		{"no leader (gRPC)", rpctypes.ErrGRPCNoLeader, apierr.CodeUnavailable},
		{"no leader (wire status)", status.Error(codes.Unavailable, "etcdserver: no leader"), apierr.CodeUnavailable},
		{"no leader (unknown code, known text)", status.Error(codes.Unknown, "etcdserver: no leader"), apierr.CodeUnavailable},
		{"timeout", rpctypes.ErrTimeout, apierr.CodeUnavailable},
		{"timeout (gRPC)", rpctypes.ErrGRPCTimeout, apierr.CodeUnavailable},
		{"timeout due to leader fail", rpctypes.ErrGRPCTimeoutDueToLeaderFail, apierr.CodeUnavailable},
		{"timeout due to connection lost", rpctypes.ErrTimeoutDueToConnectionLost, apierr.CodeUnavailable},
		{"stopped", rpctypes.ErrGRPCStopped, apierr.CodeUnavailable},
		{"not capable", rpctypes.ErrGRPCNotCapable, apierr.CodeUnavailable},
		{"gRPC unavailable", status.Error(codes.Unavailable, "connection refused"), apierr.CodeUnavailable},
		{"gRPC deadline", status.Error(codes.DeadlineExceeded, "context deadline exceeded"), apierr.CodeUnavailable},
		{"gRPC cancelled", status.Error(codes.Canceled, "context canceled"), apierr.CodeUnavailable},
		{"request too large", rpctypes.ErrRequestTooLarge, apierr.CodePayloadTooLarge},
		{"request too large (gRPC)", rpctypes.ErrGRPCRequestTooLarge, apierr.CodePayloadTooLarge},
		{"wrapped too large", fmt.Errorf("put: %w", rpctypes.ErrGRPCRequestTooLarge), apierr.CodePayloadTooLarge},
		{"message over gRPC limit", status.Error(codes.ResourceExhausted, "trying to send message larger than max"), apierr.CodePayloadTooLarge},
		{"unknown", errors.New("disk on fire"), apierr.CodeInternal},
		{"unknown gRPC code", status.Error(codes.DataLoss, "corrupt"), apierr.CodeInternal},
		{"duplicate key", rpctypes.ErrGRPCDuplicateKey, apierr.CodeInternal},
		{"permission denied", rpctypes.ErrGRPCPermissionDenied, apierr.CodeInternal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := state.FromEtcd(tc.err)
			var e *apierr.Error
			if !errors.As(got, &e) {
				t.Fatalf("FromEtcd(%v) = %v (%T), want a typed error", tc.err, got, got)
			}
			if e.Code != tc.want {
				t.Errorf("FromEtcd(%v) = %s, want %s", tc.err, e.Code, tc.want)
			}
			if !errors.Is(got, tc.err) {
				t.Errorf("FromEtcd(%v) lost its cause for logs and errors.Is", tc.err)
			}
			if e.Message == "" || e.Message == tc.err.Error() {
				t.Errorf("message %q: want a client-safe message, not the raw error", e.Message)
			}
		})
	}
	t.Run("nil", func(t *testing.T) {
		if err := state.FromEtcd(nil); err != nil {
			t.Errorf("FromEtcd(nil) = %v", err)
		}
	})
	t.Run("typed passes through", func(t *testing.T) {
		if got := state.FromEtcd(typed); got != typed {
			t.Errorf("FromEtcd(typed) = %v, want the same error", got)
		}
		wrapped := fmt.Errorf("ctx: %w", typed)
		if got := state.FromEtcd(wrapped); got != wrapped {
			t.Errorf("FromEtcd(wrapped typed) = %v, want it unchanged", got)
		}
	})
}
