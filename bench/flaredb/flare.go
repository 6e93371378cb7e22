package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/photoncloud/photon/bench/internal/pairbench"
	"github.com/photoncloud/photon/bench/internal/procs"
)

// flareNodes is the size of the FlareDB cluster.
const flareNodes = 3

// startTimeout bounds each wait of the cluster's start.
const startTimeout = 60 * time.Second

// flareNode is one `photon serve flaredb` child process.
type flareNode struct {
	id                 string // n1, n2, n3
	httpAddr, raftAddr string
	base               string // http://httpAddr
	proc               *procs.Proc
}

// flareCluster is the three nodes, and the one that led when the cases
// began, which every request goes to.
type flareCluster struct {
	nodes  []*flareNode
	leader *flareNode
	admin  flareClient // to the leader, for setup and checks
}

// clusterStatus is GET /api/v1/cluster's data.
type clusterStatus struct {
	NodeID     string `json:"node_id"`
	LeaderID   string `json:"leader_id"`
	LeaderHTTP string `json:"leader_http"`
	IsLeader   bool   `json:"is_leader"`
	Members    []struct {
		ID       string `json:"id"`
		RaftAddr string `json:"raft_addr"`
		HTTPAddr string `json:"http_addr"`
	} `json:"members"`
}

// checkServe fails with errNoServe when photon has no `serve flaredb`.
func checkServe(ctx context.Context, photon string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, photon, "serve", "flaredb", "-h").CombinedOutput()
	if !strings.Contains(string(out), "raft-addr") {
		return fmt.Errorf("%w (`%s serve flaredb -h` says: %s)", errNoServe, photon, strings.TrimSpace(string(out)))
	}
	return nil
}

// startFlare starts n1 with --bootstrap, then n2 and n3 joining it, and
// waits until every node sees three members and the same leader. ports are
// the nodes' REST and Raft addresses, in pairs. On error the nodes started
// so far are in the returned cluster, for the caller to stop.
func startFlare(ctx context.Context, photon, dir string, ports []string, stderr io.Writer) (*flareCluster, error) {
	if err := checkServe(ctx, photon); err != nil {
		return nil, err
	}
	fc := &flareCluster{}
	status := pairbench.HTTPClient(1)
	status.Timeout = 2 * time.Second
	for i := range flareNodes {
		n := &flareNode{id: fmt.Sprintf("n%d", i+1), httpAddr: ports[2*i], raftAddr: ports[2*i+1]}
		n.base = "http://" + n.httpAddr
		data := filepath.Join(dir, n.id)
		if err := os.Mkdir(data, 0o700); err != nil {
			return fc, err
		}
		args := []string{"serve", "flaredb", "--node-id", n.id, "--data-dir", data,
			"--http-addr", n.httpAddr, "--raft-addr", n.raftAddr}
		if i == 0 {
			args = append(args, "--bootstrap")
		} else {
			args = append(args, "--join", fc.nodes[0].base)
		}
		fmt.Fprintf(stderr, "starting FlareDB %s: photon %s\n", n.id, strings.Join(args, " "))
		p, err := procs.Start(procs.Spec{Name: "flaredb-" + n.id, Dir: dir, Bin: photon, Args: args})
		if err != nil {
			return fc, err
		}
		n.proc = p
		fc.nodes = append(fc.nodes, n)
		// The first node must lead before the others can join it; a joining
		// node must answer before the next one joins.
		if err := p.WaitFor(ctx, startTimeout, "serving with a leader", func(ctx context.Context) error {
			st, err := getStatus(ctx, status, n.base)
			if err == nil && st.LeaderID == "" {
				err = errors.New("no leader yet")
			}
			return err
		}); err != nil {
			return fc, err
		}
	}
	for _, n := range fc.nodes {
		if err := n.proc.WaitFor(ctx, startTimeout, "seeing 3 members and a leader", func(ctx context.Context) error {
			st, err := getStatus(ctx, status, n.base)
			if err != nil {
				return err
			}
			if len(st.Members) != flareNodes || st.LeaderID == "" {
				return fmt.Errorf("%d members, leader %q", len(st.Members), st.LeaderID)
			}
			if st.NodeID != n.id {
				return fmt.Errorf("node_id %q, want %q", st.NodeID, n.id)
			}
			if fc.leader == nil {
				for _, m := range fc.nodes {
					if m.id == st.LeaderID {
						fc.leader = m
					}
				}
				if fc.leader == nil {
					return fmt.Errorf("leader %q is none of ours", st.LeaderID)
				}
			}
			if st.LeaderID != fc.leader.id {
				return fmt.Errorf("leader %q, but %s said %s", st.LeaderID, fc.nodes[0].id, fc.leader.id)
			}
			return nil
		}); err != nil {
			return fc, err
		}
	}
	var pids []string
	for _, n := range fc.nodes {
		pids = append(pids, fmt.Sprintf("%s pid %d REST %s", n.id, n.proc.Pid, n.httpAddr))
	}
	fmt.Fprintf(stderr, "FlareDB: %s; leader %s\n", strings.Join(pids, ", "), fc.leader.id)
	fc.admin = newFlareClient(fc.leader.base, 1, nil)
	return fc, nil
}

func getStatus(ctx context.Context, hc *http.Client, base string) (clusterStatus, error) {
	var st clusterStatus
	err := call(ctx, hc, http.MethodGet, base+"/api/v1/cluster", nil, &st)
	return st, err
}

