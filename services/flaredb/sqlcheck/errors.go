package sqlcheck

import (
	"errors"
	"fmt"
)

// ErrEmpty is returned for a string with no statement in it (only spaces,
// comments or semicolons).
var ErrEmpty = errors.New("sqlcheck: no SQL statement")

// NotDeterministicError refuses a function or keyword whose value would
// differ between replicas and cannot be fixed on the leader before
// replication. Func is lower case ("random", "current_timestamp").
type NotDeterministicError struct {
	Func   string
	Offset int // byte offset of the call in the statement
	Reason string
}

func (e *NotDeterministicError) Error() string {
	return fmt.Sprintf("sqlcheck: %s at offset %d refused: %s", e.Func, e.Offset, e.Reason)
}

// UnsupportedStatementError refuses a whole statement (transaction control,
// ATTACH, most PRAGMAs, VACUUM, TEMP objects) that cannot be replicated.
type UnsupportedStatementError struct {
	Statement string // e.g. "BEGIN", "PRAGMA journal_mode"
	Reason    string
}

func (e *UnsupportedStatementError) Error() string {
	return fmt.Sprintf("sqlcheck: %s refused: %s", e.Statement, e.Reason)
}

// MultipleStatementsError is returned by Check and Rewrite, which take one
// statement; Split the string and handle each part instead.
type MultipleStatementsError struct {
	Count int
}

func (e *MultipleStatementsError) Error() string {
	return fmt.Sprintf("sqlcheck: %d statements in one string; send one per entry", e.Count)
}

// InvalidTextError refuses input that SQLite would read differently from
// this package: a NUL byte ends SQLite's input, hiding what follows.
type InvalidTextError struct {
	Offset int
	Reason string
}

func (e *InvalidTextError) Error() string {
	return fmt.Sprintf("sqlcheck: invalid SQL text at offset %d: %s", e.Offset, e.Reason)
}
