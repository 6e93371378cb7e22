package e2e

// Black-box tests of FlareDB groups: `photon serve flaredb` processes on
// loopback (a write load through every node, kill -9 of the leader in the
// middle of it, a restart on the same data dir; the REST address a leader
// publishes) — observed only through the REST API, as an operator would.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/photoncloud/photon/internal/testutil"
)

// fdbNode is one FlareDB node: the identity its flags give it (kept across
// restarts: same data dir, same ports) and its current process.
type fdbNode struct {
	id                 string
	dataDir            string
	httpAddr, raftAddr string
	logPath            string // stdout and stderr of every run, appended

	mu   sync.Mutex
	proc *process
	runs int
}

func (nd *fdbNode) current() *process {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.proc
}

// fdbCluster is the nodes of one test. Each node runs in a process group
// of its own; every group still running is killed when the test ends, and
// when the test failed the tail of each node's log is printed.
type fdbCluster struct {
	t     *testing.T
	bin   string
	dir   string
	hc    *http.Client
	nodes []*fdbNode
}

func newFDBCluster(t *testing.T, n int) *fdbCluster {
	t.Helper()
	c := &fdbCluster{
		t:   t,
		bin: testutil.PhotonBinary(t),
		dir: t.TempDir(), // removed after the cleanup below has killed everything
		hc: &http.Client{
			Timeout:   20 * time.Second, // above the nodes' 10s request timeout: a hang shows as a client timeout
			Transport: &http.Transport{MaxIdleConnsPerHost: 64, DialContext: (&net.Dialer{Timeout: 2 * time.Second}).DialContext},
		},
	}
	t.Cleanup(c.cleanup)
	for i := 1; i <= n; i++ {
		nd := &fdbNode{
			id:       fmt.Sprintf("n%d", i),
			dataDir:  filepath.Join(c.dir, fmt.Sprintf("n%d", i)),
			httpAddr: testutil.FreeAddr(t),
			raftAddr: testutil.FreeAddr(t),
			logPath:  filepath.Join(c.dir, fmt.Sprintf("n%d.log", i)),
		}
		c.nodes = append(c.nodes, nd)
	}
	return c
}

// start runs nd (`photon serve flaredb` with args added) and waits for the
// line it prints once it serves.
func (c *fdbCluster) start(t *testing.T, nd *fdbNode, args ...string) {
	t.Helper()
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.proc != nil && nd.proc.running() {
		t.Fatalf("node %s is already running", nd.id)
	}
	logf, err := os.OpenFile(nd.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	nd.runs++
	fmt.Fprintf(logf, "===== run %d of node %s (%s) =====\n", nd.runs, nd.id, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(c.bin, append([]string{"serve", "flaredb",
		"--node-id", nd.id,
		"--data-dir", nd.dataDir,
		"--http-addr", nd.httpAddr,
		"--raft-addr", nd.raftAddr,
	}, args...)...)
	cmd.Env = cleanEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &process{cmd: cmd, ready: make(chan struct{}), done: make(chan struct{})}
	cmd.Stdout = &readyWriter{want: []byte("FlareDB node " + nd.id + ": "), ready: p.ready, log: logf}
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start node %s: %v", nd.id, err)
	}
	go func() {
		_ = cmd.Wait()
		p.state = cmd.ProcessState
		fmt.Fprintf(logf, "===== node %s exited: %v =====\n", nd.id, cmd.ProcessState)
		logf.Close()
		close(p.done)
	}()
	nd.proc = p
	select {
	case <-p.ready:
	case <-p.done:
		t.Fatalf("node %s exited before serving: %v\n%s", nd.id, p.state, tail(nd.logPath, 4<<10))
	case <-time.After(30 * time.Second):
		t.Fatalf("node %s did not serve within 30s\n%s", nd.id, tail(nd.logPath, 4<<10))
	}
}

// kill sends SIGKILL to nd's process group (kill -9) and waits until the
// process is gone.
func (c *fdbCluster) kill(t *testing.T, nd *fdbNode) {
	t.Helper()
	p := nd.current()
	if p == nil || !p.running() {
		t.Fatalf("node %s is not running", nd.id)
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("node %s survived SIGKILL for 10s", nd.id)
	}
}

func (c *fdbCluster) cleanup() {
	for _, nd := range c.nodes {
		if p := nd.current(); p != nil && p.running() {
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				c.t.Errorf("node %s (pid %d) survived SIGKILL", nd.id, p.cmd.Process.Pid)
			}
		}
	}
	c.hc.CloseIdleConnections()
	if !c.t.Failed() {
		return
	}
	for _, nd := range c.nodes {
		c.t.Logf("---- tail of node %s's output (%s) ----\n%s", nd.id, nd.logPath, tail(nd.logPath, 16<<10))
	}
}

