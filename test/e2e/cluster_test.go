package e2e

// Black-box tests of ChainFire clusters: real `photon serve chainfire`
// processes on loopback, formed, killed, restarted, grown and shrunk,
// observed only through their REST, etcd gRPC and etcdctl.

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/photoncloud/photon/internal/testutil"
)

// TestClusterFormsAndReplicates proves that three processes bootstrap one
// cluster (one leader that all agree on, one cluster ID, three started
// voting members) and that a write through any front door — REST, the etcd
// gRPC API, read back by etcdctl — is seen through any other node.
func TestClusterFormsAndReplicates(t *testing.T) {
	c := startCluster(t, 3)
	leader := c.waitLeader(t, c.all(), 30*time.Second)
	t.Logf("node %d leads", leader.id)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var clusterID string
	for _, nd := range c.all() {
		st, err := c.statusOf(ctx, nd)
		if err != nil {
			t.Fatal(err)
		}
		if clusterID == "" {
			clusterID = st.ClusterID
		}
		if st.ClusterID == "" || st.ClusterID != clusterID || st.MemberID == "" {
			t.Errorf("node %d: cluster_id %q (node 1 says %q), member_id %q", nd.id, st.ClusterID, clusterID, st.MemberID)
		}
		if want := map[bool]string{true: "leader", false: "follower"}[nd == leader]; st.Role != want {
			t.Errorf("node %d: role %q, want %q", nd.id, st.Role, want)
		}
		if len(st.Members) != 3 {
			t.Fatalf("node %d sees %d members: %+v", nd.id, len(st.Members), st.Members)
		}
		for i, m := range st.Members {
			if m.NodeID != uint64(i+1) || m.Name != fmt.Sprintf("node-%d", i+1) || m.IsLearner || !m.Started ||
				m.IsLeader != (m.NodeID == uint64(leader.id)) {
				t.Errorf("node %d: member %d is %+v", nd.id, i, m)
			}
		}
	}

	n1, n2, n3 := c.node(1), c.node(2), c.node(3)
	cli := testutil.EtcdClient(t, n2.grpcAddr)
	cases := []struct {
		name  string
		needs string // a program the row runs; the row is skipped without it
		write func(t *testing.T, key, value string)
		read  func(t *testing.T, key string) string
	}{
		{
			name:  "REST node 1 to REST node 3",
			write: func(t *testing.T, key, value string) { c.put(t, n1, key, value) },
			read:  func(t *testing.T, key string) string { return c.get(t, n3, key, "") },
		},
		{
			name: "etcd gRPC node 2 to REST node 1",
			write: func(t *testing.T, key, value string) {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if _, err := cli.Put(ctx, key, value); err != nil {
					t.Fatalf("gRPC put to node 2: %v", err)
				}
			},
			read: func(t *testing.T, key string) string { return c.get(t, n1, key, "") },
		},
		{
			name:  "REST node 1 to etcdctl node 3",
			needs: "etcdctl",
			write: func(t *testing.T, key, value string) { c.put(t, n1, key, value) },
			read: func(t *testing.T, key string) string {
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				defer cancel()
				cmd := exec.CommandContext(ctx, "etcdctl", "--endpoints=http://"+n3.grpcAddr, "--command-timeout=10s",
					"get", key, "--print-value-only")
				cmd.Env = append(os.Environ(), "ETCDCTL_API=3")
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("etcdctl get: %v\n%s", err, out)
				}
				return strings.TrimRight(string(out), "\n")
			},
		},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.needs != "" {
				if _, err := exec.LookPath(tc.needs); err != nil {
					t.Skipf("%s is not installed (for etcdctl: Debian package etcd-client, with ETCDCTL_API=3): %v", tc.needs, err)
				}
			}
			key, value := fmt.Sprintf("e2e/replicate/%d", i), fmt.Sprintf("value-%d-%d", i, time.Now().UnixNano())
			tc.write(t, key, value)
			if got := tc.read(t, key); got != value {
				t.Fatalf("read %q, want %q", got, value)
			}
		})
	}
}

