package flaredb_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/testutil"
	"github.com/photoncloud/photon/services/flaredb"
)

// TestStandaloneWithIAM: a `photon serve flaredb` node given ChainFire and
// IAM verifies IAM's tokens and decides from its bindings as every
// service does (a project token acts in its project, a bad token is 401).
func TestStandaloneWithIAM(t *testing.T) {
	env := startFDB(t)
	cfg := flaredb.Config{NodeID: "sa-1", DataDir: t.TempDir(), HTTPAddr: testutil.FreeAddr(t), RaftAddr: testutil.FreeAddr(t),
		Bootstrap: true, Version: "test"}
	s, err := flaredb.NewStandalone(cfg, []string{env.st.ChainFire.GRPCAddr()}, env.iam, "enforce")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop(testutil.Context(t)) })
	node := &fdbEnv{st: env.st, base: "http://" + s.Server().HTTPAddr(), iam: env.iam}

	tok := node.token(t, "alice", "proj-sa", "member")
	var a testutil.Answer
	for deadline := time.Now().Add(10 * time.Second); ; {
		// The node's IAM cache follows ChainFire: the binding the token
		// issue made may take a moment to arrive.
		a = node.do(t, req{method: "PUT", path: "/api/v1/kv/k", token: tok, body: map[string]any{"value": "v"}})
		if a.Status == http.StatusOK || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	ok[flaredb.KVPair](t, a, http.StatusOK)
	got := ok[flaredb.KVPair](t, node.do(t, req{method: "GET", path: "/api/v1/kv/k?project_id=proj-sa", token: tok}), http.StatusOK)
	if got.Value != "v" {
		t.Fatalf("read back %+v", got)
	}
	// Enforce mode: no token, no access; a forged one is 401.
	fails(t, node.do(t, req{method: "GET", path: "/api/v1/kv/k"}), apierr.CodeUnauthenticated)
	fails(t, node.do(t, req{method: "GET", path: "/api/v1/kv/k", token: tok + "x"}), apierr.CodeUnauthenticated)
	// Another project's token does not see it.
	other := node.token(t, "bob", "proj-other", "member")
	fails(t, node.do(t, req{method: "GET", path: "/api/v1/kv/k?project_id=proj-sa", token: other}), apierr.CodeNotFound)
}
