package e2e

// Helpers for the black-box cluster tests: they run real `photon serve
// chainfire` processes (the binary testutil.PhotonBinary builds), start,
// SIGTERM and kill -9 them, and talk to them only over REST, gRPC and
// etcdctl, the way an operator would.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/photoncloud/photon/internal/testutil"
)

// requestTimeout is every node's --request-timeout: the bound within which
// a request that needs quorum must answer, even when there is none.
const requestTimeout = 3 * time.Second

// node is one ChainFire member: the fixed identity its flags give it (kept
// across restarts, so a restart reuses the same data dir and ports) and the
// process currently running it, if any.
type node struct {
	id                           int
	dataDir                      string
	httpAddr, grpcAddr, peerAddr string
	initialCluster, clusterState string
	logPath                      string // stdout and stderr of every run, appended

	mu   sync.Mutex
	proc *process // the latest run; nil before the first start
	runs int
}

// process is one run of a node.
type process struct {
	cmd   *exec.Cmd
	ready chan struct{} // closed once stdout says the node joined its cluster
	done  chan struct{} // closed once the process has exited
	state *os.ProcessState
}

// running reports whether the process has not exited yet.
func (p *process) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// readyWriter copies a process's stdout to its log and closes ready when
// the line `photon serve chainfire` prints after joining appears.
type readyWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	want  []byte
	ready chan struct{}
	seen  bool
	log   io.Writer
}

func (w *readyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, _ = w.log.Write(p)
	if !w.seen {
		w.buf.Write(p)
		if bytes.Contains(w.buf.Bytes(), w.want) {
			w.seen = true
			close(w.ready)
		}
	}
	return len(p), nil
}

// cluster is a set of nodes of one test, and the HTTP client that talks to
// them. Every process it starts is killed when the test ends. Its helpers
// that can fail take the calling (sub)test's t; c.t is the owning test,
// used only by the cleanup.
type cluster struct {
	t    testing.TB
	bin  string
	dir  string
	http *http.Client
	// extraArgs are added to every node's command line (set before start).
	extraArgs []string

	mu    sync.Mutex
	nodes map[int]*node
}

// newCluster prepares (but does not start) nodes 1..n that bootstrap
// together as a new cluster.
func newCluster(t testing.TB, n int) *cluster {
	t.Helper()
	c := &cluster{
		t:     t,
		bin:   testutil.PhotonBinary(t),
		dir:   t.TempDir(), // removed after the cleanup below has killed everything
		nodes: map[int]*node{},
		http: &http.Client{
			Timeout:   15 * time.Second,
			Transport: &http.Transport{MaxIdleConnsPerHost: 32, DialContext: (&net.Dialer{Timeout: 2 * time.Second}).DialContext},
		},
	}
	t.Cleanup(c.cleanup)
	var members []string
	for id := 1; id <= n; id++ {
		nd := c.newNode(t, id)
		members = append(members, fmt.Sprintf("node-%d=http://%s", id, nd.peerAddr))
	}
	for _, nd := range c.all() {
		nd.initialCluster = strings.Join(members, ",")
		nd.clusterState = "new"
	}
	return c
}

// startCluster starts a new n-node cluster and waits until every node has
// joined and they agree on a leader.
func startCluster(t testing.TB, n int) *cluster {
	t.Helper()
	c := newCluster(t, n)
	for _, nd := range c.all() {
		c.start(t, nd)
	}
	for _, nd := range c.all() {
		c.waitReady(t, nd, 60*time.Second)
	}
	c.waitLeader(t, c.all(), 30*time.Second)
	return c
}

// newNode allocates ports and a data dir for node id. Its initialCluster
// and clusterState are the caller's to set before starting it.
func (c *cluster) newNode(t testing.TB, id int) *node {
	t.Helper()
	nd := &node{
		id:       id,
		dataDir:  filepath.Join(c.dir, fmt.Sprintf("node-%d", id)),
		httpAddr: testutil.FreeAddr(t),
		grpcAddr: testutil.FreeAddr(t),
		peerAddr: testutil.FreeAddr(t),
		logPath:  filepath.Join(c.dir, fmt.Sprintf("node-%d.log", id)),
	}
	if err := os.MkdirAll(nd.dataDir, 0o755); err != nil {
		t.Fatalf("data dir: %v", err)
	}
	c.mu.Lock()
	c.nodes[id] = nd
	c.mu.Unlock()
	return nd
}