// tail is the last max bytes of a file.
func tail(path string, max int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > max {
		b = append([]byte("…(earlier output cut)…\n"), b[len(b)-max:]...)
	}
	return string(b)
}

// call sends one REST request to nd; every answer must be the envelope.
func (c *fdbCluster) call(ctx context.Context, nd *fdbNode, method, path string, body any) (response, error) {
	return callAddr(ctx, c.hc, nd.httpAddr, "", method, path, body)
}

// ok sends one request that must answer 200 at once, and decodes its data.
func (c *fdbCluster) ok(t *testing.T, nd *fdbNode, method, path string, body, v any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := c.call(ctx, nd, method, path, body)
	if err != nil {
		t.Fatalf("node %s: %s %s: %v", nd.id, method, path, err)
	}
	if r.status != http.StatusOK {
		t.Fatalf("node %s: %s %s: %s", nd.id, method, path, r)
	}
	if v != nil {
		if err := r.decode(v); err != nil {
			t.Fatalf("node %s: %s %s: %v", nd.id, method, path, err)
		}
	}
}

// fdbStatus is GET /api/v1/cluster's data.
type fdbStatus struct {
	NodeID       string `json:"node_id"`
	Role         string `json:"role"`
	IsLeader     bool   `json:"is_leader"`
	LeaderID     string `json:"leader_id"`
	LeaderHTTP   string `json:"leader_http"`
	Term         uint64 `json:"term"`
	AppliedIndex uint64 `json:"applied_index"`
	CommitIndex  uint64 `json:"commit_index"`
	Members      []struct {
		ID       string `json:"id"`
		RaftAddr string `json:"raft_addr"`
		HTTPAddr string `json:"http_addr"`
	} `json:"members"`
}

func (c *fdbCluster) status(nd *fdbNode) (fdbStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	r, err := c.call(ctx, nd, http.MethodGet, "/api/v1/cluster", nil)
	if err != nil {
		return fdbStatus{}, err
	}
	if r.status != http.StatusOK {
		return fdbStatus{}, fmt.Errorf("node %s: %s", nd.id, r)
	}
	var st fdbStatus
	if err := r.decode(&st); err != nil {
		return fdbStatus{}, err
	}
	if st.NodeID != nd.id {
		return st, fmt.Errorf("node %s's status says node_id %q", nd.id, st.NodeID)
	}
	return st, nil
}

// agreed checks once that every node in nodes sees every node of the
// cluster as a member (with the Raft address it was given) and names the
// same leader, which is among nodes and is the only one that says it leads;
// it returns the leader and each node's status.
func (c *fdbCluster) agreed(nodes []*fdbNode) (*fdbNode, map[string]fdbStatus, error) {
	sts := map[string]fdbStatus{}
	lead := ""
	leaders := 0
	for _, nd := range nodes {
		st, err := c.status(nd)
		if err != nil {
			return nil, nil, err
		}
		sts[nd.id] = st
		if len(st.Members) != len(c.nodes) {
			return nil, nil, fmt.Errorf("node %s sees %d members: %+v", nd.id, len(st.Members), st.Members)
		}
		for _, m := range st.Members {
			if want := c.byID(m.ID); want == nil || want.raftAddr != m.RaftAddr {
				return nil, nil, fmt.Errorf("node %s sees member %+v", nd.id, m)
			}
		}
		switch {
		case st.LeaderID == "":
			return nil, nil, fmt.Errorf("node %s knows no leader (role %s, term %d)", nd.id, st.Role, st.Term)
		case lead != "" && st.LeaderID != lead:
			return nil, nil, fmt.Errorf("node %s says %s leads, another node says %s", nd.id, st.LeaderID, lead)
		}
		lead = st.LeaderID
		if st.IsLeader != (st.Role == "leader") || st.IsLeader != (st.LeaderID == nd.id) {
			return nil, nil, fmt.Errorf("node %s: is_leader %v, role %q, leader_id %q", nd.id, st.IsLeader, st.Role, st.LeaderID)
		}
		if st.IsLeader {
			leaders++
		}
	}
	leader := c.byID(lead)
	if leaders != 1 || !containsNode(nodes, leader) {
		return nil, nil, fmt.Errorf("%d of the nodes asked say they lead; all say %s", leaders, lead)
	}
	return leader, sts, nil
}

