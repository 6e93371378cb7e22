package sqlcheck

import (
	"errors"
	"reflect"
	"slices"
	"testing"
)

func TestCheckKind(t *testing.T) {
	tests := []struct {
		sql  string
		kind Kind
		verb string
	}{
		{"SELECT * FROM users WHERE id = 123", Read, "SELECT"},
		{"  select 1;  -- trailing", Read, "SELECT"},
		{"VALUES (1), (2)", Read, "VALUES"},
		{"WITH x AS (SELECT 1) SELECT * FROM x", Read, "SELECT"},
		{"WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM c WHERE n < 5), d AS NOT MATERIALIZED (SELECT 2) SELECT * FROM c, d", Read, "SELECT"},
		{"WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x", Write, "INSERT"},
		{"WITH x AS (SELECT 1) DELETE FROM t WHERE a IN x", Write, "DELETE"},
		{"WITH replace(a) AS (SELECT 1) SELECT * FROM replace", Read, "SELECT"},
		{"WITH broken", Write, "WITH"},
		{"EXPLAIN QUERY PLAN SELECT 1", Read, "EXPLAIN"},
		{"EXPLAIN INSERT INTO t VALUES (random())", Read, "EXPLAIN"},
		{"PRAGMA table_info(users)", Read, "PRAGMA table_info"},
		{"PRAGMA main.index_list('t')", Read, "PRAGMA index_list"},
		{"PRAGMA foreign_keys", Read, "PRAGMA foreign_keys"},
		{"PRAGMA user_version", Read, "PRAGMA user_version"},
		{"PRAGMA user_version = 7", Write, "PRAGMA user_version"},
		{"PRAGMA application_id(42)", Write, "PRAGMA application_id"},
		{"INSERT INTO t VALUES (1)", Write, "INSERT"},
		{"REPLACE INTO t VALUES (1)", Write, "REPLACE"},
		{"UPDATE t SET a = 1", Write, "UPDATE"},
		{"DELETE FROM t", Write, "DELETE"},
		{"CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT DEFAULT 'x')", Write, "CREATE TABLE"},
		{"CREATE UNIQUE INDEX i ON t(b)", Write, "CREATE INDEX"},
		{"CREATE VIRTUAL TABLE f USING fts5(body)", Write, "CREATE VIRTUAL TABLE"},
		{"DROP TABLE t", Write, "DROP"},
		{"ALTER TABLE t ADD COLUMN c", Write, "ALTER TABLE"},
		{"ANALYZE", Write, "ANALYZE"},
		{"REINDEX", Write, "REINDEX"},
		{"(SELECT 1)", Write, ""}, // not SQL SQLite accepts; never guessed to be a read
	}
	for _, tt := range tests {
		info, err := Check(tt.sql)
		if err != nil {
			t.Errorf("Check(%q): %v", tt.sql, err)
			continue
		}
		if info.Kind != tt.kind || info.Verb != tt.verb {
			t.Errorf("Check(%q) = %v %q, want %v %q", tt.sql, info.Kind, info.Verb, tt.kind, tt.verb)
		}
	}
}

func TestCheckFunctions(t *testing.T) {
	tests := []struct {
		sql   string
		funcs []string
	}{
		{"SELECT abs(a), Upper(\"b\"), random() FROM t", []string{"abs", "random", "upper"}},
		{"SELECT 'random()', \"random()\" -- random()\n FROM t", nil},
		{"INSERT INTO random(a) VALUES (1)", nil},
		{"INSERT INTO main.date(a) SELECT x FROM y", nil},
		{"CREATE TABLE t(a VARCHAR(10), b randomblob(16) REFERENCES p(id))", nil},
		{"CREATE INDEX i ON random(a)", nil},
		{"SELECT CAST(a AS DECIMAL(10, 2)), replace(b, 'x', 'y'), EXISTS (SELECT 1), c IN (1) FROM t", []string{"replace"}},
		{"WITH random(x) AS (SELECT 1) SELECT x FROM random", nil},
		{"SELECT * FROM t, json_each(t.j) WHERE CURRENT_DATE > t.d", []string{"current_date", "json_each"}},
	}
	for _, tt := range tests {
		info, err := Check(tt.sql)
		if err != nil {
			t.Errorf("Check(%q): %v", tt.sql, err)
			continue
		}
		if !reflect.DeepEqual(info.Functions, tt.funcs) {
			t.Errorf("Check(%q).Functions = %q, want %q", tt.sql, info.Functions, tt.funcs)
		}
	}
}