// leaderNow is the leader n1 sees now ("?" when it cannot say).
func (fc *flareCluster) leaderNow(ctx context.Context) string {
	hc := pairbench.HTTPClient(1)
	hc.Timeout = 5 * time.Second
	st, err := getStatus(ctx, hc, fc.nodes[0].base)
	if err != nil || st.LeaderID == "" {
		return "?"
	}
	return st.LeaderID
}

// nodeCPU is the CPU each node has used so far.
func (fc *flareCluster) nodeCPU() []time.Duration {
	out := make([]time.Duration, len(fc.nodes))
	for i, n := range fc.nodes {
		out[i] = pairbench.SampleCPU(n.proc.Pid).Server
	}
	return out
}

// stop stops the followers, then the leader: SIGTERM, SIGKILL after 20 s.
func (fc *flareCluster) stop() error {
	var errs []error
	for i := len(fc.nodes) - 1; i >= 0; i-- {
		if err := fc.nodes[i].proc.Stop(20 * time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// apiError is a FlareDB error answer.
type apiError struct {
	Status        int
	Code, Message string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("HTTP %d %s: %s", e.Status, e.Code, e.Message)
}

// call sends a JSON body (nil for none) and decodes the envelope's data
// into out (nil to discard); any status but 2xx is an *apiError.
func call(ctx context.Context, hc *http.Client, method, url string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		e := &apiError{Status: resp.StatusCode}
		var env struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal(b, &env) == nil && env.Error.Code != "" {
			e.Code, e.Message = env.Error.Code, env.Error.Message
		} else {
			e.Message = string(bytes.TrimSpace(b))
		}
		return e
	}
	if out == nil {
		return nil
	}
	env := struct {
		Data any `json:"data"`
	}{out}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&env); err != nil {
		return fmt.Errorf("%s %s: decoding %q: %w", method, url, b, err)
	}
	return nil
}

// sqlRequest is POST /api/v1/sql's body.
type sqlRequest struct {
	Query       string `json:"query"`
	Params      []any  `json:"params,omitempty"`
	Consistency string `json:"consistency,omitempty"`
}

// sqlResult is POST /api/v1/sql's data: rows for a read, rows_affected for
// a write.
type sqlResult struct {
	Columns      []string `json:"columns"`
	Rows         [][]any  `json:"rows"` // strings, json.Number or nil
	RowsAffected int64    `json:"rows_affected"`
}

// flareClient sends SQL to one FlareDB node, tallying its failures.
type flareClient struct {
	hc    *http.Client
	url   string // …/api/v1/sql
	tally *errTally
}

func newFlareClient(base string, conc int, tally *errTally) flareClient {
	return flareClient{hc: pairbench.HTTPClient(conc), url: base + "/api/v1/sql", tally: tally}
}

func (c flareClient) sql(ctx context.Context, r sqlRequest) (sqlResult, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return sqlResult{}, err
	}
	var res sqlResult
	err = call(ctx, c.hc, http.MethodPost, c.url, body, &res)
	if err != nil && c.tally != nil {
		c.tally.add(ctx, err)
	}
	return res, err
}

const (
	insertSQL = "INSERT INTO bench_kv(k,v) VALUES (?,?)"
	selectSQL = "SELECT v FROM bench_kv WHERE k = ?"
)

// insert is one INSERT of one row; FlareDB must say it affected one row.
func (c flareClient) insert(ctx context.Context, k, v string) error {
	res, err := c.sql(ctx, sqlRequest{Query: insertSQL, Params: []any{k, v}})
	if err != nil {
		return err
	}
	if res.RowsAffected != 1 {
		err := fmt.Errorf("insert %s: rows_affected %d, want 1", k, res.RowsAffected)
		c.tally.add(ctx, err)
		return err
	}
	return nil
}

// read is one point read, with consistency "" (the default) or "lease"; the
// answer must be exactly one row holding want.
func (c flareClient) read(ctx context.Context, consistency, k, want string) error {
	res, err := c.sql(ctx, sqlRequest{Query: selectSQL, Params: []any{k}, Consistency: consistency})
	if err != nil {
		return err
	}
	if len(res.Rows) != 1 || len(res.Rows[0]) != 1 || res.Rows[0][0] != want {
		err := fmt.Errorf("read %s: rows %v, want [[%q]]", k, truncate(fmt.Sprint(res.Rows), 200), truncate(want, 40))
		c.tally.add(ctx, err)
		return err
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// errTally counts a side's failed requests by kind, for the report.
type errTally struct {
	mu sync.Mutex
	n  map[string]int
}

func (t *errTally) add(ctx context.Context, err error) {
	if t == nil || ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return
	}
	var kind string
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		kind = fmt.Sprintf("HTTP %d %s", ae.Status, ae.Code)
	case errors.Is(err, context.DeadlineExceeded):
		kind = "no answer within " + pairbench.OpTimeout.String()
	default:
		kind = truncate(err.Error(), 80)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n == nil {
		t.n = map[string]int{}
	}
	t.n[kind]++
}

// kinds lists the tallied kinds, "count × kind".
func (t *errTally) kinds() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for k, n := range t.n {
		out = append(out, fmt.Sprintf("%d × %s", n, k))
	}
	return out
}
