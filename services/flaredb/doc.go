// Package flaredb is FlareDB: SQLite replicated by Raft, one database per
// project, with the seed's KV API and a SQL API over the same database
// (issue 9). This package is the service — validation, the KV and SQL
// operations (service.go), the REST transport with forwarding to the
// leader (http.go, forward.go), and the node's lifecycle (server.go,
// standalone.go); engine replicates the databases, and sqlcheck makes SQL
// deterministic before it is replicated. See docs/flaredb.md.
package flaredb
