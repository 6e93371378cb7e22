package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"
)

// testNode opens a node with test-speed raft timing in dir.
func testNode(t *testing.T, dir, id, bind string, boot bool, servers []Server, mod func(*Config)) *Node {
	t.Helper()
	cfg := Config{
		DataDir: dir, NodeID: id, RaftBind: bind, HTTPAddr: "http-" + id,
		Bootstrap: boot, Servers: servers,
		HeartbeatTimeout: 300 * time.Millisecond, ElectionTimeout: 300 * time.Millisecond,
		LeaderLeaseTimeout: 150 * time.Millisecond, LeaderWait: 5 * time.Second,
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		RaftLogOutput: io.Discard,
	}
	if mod != nil {
		mod(&cfg)
	}
	n, err := Open(cfg)
	if err != nil {
		t.Fatalf("open %s: %v", id, err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitLeader waits for one of nodes to lead and for its term to be ready.
func waitLeader(t *testing.T, nodes ...*Node) *Node {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range nodes {
			if n.IsLeader() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err := n.Query(ctx, PlatformDB, Linearizable, Statement{SQL: "SELECT 1"})
				cancel()
				if err == nil {
					return n
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("no leader elected")
	return nil
}

type cluster struct {
	t     *testing.T
	dirs  []string
	addrs []string
	nodes []*Node
	mod   func(*Config)
}

func newCluster(t *testing.T, size int, mod func(*Config)) *cluster {
	t.Helper()
	c := &cluster{t: t, mod: mod}
	var servers []Server
	for i := range size {
		c.dirs = append(c.dirs, t.TempDir())
		c.addrs = append(c.addrs, freeAddr(t))
		servers = append(servers, Server{ID: fmt.Sprintf("n%d", i), Addr: c.addrs[i]})
	}
	for i := range size {
		c.nodes = append(c.nodes, testNode(t, c.dirs[i], servers[i].ID, c.addrs[i], true, servers, mod))
	}
	return c
}

func (c *cluster) restart(i int) *Node {
	c.t.Helper()
	c.nodes[i] = testNode(c.t, c.dirs[i], fmt.Sprintf("n%d", i), c.addrs[i], false, nil, c.mod)
	return c.nodes[i]
}

func (c *cluster) live() []*Node {
	var out []*Node
	for _, n := range c.nodes {
		if n != nil {
			out = append(out, n)
		}
	}
	return out
}

func exec(t *testing.T, n *Node, q string, params ...any) Result {
	t.Helper()
	r, err := n.Exec(ctxT(t), PlatformDB, Statement{SQL: q, Params: params})
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return r
}

func count(t *testing.T, n *Node, db string, c Consistency, q string) int64 {
	t.Helper()
	rows, err := n.Query(ctxT(t), db, c, Statement{SQL: q})
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return rows.Rows[0][0].(int64)
}

// converge waits until every node has applied the leader's last command.
func converge(t *testing.T, leader *Node, nodes ...*Node) {
	t.Helper()
	if err := leader.raft.Barrier(10 * time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	want, _ := leader.fsm.prog.get() // barriers never reach the FSM
	ctx := ctxT(t)
	for _, n := range nodes {
		if err := n.fsm.prog.wait(ctx, want); err != nil {
			idx, _ := n.fsm.prog.get()
			t.Fatalf("%s applied %d, leader %d: %v", n.ID(), idx, want, err)
		}
	}
}

func TestSingleNodeWriteRead(t *testing.T) {
	n := testNode(t, t.TempDir(), "solo", "127.0.0.1:0", true, nil, nil)
	waitLeader(t, n)
	exec(t, n, "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, score REAL, pic BLOB, born DATETIME)")
	r := exec(t, n, "INSERT INTO users (name, score, pic, born) VALUES (?, ?, ?, ?)", "alice", 1.5, []byte{0, 1}, "2025-12-12 08:30:00")
	if r.RowsAffected != 1 || r.LastInsertID != 1 {
		t.Fatalf("insert result %+v", r)
	}
	_, err := n.Exec(ctxT(t), PlatformDB, Statement{SQL: "INSERT INTO users (name) VALUES (:name)", Named: map[string]any{"name": "bob"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []Consistency{Linearizable, Lease, Stale} {
		rows, err := n.Query(ctxT(t), PlatformDB, c, Statement{SQL: "SELECT id, name, score, pic, born, 1+1 AS two FROM users WHERE name = ?", Params: []any{"alice"}})
		if err != nil {
			t.Fatalf("%v: %v", c, err)
		}
		if got := fmt.Sprint(rows.Columns, rows.Types); got != "[id name score pic born two] [INTEGER TEXT REAL BLOB DATETIME ]" {
			t.Fatalf("%v columns/types %s", c, got)
		}
		if got := fmt.Sprintf("%#v", rows.Rows); got != `[][]interface {}{[]interface {}{1, "alice", 1.5, []uint8{0x0, 0x1}, "2025-12-12 08:30:00", 2}}` {
			t.Fatalf("%v rows %s", c, got)
		}
	}
	if got := count(t, n, PlatformDB, Linearizable, "SELECT count(*) FROM users"); got != 2 {
		t.Fatalf("count %d", got)
	}
}

func TestErrors(t *testing.T) {
	n := testNode(t, t.TempDir(), "solo", "127.0.0.1:0", true, nil, nil)
	waitLeader(t, n)
	exec(t, n, "CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT)")
	exec(t, n, "INSERT INTO kv VALUES ('a', '1')")
	cases := []struct {
		name       string
		sql        string
		constraint bool
		sqlErr     bool
		other      error
	}{
		{"syntax", "INSERT INTO kv VALUE ('b')", false, true, nil},
		{"no table", "INSERT INTO nope VALUES (1)", false, true, nil},
		{"unique", "INSERT INTO kv VALUES ('a', '2')", true, true, nil},
		{"transaction control", "COMMIT", false, true, nil},
		{"attach", "ATTACH 'x.db' AS x", false, true, nil},
		{"pragma", "PRAGMA foreign_keys = OFF", false, true, nil},
		{"temp table", "CREATE TEMP TABLE t (x)", false, true, nil},
		{"system table", "DELETE FROM _flaredb_nodes", false, true, nil},
		{"empty", "  ", false, false, ErrEmpty},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := n.Exec(ctxT(t), PlatformDB, Statement{SQL: c.sql})
			if err == nil {
				t.Fatal("no error")
			}
			if errors.Is(err, ErrSQL) != c.sqlErr || errors.Is(err, ErrConstraint) != c.constraint {
				t.Fatalf("err %v: sql=%v constraint=%v", err, errors.Is(err, ErrSQL), errors.Is(err, ErrConstraint))
			}
			if c.other != nil && !errors.Is(err, c.other) {
				t.Fatalf("err %v, want %v", err, c.other)
			}
		})
	}
	if _, err := n.Exec(ctxT(t), PlatformDB, Statement{SQL: "SELECT ?", Params: []any{struct{}{}}}); !errors.Is(err, ErrBadParam) {
		t.Fatalf("bad param: %v", err)
	}
	// Reads cannot write, open transactions or reach outside the database.
	for _, q := range []string{"DELETE FROM kv", "BEGIN", "PRAGMA query_only = 0", "ATTACH 'y.db' AS y"} {
		if _, err := n.Query(ctxT(t), PlatformDB, Stale, Statement{SQL: q}); !errors.Is(err, ErrSQL) {
			t.Fatalf("query %q: %v", q, err)
		}
	}
	var se *SQLError
	_, err := n.Query(ctxT(t), PlatformDB, Stale, Statement{SQL: "SELEC 1"})
	if !errors.As(err, &se) || se.Message == "" {
		t.Fatalf("syntax error in read: %v", err)
	}
	if _, err := ParseConsistency("eventual"); !errors.Is(err, ErrBadConsistency) {
		t.Fatal(err)
	}
	if got := count(t, n, PlatformDB, Stale, "SELECT count(*) FROM kv"); got != 1 {
		t.Fatalf("failed writes changed the table: %d rows", got)
	}
}

func TestAtomicCommandAndIsolatedBatch(t *testing.T) {
	n := testNode(t, t.TempDir(), "solo", "127.0.0.1:0", true, nil, nil)
	waitLeader(t, n)
	exec(t, n, "CREATE TABLE acct (id INTEGER PRIMARY KEY, bal INTEGER NOT NULL CHECK (bal >= 0))")
	exec(t, n, "INSERT INTO acct VALUES (1, 100), (2, 0)")
	// A command is all or nothing.
	_, err := n.Write(ctxT(t), Command{Statements: []Statement{
		{SQL: "UPDATE acct SET bal = bal + 500 WHERE id = 2"},
		{SQL: "UPDATE acct SET bal = bal - 500 WHERE id = 1"},
	}})
	var se *SQLError
	if !errors.As(err, &se) || se.Statement != 1 || !errors.Is(err, ErrConstraint) {
		t.Fatalf("want CHECK failure in statement 1, got %v", err)
	}
	if got := count(t, n, PlatformDB, Linearizable, "SELECT bal FROM acct WHERE id = 2"); got != 0 {
		t.Fatalf("half-applied command: bal %d", got)
	}

	// Failing commands batched with good ones fail alone, including one that
	// rolls back the whole SQLite transaction.
	before := n.Stats()
	const writers = 40
	var wg sync.WaitGroup
	errs := make([]error, writers)
	res := make([][]Result, writers)
	start := make(chan struct{})
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			var cmd Command
			switch i % 4 {
			case 0:
				cmd.Statements = []Statement{{SQL: "INSERT INTO acct VALUES (?, 1)", Params: []any{1000 + i}}, {SQL: "INSERT INTO acct VALUES (1, 1)"}}
			case 1:
				cmd.Statements = []Statement{{SQL: "INSERT OR ROLLBACK INTO acct VALUES (1, 1)"}}
			default:
				cmd.Statements = []Statement{{SQL: "INSERT INTO acct VALUES (?, ?)", Params: []any{1000 + i, i}}}
			}
			res[i], errs[i] = n.Write(ctxT(t), cmd)
		}()
	}
	close(start)
	wg.Wait()
	for i := range writers {
		if i%4 < 2 {
			if !errors.Is(errs[i], ErrConstraint) {
				t.Errorf("writer %d: want constraint error, got %v", i, errs[i])
			}
			continue
		}
		if errs[i] != nil || len(res[i]) != 1 || res[i][0].RowsAffected != 1 || res[i][0].LastInsertID != int64(1000+i) {
			t.Errorf("writer %d: %+v %v", i, res[i], errs[i])
		}
	}
	if got := count(t, n, PlatformDB, Linearizable, "SELECT count(*) FROM acct WHERE id >= 1000"); got != writers/2 {
		t.Fatalf("%d good rows, want %d", got, writers/2)
	}
	after := n.Stats()
	if after.AppliedCmds-before.AppliedCmds < writers {
		t.Fatalf("applied %d commands, want >= %d", after.AppliedCmds-before.AppliedCmds, writers)
	}
}

func TestGroupCommit(t *testing.T) {
	c := newCluster(t, 3, nil)
	leader := waitLeader(t, c.nodes...)
	exec(t, leader, "CREATE TABLE g (id INTEGER PRIMARY KEY, v INTEGER)")
	before := leader.Stats()
	const writers = 100
	var wg sync.WaitGroup
	results := make([]Result, writers)
	errs := make([]error, writers)
	start := make(chan struct{})
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i], errs[i] = leader.Exec(ctxT(t), PlatformDB, Statement{SQL: "INSERT INTO g (id, v) VALUES (?, ?)", Params: []any{i + 1, i * i}})
		}()
	}
	close(start)
	wg.Wait()
	after := leader.Stats()
	for i := range writers {
		if errs[i] != nil || results[i] != (Result{RowsAffected: 1, LastInsertID: int64(i + 1)}) {
			t.Fatalf("write %d: %+v %v", i, results[i], errs[i])
		}
	}
	entries, cmds := after.AppliedEntries-before.AppliedEntries, after.AppliedCmds-before.AppliedCmds
	t.Logf("%d writes in %d raft entries", cmds, entries)
	if cmds != writers || entries >= writers {
		t.Fatalf("%d commands in %d entries: want %d commands in fewer entries", cmds, entries, writers)
	}
	rows, err := leader.Query(ctxT(t), PlatformDB, Linearizable, Statement{SQL: "SELECT count(*), sum(v) FROM g"})
	if err != nil {
		t.Fatal(err)
	}
	want := int64(0)
	for i := range writers {
		want += int64(i * i)
	}
	if rows.Rows[0][0] != int64(writers) || rows.Rows[0][1] != want {
		t.Fatalf("table holds %v", rows.Rows[0])
	}
}

func TestClusterReplicationAndForwarding(t *testing.T) {
	c := newCluster(t, 3, nil)
	leader := waitLeader(t, c.nodes...)
	exec(t, leader, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
	for i := range 20 {
		exec(t, leader, "INSERT INTO t (v) VALUES (?)", fmt.Sprint("v", i))
	}
	converge(t, leader, c.nodes...)
	for _, n := range c.nodes {
		if got := count(t, n, PlatformDB, Stale, "SELECT count(*) FROM t"); got != 20 {
			t.Fatalf("%s sees %d rows", n.ID(), got)
		}
		if n == leader {
			continue
		}
		_, err := n.Exec(ctxT(t), PlatformDB, Statement{SQL: "INSERT INTO t (v) VALUES ('x')"})
		var nl *NotLeaderError
		if !errors.As(err, &nl) || !errors.Is(err, ErrNotLeader) {
			t.Fatalf("follower write: %v", err)
		}
		if nl.LeaderID != leader.ID() || nl.LeaderAddr != leader.RaftAddr() || nl.LeaderHTTP != "http-"+leader.ID() {
			t.Fatalf("follower points at %+v, leader is %s %s", nl, leader.ID(), leader.RaftAddr())
		}
		if _, err := n.Query(ctxT(t), PlatformDB, Linearizable, Statement{SQL: "SELECT 1"}); !errors.Is(err, ErrNotLeader) {
			t.Fatalf("follower linearizable read: %v", err)
		}
	}
}

func TestLeaderKillNoLostWrites(t *testing.T) {
	c := newCluster(t, 3, nil)
	leader := waitLeader(t, c.nodes...)
	exec(t, leader, "CREATE TABLE w (id INTEGER PRIMARY KEY)")

	// Writers keep going through the kill, retrying on whichever node leads.
	var mu sync.Mutex
	acked := map[int]bool{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; ; i += 4 {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				nodes := append([]*Node(nil), c.live()...)
				mu.Unlock()
				for _, n := range nodes {
					if !n.IsLeader() {
						continue
					}
					ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
					_, err := n.Exec(ctx, PlatformDB, Statement{SQL: "INSERT INTO w (id) VALUES (?)", Params: []any{i}})
					cancel()
					if err == nil {
						mu.Lock()
						acked[i] = true
						mu.Unlock()
					}
					break
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	var old int
	for i, n := range c.nodes {
		if n == leader {
			old = i
		}
	}
	c.nodes[old] = nil
	mu.Unlock()
	leader.Close() // no leadership transfer, no leave
	survivors := c.live()
	newLeader := waitLeader(t, survivors...)
	if newLeader == leader {
		t.Fatal("old leader still leads")
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()

	// Acknowledged writes survive on the new leader.
	rows, err := newLeader.Query(ctxT(t), PlatformDB, Linearizable, Statement{SQL: "SELECT id FROM w"})
	if err != nil {
		t.Fatal(err)
	}
	have := map[int]bool{}
	for _, r := range rows.Rows {
		have[int(r[0].(int64))] = true
	}
	mu.Lock()
	defer mu.Unlock()
	if len(acked) == 0 {
		t.Fatal("no write was acknowledged")
	}
	for i := range acked {
		if !have[i] {
			t.Errorf("acknowledged write %d lost", i)
		}
	}
	// The old leader rejoins and ends up identical.
	c.restart(old)
	converge(t, newLeader, c.live()...)
	assertIdentical(t, c.live()...)
}

func assertIdentical(t *testing.T, nodes ...*Node) {
	t.Helper()
	var first string
	for i, n := range nodes {
		d, err := n.Digest(ctxT(t))
		if err != nil {
			t.Fatalf("%s digest: %v", n.ID(), err)
		}
		if i == 0 {
			first = d
		} else if d != first {
			t.Fatalf("%s digest %s differs from %s's %s", n.ID(), d, nodes[0].ID(), first)
		}
	}
}

func TestSnapshotCatchUp(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) {
		cfg.SnapshotThreshold = 20
		cfg.TrailingLogs = 5
		cfg.SnapshotInterval = 100 * time.Millisecond
	})
	leader := waitLeader(t, c.nodes...)
	exec(t, leader, "CREATE TABLE s (id INTEGER PRIMARY KEY, v BLOB)")
	var down int
	for i, n := range c.nodes {
		if n != leader {
			down = i
			break
		}
	}
	converge(t, leader, c.nodes...)
	stoppedAt := c.nodes[down].Stats().AppliedIndex
	c.nodes[down].Close()
	c.nodes[down] = nil

	for i := range 200 {
		exec(t, leader, "INSERT INTO s (v) VALUES (?)", make([]byte, 100+i))
		// Databases are created while the node is down: the snapshot
		// must carry every one.
		if err := leader.PutKV(ctxT(t), fmt.Sprintf("proj-%d", i%3), "ns", fmt.Sprint("k", i), "v"); err != nil {
			t.Fatal(err)
		}
		if i%50 == 0 {
			if err := leader.Snapshot(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := leader.Snapshot(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for leader.Stats().FirstLogIndex <= stoppedAt+1 {
		if time.Now().After(deadline) {
			t.Fatalf("leader did not compact its log past %d: %+v", stoppedAt, leader.Stats())
		}
		time.Sleep(50 * time.Millisecond)
	}

	n := c.restart(down)
	converge(t, leader, c.live()...)
	if got := count(t, n, PlatformDB, Stale, "SELECT count(*) FROM s"); got != 200 {
		t.Fatalf("restarted node has %d rows", got)
	}
	if n.Stats().Restores == 0 {
		t.Fatal("restarted node caught up without a snapshot")
	}
	if got := n.Databases(); len(got) != 4 {
		t.Fatalf("restarted node has databases %q, want the platform's and 3 projects'", got)
	}
	if kvs, err := n.ScanKV(ctxT(t), "proj-1", Stale, "ns", "", "", 1000); err != nil || len(kvs) != 67 {
		t.Fatalf("proj-1 after restore: %d pairs, %v", len(kvs), err)
	}
	assertIdentical(t, c.live()...)

	// A node that joins late also starts from a snapshot.
	late := testNode(t, t.TempDir(), "late", "127.0.0.1:0", false, nil, func(cfg *Config) {
		cfg.SnapshotThreshold = 20
		cfg.TrailingLogs = 5
	})
	if err := leader.AddVoter(ctxT(t), "late", late.RaftAddr()); err != nil {
		t.Fatal(err)
	}
	converge(t, leader, late)
	if late.Stats().Restores == 0 {
		t.Fatal("late joiner replayed the log instead of installing a snapshot")
	}
	assertIdentical(t, append(c.live(), late)...)
	if err := leader.RemoveServer(ctxT(t), "late"); err != nil {
		t.Fatal(err)
	}
}

func TestIdenticalReplicasAfterMixedLoad(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) {
		cfg.SnapshotThreshold = 50
		cfg.TrailingLogs = 10
		cfg.SnapshotInterval = 100 * time.Millisecond
	})
	leader := waitLeader(t, c.nodes...)
	_, err := leader.Write(ctxT(t), Command{Statements: []Statement{
		{SQL: "CREATE TABLE a (id INTEGER PRIMARY KEY, name TEXT UNIQUE, n REAL)"},
		{SQL: "CREATE TABLE b (k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID"},
		{SQL: "CREATE INDEX a_n ON a (n)"},
		{SQL: "CREATE TRIGGER a_ins AFTER INSERT ON a BEGIN INSERT OR REPLACE INTO b VALUES ('last', NEW.name); END"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				id := w*1000 + i
				var cmd Command
				switch i % 5 {
				case 0, 1:
					cmd.Statements = []Statement{{SQL: "INSERT INTO a (name, n) VALUES (?, ?)", Params: []any{fmt.Sprint("n", id), float64(id) / 3}}}
				case 2:
					cmd.Statements = []Statement{{SQL: "UPDATE a SET n = n * 2 WHERE id % 7 = ?", Params: []any{w}}, {SQL: "INSERT OR REPLACE INTO b VALUES (:k, :v)", Named: map[string]any{"k": fmt.Sprint("k", i), "v": []byte{byte(w), byte(i)}}}}
				case 3:
					cmd.Statements = []Statement{{SQL: "DELETE FROM a WHERE id IN (SELECT id FROM a ORDER BY id LIMIT 1)"}}
				case 4:
					cmd.Statements = []Statement{{SQL: "INSERT INTO a (name) VALUES ('dup')"}} // fails after the first
				}
				_, err := leader.Write(context.Background(), cmd)
				if err != nil && !errors.Is(err, ErrConstraint) {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	converge(t, leader, c.nodes...)
	assertIdentical(t, c.nodes...)
	// A restarted follower keeps its database, replays the tail, and agrees.
	var f int
	for i, n := range c.nodes {
		if n != leader {
			f = i
		}
	}
	c.nodes[f].Close()
	exec(t, leader, "INSERT INTO a (name) VALUES ('after restart')")
	c.restart(f)
	converge(t, leader, c.nodes...)
	assertIdentical(t, c.nodes...)
}
