// Package sqlcheck makes SQL safe to replicate: FlareDB runs every write on
// each replica's SQLite, so values SQLite would compute per replica (random(),
// 'now', CURRENT_TIMESTAMP) are fixed once on the leader by Rewrite, and what
// cannot be fixed (connection state, TEMP objects, defaults and trigger bodies
// that run later) is refused by Check with a typed error. Statements are read
// with a tokenizer that follows SQLite's own, so text inside literals,
// identifiers and comments is never taken for SQL.
//
// Known limit: a time function whose time value comes from a column holding
// the text 'now' still reads each replica's clock; only literals and bound
// parameters are visible here.
package sqlcheck