// waitAgreed polls agreed until it holds.
func (c *fdbCluster) waitAgreed(t *testing.T, nodes []*fdbNode, timeout time.Duration, what string) (*fdbNode, map[string]fdbStatus) {
	t.Helper()
	var leader *fdbNode
	var sts map[string]fdbStatus
	eventually(t, timeout, what, func() error {
		var err error
		leader, sts, err = c.agreed(nodes)
		return err
	})
	return leader, sts
}

// wantLeaderHTTP checks that every node names addr as the leader's REST
// address (where followers forward to), once the leader has published it.
func wantLeaderHTTP(t *testing.T, c *fdbCluster, leader *fdbNode, addr string) {
	t.Helper()
	eventually(t, 5*time.Second, "every node knows the leader's REST address", func() error {
		for _, nd := range c.nodes {
			st, err := c.status(nd)
			if err != nil {
				return err
			}
			if st.LeaderID != leader.id || st.LeaderHTTP == "" {
				return fmt.Errorf("node %s: leader %q at %q", nd.id, st.LeaderID, st.LeaderHTTP)
			}
			if st.LeaderHTTP != addr {
				return permanent(fmt.Errorf("node %s says leader %s's REST address is %q, want %q", nd.id, leader.id, st.LeaderHTTP, addr))
			}
		}
		return nil
	})
}

// waitApplied waits until every node has applied the leader's log up to
// its commit index as it is now (nothing writes meanwhile).
func (c *fdbCluster) waitApplied(t *testing.T, timeout time.Duration) {
	t.Helper()
	leader, sts := c.waitAgreed(t, c.nodes, timeout, "every node agrees on the leader")
	target := sts[leader.id].CommitIndex
	eventually(t, timeout, fmt.Sprintf("every node applies up to the leader's commit index %d", target), func() error {
		for _, nd := range c.nodes {
			st, err := c.status(nd)
			if err != nil {
				return err
			}
			if st.AppliedIndex < target {
				return fmt.Errorf("node %s applied %d (commit %d, role %s, leader %q)", nd.id, st.AppliedIndex, st.CommitIndex, st.Role, st.LeaderID)
			}
		}
		return nil
	})
}

func (c *fdbCluster) byID(id string) *fdbNode {
	for _, nd := range c.nodes {
		if nd.id == id {
			return nd
		}
	}
	return nil
}

func (c *fdbCluster) except(skip *fdbNode) []*fdbNode {
	var out []*fdbNode
	for _, nd := range c.nodes {
		if nd != skip {
			out = append(out, nd)
		}
	}
	return out
}

func containsNode(nodes []*fdbNode, nd *fdbNode) bool {
	for _, n := range nodes {
		if n == nd {
			return true
		}
	}
	return false
}

// ---- the write load ----

const (
	fdbTable     = "load"
	fdbNamespace = "load"
	fdbInsert    = "INSERT INTO load (id, v) VALUES (?, ?)"
)

// fdbWrite is one write of the load (or of the test's own steps), what was
// sent and what came back.
type fdbWrite struct {
	kv         bool   // a KV put (else an SQL INSERT)
	id         int64  // INSERT: the row's id
	key, value string // KV: the key; both: the value
	node       string // where it was sent
	sent, recv time.Time
	status     int    // 0: no answer
	code, msg  string // the error envelope's, or the transport error
	// indeterminate: the error says the write may have been applied.
	indeterminate bool
}

func (w fdbWrite) String() string {
	what := fmt.Sprintf("INSERT id %d", w.id)
	if w.kv {
		what = "PUT kv " + w.key
	}
	if w.indeterminate {
		what += " (indeterminate)"
	}
	return fmt.Sprintf("%s via %s: %d %s %s", what, w.node, w.status, w.code, w.msg)
}

