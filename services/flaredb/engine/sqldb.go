package engine

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
)

// SystemTablePrefix names the engine's own tables, which live in the same
// SQLite files so that snapshots carry them. Users can read but never write
// them; the HTTP layer hides them from table listings.
const SystemTablePrefix = "_flaredb_"

// IsSystemTable reports whether a table belongs to the engine.
func IsSystemTable(name string) bool {
	return strings.HasPrefix(strings.ToLower(name), SystemTablePrefix)
}

// The engine's tables. Every database has meta and kv; the platform
// database also has nodes.
const (
	metaTable  = SystemTablePrefix + "meta"
	nodesTable = SystemTablePrefix + "nodes"
	// KVTable holds the KV API's pairs, in the same database as the SQL
	// tables so that both are one consistent state (readable by SQL).
	KVTable = SystemTablePrefix + "kv"
)

const schema = `CREATE TABLE IF NOT EXISTS ` + metaTable + ` (k TEXT PRIMARY KEY, v INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS ` + nodesTable + ` (id TEXT PRIMARY KEY, raft_addr TEXT NOT NULL, http_addr TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ` + KVTable + ` (namespace TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (namespace, key)) WITHOUT ROWID`

// database is one SQLite file: one writer connection used only by the FSM,
// and pools of read-only connections (WAL lets them run beside it).
type database struct {
	name string
	path string
	wdb  *sql.DB
	w    *sql.Conn
	rdb  *sql.DB // user queries
	idb  *sql.DB // the engine's own reads, which may use transactions

	// index is the last log entry applied to this file (FSM goroutine).
	index uint64

	// user switches the writer's authorizer to the policy for replicated
	// user statements; the engine's own statements run with it off.
	user atomic.Bool

	// Prepared statements by SQL text: the writer's (FSM goroutine only;
	// keyed by policy too, since the authorizer runs when a statement is
	// prepared) and the user read pool's.
	wstmts stmtCache
	rstmts sync.Map // string → *sql.Stmt
	nr     atomic.Int32
}

// stmtCache holds up to maxCachedStmts prepared statements; when full it
// is emptied, which is simple and, for the few statement shapes an
// application repeats, rare.
type stmtCache map[stmtKey]*sql.Stmt

type stmtKey struct {
	sys bool
	sql string
}

const maxCachedStmts = 256

// writerStmt returns the writer's prepared statement for sql.
func (d *database) writerStmt(ctx context.Context, sys bool, q string) (*sql.Stmt, error) {
	k := stmtKey{sys, q}
	if st, ok := d.wstmts[k]; ok {
		return st, nil
	}
	st, err := d.w.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if len(d.wstmts) >= maxCachedStmts {
		d.closeWriterStmts()
	}
	if d.wstmts == nil {
		d.wstmts = stmtCache{}
	}
	d.wstmts[k] = st
	return st, nil
}

func (d *database) closeWriterStmts() {
	for k, st := range d.wstmts {
		st.Close()
		delete(d.wstmts, k)
	}
}

// readStmt returns the read pool's prepared statement for q (prepared on
// each pooled connection as it is used); cached is false when the cache
// is full, and the caller then closes it.
func (d *database) readStmt(ctx context.Context, q string) (st *sql.Stmt, cached bool, err error) {
	if st, ok := d.rstmts.Load(q); ok {
		return st.(*sql.Stmt), true, nil
	}
	st, err = d.rdb.PrepareContext(ctx, q)
	if err != nil {
		return nil, false, err
	}
	if d.nr.Load() >= maxCachedStmts {
		return st, false, nil
	}
	if prev, loaded := d.rstmts.LoadOrStore(q, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), true, nil
	}
	d.nr.Add(1)
	return st, true, nil
}

