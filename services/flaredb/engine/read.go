package engine

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"math"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	"modernc.org/sqlite"
)

// Query runs a read-only statement on database db at the given
// consistency. Linearizable and Lease reads must run on the leader
// (*NotLeaderError otherwise); Stale reads run anywhere. A database no
// write has created reads as an empty one.
func (n *Node) Query(ctx context.Context, db string, c Consistency, st Statement) (*Rows, error) {
	rs, err := n.QueryAll(ctx, db, c, []Statement{st})
	if err != nil {
		return nil, err
	}
	return rs[0], nil
}

// QueryAll runs several read-only statements in one read transaction, so
// they see one state of the database.
func (n *Node) QueryAll(ctx context.Context, db string, c Consistency, stmts []Statement) ([]*Rows, error) {
	if len(stmts) == 0 {
		return nil, ErrEmpty
	}
	if err := CheckDatabase(db); err != nil {
		return nil, err
	}
	if err := n.barrier(ctx, c); err != nil {
		return nil, err
	}
	if len(stmts) == 1 {
		var out *Rows
		err := n.st.read(db, false, func(q *sql.DB, d *database) (err error) {
			if d == nil {
				out, err = query(ctx, q, stmts[0])
				return err
			}
			ps, cached, err := d.readStmt(ctx, stmts[0].SQL)
			if err != nil {
				return readErr(err)
			}
			if !cached {
				defer ps.Close()
			}
			out, err = query(ctx, stmtQuerier{ps}, stmts[0])
			return err
		})
		return []*Rows{out}, n.readFail(err)
	}
	var out []*Rows
	err := n.st.read(db, true, func(q *sql.DB, _ *database) error {
		tx, err := q.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		if err != nil {
			return err
		}
		defer tx.Rollback()
		for i, st := range stmts {
			r, err := query(ctx, tx, st)
			if err != nil {
				var se *SQLError
				if errors.As(err, &se) {
					se.Statement = i
				}
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	return out, n.readFail(err)
}

// barrier waits for the state a read at consistency c must see.
func (n *Node) barrier(ctx context.Context, c Consistency) error {
	switch c {
	case Linearizable, Lease:
		return n.readBarrier(ctx, c == Linearizable)
	case Stale:
		return nil
	}
	return fmt.Errorf("%w: %d", ErrBadConsistency, int(c))
}

func (n *Node) readFail(err error) error {
	if errors.Is(err, ErrClosed) {
		return n.closedErr()
	}
	return err
}

// readBarrier waits until this leader's state includes everything committed
// when the read arrived. verify adds the read-index round trip that proves
// no newer leader exists; without it the leader's lease is trusted.
func (n *Node) readBarrier(ctx context.Context, verify bool) error {
	if err := n.leaderOnly(ctx); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, n.cfg.LeaderWait)
	defer cancel()
	// A new leader's commit index is only authoritative once an entry of
	// its own term has been applied (announceLoop appends one).
	term := n.raft.CurrentTerm()
	if err := n.fsm.prog.waitTerm(wctx, term); err != nil {
		return n.waitErr(ctx, err)
	}
	ci := n.raft.CommitIndex()
	if verify {
		if err := n.raft.VerifyLeader().Error(); err != nil {
			return n.raftErr(err)
		}
	} else if n.raft.State() != raft.Leader {
		id, addr := n.Leader()
		return n.notLeader(id, addr)
	}
	if n.raft.CurrentTerm() != term {
		id, addr := n.Leader()
		return n.notLeader(id, addr)
	}
	if err := n.fsm.prog.wait(wctx, n.fsmTarget(ci)); err != nil {
		return n.waitErr(ctx, err)
	}
	return nil
}

// fsmTarget is the last entry at or below ci that reaches the state machine
// (commands and membership changes): barrier and no-op entries never do, so
// a read that waited for one would wait for the next write. An entry no
// longer in the log was compacted into a snapshot of applied state, so
// nothing at or below it is left to wait for.
func (n *Node) fsmTarget(ci uint64) uint64 {
	var l raft.Log
	for i := ci; i > 0; i-- {
		if err := n.bolt.GetLog(i, &l); err != nil {
			return 0
		}
		if l.Type == raft.LogCommand || l.Type == raft.LogConfiguration {
			return i
		}
	}
	return 0
}

func (n *Node) waitErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if ferr := n.fsm.failure(); ferr != nil {
		return ferr
	}
	return fmt.Errorf("%w: %w", ErrNoLeader, err)
}

// querier is a read pool, a read transaction or a prepared statement.
type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

// stmtQuerier runs its prepared statement, whatever text it is given (the
// statement's own).
type stmtQuerier struct{ st *sql.Stmt }

func (s stmtQuerier) QueryContext(ctx context.Context, _ string, args ...any) (*sql.Rows, error) {
	return s.st.QueryContext(ctx, args...)
}

func query(ctx context.Context, q querier, st Statement) (*Rows, error) {
	if strings.TrimSpace(st.SQL) == "" {
		return nil, ErrEmpty
	}
	wa, err := wireArgs(st)
	if err != nil {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, st.SQL, wireStmt{Args: wa}.args()...)
	if err != nil {
		return nil, readErr(err)
	}
	out, err := scanRows(rows)
	if err != nil {
		return nil, readErr(err)
	}
	return out, nil
}

// scanRows reads and closes rows.
func scanRows(rows *sql.Rows) (*Rows, error) {
	defer rows.Close()
	out := &Rows{}
	var err error
	if out.Columns, err = rows.Columns(); err != nil {
		return nil, err
	}
	cts, err := rows.ColumnTypes()
	if err != nil {
		return nil, err
	}
	out.Types = make([]string, len(cts))
	for i, ct := range cts {
		out.Types[i] = ct.DatabaseTypeName()
	}
	out.Rows = [][]any{}
	for rows.Next() {
		row := make([]any, len(out.Columns))
		ptrs := make([]any, len(row))
		for i := range row {
			ptrs[i] = &row[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		for i, v := range row {
			// The driver parses TEXT in DATE/DATETIME/TIMESTAMP columns;
			// hand back text, as stored by SQLite's own date functions.
			switch x := v.(type) {
			case time.Time:
				row[i] = x.UTC().Format("2006-01-02 15:04:05.999999999")
			case []byte:
				if x == nil {
					row[i] = []byte{} // an empty blob, not NULL
				}
			}
		}
		out.Rows = append(out.Rows, row)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

func (n *Node) closedErr() error {
	if err := n.fsm.failure(); err != nil {
		return err
	}
	return ErrClosed
}

// readErr reports every SQLite error of a read as a *SQLError: a read
// changes nothing, so unlike writes there is no replica to diverge.
func readErr(err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return &SQLError{Code: se.Code(), Message: se.Error()}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &SQLError{Message: err.Error()}
}

// NodeHTTPAddr is the HTTP address node id published when it last led.
func (n *Node) NodeHTTPAddr(ctx context.Context, id string) (string, bool) {
	var addr string
	err := n.st.read(PlatformDB, true, func(q *sql.DB, _ *database) error {
		return q.QueryRowContext(ctx, `SELECT http_addr FROM `+nodesTable+` WHERE id = ?`, id).Scan(&addr)
	})
	return addr, err == nil && addr != ""
}

// Databases lists the databases that exist on this replica (PlatformDB
// among them), sorted.
func (n *Node) Databases() []string { return n.st.names() }

// Digest hashes every database: its name, schema and every row of every
// table (except the engine's bookkeeping), each in one read transaction.
// Replicas that applied the same log have the same digest.
func (n *Node) Digest(ctx context.Context) (string, error) {
	h := sha256.New()
	for _, db := range n.st.names() {
		hashValue(h, db)
		err := n.st.read(db, true, func(q *sql.DB, _ *database) error { return digestDB(ctx, q, h) })
		if err != nil {
			return "", n.readFail(fmt.Errorf("database %q: %w", db, err))
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func digestDB(ctx context.Context, q *sql.DB, h hash.Hash) error {
	tx, err := q.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	type table struct {
		name  string
		rowid bool
	}
	var tables []table
	rows, err := tx.QueryContext(ctx, `SELECT s.name, s.sql, CASE WHEN t.type = 'table' THEN t.wr END FROM sqlite_schema s
		LEFT JOIN pragma_table_list t ON t.schema = 'main' AND t.name = s.name
		WHERE s.name NOT LIKE 'sqlite_%' AND s.name != ? ORDER BY s.type, s.name`, metaTable)
	if err != nil {
		return err
	}
	for rows.Next() {
		var name string
		var ddl sql.NullString
		var wr sql.NullInt64
		if err := rows.Scan(&name, &ddl, &wr); err != nil {
			rows.Close()
			return err
		}
		hashValue(h, name)
		hashValue(h, ddl.String)
		if wr.Valid && !strings.HasPrefix(strings.ToUpper(strings.TrimSpace(ddl.String)), "CREATE VIRTUAL") {
			tables = append(tables, table{name: name, rowid: wr.Int64 == 0})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, t := range tables {
		q := `SELECT * FROM "` + strings.ReplaceAll(t.name, `"`, `""`) + `"`
		if t.rowid {
			q = `SELECT rowid, * FROM "` + strings.ReplaceAll(t.name, `"`, `""`) + `" ORDER BY rowid`
		}
		if err := hashRows(ctx, tx, h, t.name, q); err != nil {
			return err
		}
	}
	return nil
}

// hashRows hashes a table's rows; without a rowid their order is the
// primary key's, which a WITHOUT ROWID table scan already follows.
func hashRows(ctx context.Context, tx *sql.Tx, h hash.Hash, name, q string) error {
	rows, err := tx.QueryContext(ctx, q)
	if err != nil {
		return fmt.Errorf("digest %s: %w", name, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	hashValue(h, name)
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		for _, v := range vals {
			hashValue(h, v)
		}
	}
	return rows.Err()
}

// hashValue writes a type tag, a length and the bytes, so no two different
// sequences of values hash alike.
func hashValue(h hash.Hash, v any) {
	var b [9]byte
	put := func(tag byte, p []byte) {
		b[0] = tag
		binary.BigEndian.PutUint64(b[1:], uint64(len(p)))
		h.Write(b[:])
		h.Write(p)
	}
	var n [8]byte
	switch x := v.(type) {
	case nil:
		put('n', nil)
	case int64:
		binary.BigEndian.PutUint64(n[:], uint64(x))
		put('i', n[:])
	case float64:
		binary.BigEndian.PutUint64(n[:], math.Float64bits(x))
		put('f', n[:])
	case string:
		put('s', []byte(x))
	case []byte:
		put('b', x)
	case time.Time:
		put('t', []byte(x.UTC().Format(time.RFC3339Nano)))
	default:
		put('?', []byte(fmt.Sprint(x)))
	}
}
