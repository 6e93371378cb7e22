package engine

import (
	"database/sql"
	"io"
	"log/slog"
	"testing"

	"github.com/hashicorp/raft"
)

// TestReplayRegroupedEntries: after a crash between two databases'
// commits of a group, raft replays the entries grouped differently; each
// database takes only the entries after the last one it holds, so nothing
// is applied twice and nothing is skipped.
func TestReplayRegroupedEntries(t *testing.T) {
	st, err := openStore(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	f := &fsm{st: st, log: slog.New(slog.NewTextHandler(io.Discard, nil)), failedCh: make(chan struct{})}
	entry := func(index uint64, db, q string) *raft.Log {
		c, err := encodeCommand(Command{DB: db, Statements: []Statement{{SQL: q}}}, false)
		if err != nil {
			t.Fatal(err)
		}
		return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: encodeBatch([][]byte{c})}
	}
	logs := []*raft.Log{
		entry(1, "a", "CREATE TABLE t (v)"),
		entry(2, "b", "CREATE TABLE t (v)"),
		entry(3, "a", "INSERT INTO t VALUES (3)"),
		entry(4, "b", "INSERT INTO t VALUES (4)"),
		entry(5, "a", "INSERT INTO t VALUES (5)"),
	}
	for _, r := range f.ApplyBatch(logs[:3]) {
		if r == nil {
			continue
		}
		if ar, ok := r.(*applyResult); !ok || ar.cmds[0].err != nil {
			t.Fatalf("apply: %#v", r)
		}
	}
	// As if the platform database (the node's index) had lost entries
	// 1–3 while "a" and "b" kept theirs: the replay starts at 1 again.
	f.dbIndex = 0
	f.ApplyBatch(logs[:1])
	f.ApplyBatch(logs[1:])
	count := func(db string) int64 {
		var n int64
		if err := st.read(db, true, func(q *sql.DB, _ *database) error {
			return q.QueryRow("SELECT count(*) FROM t").Scan(&n)
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if a, b := count("a"), count("b"); a != 2 || b != 1 {
		t.Fatalf("rows: a %d (want 2), b %d (want 1)", a, b)
	}
	if f.dbIndex != 5 || st.platform().index != 5 {
		t.Fatalf("indexes: fsm %d, platform %d, want 5", f.dbIndex, st.platform().index)
	}
}