// TestClusterLeaderKill proves that losing the leader to kill -9 costs no
// acknowledged data and only a short pause: the other two elect a new
// leader and keep serving writes and linearizable reads, and the killed
// node, restarted on its own data dir, rejoins and catches up on what it
// missed. Every node then stops cleanly on SIGTERM.
func TestClusterLeaderKill(t *testing.T) {
	c := startCluster(t, 3)
	old := c.waitLeader(t, c.all(), 30*time.Second)
	c.put(t, old, "e2e/leaderkill/before", "written-before-kill")

	c.kill(t, old)
	survivors := c.except(old)
	newLeader := c.waitLeader(t, survivors, 20*time.Second)
	if newLeader == old {
		t.Fatalf("node %d still leads after being killed", old.id)
	}
	t.Logf("killed leader node %d; node %d leads now", old.id, newLeader.id)

	// Each survivor takes a write the other must read linearizably.
	var latest string
	for i, writer := range survivors {
		reader := survivors[1-i]
		latest = fmt.Sprintf("written-while-node-%d-down-%d", old.id, i)
		c.put(t, writer, "e2e/leaderkill/during", latest)
		if got := c.get(t, reader, "e2e/leaderkill/during", ""); got != latest {
			t.Fatalf("linearizable read on node %d after write via node %d: %q, want %q", reader.id, writer.id, got, latest)
		}
	}
	if got := c.get(t, newLeader, "e2e/leaderkill/before", ""); got != "written-before-kill" {
		t.Fatalf("write acknowledged before the kill reads %q", got)
	}

	c.start(t, old)
	c.waitReady(t, old, 60*time.Second)
	// A serializable read answers from the node's own state: it holds the
	// latest value only once the node has caught up.
	c.waitValue(t, old, "e2e/leaderkill/during", "serializable", latest, 20*time.Second)
	c.waitLeader(t, c.all(), 20*time.Second)

	for _, nd := range c.all() {
		if code := c.stop(t, nd); code != 0 {
			t.Errorf("node %d exited %d on SIGTERM, want 0", nd.id, code)
		}
	}
}

