package sqlcheck

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// protected returns the tokens Rewrite must keep byte for byte: comments,
// quoted identifiers, parameters, and literals other than the time values
// it may replace whole.
func protected(sql string) []Token {
	var out []Token
	for _, t := range Tokenize(sql) {
		switch t.Kind {
		case Comment, QuotedIdent, Param:
		case String, Blob:
			a := &analysis{sig: []Token{t}}
			if v, _ := a.literal([2]int{0, 1}); isClockValue(v) {
				continue
			}
		default:
			continue
		}
		out = append(out, t)
	}
	return out
}

func isClockValue(v string) bool {
	v = strings.ToLower(v)
	return v == "now" || v == "subsec" || v == "subsecond"
}

// FuzzRewrite checks that Rewrite never panics, agrees with Check, keeps
// every literal, identifier and comment intact and in order, and is
// idempotent: rewriting its output with another instant and other random
// bytes changes nothing.
func FuzzRewrite(f *testing.F) {
	for _, s := range []string{
		"INSERT INTO t VALUES (random(), randomblob(4), CURRENT_TIMESTAMP, datetime('now','+1 day'))",
		"INSERT INTO t VALUES ('it''s now', \"random()\", [date()], `x`) -- random()\n",
		"UPDATE t SET a = b-random(), c = x'00', d = date(), e = strftime('%s'), f = unixepoch('subsec')",
		"INSERT INTO t SELECT CURRENT_TIMESTAMP'x', timediff('now', d) FROM u /* CURRENT_DATE */",
		"CREATE TRIGGER tr AFTER INSERT ON a BEGIN INSERT INTO b VALUES (datetime('now')); END;",
		"CREATE TABLE t AS SELECT random() r, $a(random()) FROM x",
		"WITH random(x) AS (SELECT 1) INSERT INTO t SELECT x FROM random",
		"PRAGMA user_version = 3", "SELECT 1; SELECT 2", "'unterminated random()", "x'0'random()",
	} {
		f.Add(s)
	}
	now2 := fixedNow.Add(1234567 * time.Hour)
	f.Fuzz(func(t *testing.T, sql string) {
		var b strings.Builder
		for _, tok := range Tokenize(sql) {
			b.WriteString(tok.Text)
		}
		if b.String() != sql {
			t.Fatalf("tokens rebuild %q, not %q", b.String(), sql)
		}
		info, cerr := Check(sql)
		out, err := Rewrite(sql, fixedNow, counting())
		if (err == nil) != (cerr == nil) {
			t.Fatalf("Check says %v, Rewrite says %v", cerr, err)
		}
		if err != nil {
			return
		}
		if info.NeedsRewrite != (out != sql) {
			t.Fatalf("NeedsRewrite %v but Rewrite(%q) = %q", info.NeedsRewrite, sql, out)
		}
		in, got := protected(sql), protected(out)
		for _, p := range in { // in is a subsequence of got
			for len(got) > 0 && (got[0].Kind != p.Kind || got[0].Text != p.Text) {
				got = got[1:]
			}
			if len(got) == 0 {
				t.Fatalf("Rewrite(%q) = %q lost or changed %s %q", sql, out, p.Kind, p.Text)
			}
			got = got[1:]
		}
		info2, err := Check(out)
		if err != nil || info2.Kind != info.Kind || info2.Verb != info.Verb {
			t.Fatalf("Check(%q) = %+v, %v; the input was %+v", out, info2, err, info)
		}
		again, err := Rewrite(out, now2, bytes.NewReader(bytes.Repeat([]byte{0xAB}, 1<<17)))
		if err != nil || again != out || info2.NeedsRewrite {
			t.Fatalf("not idempotent: Rewrite(%q) = %q, %v", out, again, err)
		}
	})
}
