package flaredb_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/photoncloud/photon/internal/testutil"
	"github.com/photoncloud/photon/services/flaredb"
)

// clNode is one in-process FlareDB node without IAM (loopback callers
// only), as `photon serve flaredb` runs it.
type clNode struct {
	s   *flaredb.Standalone
	url string
}

func startClusterNode(t *testing.T, id, dir string, boot bool, join string) *clNode {
	t.Helper()
	cfg := flaredb.Config{NodeID: id, DataDir: dir, HTTPAddr: testutil.FreeAddr(t), RaftAddr: testutil.FreeAddr(t),
		Bootstrap: boot, Join: join, LeaderWait: 2 * time.Second,
		HeartbeatTimeout: 300 * time.Millisecond, ElectionTimeout: 300 * time.Millisecond, LeaderLeaseTimeout: 150 * time.Millisecond}
	s, err := flaredb.NewStandalone(cfg, nil, "", "auto")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	n := &clNode{s: s, url: "http://" + s.Server().HTTPAddr()}
	t.Cleanup(func() { n.stop() })
	return n
}

func (n *clNode) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = n.s.Stop(ctx)
}

// call sends a JSON request and returns the status and the envelope.
func (n *clNode) call(t *testing.T, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, n.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var env map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		t.Fatalf("%s %s: %d, not JSON: %v", method, path, resp.StatusCode, err)
	}
	return resp.StatusCode, env
}

func errCode(env map[string]any) string {
	e, _ := env["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// TestClusterForwardingAndNoLeader: three nodes form a group by join; a
// write or linearizable read sent to a follower is served by the leader
// (never a 503 while one exists), a stale read is the follower's own; with
// two nodes gone, the survivor answers 503 UNAVAILABLE within the leader
// wait, and still serves stale reads.
func TestClusterForwardingAndNoLeader(t *testing.T) {
	n1 := startClusterNode(t, "n1", t.TempDir(), true, "")
	n2 := startClusterNode(t, "n2", t.TempDir(), false, n1.url)
	n3 := startClusterNode(t, "n3", t.TempDir(), false, n1.url)
	nodes := []*clNode{n1, n2, n3}
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, env := n2.call(t, "GET", "/api/v1/cluster", nil)
		data, _ := env["data"].(map[string]any)
		members, _ := data["members"].([]any)
		if code == 200 && len(members) == 3 && data["leader_http"] != "" && data["leader_http"] != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no 3-member group: %d %v", code, env)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, env := n1.call(t, "POST", "/api/v1/sql", map[string]any{"query": "CREATE TABLE t (id INTEGER PRIMARY KEY, via TEXT)"}); code != 200 {
		t.Fatalf("create: %d %v", code, env)
	}
	for i, n := range nodes {
		for j := range 10 {
			id := i*100 + j
			code, env := n.call(t, "POST", "/api/v1/sql", map[string]any{"query": "INSERT INTO t VALUES (?, ?)", "params": []any{id, fmt.Sprint("n", i+1)}})
			if code != 200 {
				t.Fatalf("insert via n%d: %d %v", i+1, code, env)
			}
		}
		code, env := n.call(t, "PUT", "/api/v1/kv/k"+fmt.Sprint(i), map[string]any{"value": "v"})
		if code != 200 {
			t.Fatalf("kv put via n%d: %d %v", i+1, code, env)
		}
		code, env = n.call(t, "POST", "/api/v1/sql", map[string]any{"query": "SELECT count(*) FROM t"})
		rows := env["data"].(map[string]any)["rows"].([]any)
		if code != 200 || rows[0].([]any)[0] != float64((i+1)*10) {
			t.Fatalf("linearizable count via n%d: %d %v", i+1, code, env)
		}
	}

	// Let n3 apply everything (a stale read is its own replica's), then
	// keep n3 only: no quorum, no leader.
	for deadline := time.Now().Add(10 * time.Second); ; {
		if code, _ := n3.call(t, "GET", "/api/v1/kv/k2?consistency=stale", nil); code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("n3 did not apply the last write")
		}
		time.Sleep(20 * time.Millisecond)
	}
	n1.stop()
	n2.stop()
	for _, tc := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/api/v1/sql", map[string]any{"query": "INSERT INTO t VALUES (999, 'x')"}},
		{"POST", "/api/v1/sql", map[string]any{"query": "SELECT count(*) FROM t"}},
		{"PUT", "/api/v1/kv/lost", map[string]any{"value": "v"}},
		{"GET", "/api/v1/kv/k0", nil},
	} {
		start := time.Now()
		code, env := n3.call(t, tc.method, tc.path, tc.body)
		took := time.Since(start)
		if code != 503 || errCode(env) != "UNAVAILABLE" {
			t.Errorf("%s %s without a leader: %d %v, want 503 UNAVAILABLE", tc.method, tc.path, code, env)
		}
		// The leader wait is 2 s; an election timeout or two more is slack.
		if took > 6*time.Second {
			t.Errorf("%s %s took %v to fail", tc.method, tc.path, took)
		}
	}
	code, env := n3.call(t, "POST", "/api/v1/sql?consistency=stale", map[string]any{"query": "SELECT count(*) FROM t"})
	if code != 200 {
		t.Fatalf("stale read without a leader: %d %v", code, env)
	}
	code, _ = n3.call(t, "GET", "/api/v1/kv/k2?consistency=stale", nil)
	if code != 200 {
		t.Fatalf("stale kv read without a leader: %d", code)
	}
}
