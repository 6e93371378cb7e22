// Package state is the typed store the control-plane services keep their
// resources in: JSON values under a key prefix in ChainFire (etcd), with
// create-if-absent, compare-and-swap on mod revisions, paginated lists,
// watches and multi-key transactions. It knows nothing of HTTP.
package state

import (
	"context"
	"errors"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/photoncloud/photon/internal/apierr"
)

// FromEtcd turns an etcd client error into a typed one: anything meaning
// "the cluster cannot answer now" (no leader, no quorum, timeout) is
// UNAVAILABLE, so callers see 503 and retry; request-size errors are 413.
func FromEtcd(err error) error {
	if err == nil {
		return nil
	}
	var ae *apierr.Error
	if errors.As(err, &ae) {
		return err
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return apierr.Wrap(apierr.CodeUnavailable, err, "the request timed out (the store is busy, or has lost its quorum); retry")
	case errors.Is(err, rpctypes.ErrNoLeader), errors.Is(err, rpctypes.ErrGRPCNoLeader),
		errors.Is(err, rpctypes.ErrTimeout), errors.Is(err, rpctypes.ErrGRPCTimeout),
		errors.Is(err, rpctypes.ErrTimeoutDueToLeaderFail), errors.Is(err, rpctypes.ErrGRPCTimeoutDueToLeaderFail),
		errors.Is(err, rpctypes.ErrTimeoutDueToConnectionLost), errors.Is(err, rpctypes.ErrGRPCTimeoutDueToConnectionLost),
		errors.Is(err, rpctypes.ErrStopped), errors.Is(err, rpctypes.ErrGRPCStopped),
		errors.Is(err, rpctypes.ErrNotCapable), errors.Is(err, rpctypes.ErrGRPCNotCapable):
		return apierr.Wrap(apierr.CodeUnavailable, err, "the cluster has no quorum or leader right now; retry")
	case errors.Is(err, rpctypes.ErrRequestTooLarge), errors.Is(err, rpctypes.ErrGRPCRequestTooLarge):
		return apierr.Wrap(apierr.CodePayloadTooLarge, err, "request exceeds the store's size limit")
	case errors.Is(err, context.Canceled):
		return apierr.Wrap(apierr.CodeUnavailable, err, "request cancelled")
	}
	// The etcd client turns gRPC statuses into its own EtcdError, whose code
	// says whether the cluster just cannot answer now ("unhealthy cluster"
	// right after start, "leader changed" during an election, …).
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		switch {
		case ee.Code() == codes.Unavailable, ee.Code() == codes.DeadlineExceeded,
			// too many requests, or the space quota: back off and retry
			ee.Code() == codes.ResourceExhausted,
			// a learner or a follower that cannot serve this request now
			ee == rpctypes.ErrNotLeader, ee == rpctypes.Error(rpctypes.ErrGRPCNotSupportedForLearner):
			return apierr.Wrap(apierr.CodeUnavailable, err, "the cluster cannot serve this now (%s); retry", ee.Error())
		}
	}
	if s, ok := status.FromError(err); ok {
		switch s.Code() {
		case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
			return apierr.Wrap(apierr.CodeUnavailable, err, "the cluster is unavailable right now; retry")
		case codes.ResourceExhausted:
			return apierr.Wrap(apierr.CodePayloadTooLarge, err, "request exceeds the store's size limit")
		}
	}
	switch rpctypes.Error(err).Error() {
	case rpctypes.ErrNoLeader.Error(), rpctypes.ErrTimeout.Error(), rpctypes.ErrTimeoutDueToLeaderFail.Error():
		return apierr.Wrap(apierr.CodeUnavailable, err, "the cluster has no quorum or leader right now; retry")
	}
	return apierr.Wrap(apierr.CodeInternal, err, "store error")
}

// Ping is a store health check: one linearizable read, so it fails (503)
// exactly when the cluster cannot serve a write's quorum either.
func Ping(ctx context.Context, cli *clientv3.Client) error {
	_, err := cli.Get(ctx, "/photon/health", clientv3.WithCountOnly())
	return FromEtcd(err)
}
