package engine

import (
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/photoncloud/photon/services/flaredb/sqlcheck"
)

// rewriteOnLeader is the Rewrite hook FlareDB installs: sqlcheck fixes what
// SQLite would compute per replica, once, before replication.
func rewriteOnLeader(s Statement) (Statement, error) {
	out, err := sqlcheck.Rewrite(s.SQL, time.Now(), rand.Reader)
	s.SQL = out
	return s, err
}

// TestRewriteKeepsReplicasIdentical: writes that call random(),
// randomblob(), CURRENT_TIMESTAMP and datetime('now') leave three replicas
// with the same rows when the hook fixes them on the leader, and differ
// without it (the check can fail); DDL whose default would run per replica
// later is refused before it is replicated. It also reads linearizably
// right after converge's Barrier, an entry the FSM never sees.
func TestRewriteKeepsReplicasIdentical(t *testing.T) {
	load := func(t *testing.T, rewrite func(Statement) (Statement, error)) []*Node {
		c := newCluster(t, 3, func(cfg *Config) { cfg.Rewrite = rewrite })
		leader := waitLeader(t, c.live()...)
		exec(t, leader, "CREATE TABLE ev (id INTEGER PRIMARY KEY, r INTEGER, b BLOB, at TEXT, later TEXT)")
		for range 20 {
			exec(t, leader, "INSERT INTO ev (r, b, at, later) VALUES (random(), randomblob(8), CURRENT_TIMESTAMP, datetime('now', '+1 day'))")
		}
		exec(t, leader, "UPDATE ev SET r = abs(random()) % 1000 WHERE id % 2 = 0")
		converge(t, leader, c.live()...)
		return c.live()
	}

	nodes := load(t, rewriteOnLeader)
	assertIdentical(t, nodes...)
	leader := waitLeader(t, nodes...)
	// Each INSERT drew its own value; random() is fixed once per
	// statement, so the UPDATE gave all its rows the same one.
	if got := count(t, leader, PlatformDB, Linearizable, "SELECT count(DISTINCT r) FROM ev WHERE id % 2 = 1"); got != 10 {
		t.Fatalf("%d distinct random values in 10 inserted rows, want 10", got)
	}
	if got := count(t, leader, PlatformDB, Linearizable, "SELECT count(DISTINCT r) FROM ev WHERE id % 2 = 0"); got != 1 {
		t.Fatalf("%d distinct values from one UPDATE's random(), want 1", got)
	}
	_, err := leader.Exec(ctxT(t), PlatformDB, Statement{SQL: "CREATE TABLE later (x TEXT DEFAULT CURRENT_TIMESTAMP)"})
	var nd *sqlcheck.NotDeterministicError
	if !errors.As(err, &nd) {
		t.Fatalf("a per-replica DEFAULT: %v, want refused", err)
	}

	// Without the hook, each replica draws its own values.
	plain := load(t, nil)
	d0, err := plain[0].Digest(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	d1, err := plain[1].Digest(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if d0 == d1 {
		t.Fatal("replicas agree without the rewrite: the digest cannot tell them apart")
	}
}
