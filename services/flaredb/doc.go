// Package flaredb is FlareDB: SQLite replicated by Raft, with the seed's KV
// API and a SQL API over the same database (issue 9). What exists so far:
// the query parsing the seed's scan example needs and sqlcheck (SQL made
// deterministic before replication).
package flaredb
