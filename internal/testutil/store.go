package testutil

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/auth/policy"
)

// Context bounds one call a test makes well inside the test binary's
// timeout, so a hang fails the test that hangs rather than the whole run.
// It is canceled a minute on or when the test's cleanups run, not when the
// test function returns, so cleanups may use it too.
func Context(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// PutJSON writes v as JSON at key, as a service stores its records, and
// returns the write's revision.
func PutJSON(t testing.TB, cli *clientv3.Client, key string, v any) int64 {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	resp, err := cli.Put(Context(t), key, string(b))
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	return resp.Header.Revision
}

// WantCode fails the test unless err is an *apierr.Error of code, and
// returns it.
func WantCode(t testing.TB, err error, code apierr.Code) *apierr.Error {
	t.Helper()
	var e *apierr.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want %s", err, err, code)
	}
	if e.Code != code {
		t.Fatalf("err = %v, want %s", err, code)
	}
	return e
}

// StartPolicyCache starts an IAM policy cache following cli (logging to log,
// or nowhere when nil), stopped when the test ends.
func StartPolicyCache(t testing.TB, cli *clientv3.Client, log *slog.Logger) *policy.Cache {
	t.Helper()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := policy.NewCache(cli, log)
	run(t, "policy cache", c)
	return c
}
