package sqlcheck

import (
	"sort"
	"strconv"
	"strings"
)

// Kind says where a statement may run: reads are answered by one replica,
// writes go through the Raft log and run on every replica.
type Kind int

// Statement kinds. Write is the zero value: anything not known to be a read
// is treated as one.
const (
	Write Kind = iota
	Read
)

func (k Kind) String() string {
	if k == Read {
		return "read"
	}
	return "write"
}

// Info describes one statement.
type Info struct {
	Kind Kind
	// Verb is the statement's main keyword(s), upper case: "SELECT",
	// "INSERT", "CREATE TRIGGER", "PRAGMA user_version", "EXPLAIN". For
	// WITH ... it is the statement after the common table expressions.
	Verb string
	// Functions lists the functions called and the CURRENT_* keywords used,
	// lower case, sorted, without duplicates.
	Functions []string
	// NeedsRewrite reports that Rewrite will change the statement.
	NeedsRewrite bool
	// Returning reports a write with a RETURNING clause: it answers rows.
	Returning bool
	// ParamCount is how many values the statement binds (SQLite's
	// sqlite3_bind_parameter_count: the largest index any parameter takes)
	// and ParamNames its named parameters, without their prefix.
	ParamCount int
	ParamNames []string
}

// Check classifies one statement (a trailing ';' is allowed) and refuses it
// when it cannot be replicated as is or after Rewrite. A read is refused
// only for load_extension; the determinism rules apply to writes.
func Check(stmt string) (Info, error) {
	a, err := analyze(stmt)
	if a == nil {
		return Info{}, err
	}
	return a.info, err
}

// analysis is the state of checking one statement.
type analysis struct {
	sig      []Token // significant tokens: no spaces, comments or final ';'
	info     Info
	funcs    map[string]bool
	edits    []edit
	deferred string       // why values in this statement are computed later, per replica
	notCall  map[int]bool // sig indices of names followed by '(' that are not calls
}

// analyze returns a nil analysis only when the text is not one statement.
func analyze(stmt string) (*analysis, error) {
	if i := strings.IndexByte(stmt, 0); i >= 0 {
		return nil, &InvalidTextError{Offset: i, Reason: "NUL byte (SQLite stops reading there)"}
	}
	toks := Tokenize(stmt)
	spans := splitSpans(toks)
	switch {
	case len(spans) == 0:
		return nil, ErrEmpty
	case len(spans) > 1:
		return nil, &MultipleStatementsError{Count: len(spans)}
	}
	a := &analysis{funcs: map[string]bool{}, notCall: map[int]bool{}}
	for _, t := range toks[spans[0].first:spans[0].last] {
		if t.Kind != Space && t.Kind != Comment {
			a.sig = append(a.sig, t)
		}
	}
	err := a.classify()
	if err == nil && !strings.HasPrefix(a.info.Verb, "PRAGMA") {
		err = a.scan()
	}
	for f := range a.funcs {
		a.info.Functions = append(a.info.Functions, f)
	}
	sort.Strings(a.info.Functions)
	a.info.NeedsRewrite = err == nil && len(a.edits) > 0
	a.info.Returning = a.info.Kind == Write && a.returning()
	a.info.ParamCount, a.info.ParamNames = a.params()
	if err != nil {
		a.edits = nil
	}
	return a, err
}

// params numbers the parameters as SQLite does: "?" takes the next index,
// "?NNN" index NNN, and a name the next index the first time it appears.
func (a *analysis) params() (int, []string) {
	n := 0
	var names []string
	seen := map[string]bool{}
	for _, t := range a.sig {
		if t.Kind != Param {
			continue
		}
		switch {
		case t.Text == "?":
			n++
		case t.Text[0] == '?':
			if i, err := strconv.Atoi(t.Text[1:]); err == nil {
				n = max(n, i)
			}
		case !seen[t.Text]:
			seen[t.Text] = true
			n++
			names = append(names, t.Text[1:])
		}
	}
	return n, names
}

// returning finds a RETURNING clause: the keyword outside parentheses of
// an INSERT, UPDATE, DELETE or REPLACE (not a column named "returning"
// being assigned or compared).
func (a *analysis) returning() bool {
	switch a.info.Verb {
	case "INSERT", "UPDATE", "DELETE", "REPLACE":
	default:
		return false
	}
	depth := 0
	for i := range a.sig {
		switch {
		case a.isPunct(i, "("):
			depth++
		case a.isPunct(i, ")"):
			depth--
		case depth == 0 && a.word(i) == "RETURNING" && i+1 < len(a.sig) && a.sig[i+1].Kind != Punct:
			return true
		case depth == 0 && a.word(i) == "RETURNING" && a.isPunct(i+1, "*"):
			return true
		}
	}
	return false
}