// fdbLoad records every write sent and its outcome.
type fdbLoad struct {
	c *fdbCluster

	targets atomic.Pointer[[]*fdbNode] // the nodes writes go to, round-robin
	killAt  atomic.Pointer[time.Time]  // when the leader was killed (nil before)

	mu     sync.Mutex
	writes []fdbWrite
	// firstAfterKill is the first acknowledgement of a write sent after
	// the kill: the moment writes succeeded again.
	firstAfterKill time.Time
}

// send sends one write to nd and records it.
func (l *fdbLoad) send(ctx context.Context, nd *fdbNode, w fdbWrite) fdbWrite {
	w.node = nd.id
	var method, path string
	var body any
	if w.kv {
		method, path, body = http.MethodPut, "/api/v1/kv/"+w.key, map[string]string{"value": w.value, "namespace": fdbNamespace}
	} else {
		method, path, body = http.MethodPost, "/api/v1/sql", map[string]any{"query": fdbInsert, "params": []any{w.id, w.value}}
	}
	w.sent = time.Now()
	r, err := l.c.call(ctx, nd, method, path, body)
	w.recv = time.Now()
	w.status = r.status
	switch {
	case err != nil && r.status == 0:
		w.msg = err.Error()
	case err != nil:
		w.code, w.msg = "NOT_AN_ENVELOPE", err.Error()
	case r.env.Error != nil:
		w.code, w.msg = r.env.Error.Code, r.env.Error.Message
		w.indeterminate = r.env.Error.Details["indeterminate"] == true
	case r.status == http.StatusOK:
		// The answer must be the write's own.
		if w.kv {
			var kv struct{ Key, Value, Namespace string }
			if err := r.decode(&kv); err != nil || kv.Key != w.key || kv.Value != w.value || kv.Namespace != fdbNamespace {
				w.code, w.msg = "WRONG_ANSWER", string(r.body)
			}
		} else {
			var res struct {
				RowsAffected int64 `json:"rows_affected"`
				LastInsertID int64 `json:"last_insert_id"`
			}
			if err := r.decode(&res); err != nil || res.RowsAffected != 1 || res.LastInsertID != w.id {
				w.code, w.msg = "WRONG_ANSWER", string(r.body)
			}
		}
	}
	l.mu.Lock()
	l.writes = append(l.writes, w)
	if k := l.killAt.Load(); k != nil && w.acked() && w.sent.After(*k) && l.firstAfterKill.IsZero() {
		l.firstAfterKill = w.recv
	}
	l.mu.Unlock()
	return w
}

// acked reports whether the write was acknowledged.
func (w fdbWrite) acked() bool { return w.status == http.StatusOK && w.code == "" }

// run is one client of the load: INSERTs of ids of its own, and every
// fourth write a KV put of a key of its own, each sent to the next node
// in turn, until ctx ends.
func (l *fdbLoad) run(ctx context.Context, g int) {
	for i := 0; ctx.Err() == nil; i++ {
		targets := *l.targets.Load()
		nd := targets[(g+i)%len(targets)]
		w := fdbWrite{id: int64(g+1)*1_000_000 + int64(i), value: fmt.Sprintf("g%d-i%d", g, i)}
		if i%4 == 3 {
			w = fdbWrite{kv: true, key: fmt.Sprintf("k-%02d-%07d", g, i), value: w.value}
		}
		if w = l.send(ctx, nd, w); !w.acked() && ctx.Err() == nil {
			time.Sleep(20 * time.Millisecond) // as a client would before retrying: do not spin
		}
	}
}

func (l *fdbLoad) snapshot() []fdbWrite {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]fdbWrite(nil), l.writes...)
}

func (l *fdbLoad) ackCount() int {
	n := 0
	for _, w := range l.snapshot() {
		if w.acked() {
			n++
		}
	}
	return n
}

// ---- the replicas' contents ----

// fdbContents is what one node holds: the load table's rows and the load
// namespace's pairs, read locally (consistency=stale).
type fdbContents struct {
	tables json.RawMessage
	rows   map[int64]string
	order  []int64
	kv     map[string]string
	keys   []string
}