// node returns node id.
func (c *cluster) node(id int) *node {
	c.mu.Lock()
	defer c.mu.Unlock()
	nd, ok := c.nodes[id]
	if !ok {
		panic(fmt.Sprintf("no node %d", id))
	}
	return nd
}

// all is every node, by id.
func (c *cluster) all() []*node {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*node, 0, len(c.nodes))
	for _, nd := range c.nodes {
		out = append(out, nd)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// except is every node but the given ones.
func (c *cluster) except(skip ...*node) []*node {
	var out []*node
	for _, nd := range c.all() {
		keep := true
		for _, s := range skip {
			keep = keep && nd != s
		}
		if keep {
			out = append(out, nd)
		}
	}
	return out
}

// start launches nd's process without waiting for it to join.
func (c *cluster) start(t testing.TB, nd *node) {
	t.Helper()
	if err := c.startProc(nd); err != nil {
		t.Fatal(err)
	}
}

// startProc launches nd's process; safe from any goroutine.
func (c *cluster) startProc(nd *node) error {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.proc != nil && nd.proc.running() {
		return fmt.Errorf("node %d is already running", nd.id)
	}
	logf, err := os.OpenFile(nd.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	nd.runs++
	fmt.Fprintf(logf, "===== run %d of node %d (%s) =====\n", nd.runs, nd.id, time.Now().Format(time.RFC3339Nano))
	args := []string{"serve", "chainfire",
		"--data-dir", nd.dataDir,
		"--node-id", fmt.Sprint(nd.id),
		"--http-addr", nd.httpAddr,
		"--grpc-addr", nd.grpcAddr,
		"--peer-addr", nd.peerAddr,
		"--initial-cluster", nd.initialCluster,
		"--initial-cluster-state", nd.clusterState,
		"--request-timeout", requestTimeout.String(),
	}
	args = append(args, c.extraArgs...)
	cmd := exec.Command(c.bin, args...)
	cmd.Env = cleanEnv()
	p := &process{cmd: cmd, ready: make(chan struct{}), done: make(chan struct{})}
	cmd.Stdout = &readyWriter{want: fmt.Appendf(nil, "ChainFire node %d: ", nd.id), ready: p.ready, log: logf}
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start node %d: %w", nd.id, err)
	}
	go func() {
		_ = cmd.Wait()
		p.state = cmd.ProcessState
		fmt.Fprintf(logf, "===== node %d exited: %v =====\n", nd.id, cmd.ProcessState)
		logf.Close()
		close(p.done)
	}()
	nd.proc = p
	return nil
}

// cleanEnv is the test's environment without PHOTON_* variables, which
// would set flags behind the test's back.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PHOTON_") {
			env = append(env, kv)
		}
	}
	return env
}

// current is nd's latest process (nil if never started).
func (nd *node) current() *process {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.proc
}

// running reports whether nd has a live process.
func (nd *node) running() bool {
	p := nd.current()
	return p != nil && p.running()
}

// waitReady waits until nd has joined its cluster; a process that exits
// first, or takes longer than timeout, fails the test.
func (c *cluster) waitReady(t testing.TB, nd *node, timeout time.Duration) {
	t.Helper()
	if err := c.waitReadyErr(nd, timeout); err != nil {
		t.Fatal(err)
	}
}

// waitReadyErr is waitReady for any goroutine.
func (c *cluster) waitReadyErr(nd *node, timeout time.Duration) error {
	p := nd.current()
	if p == nil {
		return fmt.Errorf("node %d was never started", nd.id)
	}
	select {
	case <-p.ready:
		return nil
	case <-p.done:
		return fmt.Errorf("node %d exited before joining: %v", nd.id, p.state)
	case <-time.After(timeout):
		return fmt.Errorf("node %d did not join within %v", nd.id, timeout)
	}
}

