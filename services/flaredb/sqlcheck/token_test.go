package sqlcheck

import (
	"reflect"
	"strings"
	"testing"
)

// tk is a token without its offset, for compact tables.
type tk struct {
	Kind TokenKind
	Text string
}

func significant(t *testing.T, sql string) []tk {
	t.Helper()
	var out []tk
	for _, tok := range Tokenize(sql) {
		if tok.Kind != Space {
			out = append(out, tk{tok.Kind, tok.Text})
		}
	}
	return out
}

func TestTokenize(t *testing.T) {
	tests := []struct {
		sql  string
		want []tk
	}{
		{`'it''s now'`, []tk{{String, `'it''s now'`}}},
		{`''''`, []tk{{String, `''''`}}},
		{`"random()"`, []tk{{QuotedIdent, `"random()"`}}},
		{`"a""b"`, []tk{{QuotedIdent, `"a""b"`}}},
		{"`back``tick`", []tk{{QuotedIdent, "`back``tick`"}}},
		{`[random()]`, []tk{{QuotedIdent, `[random()]`}}},
		{`[a]]`, []tk{{QuotedIdent, `[a]`}, {Illegal, `]`}}},
		{"-- random() comment\nx", []tk{{Comment, "-- random() comment"}, {Ident, "x"}}},
		{"/* random() */x", []tk{{Comment, "/* random() */"}, {Ident, "x"}}},
		{"/**/", []tk{{Comment, "/**/"}}},
		{"/*/ x", []tk{{Comment, "/*/ x"}}}, // unterminated: runs to the end
		{"/*", []tk{{Punct, "/"}, {Punct, "*"}}},
		{`x'00'`, []tk{{Blob, `x'00'`}}},
		{`X'aBcD'`, []tk{{Blob, `X'aBcD'`}}},
		{`x'0'`, []tk{{Illegal, `x'0'`}}},
		{`x'zz'`, []tk{{Illegal, `x'zz'`}}},
		{`xy'a'`, []tk{{Ident, "xy"}, {String, "'a'"}}},
		{`'open`, []tk{{Illegal, `'open`}}},
		{`"open`, []tk{{Illegal, `"open`}}},
		{`12 1.5 .5 1e5 1.5E-3 0x1F 1_000 12abc 0x 1e`, []tk{{Number, "12"}, {Number, "1.5"}, {Number, ".5"},
			{Number, "1e5"}, {Number, "1.5E-3"}, {Number, "0x1F"}, {Number, "1_000"}, {Illegal, "12abc"},
			{Illegal, "0x"}, {Illegal, "1e"}}},
		{`? ?12 :name @n #n $n $a::b $a(random()) $`, []tk{{Param, "?"}, {Param, "?12"}, {Param, ":name"},
			{Param, "@n"}, {Param, "#n"}, {Param, "$n"}, {Param, "$a::b"}, {Param, "$a(random()"}, {Punct, ")"}, {Illegal, "$"}}}, // SQLite stops at the first )
		{`a->>'x' || b != c ! d <> e <= f << g >= h >> i == j`, []tk{{Ident, "a"}, {Punct, "->>"}, {String, "'x'"},
			{Punct, "||"}, {Ident, "b"}, {Punct, "!="}, {Ident, "c"}, {Illegal, "!"}, {Ident, "d"}, {Punct, "<>"},
			{Ident, "e"}, {Punct, "<="}, {Ident, "f"}, {Punct, "<<"}, {Ident, "g"}, {Punct, ">="}, {Ident, "h"},
			{Punct, ">>"}, {Ident, "i"}, {Punct, "=="}, {Ident, "j"}}},
		{`t.a$b_c`, []tk{{Ident, "t"}, {Punct, "."}, {Ident, "a$b_c"}}},
		{"naïve", []tk{{Ident, "naïve"}}},
		{"\ufeffSELECT", []tk{{Ident, "SELECT"}}}, // a BOM is a space
		{"a\vb", []tk{{Ident, "a"}, {Illegal, "\v"}, {Ident, "b"}}},
		{`random();x`, []tk{{Ident, "random"}, {Punct, "("}, {Punct, ")"}, {Punct, ";"}, {Ident, "x"}}},
	}
	for _, tt := range tests {
		if got := significant(t, tt.sql); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Tokenize(%q)\n got %v\nwant %v", tt.sql, got, tt.want)
		}
	}
}

// TestTokenizeCovers checks that tokens are contiguous and rebuild the input.
func TestTokenizeCovers(t *testing.T) {
	for _, sql := range []string{"", "SELECT 'a''b' -- c\n/* d", "x'0", "\x00a", "é'\xff"} {
		var b strings.Builder
		for _, tok := range Tokenize(sql) {
			if tok.Off != b.Len() || tok.Text == "" {
				t.Fatalf("Tokenize(%q): token %+v at %d", sql, tok, b.Len())
			}
			b.WriteString(tok.Text)
		}
		if b.String() != sql {
			t.Errorf("Tokenize(%q) rebuilt %q", sql, b.String())
		}
	}
}

func TestSplit(t *testing.T) {
	tests := []struct {
		sql  string
		want []string
	}{
		{"", nil},
		{" ; ;-- only a comment\n", nil},
		{"SELECT 1", []string{"SELECT 1"}},
		{"SELECT 1;", []string{"SELECT 1"}},
		{"SELECT 1; SELECT 2 ;", []string{"SELECT 1", "SELECT 2"}},
		{"SELECT 'a;b'; SELECT \"c;d\", [e;f], `g;h` -- i;j\n; /* k;l */ SELECT 3",
			[]string{"SELECT 'a;b'", "SELECT \"c;d\", [e;f], `g;h` -- i;j", "/* k;l */ SELECT 3"}},
		{"CREATE TRIGGER tr AFTER INSERT ON a BEGIN INSERT INTO b VALUES (1); UPDATE c SET d = CASE WHEN 1 THEN 2 END; END; SELECT 1",
			[]string{"CREATE TRIGGER tr AFTER INSERT ON a BEGIN INSERT INTO b VALUES (1); UPDATE c SET d = CASE WHEN 1 THEN 2 END; END", "SELECT 1"}},
		{"create temp trigger tr before delete on a begin select 1; end ; x",
			[]string{"create temp trigger tr before delete on a begin select 1; end", "x"}},
		{"CREATE TABLE trigger_log(a); SELECT 1", []string{"CREATE TABLE trigger_log(a)", "SELECT 1"}},
		{"SELECT 'open; SELECT 2", []string{"SELECT 'open; SELECT 2"}},
	}
	for _, tt := range tests {
		if got := Split(tt.sql); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Split(%q)\n got %q\nwant %q", tt.sql, got, tt.want)
		}
	}
}