func (c *fdbCluster) contents(t *testing.T, nd *fdbNode) fdbContents {
	t.Helper()
	out := fdbContents{rows: map[int64]string{}, kv: map[string]string{}}
	var tables struct {
		Tables json.RawMessage `json:"tables"`
	}
	c.ok(t, nd, http.MethodGet, "/api/v1/tables?consistency=stale", nil, &tables)
	out.tables = tables.Tables
	var q struct {
		Columns []string `json:"columns"`
		Rows    [][]any  `json:"rows"`
	}
	c.ok(t, nd, http.MethodPost, "/api/v1/sql?consistency=stale",
		map[string]any{"query": "SELECT id, v FROM " + fdbTable + " ORDER BY id"}, &q)
	if !reflect.DeepEqual(q.Columns, []string{"id", "v"}) {
		t.Fatalf("node %s: columns %v", nd.id, q.Columns)
	}
	for _, r := range q.Rows {
		id, ok1 := r[0].(float64)
		v, ok2 := r[1].(string)
		if len(r) != 2 || !ok1 || !ok2 || id != float64(int64(id)) {
			t.Fatalf("node %s: row %v", nd.id, r)
		}
		if _, dup := out.rows[int64(id)]; dup {
			t.Fatalf("node %s: id %d twice", nd.id, int64(id))
		}
		out.rows[int64(id)] = v
		out.order = append(out.order, int64(id))
	}
	token := ""
	for page := 0; ; page++ {
		if page > 1000 {
			t.Fatalf("node %s: the scan does not end", nd.id)
		}
		path := "/api/v1/scan?namespace=" + fdbNamespace + "&consistency=stale&limit=1000"
		if token != "" {
			path += "&page_token=" + url.QueryEscape(token)
		}
		var sp struct {
			Items []struct {
				Key, Value, Namespace string
			} `json:"items"`
			NextPageToken string `json:"next_page_token"`
		}
		c.ok(t, nd, http.MethodGet, path, nil, &sp)
		for _, it := range sp.Items {
			if it.Namespace != fdbNamespace {
				t.Fatalf("node %s: scan of %s returned %+v", nd.id, fdbNamespace, it)
			}
			if _, dup := out.kv[it.Key]; dup {
				t.Fatalf("node %s: key %s twice in the scan", nd.id, it.Key)
			}
			out.kv[it.Key] = it.Value
			out.keys = append(out.keys, it.Key)
		}
		if sp.NextPageToken == "" {
			break
		}
		token = sp.NextPageToken
	}
	return out
}