// kill sends SIGKILL (kill -9) to nd and waits until it is gone.
func (c *cluster) kill(t testing.TB, nd *node) {
	t.Helper()
	if err := c.killProc(nd); err != nil {
		t.Fatal(err)
	}
}

// killProc is kill for any goroutine.
func (c *cluster) killProc(nd *node) error {
	p := nd.current()
	if p == nil || !p.running() {
		return fmt.Errorf("node %d is not running", nd.id)
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("node %d survived SIGKILL for 10s", nd.id)
	}
}

// stop sends SIGTERM to nd and returns its exit code; a node that takes
// longer than 30s to stop is killed and fails the test.
func (c *cluster) stop(t testing.TB, nd *node) int {
	t.Helper()
	p := nd.current()
	if p == nil || !p.running() {
		t.Fatalf("stop node %d: not running", nd.id)
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	code, ok := c.waitExit(nd, 30*time.Second)
	if !ok {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
		t.Fatalf("node %d did not stop within 30s of SIGTERM", nd.id)
	}
	return code
}

// waitExit waits up to timeout for nd's process to exit and returns its
// exit code (-1 when a signal ended it).
func (c *cluster) waitExit(nd *node, timeout time.Duration) (code int, exited bool) {
	p := nd.current()
	if p == nil {
		return 0, false
	}
	select {
	case <-p.done:
		return p.state.ExitCode(), true
	case <-time.After(timeout):
		return 0, false
	}
}

// cleanup kills every process still running and, when the test failed,
// logs each node's output.
func (c *cluster) cleanup() {
	for _, nd := range c.all() {
		if p := nd.current(); p != nil && p.running() {
			_ = p.cmd.Process.Signal(syscall.SIGKILL)
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				c.t.Errorf("node %d (pid %d) survived SIGKILL", nd.id, p.cmd.Process.Pid)
			}
		}
	}
	c.http.CloseIdleConnections()
	if !c.t.Failed() {
		return
	}
	for _, nd := range c.all() {
		b, err := os.ReadFile(nd.logPath)
		if err != nil {
			continue
		}
		const max = 24 << 10
		if len(b) > max {
			b = append([]byte("…(earlier output cut)…\n"), b[len(b)-max:]...)
		}
		c.t.Logf("---- output of node %d (%s) ----\n%s", nd.id, nd.logPath, b)
	}
}

// ---- REST ----

// envelope is either shape of a REST answer.
type envelope struct {
	Data  json.RawMessage `json:"data"`
	Error *apiError       `json:"error"`
	Meta  struct {
		RequestID string `json:"request_id"`
		Timestamp string `json:"timestamp"`
	} `json:"meta"`
}

type apiError struct {
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details"`
}

// response is a decoded REST answer.
type response struct {
	status int
	env    envelope
	body   []byte
}

// String summarises r for failure messages.
func (r response) String() string {
	return fmt.Sprintf("HTTP %d %s", r.status, bytes.TrimSpace(r.body))
}

// decode unmarshals the envelope's data into v.
func (r response) decode(v any) error {
	if len(r.env.Data) == 0 || string(r.env.Data) == "null" {
		return fmt.Errorf("no data in %s", r)
	}
	return json.Unmarshal(r.env.Data, v)
}

// errCode is the envelope's error code ("" for a success).
func (r response) errCode() string {
	if r.env.Error == nil {
		return ""
	}
	return r.env.Error.Code
}

// call sends one REST request to nd and decodes the envelope. A non-JSON
// body is an error: every answer, failures included, must be the envelope.
func call(ctx context.Context, hc *http.Client, nd *node, method, path string, body any) (response, error) {
	return callAddr(ctx, hc, nd.httpAddr, "", method, path, body)
}

