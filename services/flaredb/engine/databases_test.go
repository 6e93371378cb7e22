package engine

import (
	"errors"
	"slices"
	"testing"
)

// TestDatabasesAreSeparate: each database is its own namespace of tables
// and KV pairs; a read of one that was never written is an empty database
// and creates nothing; a bad name is refused before it reaches a file.
func TestDatabasesAreSeparate(t *testing.T) {
	n := testNode(t, t.TempDir(), "solo", "127.0.0.1:0", true, nil, nil)
	waitLeader(t, n)
	for _, db := range []string{"proj-a", "proj-b"} {
		if _, err := n.Exec(ctxT(t), db, Statement{SQL: "CREATE TABLE t (v TEXT)"}); err != nil {
			t.Fatal(err)
		}
		if _, err := n.Exec(ctxT(t), db, Statement{SQL: "INSERT INTO t VALUES (?)", Params: []any{db}}); err != nil {
			t.Fatal(err)
		}
		if err := n.PutKV(ctxT(t), db, "default", "owner", db); err != nil {
			t.Fatal(err)
		}
	}
	for _, db := range []string{"proj-a", "proj-b"} {
		rows, err := n.Query(ctxT(t), db, Linearizable, Statement{SQL: "SELECT v FROM t"})
		if err != nil || len(rows.Rows) != 1 || rows.Rows[0][0] != db {
			t.Fatalf("%s: %+v %v", db, rows, err)
		}
		v, ok, err := n.GetKV(ctxT(t), db, Linearizable, "default", "owner")
		if err != nil || !ok || v != db {
			t.Fatalf("%s kv: %q %v %v", db, v, ok, err)
		}
	}
	if _, err := n.Query(ctxT(t), PlatformDB, Linearizable, Statement{SQL: "SELECT v FROM t"}); !errors.Is(err, ErrSQL) {
		t.Fatalf("the platform database sees a project's table: %v", err)
	}
	if _, ok, err := n.GetKV(ctxT(t), "proj-none", Linearizable, "default", "owner"); ok || err != nil {
		t.Fatalf("unwritten database: %v %v", ok, err)
	}
	if got, want := n.Databases(), []string{PlatformDB, "proj-a", "proj-b"}; !slices.Equal(got, want) {
		t.Fatalf("databases %q, want %q (a read must not create one)", got, want)
	}
	for _, bad := range []string{"../x", "A", "_platform", "-x", "a/b", string(make([]byte, 64))} {
		if _, err := n.Exec(ctxT(t), bad, Statement{SQL: "CREATE TABLE t (v)"}); !errors.Is(err, ErrBadDatabase) {
			t.Errorf("database %q: %v", bad, err)
		}
		if _, err := n.Query(ctxT(t), bad, Stale, Statement{SQL: "SELECT 1"}); !errors.Is(err, ErrBadDatabase) {
			t.Errorf("read database %q: %v", bad, err)
		}
	}
	// Users read the KV table but never write it.
	if _, err := n.Exec(ctxT(t), "proj-a", Statement{SQL: "DELETE FROM " + KVTable}); !errors.Is(err, ErrSQL) {
		t.Fatalf("user write to the KV table: %v", err)
	}
	if c := count(t, n, "proj-a", Linearizable, "SELECT count(*) FROM "+KVTable); c != 1 {
		t.Fatalf("KV table by SQL: %d rows", c)
	}
}

// TestWriteReturnsRows: a transaction may read what it wrote, and
// RETURNING hands back the rows it made.
func TestWriteReturnsRows(t *testing.T) {
	n := testNode(t, t.TempDir(), "solo", "127.0.0.1:0", true, nil, nil)
	waitLeader(t, n)
	res, err := n.Write(ctxT(t), Command{DB: "p", Statements: []Statement{
		{SQL: "CREATE TABLE acct (id INTEGER PRIMARY KEY, bal INTEGER NOT NULL CHECK (bal >= 0))"},
		{SQL: "INSERT INTO acct (bal) VALUES (10), (20) RETURNING id, bal", Rows: true},
		{SQL: "UPDATE acct SET bal = bal + 1"},
		{SQL: "SELECT sum(bal) FROM acct", Rows: true},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if r := res[1].Rows; r == nil || len(r.Rows) != 2 || r.Rows[1][1] != int64(20) {
		t.Fatalf("RETURNING rows: %+v", r)
	}
	if res[2].RowsAffected != 2 {
		t.Fatalf("update: %+v", res[2])
	}
	if r := res[3].Rows; r == nil || r.Rows[0][0] != int64(32) {
		t.Fatalf("read inside the transaction: %+v", r)
	}
	rs, err := n.QueryAll(ctxT(t), "p", Linearizable, []Statement{{SQL: "SELECT count(*) FROM acct"}, {SQL: "SELECT max(bal) FROM acct"}})
	if err != nil || len(rs) != 2 || rs[0].Rows[0][0] != int64(2) || rs[1].Rows[0][0] != int64(21) {
		t.Fatalf("QueryAll: %+v %v", rs, err)
	}
	_, err = n.QueryAll(ctxT(t), "p", Linearizable, []Statement{{SQL: "SELECT 1"}, {SQL: "SELECT nope FROM acct"}})
	var se *SQLError
	if !errors.As(err, &se) || se.Statement != 1 {
		t.Fatalf("QueryAll error: %v", err)
	}
}