// TestFlareDBClusterLeaderKill runs a write load through all three nodes of
// a group (followers forward to the leader), kills the leader with kill -9
// in the middle of it and keeps writing through the two survivors: a new
// leader must take writes within 10s, no write sent to a follower while a
// leader exists may fail, and after the killed node restarts on its data
// dir every acknowledged write is on every node and the three replicas
// hold exactly the same rows and keys.
func TestFlareDBClusterLeaderKill(t *testing.T) {
	c := newFDBCluster(t, 3) // builds the binary
	begin := time.Now()
	n1 := c.nodes[0]
	c.start(t, n1, "--bootstrap")
	for _, nd := range c.nodes[1:] {
		c.start(t, nd, "--join", "http://"+n1.httpAddr)
	}
	leader, sts := c.waitAgreed(t, c.nodes, 30*time.Second, "three members and one leader all nodes agree on")
	formedTerm := sts[leader.id].Term
	t.Logf("group formed in %v; %s leads in term %d", time.Since(begin).Round(time.Millisecond), leader.id, formedTerm)
	wantLeaderHTTP(t, c, leader, leader.httpAddr)

	followers := c.except(leader)
	c.ok(t, followers[0], http.MethodPost, "/api/v1/sql",
		map[string]any{"query": "CREATE TABLE " + fdbTable + " (id INTEGER PRIMARY KEY, v TEXT NOT NULL)"}, nil)

	l := &fdbLoad{c: c}
	// Writes sent to followers while the leader is up are forwarded: each
	// must succeed the first time.
	for i, nd := range followers {
		for j := 0; j < 5; j++ {
			w := l.send(context.Background(), nd, fdbWrite{id: int64(100 + 10*i + j), value: fmt.Sprintf("f%s-%d", nd.id, j)})
			if !w.acked() {
				t.Fatalf("a write sent to follower %s while %s leads failed: %s", nd.id, leader.id, w)
			}
		}
		w := l.send(context.Background(), nd, fdbWrite{kv: true, key: "f-" + nd.id, value: "via " + nd.id})
		if !w.acked() {
			t.Fatalf("a KV put sent to follower %s while %s leads failed: %s", nd.id, leader.id, w)
		}
	}

	// The load: 8 clients, each writing to every node in turn.
	all := append([]*fdbNode(nil), c.nodes...)
	l.targets.Store(&all)
	ctx, stopLoad := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { stopLoad(); wg.Wait() }) // before the nodes are killed
	const clients = 8
	for g := 0; g < clients; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.run(ctx, g)
		}()
	}
	loadStart := time.Now()
	eventually(t, 15*time.Second, "the load gets 200 writes acknowledged", func() error {
		if n := l.ackCount(); n < 200 || time.Since(loadStart) < 1500*time.Millisecond {
			return fmt.Errorf("%d acknowledged", n)
		}
		return nil
	})

	// kill -9 the leader, as the group sees it now.
	leader, sts = c.waitAgreed(t, c.nodes, 5*time.Second, "one leader before the kill")
	// An election before the kill (a leader that lost its lease on a
	// busy machine) would make failures before it legitimate: the term
	// tells whether one happened.
	stableBeforeKill := sts[leader.id].Term == formedTerm
	survivors := c.except(leader)
	l.targets.Store(&survivors)
	killAt := time.Now()
	l.killAt.Store(&killAt)
	c.kill(t, leader)
	t.Logf("killed leader %s after %v of load (%d writes sent, %d acknowledged)",
		leader.id, killAt.Sub(loadStart).Round(time.Millisecond), len(l.snapshot()), l.ackCount())

	// Writes must succeed again within 10s of the kill.
	eventually(t, 10*time.Second, "a write sent after the kill acknowledged", func() error {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.firstAfterKill.IsZero() {
			return errors.New("none yet")
		}
		return nil
	})
	l.mu.Lock()
	recovered := l.firstAfterKill
	l.mu.Unlock()
	t.Logf("writes acknowledged again %v after the kill", recovered.Sub(killAt).Round(time.Millisecond))
	newLeader, sts := c.waitAgreed(t, survivors, 5*time.Second, "the survivors agree on a new leader")
	recoveredTerm := sts[newLeader.id].Term
	// Keep writing to the survivors a while under the new leader; a
	// further election meanwhile (the term tells) would make 503s after
	// the first one's window legitimate.
	time.Sleep(2 * time.Second)
	newLeader, sts = c.waitAgreed(t, survivors, 10*time.Second, "the survivors still agree on a leader")
	stopAt := time.Now()
	stopLoad()
	wg.Wait()
	stableAfter := sts[newLeader.id].Term == recoveredTerm
	t.Logf("%s leads after the kill, in term %d", newLeader.id, sts[newLeader.id].Term)

	// Restart the killed node on its data dir (it has state: no flags).
	restartAt := time.Now()
	c.start(t, leader)
	c.waitApplied(t, 30*time.Second)
	t.Logf("%s restarted and caught up in %v", leader.id, time.Since(restartAt).Round(time.Millisecond))
	// The restarted node takes writes (it forwards them to the leader).
	for _, w := range []fdbWrite{{id: 42, value: "after restart"}, {kv: true, key: "restarted", value: leader.id}} {
		if w = l.send(context.Background(), leader, w); !w.acked() {
			t.Errorf("a write sent to the restarted %s failed: %s", leader.id, w)
		}
	}
	c.waitApplied(t, 30*time.Second)

	// Classify every write by when it was answered: before the kill,
	// nothing but success; after it, 503s (and lost connections to the
	// killed node) only in the election window; never anything else.
	writes := l.snapshot()
	attemptedRows, attemptedKV := map[int64]string{}, map[string]string{}
	ackedRows, ackedKV := map[int64]string{}, map[string]string{}
	var unavailable []fdbWrite
	grace := recovered.Add(2 * time.Second)
	for _, w := range writes {
		if w.kv {
			attemptedKV[w.key] = w.value
		} else {
			attemptedRows[w.id] = w.value
		}
		if w.acked() {
			if w.kv {
				ackedKV[w.key] = w.value
			} else {
				ackedRows[w.id] = w.value
			}
			continue
		}
		switch {
		case w.recv.Before(killAt) && !stableBeforeKill && w.status == http.StatusServiceUnavailable:
			t.Logf("before the kill, during an election (term %d to %d): %s", formedTerm, recoveredTerm, w)
		case w.recv.Before(killAt):
			t.Errorf("before the kill, with %s leading: %s", leader.id, w)
		case w.status == http.StatusServiceUnavailable && w.code == "UNAVAILABLE":
			unavailable = append(unavailable, w)
			switch {
			case !w.sent.After(grace):
			case stableAfter:
				t.Errorf("503 for a write sent %v after writes were acknowledged again (%s leads): %s",
					w.sent.Sub(recovered).Round(time.Millisecond), newLeader.id, w)
			default:
				t.Logf("503 for a write sent %v after writes were acknowledged again, with a further election since: %s",
					w.sent.Sub(recovered).Round(time.Millisecond), w)
			}
		case w.status == 0 && w.node == leader.id:
			// In flight to the killed node, or sent to it by a client
			// that had not yet seen it go: no answer, not acknowledged.
		case w.status == 0 && !w.recv.Before(stopAt):
			// Cut off when the load stopped.
		default:
			t.Errorf("after the kill: %s (sent %v after it)", w, w.sent.Sub(killAt).Round(time.Millisecond))
		}
	}
	var last time.Duration
	for i, w := range unavailable {
		if d := w.recv.Sub(killAt); d > last {
			last = d
		}
		if i < 10 {
			t.Logf("503 sent %v, answered %v after the kill: %s", w.sent.Sub(killAt).Round(time.Millisecond),
				w.recv.Sub(killAt).Round(time.Millisecond), w)
		}
	}
	t.Logf("%d writes sent, %d rows and %d keys acknowledged; %d answered 503, the last %v after the kill",
		len(writes), len(ackedRows), len(ackedKV), len(unavailable), last.Round(time.Millisecond))

	// Every replica holds exactly the same, every acknowledged write among
	// it, and nothing that was never sent.
	var ref fdbContents
	for i, nd := range c.nodes {
		got := c.contents(t, nd)
		if i == 0 {
			ref = got
			continue
		}
		if !reflect.DeepEqual(got.order, ref.order) || !reflect.DeepEqual(got.rows, ref.rows) {
			t.Errorf("node %s's table (%d rows) differs from node %s's (%d rows): %s", nd.id, len(got.rows),
				c.nodes[0].id, len(ref.rows), diffRows(ref.rows, got.rows))
		}
		if !reflect.DeepEqual(got.keys, ref.keys) || !reflect.DeepEqual(got.kv, ref.kv) {
			t.Errorf("node %s's KV scan (%d keys) differs from node %s's (%d keys)", nd.id, len(got.kv), c.nodes[0].id, len(ref.kv))
		}
		if string(got.tables) != string(ref.tables) {
			t.Errorf("node %s lists tables %s, node %s %s", nd.id, got.tables, c.nodes[0].id, ref.tables)
		}
	}
	// Linearizable reads through every node (followers forward them)
	// agree with the replicas.
	var sum int64
	for _, id := range ref.order {
		sum += id
	}
	for _, nd := range c.nodes {
		var q struct {
			Rows [][]any `json:"rows"`
		}
		c.ok(t, nd, http.MethodPost, "/api/v1/sql", map[string]any{"query": "SELECT count(*), sum(id) FROM " + fdbTable}, &q)
		if len(q.Rows) != 1 || fmt.Sprint(q.Rows[0]) != fmt.Sprint([]any{float64(len(ref.order)), float64(sum)}) {
			t.Errorf("node %s: linearizable count and sum %v, the replicas hold %d rows summing to %d", nd.id, q.Rows, len(ref.order), sum)
		}
		var kv struct{ Value string }
		c.ok(t, nd, http.MethodGet, "/api/v1/kv/restarted?namespace="+fdbNamespace, nil, &kv)
		if kv.Value != leader.id {
			t.Errorf("node %s: linearizable get of restarted = %q, want %q", nd.id, kv.Value, leader.id)
		}
	}
	var lost []string
	for id, v := range ackedRows {
		if got, ok := ref.rows[id]; !ok || got != v {
			lost = append(lost, fmt.Sprintf("row %d=%q (has %q, %v)", id, v, got, ok))
		}
	}
	for k, v := range ackedKV {
		if got, ok := ref.kv[k]; !ok || got != v {
			lost = append(lost, fmt.Sprintf("key %s=%q (has %q, %v)", k, v, got, ok))
		}
	}
	sort.Strings(lost)
	if len(lost) > 0 {
		t.Errorf("%d acknowledged writes lost, e.g. %s", len(lost), strings.Join(lost[:min(10, len(lost))], "; "))
	}
	for id, v := range ref.rows {
		if sent, ok := attemptedRows[id]; !ok || sent != v {
			t.Errorf("row %d=%q was never sent (sent: %q, %v)", id, v, sent, ok)
		}
	}
	for k, v := range ref.kv {
		if sent, ok := attemptedKV[k]; !ok || sent != v {
			t.Errorf("key %s=%q was never sent (sent: %q, %v)", k, v, sent, ok)
		}
	}
	// A write not acknowledged may have been applied only if no answer
	// came or the error said so (details.indeterminate): any other error
	// tells the client nothing was done, and a client retrying an INSERT
	// on "retry shortly" would then hit its own row.
	applied := map[string]int{}
	for _, w := range writes {
		if w.acked() {
			continue
		}
		_, ok := ref.rows[w.id]
		if w.kv {
			_, ok = ref.kv[w.key]
		}
		if ok {
			applied[fmt.Sprintf("%d %s indeterminate=%v", w.status, w.code, w.indeterminate)]++
			if w.status != 0 && !w.indeterminate {
				t.Errorf("applied though answered with an error that does not say it may have been: %s (sent %v after the kill)",
					w, w.sent.Sub(killAt).Round(time.Millisecond))
			}
		}
	}
	t.Logf("unacknowledged writes that were applied, by answer (0: none): %v", applied)
	t.Logf("each replica holds %d rows and %d keys (%d rows and %d keys acknowledged); test took %v",
		len(ref.rows), len(ref.kv), len(ackedRows), len(ackedKV), time.Since(begin).Round(time.Millisecond))
}

