package engine

import (
	"errors"
	"fmt"
)

// Errors the HTTP layer maps to status codes. Compare with errors.Is.
var (
	// ErrNotLeader is matched by every *NotLeaderError.
	ErrNotLeader = errors.New("not the leader")
	// ErrNoLeader means no leader was known within Config.LeaderWait.
	ErrNoLeader = errors.New("no leader")
	// ErrIndeterminate means leadership was lost while a write was in flight:
	// it may or may not have been applied, so it must not be retried blindly.
	ErrIndeterminate = errors.New("leadership lost: the write may or may not have been applied")
	// ErrClosed is returned once the node is shutting down.
	ErrClosed = errors.New("node closed")
	// ErrEmpty is returned for a command or query without SQL.
	ErrEmpty = errors.New("empty statement")
	// ErrBadParam is matched by parameters the engine cannot replicate exactly.
	ErrBadParam = errors.New("unsupported parameter")
	// ErrBadConsistency is returned by ParseConsistency.
	ErrBadConsistency = errors.New("unknown read consistency")
	// ErrSQL is matched by every *SQLError.
	ErrSQL = errors.New("sql error")
	// ErrConstraint is matched by a *SQLError from a constraint violation
	// (UNIQUE, NOT NULL, CHECK, FOREIGN KEY), which HTTP reports as 409.
	ErrConstraint = errors.New("constraint violation")
	// ErrNodeFailed means this replica could not apply a committed entry (disk
	// full, I/O error) and stopped rather than diverge from the others.
	ErrNodeFailed = errors.New("replica failed to apply the log")
)

// NotLeaderError tells a caller where to forward a request.
type NotLeaderError struct {
	LeaderID   string // empty if unknown
	LeaderAddr string // Raft address
	LeaderHTTP string // HTTP address the leader published, empty if unknown
}

func (e *NotLeaderError) Error() string {
	if e.LeaderID == "" {
		return "not the leader (leader unknown)"
	}
	return fmt.Sprintf("not the leader: leader is %s at %s", e.LeaderID, e.LeaderAddr)
}

// Is makes errors.Is(err, ErrNotLeader) true.
func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }

// SQLError is an error SQLite reported for a statement; the same input gives
// the same error on every replica.
type SQLError struct {
	Statement int    // index of the failing statement in its command
	Code      int    // SQLite (extended) result code, 0 if raised before SQLite ran
	Message   string // SQLite's message
}

func (e *SQLError) Error() string {
	return fmt.Sprintf("statement %d: %s", e.Statement, e.Message)
}

// Is makes errors.Is match ErrSQL always and ErrConstraint for constraint codes.
func (e *SQLError) Is(target error) bool {
	switch target {
	case ErrSQL:
		return true
	case ErrConstraint:
		return e.Code&0xff == sqliteConstraint
	}
	return false
}

// SQLite primary result codes the engine distinguishes.
const (
	sqliteError      = 1
	sqliteTooBig     = 18
	sqliteConstraint = 19
	sqliteMismatch   = 20
	sqliteMisuse     = 21
	sqliteAuth       = 23
	sqliteRange      = 25
)

// deterministicCode reports whether a primary result code follows from the
// statement and the data alone. Other codes (I/O, disk full, busy, corrupt)
// are local failures: a replica that hits one must stop, not record a
// different outcome than its peers.
func deterministicCode(code int) bool {
	switch code & 0xff {
	case sqliteError, sqliteTooBig, sqliteConstraint, sqliteMismatch, sqliteMisuse, sqliteAuth, sqliteRange:
		return true
	}
	return false
}