func openDatabase(name, path string) (*database, error) {
	d := &database{name: name, path: path}
	ctx := context.Background()
	// foreign_keys is per connection and changes what statements do, so it
	// is fixed here for every replica rather than left to users.
	wdsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)" +
		"&_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)"
	wdb, err := sql.Open("sqlite", wdsn)
	if err != nil {
		return nil, err
	}
	wdb.SetMaxOpenConns(1)
	w, err := wdb.Conn(ctx)
	if err != nil {
		wdb.Close()
		return nil, err
	}
	d.wdb, d.w = wdb, w
	err = w.Raw(func(dc any) error {
		ar, ok := dc.(sqlite.AuthorizerRegisterer)
		if !ok {
			return errors.New("sqlite driver has no authorizer")
		}
		return ar.RegisterAuthorizer(d.writeAuth)
	})
	if err == nil {
		_, err = w.ExecContext(ctx, schema)
	}
	if err == nil {
		d.index, err = d.metaIndex()
	}
	if err != nil {
		w.Close()
		wdb.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	rc, err := sqlite.NewConnector("file:" + path + "?mode=ro&_pragma=query_only(1)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)")
	if err != nil {
		w.Close()
		wdb.Close()
		return nil, err
	}
	d.rdb, d.idb = readPools(rc)
	return d, nil
}

// readPools returns the user and engine read pools over one connector.
func readPools(rc driver.Connector) (user, engine *sql.DB) {
	user = sql.OpenDB(readConnector{Connector: rc})
	user.SetMaxOpenConns(8)
	user.SetMaxIdleConns(8)
	user.SetConnMaxIdleTime(time.Minute)
	engine = sql.OpenDB(readConnector{Connector: rc, allowTx: true})
	engine.SetMaxOpenConns(2)
	engine.SetConnMaxIdleTime(time.Minute)
	return user, engine
}

func (d *database) close() error {
	d.closeWriterStmts()
	d.rstmts.Range(func(_, st any) bool { st.(*sql.Stmt).Close(); return true })
	return errors.Join(d.rdb.Close(), d.idb.Close(), d.w.Close(), d.wdb.Close())
}

// readConnector installs the read policy on every pooled connection. Users
// never get transactions of their own: one left open would pin a pooled
// connection to an old snapshot. The engine's pool opens them itself and
// always ends them.
type readConnector struct {
	driver.Connector
	allowTx bool
	init    string // run on each new connection before the policy applies
}

func (c readConnector) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	if c.init != "" {
		ex, ok := dc.(driver.ExecerContext)
		if !ok {
			dc.Close()
			return nil, errors.New("sqlite driver cannot exec")
		}
		if _, err := ex.ExecContext(ctx, c.init, nil); err != nil {
			dc.Close()
			return nil, err
		}
	}
	ar, ok := dc.(sqlite.AuthorizerRegisterer)
	if !ok {
		dc.Close()
		return nil, errors.New("sqlite driver has no authorizer")
	}
	auth := readAuth
	if c.allowTx {
		auth = func(action sqlite.AuthorizerActionCode, a1, a2, db, trig string) sqlite.AuthorizerReturnCode {
			if action == sqlite.AuthTransaction {
				return sqlite.AuthorizerOK
			}
			return readAuth(action, a1, a2, db, trig)
		}
	}
	if err := ar.RegisterAuthorizer(auth); err != nil {
		dc.Close()
		return nil, err
	}
	return dc, nil
}

// Pragmas that only describe the schema; allowed in reads and writes.
var infoPragmas = map[string]bool{
	"table_info": true, "table_xinfo": true, "table_list": true, "index_list": true,
	"index_info": true, "index_xinfo": true, "foreign_key_list": true,
	"collation_list": true, "function_list": true,
}

