package sqlcheck

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

var fixedNow = time.Date(2026, 11, 27, 13, 42, 7, 123456789, time.FixedZone("CET", 3600))

// counting yields bytes 1, 2, 3, ...: random() reads 0x0102030405060708.
func counting() *bytes.Reader {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i + 1)
	}
	return bytes.NewReader(b)
}

const (
	ts  = "'2026-11-27 12:42:07.123'" // fixedNow in UTC, milliseconds
	r1  = "(72623859790382856)"       // 0x0102030405060708
	r1n = "(-506097522914230529)"     // 0xF8F9FAFBFCFDFEFF
)

func TestRewrite(t *testing.T) {
	tests := []struct{ in, want string }{
		{"INSERT INTO t VALUES (random())", "INSERT INTO t VALUES (" + r1 + ")"},
		{"insert into t values (RANDOM( ))", "insert into t values (" + r1 + ")"},
		{"UPDATE t SET a = b-random()", "UPDATE t SET a = b-" + r1},
		{"INSERT INTO t VALUES (randomblob(4), randomblob(0), randomblob(-2), randomblob(0x2))",
			"INSERT INTO t VALUES (x'01020304', x'05', x'06', x'0708')"},
		{"INSERT INTO t VALUES (CURRENT_TIMESTAMP, current_date, Current_Time)",
			"INSERT INTO t VALUES ('2026-11-27 12:42:07', '2026-11-27', '12:42:07')"},
		{"INSERT INTO t SELECT CURRENT_TIMESTAMP'alias'", "INSERT INTO t SELECT '2026-11-27 12:42:07' 'alias'"},
		{"INSERT INTO t VALUES (datetime('now'), DATE('NOW', '+1 day', 'start of month'), time ( 'Now' ))",
			"INSERT INTO t VALUES (datetime(" + ts + "), DATE(" + ts + ", '+1 day', 'start of month'), time ( " + ts + " ))"},
		{"INSERT INTO t VALUES (date(), time(/* c */), datetime(), julianday(), unixepoch())",
			"INSERT INTO t VALUES (date(" + ts + "), time(" + ts + "/* c */), datetime(" + ts + "), julianday(" + ts + "), unixepoch(" + ts + "))"},
		{"INSERT INTO t VALUES (strftime('%Y-%m-%d %H:%M:%f', 'now'), strftime('%s'))",
			"INSERT INTO t VALUES (strftime('%Y-%m-%d %H:%M:%f', " + ts + "), strftime('%s', " + ts + "))"},
		{"INSERT INTO t VALUES (unixepoch('subsec'), datetime('SubSecond', '+1 hour'))",
			"INSERT INTO t VALUES (unixepoch(" + ts + ", 'subsec'), datetime(" + ts + ", 'subsec', '+1 hour'))"},
		{"INSERT INTO t VALUES (timediff('now', '2020-01-01'), timediff(d, 'now'))",
			"INSERT INTO t VALUES (timediff(" + ts + ", '2020-01-01'), timediff(d, " + ts + "))"},
		{"INSERT INTO t VALUES (datetime(x'6E6F77'))", "INSERT INTO t VALUES (datetime(" + ts + "))"},
		{"INSERT INTO t VALUES (datetime(CURRENT_TIMESTAMP, '+1 day'))",
			"INSERT INTO t VALUES (datetime('2026-11-27 12:42:07', '+1 day'))"},
		{"UPDATE t SET d = date(created_at), e = datetime(1700000000, 'unixepoch')",
			"UPDATE t SET d = date(created_at), e = datetime(1700000000, 'unixepoch')"},
		{"CREATE TABLE t AS SELECT random() AS r, date() AS d",
			"CREATE TABLE t AS SELECT " + r1 + " AS r, date(" + ts + ") AS d"},
		{"WITH x(a) AS (SELECT random()) INSERT INTO t SELECT a FROM x RETURNING CURRENT_DATE",
			"WITH x(a) AS (SELECT " + r1 + ") INSERT INTO t SELECT a FROM x RETURNING '2026-11-27'"},
		// Text inside literals, identifiers, comments and parameters is left alone.
		{"INSERT INTO t VALUES ('it''s now', 'random()', \"CURRENT_TIMESTAMP\", [date()], $a(random()) -- random()\n)",
			"INSERT INTO t VALUES ('it''s now', 'random()', \"CURRENT_TIMESTAMP\", [date()], $a(random()) -- random()\n)"},
		{"INSERT INTO t VALUES (1) /* datetime('now') */;", "INSERT INTO t VALUES (1) /* datetime('now') */;"},
		{"INSERT INTO t VALUES (t.current_timestamp, date(' now'))", "INSERT INTO t VALUES (t.current_timestamp, date(' now'))"},
		// Reads run on one replica: left as they are.
		{"SELECT random(), datetime('now')", "SELECT random(), datetime('now')"},
	}
	for _, tt := range tests {
		got, err := Rewrite(tt.in, fixedNow, counting())
		if err != nil || got != tt.want {
			t.Errorf("Rewrite(%q)\n got %q, %v\nwant %q", tt.in, got, err, tt.want)
			continue
		}
		info, err := Check(tt.in)
		if err != nil || info.NeedsRewrite != (got != tt.in) {
			t.Errorf("Check(%q) = %+v, %v; NeedsRewrite disagrees with Rewrite", tt.in, info, err)
		}
	}
}

func TestRewriteNegativeRandom(t *testing.T) {
	// A negative literal is parenthesized: "b-" followed by "-5" would start a comment.
	rnd := bytes.NewReader([]byte{0xF8, 0xF9, 0xFA, 0xFB, 0xFC, 0xFD, 0xFE, 0xFF})
	got, err := Rewrite("UPDATE t SET a = b-random()", fixedNow, rnd)
	if want := "UPDATE t SET a = b-" + r1n; err != nil || got != want {
		t.Fatalf("got %q, %v; want %q", got, err, want)
	}
}

func TestRewriteSameInstant(t *testing.T) {
	// Every clock read in one statement sees one instant, as in SQLite.
	got, err := Rewrite("INSERT INTO t VALUES (datetime(), datetime('now'), julianday())", fixedNow, nil)
	if err != nil || strings.Count(got, ts) != 3 {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestRewriteRandomSourceError(t *testing.T) {
	_, err := Rewrite("INSERT INTO t VALUES (randomblob(16))", fixedNow, bytes.NewReader([]byte{1, 2}))
	if err == nil || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short random source: %v", err)
	}
	if _, err := Rewrite("INSERT INTO t VALUES (date())", time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), nil); err == nil {
		t.Fatal("year 10000 accepted")
	}
}