// TestClusterAddMember proves the documented way to grow a cluster: POST
// /api/v1/cluster/members answers the flags to start the new node with; the
// node joins as a learner, is promoted to a voter by the leader on its own,
// and serves data written before it existed. DELETE removes it again and
// leaves a working three-node cluster.
func TestClusterAddMember(t *testing.T) {
	c := startCluster(t, 3)
	n1, n2 := c.node(1), c.node(2)
	c.put(t, n1, "e2e/addmember/before", "written-before-join")

	// An operator adds the member right after forming the cluster. etcd
	// may refuse a reconfiguration for a few seconds after its peers
	// connect; that must be a retryable 503, which is retried here, and
	// anything else but 201 fails.
	n4 := c.newNode(t, 4)
	var r response
	eventually(t, 20*time.Second, "POST /api/v1/cluster/members for node 4", func() error {
		r = c.rest(t, n1, http.MethodPost, "/api/v1/cluster/members", map[string]any{"node_id": 4, "address": n4.peerAddr})
		switch r.status {
		case http.StatusCreated:
			return nil
		case http.StatusServiceUnavailable:
			return fmt.Errorf("%s", r)
		}
		return permanent(fmt.Errorf("want 201, or a retryable 503 while etcd refuses reconfiguration; got %s", r))
	})
	var added struct {
		Member              member `json:"member"`
		InitialCluster      string `json:"initial_cluster"`
		InitialClusterState string `json:"initial_cluster_state"`
	}
	if err := r.decode(&added); err != nil {
		t.Fatal(err)
	}
	peer4 := "http://" + n4.peerAddr
	if m := added.Member; m.NodeID != 4 || m.Name != "node-4" || !m.IsLearner || len(m.PeerURLs) != 1 || m.PeerURLs[0] != peer4 {
		t.Errorf("added member is %+v, want node 4 (node-4) as a learner at %s", m, peer4)
	}
	if added.InitialClusterState != "existing" {
		t.Errorf("initial_cluster_state %q, want existing", added.InitialClusterState)
	}
	for _, nd := range c.all() {
		if want := fmt.Sprintf("node-%d=http://%s", nd.id, nd.peerAddr); !strings.Contains(added.InitialCluster, want) {
			t.Errorf("initial_cluster %q lacks %q", added.InitialCluster, want)
		}
	}

	n4.initialCluster, n4.clusterState = added.InitialCluster, added.InitialClusterState
	c.start(t, n4)
	c.waitReady(t, n4, 60*time.Second)

	// The leader promotes the learner once it has caught up.
	eventually(t, 30*time.Second, "node 4 becomes a started voting member", func() error {
		ms, err := c.members(n1)
		if err != nil {
			return err
		}
		for _, m := range ms {
			if m.NodeID == 4 {
				if m.IsLearner || !m.Started || m.Name != "node-4" {
					return fmt.Errorf("node 4 is %+v", m)
				}
				return nil
			}
		}
		return fmt.Errorf("node 4 is not in %+v", ms)
	})
	c.waitValue(t, n4, "e2e/addmember/before", "serializable", "written-before-join", 20*time.Second)
	if got := c.get(t, n4, "e2e/addmember/before", ""); got != "written-before-join" {
		t.Fatalf("linearizable read on node 4: %q", got)
	}
	c.waitLeader(t, c.all(), 20*time.Second)

	r = c.rest(t, n1, http.MethodDelete, "/api/v1/cluster/members/4", nil)
	if r.status != http.StatusOK {
		t.Fatalf("remove member 4: %s", r)
	}
	var removed member
	if err := r.decode(&removed); err != nil || removed.NodeID != 4 {
		t.Errorf("remove answered %+v (%v), want node 4", removed, err)
	}
	// A removed member has nothing left to serve (etcd stops it): it must
	// not go on telling load balancers it is healthy. Either the process
	// exits, or its /health stops answering 200 "ok".
	eventually(t, 15*time.Second, "removed node 4 exits or stops reporting healthy", func() error {
		if !n4.running() {
			return nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		hr, err := call(ctx, c.http, n4, http.MethodGet, "/health", nil)
		if err != nil || hr.status != http.StatusOK {
			return nil
		}
		return fmt.Errorf("node 4 still runs and its /health answers %s", hr)
	})
	if !n4.running() {
		t.Logf("node 4 exited on its own after removal: %v", n4.current().state)
	} else {
		// Any exit code will do: a removed member may well call its end a failure.
		t.Logf("node 4 still runs after its removal; stopped it, SIGTERM exit code %d", c.stop(t, n4))
	}

	eventually(t, 20*time.Second, "members list without node 4", func() error {
		ms, err := c.members(n2)
		if err != nil {
			return err
		}
		if len(ms) != 3 {
			return fmt.Errorf("%d members: %+v", len(ms), ms)
		}
		for _, m := range ms {
			if m.NodeID == 4 || m.IsLearner {
				return fmt.Errorf("members: %+v", ms)
			}
		}
		return nil
	})
	c.put(t, n2, "e2e/addmember/after", "written-after-removal")
	if got := c.get(t, n1, "e2e/addmember/after", ""); got != "written-after-removal" {
		t.Fatalf("read after removal: %q", got)
	}
}

// members is GET /api/v1/cluster/members on nd.
func (c *cluster) members(nd *node) ([]member, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := call(ctx, c.http, nd, http.MethodGet, "/api/v1/cluster/members", nil)
	if err != nil {
		return nil, err
	}
	if r.status != http.StatusOK {
		return nil, fmt.Errorf("%s", r)
	}
	var list struct {
		Members []member `json:"members"`
	}
	if err := r.decode(&list); err != nil {
		return nil, err
	}
	return list.Members, nil
}

// TestClusterNoQuorum proves that a node that has lost quorum fails fast
// and honestly instead of hanging: requests that need quorum answer 503
// UNAVAILABLE within the request timeout, /health turns 503 "unavailable",
// status and serializable reads still answer, and once the others are
// back, writes work again.
func TestClusterNoQuorum(t *testing.T) {
	c := startCluster(t, 3)
	leader := c.waitLeader(t, c.all(), 30*time.Second)
	c.put(t, leader, "e2e/noquorum/before", "written-with-quorum")
	// The survivor must read the value from its own state below; make sure
	// it has applied it before the others go.
	followers := c.except(leader)
	survivor, other := followers[0], followers[1]
	c.waitValue(t, survivor, "e2e/noquorum/before", "serializable", "written-with-quorum", 10*time.Second)

	c.kill(t, leader)
	c.kill(t, other)
	t.Logf("killed node %d (leader) and node %d; node %d survives alone", leader.id, other.id, survivor.id)

	// Bound: the request timeout plus a margin for a loaded machine. The
	// client waits far longer, so a hang shows as a failed bound.
	const margin = 2 * time.Second
	hc := &http.Client{Timeout: 4 * (requestTimeout + margin)}
	quorumRequests := []struct {
		name, method, path string
		body               any
	}{
		{"PUT", http.MethodPost, kvPath("e2e/noquorum/write") + "/put", map[string]string{"value": "no-quorum"}},
		{"linearizable GET", http.MethodGet, kvPath("e2e/noquorum/before"), nil},
		{"DELETE", http.MethodPost, kvPath("e2e/noquorum/before") + "/delete", nil},
	}
	t.Run("quorum requests fail fast", func(t *testing.T) {
		for _, q := range quorumRequests {
			t.Run(q.name, func(t *testing.T) {
				t.Parallel()
				start := time.Now()
				r, err := call(context.Background(), hc, survivor, q.method, q.path, q.body)
				took := time.Since(start)
				if err != nil {
					t.Fatalf("after %v: %v", took, err)
				}
				if r.status != http.StatusServiceUnavailable || r.errCode() != "UNAVAILABLE" {
					t.Errorf("answered %s, want 503 UNAVAILABLE", r)
				}
				if took > requestTimeout+margin {
					t.Errorf("answered after %v, want within %v", took, requestTimeout+margin)
				}
				t.Logf("%s answered %d %s in %v", q.name, r.status, r.errCode(), took.Round(time.Millisecond))
			})
		}
	})

	eventually(t, 15*time.Second, "/health turns 503 unavailable", func() error {
		r, err := call(context.Background(), c.http, survivor, http.MethodGet, "/health", nil)
		if err != nil {
			return err
		}
		var h struct {
			Status string            `json:"status"`
			Checks map[string]string `json:"checks"`
		}
		if err := r.decode(&h); err != nil {
			return err
		}
		if r.status != http.StatusServiceUnavailable || h.Status != "unavailable" {
			return fmt.Errorf("%s", r)
		}
		return nil
	})
	st, err := c.statusOf(context.Background(), survivor)
	if err != nil {
		t.Fatalf("status without quorum: %v", err)
	}
	if st.IsLeader || st.Role == "leader" {
		t.Errorf("lone survivor claims to lead: %+v", st)
	}
	if got := c.get(t, survivor, "e2e/noquorum/before", "serializable"); got != "written-with-quorum" {
		t.Errorf("serializable read without quorum: %q", got)
	}

	c.start(t, leader)
	c.start(t, other)
	c.waitReady(t, leader, 60*time.Second)
	c.waitReady(t, other, 60*time.Second)
	c.waitLeader(t, c.all(), 30*time.Second)
	c.put(t, survivor, "e2e/noquorum/after", "written-after-recovery")
	for _, nd := range c.all() {
		if got := c.get(t, nd, "e2e/noquorum/after", ""); got != "written-after-recovery" {
			t.Errorf("node %d reads %q after recovery", nd.id, got)
		}
	}
}