func TestCheckRefuses(t *testing.T) {
	tests := []struct {
		sql  string
		fn   string // NotDeterministicError.Func, or
		stmt string // UnsupportedStatementError.Statement
	}{
		{"BEGIN", "", "BEGIN"},
		{"begin immediate transaction", "", "BEGIN"},
		{"COMMIT", "", "COMMIT"},
		{"END TRANSACTION", "", "END"},
		{"ROLLBACK TO s", "", "ROLLBACK"},
		{"SAVEPOINT s", "", "SAVEPOINT"},
		{"RELEASE s", "", "RELEASE"},
		{"ATTACH DATABASE '/etc/x.db' AS x", "", "ATTACH"},
		{"DETACH x", "", "DETACH"},
		{"VACUUM", "", "VACUUM"},
		{"VACUUM INTO '/tmp/copy.db'", "", "VACUUM"},
		{"PRAGMA foreign_keys = OFF", "", "PRAGMA foreign_keys"},
		{"PRAGMA journal_mode=DELETE", "", "PRAGMA journal_mode"},
		{"PRAGMA writable_schema = 1", "", "PRAGMA writable_schema"},
		{"PRAGMA optimize", "", "PRAGMA optimize"},
		{"PRAGMA wal_checkpoint(TRUNCATE)", "", "PRAGMA wal_checkpoint"},
		{"CREATE TEMP TABLE t(a)", "", "CREATE TEMP TABLE"},
		{"CREATE TABLE temp.t(a)", "", "CREATE TEMP TABLE"},
		{"CREATE TEMPORARY VIEW v AS SELECT 1", "", "CREATE TEMP VIEW"},
		{"CREATE TABLE t(a TEXT DEFAULT CURRENT_TIMESTAMP)", "current_timestamp", ""},
		{"CREATE TABLE t(a DEFAULT (datetime('now')))", "datetime", ""},
		{"CREATE TABLE t(a DEFAULT (random()))", "random", ""},
		{"CREATE TABLE t(a BLOB DEFAULT (randomblob(16)))", "randomblob", ""},
		{"CREATE TABLE t(a DEFAULT (date()))", "date", ""},
		{"CREATE VIEW v AS SELECT random() AS r", "random", ""},
		{"CREATE VIEW v AS SELECT * FROM t WHERE d > date('now', '-1 day')", "date", ""},
		{"CREATE TRIGGER tr AFTER UPDATE ON t BEGIN UPDATE t SET at = CURRENT_TIMESTAMP WHERE id = new.id; END", "current_timestamp", ""},
		{"CREATE INDEX i ON t(a) WHERE b > unixepoch()", "unixepoch", ""},
		{"ALTER TABLE t ADD COLUMN c DEFAULT CURRENT_TIME", "current_time", ""},
		{"INSERT INTO t VALUES (changes())", "changes", ""},
		{"INSERT INTO t VALUES (last_insert_rowid())", "last_insert_rowid", ""},
		{"UPDATE t SET a = total_changes()", "total_changes", ""},
		{"INSERT INTO t VALUES (sqlite_version())", "sqlite_version", ""},
		{"INSERT INTO t SELECT sqlite_offset(a) FROM u", "sqlite_offset", ""},
		{"SELECT load_extension('/tmp/evil.so')", "load_extension", ""},
		{"INSERT INTO t VALUES (randomblob(?))", "randomblob", ""},
		{"INSERT INTO t VALUES (randomblob(n + 1))", "randomblob", ""},
		{"INSERT INTO t VALUES (randomblob(1000000))", "randomblob", ""},
		{`INSERT INTO t VALUES ("random"())`, "random", ""},
		{"INSERT INTO t VALUES (datetime(?))", "datetime", ""},
		{"INSERT INTO t VALUES (datetime(:when, '+1 day'))", "datetime", ""},
		{"INSERT INTO t VALUES (date('2024-01-01', ?))", "date", ""},
		{"INSERT INTO t VALUES (datetime('now', 'localtime'))", "datetime", ""},
		{"UPDATE t SET d = date(d, 'UTC')", "date", ""},
		{"INSERT INTO t VALUES (strftime('%s', \"now\"))", "strftime", ""},
	}
	for _, tt := range tests {
		_, err := Check(tt.sql)
		var nd *NotDeterministicError
		var us *UnsupportedStatementError
		switch {
		case tt.fn != "" && errors.As(err, &nd):
			if nd.Func != tt.fn || nd.Reason == "" {
				t.Errorf("Check(%q): %+v, want Func %q", tt.sql, nd, tt.fn)
			}
		case tt.stmt != "" && errors.As(err, &us):
			if us.Statement != tt.stmt || us.Reason == "" {
				t.Errorf("Check(%q): %+v, want Statement %q", tt.sql, us, tt.stmt)
			}
		default:
			t.Errorf("Check(%q) = %v, want a refusal of %q%q", tt.sql, err, tt.fn, tt.stmt)
		}
		if _, rerr := Rewrite(tt.sql, fixedNow, nil); rerr == nil || rerr.Error() != err.Error() {
			t.Errorf("Rewrite(%q) = %v, want Check's error %v", tt.sql, rerr, err)
		}
	}
}