// callAddr is call against any REST address (host:port), sending
// "Authorization: Bearer <token>" when token is not empty.
func callAddr(ctx context.Context, hc *http.Client, addr, token, method, path string, body any) (response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return response{}, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, rd)
	if err != nil {
		return response{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	r := response{status: resp.StatusCode, body: b}
	if err := json.Unmarshal(b, &r.env); err != nil {
		return r, fmt.Errorf("%s %s: answer is not the JSON envelope: %w: %s", method, path, err, r)
	}
	if r.env.Meta.RequestID == "" || r.env.Meta.Timestamp == "" {
		return r, fmt.Errorf("%s %s: envelope without meta: %s", method, path, r)
	}
	return r, nil
}

// rest sends one request and fails the test if there is no answer.
func (c *cluster) rest(t testing.TB, nd *node, method, path string, body any) response {
	t.Helper()
	r, err := call(context.Background(), c.http, nd, method, path, body)
	if err != nil {
		t.Fatalf("node %d: %s %s: %v", nd.id, method, path, err)
	}
	return r
}

// kvPath is the REST path of key (keys here need no escaping).
func kvPath(key string) string { return "/api/v1/kv/" + key }

// keyValue is the data of a KV answer.
type keyValue struct {
	Key         string `json:"key"`
	Value       string `json:"value"`
	ModRevision int64  `json:"mod_revision"`
}

// putErr writes key=value through nd's REST.
func (c *cluster) putErr(ctx context.Context, nd *node, key, value string) (response, error) {
	return call(ctx, c.http, nd, http.MethodPost, kvPath(key)+"/put", map[string]string{"value": value})
}

// put writes key=value through nd's REST. It retries 503s (an election in
// progress) until deadline: the assertion is that the cluster serves
// writes within it.
func (c *cluster) put(t testing.TB, nd *node, key, value string) {
	t.Helper()
	eventually(t, 15*time.Second, fmt.Sprintf("PUT %s via node %d", key, nd.id), func() error {
		r, err := c.putErr(context.Background(), nd, key, value)
		switch {
		case err != nil:
			return err
		case r.status == http.StatusServiceUnavailable:
			return fmt.Errorf("%s", r)
		case r.status != http.StatusOK:
			return permanent(fmt.Errorf("%s", r))
		}
		var kv keyValue
		if err := r.decode(&kv); err != nil {
			return permanent(err)
		}
		if kv.Key != key || kv.Value != value || kv.ModRevision <= 0 {
			return permanent(fmt.Errorf("put answered %+v", kv))
		}
		return nil
	})
}

// getErr reads key through nd's REST with consistency ("" is the default,
// linearizable).
func (c *cluster) getErr(ctx context.Context, nd *node, key, consistency string) (response, error) {
	path := kvPath(key)
	if consistency != "" {
		path += "?consistency=" + consistency
	}
	return call(ctx, c.http, nd, http.MethodGet, path, nil)
}

// get reads key through nd's REST and fails the test unless it answers 200.
func (c *cluster) get(t testing.TB, nd *node, key, consistency string) string {
	t.Helper()
	r, err := c.getErr(context.Background(), nd, key, consistency)
	if err != nil {
		t.Fatalf("GET %s via node %d: %v", key, nd.id, err)
	}
	if r.status != http.StatusOK {
		t.Fatalf("GET %s via node %d: %s", key, nd.id, r)
	}
	var kv keyValue
	if err := r.decode(&kv); err != nil {
		t.Fatalf("GET %s via node %d: %v", key, nd.id, err)
	}
	return kv.Value
}

// waitValue polls a read of key on nd until it returns want.
func (c *cluster) waitValue(t testing.TB, nd *node, key, consistency, want string, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, fmt.Sprintf("%s read of %s on node %d returns %q", consistency, key, nd.id, want), func() error {
		r, err := c.getErr(context.Background(), nd, key, consistency)
		if err != nil {
			return err
		}
		if r.status != http.StatusOK {
			return fmt.Errorf("%s", r)
		}
		var kv keyValue
		if err := r.decode(&kv); err != nil {
			return err
		}
		if kv.Value != want {
			return fmt.Errorf("read %q", kv.Value)
		}
		return nil
	})
}

// member is one entry of a members list.
type member struct {
	NodeID     uint64   `json:"node_id"`
	MemberID   string   `json:"member_id"`
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peer_urls"`
	ClientURLs []string `json:"client_urls"`
	IsLearner  bool     `json:"is_learner"`
	IsLeader   bool     `json:"is_leader"`
	Started    bool     `json:"started"`
}