// writeAuth keeps replicated statements from touching per-connection state
// (transactions, temp objects, ATTACH, most PRAGMAs) that a restarted or
// restored replica would not have, and from writing the engine's tables.
func (d *database) writeAuth(action sqlite.AuthorizerActionCode, a1, a2, _, _ string) sqlite.AuthorizerReturnCode {
	if !d.user.Load() {
		return sqlite.AuthorizerOK
	}
	switch action {
	case sqlite.AuthTransaction, sqlite.AuthSavepoint, sqlite.AuthAttach, sqlite.AuthDetach,
		sqlite.AuthCreateTempIndex, sqlite.AuthCreateTempTable, sqlite.AuthCreateTempTrigger,
		sqlite.AuthCreateTempView, sqlite.AuthDropTempIndex, sqlite.AuthDropTempTable,
		sqlite.AuthDropTempTrigger, sqlite.AuthDropTempView:
		return sqlite.AuthorizerDeny
	case sqlite.AuthPragma:
		name := strings.ToLower(a1)
		if infoPragmas[name] || name == "user_version" || name == "application_id" {
			return sqlite.AuthorizerOK
		}
		return sqlite.AuthorizerDeny
	case sqlite.AuthInsert, sqlite.AuthUpdate, sqlite.AuthDelete, sqlite.AuthCreateTable,
		sqlite.AuthDropTable, sqlite.AuthCreateIndex, sqlite.AuthDropIndex, sqlite.AuthCreateTrigger,
		sqlite.AuthDropTrigger, sqlite.AuthCreateView, sqlite.AuthDropView, sqlite.AuthAlterTable,
		sqlite.AuthCreateVTable, sqlite.AuthDropVTable:
		if IsSystemTable(a1) || IsSystemTable(a2) {
			return sqlite.AuthorizerDeny
		}
	}
	return sqlite.AuthorizerOK
}

// Pragmas a read may run: checks (whatever their argument) and settings
// read without a value. None changes the database or the connection.
var (
	checkPragmas = map[string]bool{"integrity_check": true, "quick_check": true, "foreign_key_check": true}
	readPragmas  = map[string]bool{
		"user_version": true, "application_id": true, "foreign_keys": true, "page_count": true, "page_size": true,
		"freelist_count": true, "encoding": true, "schema_version": true, "auto_vacuum": true, "journal_mode": true,
		"compile_options": true, "collation_list": true,
	}
)

// readAuth is the policy of the read pools, which must stay query-only.
func readAuth(action sqlite.AuthorizerActionCode, a1, a2, _, _ string) sqlite.AuthorizerReturnCode {
	switch action {
	case sqlite.AuthSelect, sqlite.AuthRead, sqlite.AuthFunction, sqlite.AuthRecursive:
		return sqlite.AuthorizerOK
	case sqlite.AuthPragma:
		name := strings.ToLower(a1)
		if infoPragmas[name] || checkPragmas[name] || (readPragmas[name] && a2 == "") {
			return sqlite.AuthorizerOK
		}
	}
	return sqlite.AuthorizerDeny
}

// cmdResult is one command's outcome inside a batch.
type cmdResult struct {
	results []Result
	err     error
}

// errAborted marks a command whose failure rolled back the whole
// transaction (OR ROLLBACK, RAISE(ROLLBACK)); the batch is then re-run
// without it, the same way on every replica.
var errAborted = errors.New("transaction aborted")

// apply applies this database's share of one Raft entry as one SQLite
// transaction, each command in its own savepoint, and records index. out
// receives each command's outcome at its position in the entry. A returned
// error is a local failure (I/O, disk full): the replica must stop.
func (d *database) apply(index uint64, cmds []wireCmd, pos []int, out []cmdResult) error {
	skip := map[int]error{}
	for {
		err := d.tryApply(index, cmds, pos, out, skip)
		if !errors.Is(err, errAborted) {
			if err == nil {
				d.index = index
			}
			return err
		}
	}
}

func (d *database) tryApply(index uint64, cmds []wireCmd, pos []int, out []cmdResult, skip map[int]error) error {
	ctx := context.Background()
	// The engine's own statements run once or twice per command: prepared
	// once, they cost no parsing.
	exec := func(q string, args ...any) error {
		st, err := d.writerStmt(ctx, true, q)
		if err == nil {
			_, err = st.ExecContext(ctx, args...)
		}
		return err
	}
	if err := exec("BEGIN IMMEDIATE"); err != nil {
		return err
	}
	rollback := func(err error) error {
		if rerr := exec("ROLLBACK"); rerr != nil && !strings.Contains(rerr.Error(), "no transaction") {
			return errors.Join(err, rerr)
		}
		return err
	}
	for _, i := range pos {
		c := cmds[i]
		out[i] = cmdResult{}
		if err, ok := skip[i]; ok {
			out[i].err = err
			continue
		}
		if c.Node != nil {
			if err := exec(`INSERT OR REPLACE INTO `+nodesTable+` (id, raft_addr, http_addr) VALUES (?, ?, ?)`,
				c.Node.ID, c.Node.RaftAddr, c.Node.HTTPAddr); err != nil {
				return rollback(err)
			}
			continue
		}
		if err := exec("SAVEPOINT cmd"); err != nil {
			return rollback(err)
		}
		res, err := d.run(ctx, c)
		if err != nil {
			var se *SQLError
			if !errors.As(err, &se) {
				return rollback(err) // local failure
			}
			if rerr := exec("ROLLBACK TO cmd"); rerr != nil {
				// The statement ended the whole transaction.
				skip[i] = err
				_ = rollback(rerr)
				return errAborted
			}
			out[i].err = err
		} else {
			out[i].results = res
		}
		if err := exec("RELEASE cmd"); err != nil {
			return rollback(err)
		}
	}
	if err := exec(`INSERT OR REPLACE INTO `+metaTable+` (k, v) VALUES ('applied_index', ?)`, int64(index)); err != nil {
		return rollback(err)
	}
	if err := exec("COMMIT"); err != nil {
		return rollback(err)
	}
	return nil
}

