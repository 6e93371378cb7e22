package engine

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
)

// SystemTablePrefix names the engine's own tables, which live in the same
// SQLite file so that snapshots carry them. Users can read but never write
// them; the HTTP layer hides them from table listings.
const SystemTablePrefix = "_flaredb_"

// IsSystemTable reports whether a table belongs to the engine.
func IsSystemTable(name string) bool {
	return strings.HasPrefix(strings.ToLower(name), SystemTablePrefix)
}

const (
	metaTable  = SystemTablePrefix + "meta"
	nodesTable = SystemTablePrefix + "nodes"
	dbFile     = "flaredb.sqlite"
)

// sqlStore is the SQLite database: one writer connection used only by the
// FSM, and a pool of read-only connections (WAL lets them run beside it).
type sqlStore struct {
	path   string
	tmpDir string

	// mu is write-locked only while Restore swaps the database file, so
	// readers never see a closed pool.
	mu  sync.RWMutex
	wdb *sql.DB
	w   *sql.Conn
	rdb *sql.DB // user queries
	idb *sql.DB // the engine's own reads, which may use transactions

	// user switches the writer's authorizer to the policy for replicated
	// user statements; the engine's own statements run with it off.
	user atomic.Bool
	seq  atomic.Uint64
}

func openStore(dir string) (*sqlStore, error) {
	s := &sqlStore{path: filepath.Join(dir, dbFile), tmpDir: filepath.Join(dir, "tmp")}
	if err := os.RemoveAll(s.tmpDir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(s.tmpDir, 0o700); err != nil {
		return nil, err
	}
	if err := s.open(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *sqlStore) open() error {
	ctx := context.Background()
	// foreign_keys is per connection and changes what statements do, so it
	// is fixed here for every replica rather than left to users.
	wdsn := "file:" + s.path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)" +
		"&_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)"
	wdb, err := sql.Open("sqlite", wdsn)
	if err != nil {
		return err
	}
	wdb.SetMaxOpenConns(1)
	w, err := wdb.Conn(ctx)
	if err != nil {
		wdb.Close()
		return err
	}
	err = w.Raw(func(dc any) error {
		ar, ok := dc.(sqlite.AuthorizerRegisterer)
		if !ok {
			return errors.New("sqlite driver has no authorizer")
		}
		return ar.RegisterAuthorizer(s.writeAuth)
	})
	if err == nil {
		_, err = w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+metaTable+` (k TEXT PRIMARY KEY, v INTEGER NOT NULL);
			CREATE TABLE IF NOT EXISTS `+nodesTable+` (id TEXT PRIMARY KEY, raft_addr TEXT NOT NULL, http_addr TEXT NOT NULL)`)
	}
	if err != nil {
		w.Close()
		wdb.Close()
		return fmt.Errorf("open %s: %w", s.path, err)
	}
	rc, err := sqlite.NewConnector("file:" + s.path + "?mode=ro&_pragma=query_only(1)&_pragma=busy_timeout(10000)")
	if err != nil {
		w.Close()
		wdb.Close()
		return err
	}
	rdb := sql.OpenDB(readConnector{rc, false})
	rdb.SetMaxOpenConns(16)
	rdb.SetMaxIdleConns(16)
	rdb.SetConnMaxIdleTime(time.Minute)
	idb := sql.OpenDB(readConnector{rc, true})
	idb.SetMaxOpenConns(2)
	s.wdb, s.w, s.rdb, s.idb = wdb, w, rdb, idb
	return nil
}

func (s *sqlStore) closeDB() error {
	err := errors.Join(s.rdb.Close(), s.idb.Close(), s.w.Close(), s.wdb.Close())
	s.rdb, s.idb, s.w, s.wdb = nil, nil, nil, nil
	return err
}

// close is called after raft stopped, so nothing applies concurrently.
func (s *sqlStore) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w == nil {
		return nil
	}
	return s.closeDB()
}

// readConnector installs the read policy on every pooled connection. Users
// never get transactions: one left open would pin a pooled connection to an
// old snapshot.
type readConnector struct {
	driver.Connector
	allowTx bool
}