// clusterStatus is the data of GET /api/v1/cluster/status.
type clusterStatus struct {
	NodeID       uint64   `json:"node_id"`
	ClusterID    string   `json:"cluster_id"`
	MemberID     string   `json:"member_id"`
	Term         uint64   `json:"term"`
	Role         string   `json:"role"`
	IsLeader     bool     `json:"is_leader"`
	LeaderID     uint64   `json:"leader_id"`
	CommitIndex  uint64   `json:"commit_index"`
	AppliedIndex uint64   `json:"applied_index"`
	Members      []member `json:"members"`
}

// statusOf is nd's own view of the cluster.
func (c *cluster) statusOf(ctx context.Context, nd *node) (clusterStatus, error) {
	r, err := call(ctx, c.http, nd, http.MethodGet, "/api/v1/cluster/status", nil)
	if err != nil {
		return clusterStatus{}, err
	}
	if r.status != http.StatusOK {
		return clusterStatus{}, fmt.Errorf("node %d status: %s", nd.id, r)
	}
	var st clusterStatus
	if err := r.decode(&st); err != nil {
		return clusterStatus{}, err
	}
	if st.NodeID != uint64(nd.id) {
		return st, fmt.Errorf("node %d's status says node_id %d", nd.id, st.NodeID)
	}
	return st, nil
}

// agreedLeader checks once that every node in nodes knows the same leader
// and cluster, that exactly one of them says it leads, and that the leader
// is one of them.
func (c *cluster) agreedLeader(nodes []*node) (*node, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var lead uint64
	var clusterID string
	leaders := 0
	for _, nd := range nodes {
		st, err := c.statusOf(ctx, nd)
		if err != nil {
			return nil, err
		}
		switch {
		case st.LeaderID == 0:
			return nil, fmt.Errorf("node %d knows no leader (role %s, term %d)", nd.id, st.Role, st.Term)
		case lead != 0 && st.LeaderID != lead:
			return nil, fmt.Errorf("node %d says node %d leads, another node says %d", nd.id, st.LeaderID, lead)
		case clusterID != "" && st.ClusterID != clusterID:
			return nil, fmt.Errorf("node %d is in cluster %s, another node in %s", nd.id, st.ClusterID, clusterID)
		}
		lead, clusterID = st.LeaderID, st.ClusterID
		if st.IsLeader {
			leaders++
			if st.Role != "leader" || st.LeaderID != uint64(nd.id) {
				return nil, fmt.Errorf("node %d says is_leader but role %q, leader_id %d", nd.id, st.Role, st.LeaderID)
			}
		} else if st.Role == "leader" {
			return nil, fmt.Errorf("node %d has role leader but is_leader false", nd.id)
		}
	}
	if leaders != 1 {
		return nil, fmt.Errorf("%d nodes say they lead (leader_id %d)", leaders, lead)
	}
	for _, nd := range nodes {
		if uint64(nd.id) == lead {
			return nd, nil
		}
	}
	return nil, fmt.Errorf("leader %d is not among the nodes asked", lead)
}

// waitLeader polls until agreedLeader holds for nodes and returns the leader.
func (c *cluster) waitLeader(t testing.TB, nodes []*node, timeout time.Duration) *node {
	t.Helper()
	var leader *node
	eventually(t, timeout, "one leader all nodes agree on", func() error {
		var err error
		leader, err = c.agreedLeader(nodes)
		return err
	})
	return leader
}

// waitLeaderErr is waitLeader for any goroutine.
func (c *cluster) waitLeaderErr(nodes []*node, timeout time.Duration) (*node, error) {
	var leader *node
	err := poll(timeout, func() error {
		var err error
		leader, err = c.agreedLeader(nodes)
		return err
	})
	return leader, err
}

// ---- polling ----

// permanentError stops poll at once: retrying cannot make it pass.
type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }

// permanent marks err as one poll must not retry.
func permanent(err error) error { return permanentError{err} }

// poll calls cond every 100ms until it returns nil, returns a permanent
// error, or timeout passes; it returns cond's last error.
func poll(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		var pe permanentError
		if errors.As(err, &pe) {
			return pe.error
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v: %w", timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// eventually fails the test unless cond holds within timeout.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	if err := poll(timeout, cond); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}
