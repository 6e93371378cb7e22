// Package flaredb is FlareDB: SQLite replicated by Raft, with the seed's KV
// API and a SQL API over the same database (issue 9). What exists so far:
// the query parsing the seed's scan example needs, sqlcheck (SQL made
// deterministic before replication) and engine (SQLite replicated by Raft,
// with group commit). The HTTP API on 8082 and `photon up`/`photon serve
// flaredb` are next.
package flaredb