// TestCheckAllowsReads: what is refused in a write is fine in a read, which
// runs on one replica only.
func TestCheckAllowsReads(t *testing.T) {
	for _, sql := range []string{
		"SELECT changes(), last_insert_rowid(), total_changes(), sqlite_version()",
		"SELECT datetime('now', 'localtime'), date(?), random(), randomblob(?)",
		"WITH x AS (SELECT CURRENT_TIMESTAMP) SELECT * FROM x",
	} {
		if info, err := Check(sql); err != nil || info.Kind != Read || info.NeedsRewrite {
			t.Errorf("Check(%q) = %+v, %v; want a read needing no rewrite", sql, info, err)
		}
	}
}

func TestCheckText(t *testing.T) {
	var multi *MultipleStatementsError
	if _, err := Check("SELECT 1; DELETE FROM t"); !errors.As(err, &multi) || multi.Count != 2 {
		t.Errorf("two statements: %v", err)
	}
	for _, sql := range []string{"", "  ;; ", "-- nothing\n/* here */"} {
		if _, err := Check(sql); !errors.Is(err, ErrEmpty) {
			t.Errorf("Check(%q) = %v, want ErrEmpty", sql, err)
		}
	}
	var inv *InvalidTextError
	if _, err := Check("SELECT 1\x00; DROP TABLE t"); !errors.As(err, &inv) || inv.Offset != 8 {
		t.Errorf("NUL byte: %v", err)
	}
}

func TestReturning(t *testing.T) {
	for q, want := range map[string]bool{
		"INSERT INTO t (a) VALUES (1) RETURNING id":                      true,
		"insert into t values (1) returning *":                           true,
		"UPDATE t SET a = 1 RETURNING a, b":                              true,
		"DELETE FROM t WHERE a IN (SELECT 1) RETURNING rowid":            true,
		"WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x RETURNING 1": true,
		"UPDATE t SET returning = 1":                                     false,
		"INSERT INTO t (returning) VALUES (1)":                           false,
		"SELECT returning FROM t":                                        false,
		"CREATE TABLE r (returning TEXT)":                                false,
	} {
		info, err := Check(q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if info.Returning != want {
			t.Errorf("%s: Returning %v, want %v", q, info.Returning, want)
		}
	}
}

func TestParams(t *testing.T) {
	for q, want := range map[string]struct {
		n     int
		names []string
	}{
		"SELECT 1":                          {0, nil},
		"SELECT ?, ?":                       {2, nil},
		"SELECT ?5":                         {5, nil},
		"SELECT ?2, ?":                      {3, nil},
		"SELECT :a, @b, $c, :a":             {3, []string{"a", "b", "c"}},
		"SELECT ?, :a, ?":                   {3, []string{"a"}},
		"SELECT '?' || \"?\" -- ?\n, ?":     {1, nil},
		"INSERT INTO t VALUES (?1, ?1, ?2)": {2, nil},
	} {
		info, err := Check(q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if info.ParamCount != want.n || !slices.Equal(info.ParamNames, want.names) {
			t.Errorf("%s: %d %q, want %d %q", q, info.ParamCount, info.ParamNames, want.n, want.names)
		}
	}
}