// run executes a command's statements: a user's under the user policy, the
// engine's own (KV) with it off. A *SQLError is the command's own
// deterministic failure; any other error is local.
func (d *database) run(ctx context.Context, c wireCmd) ([]Result, error) {
	if !c.Sys {
		d.user.Store(true)
		defer d.user.Store(false)
	}
	out := make([]Result, len(c.Stmts))
	for j, st := range c.Stmts {
		args := st.args()
		ps, err := d.writerStmt(ctx, c.Sys, st.SQL)
		if err != nil {
			return nil, classify(j, err)
		}
		if st.Rows {
			rows, err := ps.QueryContext(ctx, args...)
			if err != nil {
				return nil, classify(j, err)
			}
			r, err := scanRows(rows)
			if err != nil {
				return nil, classify(j, err)
			}
			out[j].Rows = r
			continue
		}
		res, err := ps.ExecContext(ctx, args...)
		if err == nil {
			out[j].RowsAffected, err = res.RowsAffected()
		}
		if err == nil {
			out[j].LastInsertID, err = res.LastInsertId()
		}
		if err != nil {
			return nil, classify(j, err)
		}
	}
	return out, nil
}

// classify turns a driver error into a *SQLError when the same statement
// would fail the same way on every replica, and leaves it alone otherwise.
func classify(stmt int, err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) {
		if !deterministicCode(se.Code()) {
			return err
		}
		return &SQLError{Statement: stmt, Code: se.Code(), Message: se.Error()}
	}
	// Raised by database/sql or the driver before SQLite ran (argument
	// conversion, parameter count): a function of the input alone.
	return &SQLError{Statement: stmt, Message: err.Error()}
}

// empty reports whether the database holds nothing of its users': no
// table, index, view or trigger of theirs, no KV pair.
func (d *database) empty() (bool, error) {
	var n int
	err := d.w.QueryRowContext(context.Background(), `SELECT EXISTS (SELECT 1 FROM sqlite_schema
		WHERE name NOT LIKE '\_flaredb\_%' ESCAPE '\' AND name NOT LIKE 'sqlite\_%' ESCAPE '\')
		OR EXISTS (SELECT 1 FROM `+KVTable+`)`).Scan(&n)
	return n == 0, err
}

func (d *database) metaIndex() (uint64, error) {
	var v int64
	err := d.w.QueryRowContext(context.Background(), `SELECT v FROM `+metaTable+` WHERE k = 'applied_index'`).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return uint64(v), err
}

// vacuumInto writes a consistent, compact copy of the database to path.
// It runs on the FSM goroutine, so no apply is half done. The checkpoint
// first makes what the copy holds durable in the file itself: the log
// entries a snapshot covers are later dropped, and with synchronous=NORMAL
// the WAL alone is not fsynced at commit.
func (d *database) vacuumInto(path string) error {
	ctx := context.Background()
	if _, err := d.w.ExecContext(ctx, "PRAGMA wal_checkpoint(FULL)"); err != nil {
		return err
	}
	if _, err := d.w.ExecContext(ctx, "VACUUM INTO ?", path); err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

// removeDB removes a database file with its WAL and shared memory.
func removeDB(path string) error {
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
