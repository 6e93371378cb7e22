package testutil

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/photoncloud/photon/internal/apierr"
)

// OK checks a is a success of status and decodes its data as a T.
func OK[T any](t testing.TB, a Answer, status int) T {
	t.Helper()
	if a.Status != status || a.Err != nil {
		t.Fatalf("want %d: got %s", status, a)
	}
	var v T
	if err := json.Unmarshal(a.Data, &v); err != nil {
		t.Fatalf("decode data: %v: %s", err, a.Raw)
	}
	return v
}

// Fails checks a is an error of code (with its status from apierr's table)
// and returns its details.
func Fails(t testing.TB, a Answer, code apierr.Code) map[string]any {
	t.Helper()
	if !a.Is(code) {
		t.Fatalf("want %d %s: got %s", apierr.HTTPStatus(code), code, a)
	}
	return a.Err.Details
}

// Snapshot is every key under prefix with its mod revision and value, but
// those under any of skip (e.g. an election's keys, which belong to a
// session, not to data).
func Snapshot(t testing.TB, cli *clientv3.Client, prefix string, skip ...string) map[string]string {
	t.Helper()
	resp, err := cli.Get(Context(t), prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatalf("snapshot of %s: %v", prefix, err)
	}
	out := map[string]string{}
	for _, kv := range resp.Kvs {
		k := string(kv.Key)
		if slices.ContainsFunc(skip, func(s string) bool { return strings.HasPrefix(k, s) }) {
			continue
		}
		out[k] = fmt.Sprintf("%d %s", kv.ModRevision, kv.Value)
	}
	return out
}

// Unchanged fails unless the keys under prefix (but skip) are the same after
// fn as before it: what a refused request must leave.
func Unchanged(t testing.TB, cli *clientv3.Client, prefix, what string, fn func(), skip ...string) {
	t.Helper()
	before := Snapshot(t, cli, prefix, skip...)
	fn()
	after := Snapshot(t, cli, prefix, skip...)
	var diff []string
	for k, v := range before {
		if after[k] != v {
			diff = append(diff, "changed or deleted "+k)
		}
	}
	for k := range after {
		if _, had := before[k]; !had {
			diff = append(diff, "added "+k)
		}
	}
	if len(diff) > 0 {
		slices.Sort(diff)
		t.Fatalf("%s changed the store: %s", what, strings.Join(diff, "; "))
	}
}