// diffRows describes a few differences between two tables.
func diffRows(a, b map[int64]string) string {
	var out []string
	for id, v := range a {
		if w, ok := b[id]; !ok || w != v {
			out = append(out, fmt.Sprintf("%d: %q vs %q (%v)", id, v, w, ok))
		}
	}
	for id, w := range b {
		if _, ok := a[id]; !ok {
			out = append(out, fmt.Sprintf("%d: missing vs %q", id, w))
		}
	}
	sort.Strings(out)
	return strings.Join(out[:min(10, len(out))], "; ")
}

// TestFlareDBClusterHTTPAdvertise checks that a leader publishes the REST address
// --http-advertise gives (what followers forward to), not its listen
// address: on a node listening on 0.0.0.0 the listen address made
// dialable is 127.0.0.1, which on another host is that host itself.
func TestFlareDBClusterHTTPAdvertise(t *testing.T) {
	c := newFDBCluster(t, 2)
	n1, n2 := c.nodes[0], c.nodes[1]
	// localhost:port is dialable like 127.0.0.1:port, and tells the two apart.
	advertise := func(nd *fdbNode) string {
		_, port, _ := net.SplitHostPort(nd.httpAddr)
		return "localhost:" + port
	}
	c.start(t, n1, "--bootstrap", "--http-advertise", advertise(n1))
	c.start(t, n2, "--join", "http://"+n1.httpAddr, "--http-advertise", advertise(n2))
	leader, _ := c.waitAgreed(t, c.nodes, 30*time.Second, "two members and one leader both nodes agree on")
	wantLeaderHTTP(t, c, leader, advertise(leader))
	c.ok(t, c.except(leader)[0], http.MethodPut, "/api/v1/kv/advertised", map[string]string{"value": "yes"}, nil)
}