func (c readConnector) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
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
func (s *sqlStore) writeAuth(action sqlite.AuthorizerActionCode, a1, a2, _, _ string) sqlite.AuthorizerReturnCode {
	if !s.user.Load() {
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

// readAuth is the policy of the read pool, which must stay query-only.
func readAuth(action sqlite.AuthorizerActionCode, a1, a2, _, _ string) sqlite.AuthorizerReturnCode {
	switch action {
	case sqlite.AuthSelect, sqlite.AuthRead, sqlite.AuthFunction, sqlite.AuthRecursive:
		return sqlite.AuthorizerOK
	case sqlite.AuthPragma:
		name := strings.ToLower(a1)
		if infoPragmas[name] || ((name == "user_version" || name == "application_id") && a2 == "") {
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

// applyBatch applies one Raft entry as one SQLite transaction, each command
// in its own savepoint. A returned error is a local failure (I/O, disk full):
// the replica must stop.
func (s *sqlStore) applyBatch(index uint64, cmds []wireCmd) ([]cmdResult, error) {
	skip := map[int]error{}
	for {
		out, err := s.tryBatch(index, cmds, skip)
		if !errors.Is(err, errAborted) {
			return out, err
		}
	}
}

func (s *sqlStore) tryBatch(index uint64, cmds []wireCmd, skip map[int]error) ([]cmdResult, error) {
	ctx := context.Background()
	exec := func(q string, args ...any) error {
		_, err := s.w.ExecContext(ctx, q, args...)
		return err
	}
	if err := exec("BEGIN IMMEDIATE"); err != nil {
		return nil, err
	}
	rollback := func(err error) ([]cmdResult, error) {
		if rerr := exec("ROLLBACK"); rerr != nil && !strings.Contains(rerr.Error(), "no transaction") {
			return nil, errors.Join(err, rerr)
		}
		return nil, err
	}
	out := make([]cmdResult, len(cmds))
	for i, c := range cmds {
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
		res, err := s.runUser(ctx, c.Stmts)
		if err != nil {
			var se *SQLError
			if !errors.As(err, &se) {
				return rollback(err) // local failure
			}
			if rerr := exec("ROLLBACK TO cmd"); rerr != nil {
				// The statement ended the whole transaction.
				skip[i] = err
				_, _ = rollback(rerr)
				return nil, errAborted
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
	return out, nil
}

// runUser executes a command's statements under the user policy. A *SQLError
// is the command's own deterministic failure; any other error is local.
func (s *sqlStore) runUser(ctx context.Context, stmts []wireStmt) ([]Result, error) {
	s.user.Store(true)
	defer s.user.Store(false)
	out := make([]Result, len(stmts))
	for j, st := range stmts {
		args := make([]any, len(st.Args))
		for k, a := range st.Args {
			if a.Name != "" {
				args[k] = sql.Named(a.Name, a.value())
			} else {
				args[k] = a.value()
			}
		}
		res, err := s.w.ExecContext(ctx, st.SQL, args...)
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

func (s *sqlStore) metaIndex() (uint64, error) {
	var v int64
	err := s.w.QueryRowContext(context.Background(), `SELECT v FROM `+metaTable+` WHERE k = 'applied_index'`).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return uint64(v), err
}

// vacuumInto writes a consistent, compact copy of the database to a new
// temp file. It runs on the FSM goroutine, so no apply is half done.
func (s *sqlStore) vacuumInto() (string, error) {
	p := filepath.Join(s.tmpDir, fmt.Sprintf("snap-%d-%d.db", time.Now().UnixNano(), s.seq.Add(1)))
	if _, err := s.w.ExecContext(context.Background(), "VACUUM INTO ?", p); err != nil {
		os.Remove(p)
		return "", err
	}
	return p, nil
}

// tempPath names a file in the store's temp dir.
func (s *sqlStore) tempPath(prefix string) string {
	return filepath.Join(s.tmpDir, fmt.Sprintf("%s-%d-%d.db", prefix, time.Now().UnixNano(), s.seq.Add(1)))
}

// replace makes the database file at src the live database. Every connection
// is closed first so the old WAL is checkpointed and gone before the rename:
// an old WAL next to a new file would corrupt it.
func (s *sqlStore) replace(src string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w != nil {
		if err := s.closeDB(); err != nil {
			return err
		}
	}
	if err := installFile(src, s.path); err != nil {
		return err
	}
	return s.open()
}

// installFile renames src over dst after removing dst's WAL and shared
// memory files, then syncs the directory so the rename survives a crash.
func installFile(src, dst string) error {
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := os.Remove(dst + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if err := os.Rename(src, dst); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(dst))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
