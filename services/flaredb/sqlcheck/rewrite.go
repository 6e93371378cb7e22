package sqlcheck

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
)

// MaxRandomBlob caps randomblob(N) inlined by Rewrite: the literal is
// copied into the Raft log and into every replica.
const MaxRandomBlob = 64 << 10

// Rewrite makes one write statement deterministic by replacing, with values
// chosen once here (on the leader), what SQLite would otherwise compute
// separately on each replica: random() becomes an integer literal,
// randomblob(N) a blob literal, CURRENT_TIMESTAMP/DATE/TIME the text SQLite
// would produce at now (in UTC), and a 'now' time value in date(), time(),
// datetime(), julianday(), unixepoch(), strftime() and timediff() becomes
// now as 'YYYY-MM-DD HH:MM:SS.SSS', so modifiers still apply. Text inside
// literals, identifiers and comments is never edited, and rewriting the
// result again changes nothing. A nil rnd means crypto/rand. Reads are
// returned unchanged: they run on one replica. It refuses what Check
// refuses.
func Rewrite(stmt string, now time.Time, rnd io.Reader) (string, error) {
	a, err := analyze(stmt)
	if err != nil {
		return "", err
	}
	if len(a.edits) == 0 {
		return stmt, nil
	}
	now = now.UTC().Truncate(time.Millisecond)
	if y := now.Year(); y < 0 || y > 9999 {
		return "", fmt.Errorf("sqlcheck: now %v is outside the years 0000-9999 that SQLite supports", now)
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	sort.SliceStable(a.edits, func(i, j int) bool { return a.edits[i].start < a.edits[j].start })
	var b strings.Builder
	b.Grow(len(stmt) + 32*len(a.edits))
	pos := 0
	for _, e := range a.edits {
		repl, err := e.text(now, rnd)
		if err != nil {
			return "", err
		}
		b.WriteString(stmt[pos:e.start])
		// A replacement must not merge with its neighbours: 'a''b' is one
		// string in SQL.
		if e.start > 0 && stmt[e.start-1] == '\'' && repl[0] == '\'' {
			b.WriteByte(' ')
		}
		b.WriteString(repl)
		if e.end < len(stmt) && stmt[e.end] == '\'' && repl[len(repl)-1] == '\'' {
			b.WriteByte(' ')
		}
		pos = e.end
	}
	b.WriteString(stmt[pos:])
	return b.String(), nil
}

type editKind int

const (
	editRandom     editKind = iota // random() -> (N)
	editRandomBlob                 // randomblob(n) -> x'..'
	editNow                        // 'now' or nothing -> 'ts'
	editSubsec                     // 'subsec' -> 'ts', 'subsec'
	editTimestamp                  // CURRENT_TIMESTAMP
	editDate                       // CURRENT_DATE
	editTime                       // CURRENT_TIME
)

// edit replaces stmt[start:end] (empty for an insertion) with a value
// chosen by Rewrite. Edits are recorded in statement order and never overlap.
type edit struct {
	start, end int
	kind       editKind
	n          int    // randomblob length
	prefix     string // ", " when appending an argument
}

func (e edit) text(now time.Time, rnd io.Reader) (string, error) {
	switch e.kind {
	case editRandom:
		var buf [8]byte
		if _, err := io.ReadFull(rnd, buf[:]); err != nil {
			return "", fmt.Errorf("sqlcheck: reading random bytes: %w", err)
		}
		// Parenthesized: "x-random()" must not become "x--5", a comment.
		return "(" + strconv.FormatInt(int64(binary.BigEndian.Uint64(buf[:])), 10) + ")", nil
	case editRandomBlob:
		buf := make([]byte, e.n)
		if _, err := io.ReadFull(rnd, buf); err != nil {
			return "", fmt.Errorf("sqlcheck: reading random bytes: %w", err)
		}
		return "x'" + strings.ToUpper(hex.EncodeToString(buf)) + "'", nil
	case editNow:
		return e.prefix + "'" + now.Format("2006-01-02 15:04:05.000") + "'", nil
	case editSubsec:
		return "'" + now.Format("2006-01-02 15:04:05.000") + "', 'subsec'", nil
	case editTimestamp:
		return "'" + now.Format("2006-01-02 15:04:05") + "'", nil
	case editDate:
		return "'" + now.Format("2006-01-02") + "'", nil
	case editTime:
		return "'" + now.Format("15:04:05") + "'", nil
	}
	panic("sqlcheck: unknown edit kind")
}

// keywords are SQLite's reserved words: a keyword followed by '(' is syntax
// (VALUES(, IN (, CAST(), not a call, except keywordFuncs.
var keywords = set("ABORT", "ACTION", "ADD", "AFTER", "ALL", "ALTER", "ALWAYS", "ANALYZE", "AND",
	"AS", "ASC", "ATTACH", "AUTOINCREMENT", "BEFORE", "BEGIN", "BETWEEN", "BY", "CASCADE", "CASE",
	"CAST", "CHECK", "COLLATE", "COLUMN", "COMMIT", "CONFLICT", "CONSTRAINT", "CREATE", "CROSS",
	"CURRENT", "CURRENT_DATE", "CURRENT_TIME", "CURRENT_TIMESTAMP", "DATABASE", "DEFAULT",
	"DEFERRABLE", "DEFERRED", "DELETE", "DESC", "DETACH", "DISTINCT", "DO", "DROP", "EACH", "ELSE",
	"END", "ESCAPE", "EXCEPT", "EXCLUDE", "EXCLUSIVE", "EXISTS", "EXPLAIN", "FAIL", "FILTER",
	"FIRST", "FOLLOWING", "FOR", "FOREIGN", "FROM", "FULL", "GENERATED", "GLOB", "GROUP", "GROUPS",
	"HAVING", "IF", "IGNORE", "IMMEDIATE", "IN", "INDEX", "INDEXED", "INITIALLY", "INNER", "INSERT",
	"INSTEAD", "INTERSECT", "INTO", "IS", "ISNULL", "JOIN", "KEY", "LAST", "LEFT", "LIKE", "LIMIT",
	"MATCH", "MATERIALIZED", "NATURAL", "NO", "NOT", "NOTHING", "NOTNULL", "NULL", "NULLS", "OF",
	"OFFSET", "ON", "OR", "ORDER", "OTHERS", "OUTER", "OVER", "PARTITION", "PLAN", "PRAGMA",
	"PRECEDING", "PRIMARY", "QUERY", "RAISE", "RANGE", "RECURSIVE", "REFERENCES", "REGEXP",
	"REINDEX", "RELEASE", "RENAME", "REPLACE", "RESTRICT", "RETURNING", "RIGHT", "ROLLBACK", "ROW",
	"ROWS", "SAVEPOINT", "SELECT", "SET", "TABLE", "TEMP", "TEMPORARY", "THEN", "TIES", "TO",
	"TRANSACTION", "TRIGGER", "UNBOUNDED", "UNION", "UNIQUE", "UPDATE", "USING", "VACUUM", "VALUES",
	"VIEW", "VIRTUAL", "WHEN", "WHERE", "WINDOW", "WITH", "WITHOUT")

// keywordFuncs are keywords that are also functions: replace(), like(), ...
var keywordFuncs = set("REPLACE", "LIKE", "GLOB", "MATCH", "REGEXP", "IF")

// nameOnlyAfter are keywords after which "name(" names a table, view,
// index, trigger or module: INSERT INTO t(a), REFERENCES t(id), USING fts5(x).
var nameOnlyAfter = set("INTO", "TABLE", "EXISTS", "REFERENCES", "VIEW", "USING", "INDEX", "TRIGGER")

// timeFuncs are the date and time functions that read the clock for 'now'.
var timeFuncs = set("date", "time", "datetime", "julianday", "unixepoch", "strftime", "timediff")

// scan finds calls and CURRENT_* keywords, refusing or recording edits.
func (a *analysis) scan() error {
	var castParens []bool // one per open '(': was it opened by CAST?
	for i := 0; i < len(a.sig); i++ {
		t := a.sig[i]
		switch {
		case a.isPunct(i, "("):
			castParens = append(castParens, a.word(i-1) == "CAST")
			continue
		case a.isPunct(i, ")"):
			if len(castParens) > 0 {
				castParens = castParens[:len(castParens)-1]
			}
			continue
		case t.Kind == Ident && !a.isPunct(i-1, "."):
			if k, ok := currentKeywords[strings.ToUpper(t.Text)]; ok {
				if err := a.current(t, k); err != nil {
					return err
				}
				continue
			}
		}
		if (t.Kind != Ident && t.Kind != QuotedIdent) || !a.isPunct(i+1, "(") {
			continue
		}
		if u := strings.ToUpper(t.Text); t.Kind == Ident && keywords[u] && !keywordFuncs[u] {
			continue
		}
		if a.notCall[i] || !a.callPosition(i, castParens) {
			continue
		}
		closing := a.matchParen(i + 1)
		if closing < 0 {
			continue // unbalanced: SQLite rejects the statement
		}
		if a.word(closing+1) == "AS" && (a.isPunct(closing+2, "(") || a.word(closing+2) == "NOT" ||
			a.word(closing+2) == "MATERIALIZED") {
			continue // WITH name(cols) AS (...): a CTE, not a call
		}
		name := strings.ToLower(unquote(t))
		a.funcs[name] = true
		if err := a.call(i, closing, name); err != nil {
			return err
		}
	}
	return nil
}

// callPosition reports whether "name(" at sig[i] can be a function call:
// after an operator, '(' or ',' or an expression keyword, but not after a
// '.', a value, or a name (as in a column type "x VARCHAR(10)").
func (a *analysis) callPosition(i int, castParens []bool) bool {
	if i == 0 {
		return true
	}
	p := a.sig[i-1]
	switch p.Kind {
	case Punct:
		return p.Text != "." && p.Text != ")"
	case Ident:
		u := strings.ToUpper(p.Text)
		if !keywords[u] || nameOnlyAfter[u] {
			return false
		}
		// CAST(x AS DECIMAL(10, 2)): a type name.
		return u != "AS" || len(castParens) == 0 || !castParens[len(castParens)-1]
	}
	return false
}

var currentKeywords = map[string]editKind{
	"CURRENT_TIMESTAMP": editTimestamp, "CURRENT_DATE": editDate, "CURRENT_TIME": editTime,
}

func (a *analysis) current(t Token, k editKind) error {
	name := strings.ToLower(t.Text)
	a.funcs[name] = true
	if a.info.Kind == Read {
		return nil
	}
	if a.deferred != "" {
		return a.refuseDeferred(name, t.Off)
	}
	a.edits = append(a.edits, edit{start: t.Off, end: t.Off + len(t.Text), kind: k})
	return nil
}

func (a *analysis) refuseDeferred(name string, off int) error {
	return &NotDeterministicError{Func: name, Offset: off, Reason: "value would differ per replica in " + a.deferred}
}

func refuse(name string, off int, reason string) error {
	return &NotDeterministicError{Func: name, Offset: off, Reason: reason}
}

const (
	reasonConnHistory = "depends on statements run earlier on one replica's connection (other requests, " +
		"group commit, restarts, snapshot restores), not on the database; use RETURNING or the API's " +
		"rows_affected and last_insert_id"
	reasonBinary = "replicas may run different SQLite builds during a rolling upgrade; read it with a SELECT instead"
)

// call handles the call sig[i](...) closed at sig[closing].
func (a *analysis) call(i, closing int, name string) error {
	off := a.sig[i].Off
	if name == "load_extension" {
		return refuse(name, off, "loads native code from one replica's file system; extensions are disabled")
	}
	if a.info.Kind == Read {
		return nil
	}
	args := a.args(i+1, closing)
	quoted := a.sig[i].Kind == QuotedIdent
	switch name {
	case "random", "randomblob":
		if (name == "random" && len(args) != 0) || (name == "randomblob" && len(args) != 1) {
			return nil // wrong argument count: SQLite rejects it on every replica alike
		}
		if a.deferred != "" {
			return a.refuseDeferred(name, off)
		}
		if quoted {
			return refuse(name, off, "quoted function name; write "+name+"() unquoted so its value can be fixed before replication")
		}
		e := edit{start: off, end: a.sig[closing].Off + 1, kind: editRandom}
		if name == "randomblob" {
			n, ok := a.intLiteral(args[0])
			if !ok {
				return refuse(name, off, "length must be an integer literal for the bytes to be chosen before replication")
			}
			if n > MaxRandomBlob {
				return refuse(name, off, fmt.Sprintf("length %d is more than the %d bytes that can be inlined", n, MaxRandomBlob))
			}
			e.kind, e.n = editRandomBlob, int(max(n, 1)) // SQLite returns 1 byte for N < 1
		}
		a.edits = append(a.edits, e)
	case "changes", "last_insert_rowid", "total_changes":
		return refuse(name, off, reasonConnHistory)
	case "sqlite_version", "sqlite_source_id", "sqlite_compileoption_get", "sqlite_compileoption_used", "fts5_source_id":
		return refuse(name, off, reasonBinary)
	case "sqlite_offset":
		return refuse(name, off, "a record's file offset depends on each replica's page layout")
	default:
		if timeFuncs[name] {
			return a.timeCall(i, closing, name, args)
		}
	}
	return nil
}

// args splits sig(open, closing) at top-level commas into [from, to) ranges.
func (a *analysis) args(open, closing int) [][2]int {
	if closing == open+1 {
		return nil
	}
	var out [][2]int
	depth, from := 0, open+1
	for j := open + 1; j < closing; j++ {
		switch {
		case a.isPunct(j, "("):
			depth++
		case a.isPunct(j, ")"):
			depth--
		case depth == 0 && a.isPunct(j, ","):
			out = append(out, [2]int{from, j})
			from = j + 1
		}
	}
	return append(out, [2]int{from, closing})
}

// intLiteral parses an argument that is an integer literal with an
// optional sign.
func (a *analysis) intLiteral(r [2]int) (int64, bool) {
	neg := false
	j := r[0]
	if j < r[1] && (a.isPunct(j, "-") || a.isPunct(j, "+")) {
		neg = a.isPunct(j, "-")
		j++
	}
	if j != r[1]-1 || a.sig[j].Kind != Number {
		return 0, false
	}
	s := strings.ReplaceAll(a.sig[j].Text, "_", "")
	var u uint64
	var err error
	if len(s) > 2 && (s[1] == 'x' || s[1] == 'X') {
		u, err = strconv.ParseUint(s[2:], 16, 64) // SQLite: hex is a 64-bit two's complement
	} else {
		var v int64
		v, err = strconv.ParseInt(s, 10, 64)
		u = uint64(v)
	}
	if err != nil {
		return 0, false
	}
	if neg {
		return -int64(u), true
	}
	return int64(u), true
}

// literal returns the text SQLite passes to a function for an argument
// that is one string or blob literal.
func (a *analysis) literal(r [2]int) (string, bool) {
	if r[1]-r[0] != 1 {
		return "", false
	}
	t := a.sig[r[0]]
	switch t.Kind {
	case String:
		return strings.ReplaceAll(t.Text[1:len(t.Text)-1], "''", "'"), true
	case Blob:
		b, err := hex.DecodeString(t.Text[2 : len(t.Text)-1])
		return string(b), err == nil
	case QuotedIdent:
		// With SQLite's default "double-quoted strings" fallback, "now" is
		// the string 'now' when no column has that name.
		return unquote(t), true
	}
	return "", false
}

// hasParam reports whether an argument holds a bound parameter, whose
// value (possibly 'now' or 'localtime') is unknown until execution.
func (a *analysis) hasParam(r [2]int) bool {
	for j := r[0]; j < r[1]; j++ {
		if a.sig[j].Kind == Param {
			return true
		}
	}
	return false
}

// timeCall fixes 'now' in a date/time function. SQLite reads the clock when
// the time value is 'now', 'subsec' or 'subsecond' (any case), or absent;
// 'localtime' and 'utc' modifiers read the replica's time zone.
func (a *analysis) timeCall(i, closing int, name string, args [][2]int) error {
	off := a.sig[i].Off
	tv := 0 // index of the time value argument
	switch name {
	case "strftime":
		if len(args) == 0 {
			return nil
		}
		tv = 1
	case "timediff":
		if len(args) != 2 {
			return nil
		}
	}
	if len(args) <= tv { // date(), strftime('%s'): the time value defaults to now
		if a.deferred != "" {
			return a.refuseDeferred(name, off)
		}
		e := edit{start: a.sig[i+1].Off + 1, kind: editNow}
		if tv > 0 {
			e.start, e.prefix = a.sig[args[0][1]-1].Off+len(a.sig[args[0][1]-1].Text), ", "
		}
		e.end = e.start
		a.edits = append(a.edits, e)
		return nil
	}
	for j, r := range args {
		isTime := j == tv || (name == "timediff" && j == 1)
		if name == "strftime" && j == 0 {
			continue // the format
		}
		if a.hasParam(r) {
			return refuse(name, off, "a bound parameter as time value or modifier could be 'now' or 'localtime'; "+
				"bind the timestamp itself, computed by the client, or use 'now' literally")
		}
		v, ok := a.literal(r)
		if !ok {
			continue // an expression: a column or a nested call, handled where it is
		}
		lv := strings.ToLower(strings.TrimSpace(v))
		if !isTime {
			if lv == "localtime" || lv == "utc" {
				return refuse(name, off, "the '"+lv+"' modifier depends on each replica's time zone")
			}
			continue
		}
		if lv != "now" && lv != "subsec" && lv != "subsecond" {
			continue
		}
		if a.deferred != "" {
			return a.refuseDeferred(name, off)
		}
		t := a.sig[r[0]]
		if t.Kind == QuotedIdent {
			return refuse(name, off, "write the time value as the string 'now', not the identifier "+t.Text)
		}
		if lv != strings.ToLower(v) { // ' now': not 'now' to SQLite, an invalid date
			continue
		}
		k := editNow
		if lv != "now" && name != "timediff" {
			k = editSubsec
		}
		a.edits = append(a.edits, edit{start: t.Off, end: t.Off + len(t.Text), kind: k})
	}
	return nil
}