// word returns sig[i] upper-cased if it is a bare word, else "".
func (a *analysis) word(i int) string {
	if i < 0 || i >= len(a.sig) || a.sig[i].Kind != Ident {
		return ""
	}
	return strings.ToUpper(a.sig[i].Text)
}

func (a *analysis) isPunct(i int, p string) bool {
	return i >= 0 && i < len(a.sig) && a.sig[i].Kind == Punct && a.sig[i].Text == p
}

// matchParen returns the index of the ')' closing the '(' at open, or -1.
func (a *analysis) matchParen(open int) int {
	depth := 0
	for i := open; i < len(a.sig); i++ {
		switch {
		case a.isPunct(i, "("):
			depth++
		case a.isPunct(i, ")"):
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

const (
	reasonTxn = "the engine runs each request in its own transaction; send several statements as one request " +
		`({"statements": [...]}) to make them atomic`
	reasonAttach = "other database files are local to each replica and outside the project's database"
	reasonVacuum = "VACUUM cannot run inside the engine's transaction and may renumber implicit rowids " +
		"depending on each replica's file layout; the engine compacts storage itself through snapshots"
	reasonTemp = "TEMP objects live in one replica's connection, not in the replicated database or its snapshots"
	reasonConn = "sets state of one replica's connection that is neither replicated nor in snapshots, and is ignored " +
		"inside the engine's transaction; the engine sets it the same way on every replica"
	reasonPragma = "changes engine or file state outside replication; only read-only pragmas and writes to " +
		"user_version and application_id are allowed"
)

// classify sets Kind and Verb from the leading keywords and refuses the
// statements that cannot be replicated at all.
func (a *analysis) classify() error {
	w := a.word(0)
	if statementVerbs[w] {
		a.info.Verb = w
	}
	switch w {
	case "SELECT", "VALUES":
		a.info.Kind = Read
	case "WITH":
		// A CTE can front INSERT/UPDATE/DELETE too: only the statement after
		// the CTE list decides. If the list does not parse, stay a write.
		if main := a.cteMain(); main != "" {
			a.info.Verb = main
			if main == "SELECT" || main == "VALUES" {
				a.info.Kind = Read
			}
		}
	case "EXPLAIN":
		// EXPLAIN [QUERY PLAN] compiles its statement but never runs it.
		a.info.Kind = Read
	case "PRAGMA":
		return a.pragma()
	case "BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE":
		return &UnsupportedStatementError{Statement: w, Reason: reasonTxn}
	case "ATTACH", "DETACH":
		return &UnsupportedStatementError{Statement: w, Reason: reasonAttach}
	case "VACUUM":
		return &UnsupportedStatementError{Statement: w, Reason: reasonVacuum}
	case "CREATE":
		return a.create()
	case "ALTER":
		a.info.Verb = "ALTER TABLE"
		a.deferred = "ALTER TABLE: a column DEFAULT is computed on each replica for every row that needs it"
	}
	return nil
}

// statementVerbs are the keywords a statement can start with.
var statementVerbs = set("SELECT", "VALUES", "WITH", "EXPLAIN", "PRAGMA", "BEGIN", "COMMIT", "END",
	"ROLLBACK", "SAVEPOINT", "RELEASE", "ATTACH", "DETACH", "VACUUM", "CREATE", "ALTER", "INSERT",
	"REPLACE", "UPDATE", "DELETE", "DROP", "ANALYZE", "REINDEX")

// cteMain skips WITH [RECURSIVE] name [(cols)] AS [NOT] [MATERIALIZED] (...), ...
// and returns the keyword of the statement that follows, or "".
func (a *analysis) cteMain() string {
	i := 1
	if a.word(i) == "RECURSIVE" {
		i++
	}
	for {
		if i >= len(a.sig) || (a.sig[i].Kind != Ident && a.sig[i].Kind != QuotedIdent) {
			return ""
		}
		i++
		if a.isPunct(i, "(") {
			if i = a.matchParen(i); i < 0 {
				return ""
			}
			i++
		}
		if a.word(i) != "AS" {
			return ""
		}
		i++
		if a.word(i) == "NOT" {
			i++
		}
		if a.word(i) == "MATERIALIZED" {
			i++
		}
		if !a.isPunct(i, "(") {
			return ""
		}
		if i = a.matchParen(i); i < 0 {
			return ""
		}
		i++
		if !a.isPunct(i, ",") {
			return a.word(i)
		}
		i++
	}
}

// create sets Verb and the deferred context for CREATE statements: values in
// a DEFAULT, view, trigger or index are computed later on each replica, so
// they cannot be fixed on the leader and are refused instead of rewritten.
// CREATE TABLE ... AS SELECT runs once, like INSERT ... SELECT, and is
// rewritten.
func (a *analysis) create() error {
	i, temp := 1, false
	if w := a.word(i); w == "TEMP" || w == "TEMPORARY" {
		temp = true
		i++
	}
	if a.word(i) == "UNIQUE" {
		i++
	}
	virtual := a.word(i) == "VIRTUAL"
	if virtual {
		i++
	}
	obj := a.word(i)
	a.info.Verb = "CREATE " + obj
	if virtual {
		a.info.Verb = "CREATE VIRTUAL " + obj
	}
	i++
	if a.word(i) == "IF" && a.word(i+1) == "NOT" && a.word(i+2) == "EXISTS" {
		i += 3
	}
	if a.isPunct(i+1, ".") && i < len(a.sig) && strings.EqualFold(unquote(a.sig[i]), "temp") {
		temp = true
	}
	if temp {
		return &UnsupportedStatementError{Statement: strings.TrimSpace("CREATE TEMP " + obj), Reason: reasonTemp}
	}
	if a.isPunct(i+1, ".") {
		i += 2
	}
	i++ // the object's name
	switch {
	case obj == "TABLE" && virtual:
		a.deferred = "CREATE VIRTUAL TABLE: module arguments are interpreted on each replica"
	case obj == "TABLE" && a.word(i) == "AS":
		// Runs once, now: rewrite like INSERT ... SELECT.
	case obj == "TABLE":
		a.deferred = "CREATE TABLE: a column DEFAULT is computed when each replica inserts a row " +
			"(rewriting it would freeze one value forever); supply the value in the INSERT instead, " +
			"where it is fixed before replication"
	case obj == "VIEW":
		a.deferred = "CREATE VIEW: a view is computed each time it is read, including inside later writes on each replica"
	case obj == "TRIGGER":
		a.deferred = "CREATE TRIGGER: the body runs on each replica when the trigger fires; " +
			"set the value in the statement that fires it instead"
	case obj == "INDEX":
		a.deferred = "CREATE INDEX: index expressions are computed on each replica"
		// CREATE INDEX i ON t(col): t is a table, not a function.
		for j := i; j < len(a.sig); j++ {
			if a.word(j) == "ON" {
				a.notCall[j+1] = true
				break
			}
		}
	default:
		a.deferred = "CREATE " + obj
	}
	return nil
}

// Pragma allow-lists. Anything else is refused: most pragmas change the
// connection or the file outside the log.
var (
	// readPragmas never change state, whatever their argument.
	readPragmas = set("table_info", "table_xinfo", "table_list", "index_info", "index_xinfo",
		"index_list", "foreign_key_list", "foreign_key_check", "integrity_check", "quick_check",
		"database_list", "collation_list", "function_list", "module_list", "pragma_list",
		"compile_options", "data_version", "freelist_count", "page_count")
	// settingPragmas are reads when queried (no value) and connection or
	// file settings when given one: the engine owns those settings.
	settingPragmas = set("application_id", "user_version", "schema_version", "encoding",
		"foreign_keys", "journal_mode", "auto_vacuum", "page_size", "cache_size", "busy_timeout",
		"synchronous", "temp_store", "recursive_triggers", "defer_foreign_keys", "automatic_index",
		"cell_size_check", "secure_delete", "max_page_count", "mmap_size", "query_only",
		"reverse_unordered_selects", "legacy_alter_table", "trusted_schema",
		"ignore_check_constraints", "cache_spill", "threads", "analysis_limit",
		"wal_autocheckpoint", "journal_size_limit", "locking_mode", "fullfsync",
		"checkpoint_fullfsync", "case_sensitive_like", "writable_schema", "count_changes",
		"full_column_names", "short_column_names", "empty_result_callbacks")
	// writePragmas set a value stored in the database header: replicated
	// like any write and carried by snapshots.
	writePragmas = set("user_version", "application_id")
)

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// pragma classifies PRAGMA [schema.]name [= value | (value)].
func (a *analysis) pragma() error {
	i := 1
	if a.isPunct(i+1, ".") {
		i += 2
	}
	name := ""
	if i < len(a.sig) {
		name = strings.ToLower(unquote(a.sig[i]))
	}
	a.info.Verb = "PRAGMA " + name
	hasValue := i+1 < len(a.sig)
	switch {
	case readPragmas[name], settingPragmas[name] && !hasValue:
		a.info.Kind = Read
	case writePragmas[name]:
		a.info.Kind = Write
	case settingPragmas[name]:
		return &UnsupportedStatementError{Statement: a.info.Verb, Reason: reasonConn}
	default:
		return &UnsupportedStatementError{Statement: a.info.Verb, Reason: reasonPragma}
	}
	return nil
}

// unquote returns the name an identifier token denotes.
func unquote(t Token) string {
	if t.Kind != QuotedIdent || len(t.Text) < 2 {
		return t.Text
	}
	q, body := t.Text[0], t.Text[1:len(t.Text)-1]
	if q == '[' {
		return body
	}
	return strings.ReplaceAll(body, string([]byte{q, q}), string(q))
}
