package flaredb

import "encoding/json"

// KVPair is a key's value in a namespace: the seed's KV shape.
type KVPair struct {
	Key       string `json:"key"`
	Value     string `json:"value"`
	Namespace string `json:"namespace"`
}

// PutKVRequest is PUT /api/v1/kv/{key}'s body.
type PutKVRequest struct {
	Value     *string `json:"value"`
	Namespace string  `json:"namespace"`
}

// KVDeleted answers DELETE /api/v1/kv/{key}.
type KVDeleted struct {
	Key       string `json:"key"`
	Namespace string `json:"namespace"`
	Deleted   bool   `json:"deleted"`
}

// ScanPage answers GET /api/v1/scan.
type ScanPage struct {
	Items         []KVPair `json:"items"`
	NextPageToken string   `json:"next_page_token,omitempty"`
}

// SQLRequest is POST /api/v1/sql's body: one statement (query, params), or
// several (statements) run as one transaction.
type SQLRequest struct {
	Query       string          `json:"query,omitempty"`
	Params      json.RawMessage `json:"params,omitempty"`
	Statements  []SQLStatement  `json:"statements,omitempty"`
	Consistency string          `json:"consistency,omitempty"`
}

// SQLStatement is one statement of a transaction. Params is an array
// (binding ?, ?NNN) or an object (binding :name, @name, $name).
type SQLStatement struct {
	Query  string          `json:"query"`
	Params json.RawMessage `json:"params,omitempty"`
}

// QueryResult is a statement's rows: a query's, or a write's RETURNING.
type QueryResult struct {
	Columns []string `json:"columns"`
	Types   []string `json:"types"`
	Rows    [][]any  `json:"rows"`
}

// WriteResult is a write's counts.
type WriteResult struct {
	RowsAffected int64 `json:"rows_affected"`
	LastInsertID int64 `json:"last_insert_id"`
}

// SQLResults answers a request with statements: one QueryResult or
// WriteResult per statement, in order.
type SQLResults struct {
	Results []any `json:"results"`
}

// Table is one row of GET /api/v1/tables.
type Table struct {
	Name string `json:"name"`
	Type string `json:"type"` // "table" or "view"
}

// TableList answers GET /api/v1/tables.
type TableList struct {
	Tables []Table `json:"tables"`
}

// TableInfo answers GET /api/v1/tables/{name}.
type TableInfo struct {
	Name    string   `json:"name"`
	Type    string   `json:"type"`
	SQL     string   `json:"sql"`
	Columns []Column `json:"columns"`
	Indexes []Index  `json:"indexes"`
}

// Column describes a table's column.
type Column struct {
	Name       string  `json:"name"`
	Type       string  `json:"type"`
	NotNull    bool    `json:"not_null"`
	Default    *string `json:"default"`
	PrimaryKey int     `json:"primary_key"` // position in the primary key, 0 if not in it
}

// Index describes one index of a table.
type Index struct {
	Name    string   `json:"name"`
	Unique  bool     `json:"unique"`
	Origin  string   `json:"origin"` // "c" CREATE INDEX, "u" UNIQUE constraint, "pk" PRIMARY KEY
	Columns []string `json:"columns"`
}

// ClusterStatus answers GET /api/v1/cluster.
type ClusterStatus struct {
	NodeID       string   `json:"node_id"`
	Role         string   `json:"role"` // leader, follower, candidate
	IsLeader     bool     `json:"is_leader"`
	LeaderID     string   `json:"leader_id"`
	LeaderHTTP   string   `json:"leader_http,omitempty"`
	Term         uint64   `json:"term"`
	AppliedIndex uint64   `json:"applied_index"`
	CommitIndex  uint64   `json:"commit_index"`
	Members      []Member `json:"members"`
}

// Member is one voter of the Raft group.
type Member struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr,omitempty"`
}

// AddMemberRequest is POST /api/v1/cluster/members's body.
type AddMemberRequest struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
}
