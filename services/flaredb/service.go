package flaredb

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/services/flaredb/engine"
	"github.com/photoncloud/photon/services/flaredb/sqlcheck"
)

// Limits of the KV and SQL APIs.
const (
	DefaultNamespace = "default"
	maxKeyBytes      = 4096
	maxNamespace     = 255
	defScanLimit     = 100
	maxScanLimit     = 1000
	maxStatements    = 1000
)

// Service is FlareDB's domain logic over one engine node: validation, the
// KV API over the KV table, and SQL checked by sqlcheck. It knows nothing
// of HTTP; db is the database a request acts on (a project's, or
// engine.PlatformDB).
type Service struct {
	node *engine.Node
}

// NewService serves the API from node.
func NewService(node *engine.Node) *Service { return &Service{node: node} }

// Node is the engine node, for cluster operations and tests.
func (s *Service) Node() *engine.Node { return s.node }

func checkKey(key string) error {
	switch {
	case key == "":
		return apierr.Validation("key", apierr.Required, "key is required")
	case len(key) > maxKeyBytes:
		return apierr.Validation("key", apierr.MaxLength, "key must be at most %d bytes", maxKeyBytes)
	case !utf8.ValidString(key):
		return apierr.Validation("key", apierr.Format, "key must be UTF-8")
	}
	return nil
}

// namespace applies the default and checks the result.
func namespace(ns string) (string, error) {
	if ns == "" {
		return DefaultNamespace, nil
	}
	if len(ns) > maxNamespace {
		return "", apierr.Validation("namespace", apierr.MaxLength, "namespace must be at most %d bytes", maxNamespace)
	}
	if !utf8.ValidString(ns) {
		return "", apierr.Validation("namespace", apierr.Format, "namespace must be UTF-8")
	}
	return ns, nil
}

// PutKV sets key's value.
func (s *Service) PutKV(ctx context.Context, db, key string, req PutKVRequest) (KVPair, error) {
	if err := checkKey(key); err != nil {
		return KVPair{}, err
	}
	ns, err := namespace(req.Namespace)
	if err != nil {
		return KVPair{}, err
	}
	if req.Value == nil {
		return KVPair{}, apierr.Validation("value", apierr.Required, "value is required")
	}
	if err := s.node.PutKV(ctx, db, ns, key, *req.Value); err != nil {
		return KVPair{}, apiError(err)
	}
	return KVPair{Key: key, Value: *req.Value, Namespace: ns}, nil
}

// GetKV reads key.
func (s *Service) GetKV(ctx context.Context, db string, c engine.Consistency, ns, key string) (KVPair, error) {
	if err := checkKey(key); err != nil {
		return KVPair{}, err
	}
	ns, err := namespace(ns)
	if err != nil {
		return KVPair{}, err
	}
	v, ok, err := s.node.GetKV(ctx, db, c, ns, key)
	if err != nil {
		return KVPair{}, apiError(err)
	}
	if !ok {
		return KVPair{}, apierr.NotFound("key", key)
	}
	return KVPair{Key: key, Value: v, Namespace: ns}, nil
}

// DeleteKV removes key; a key that is not there is NOT_FOUND.
func (s *Service) DeleteKV(ctx context.Context, db, ns, key string) (KVDeleted, error) {
	if err := checkKey(key); err != nil {
		return KVDeleted{}, err
	}
	ns, err := namespace(ns)
	if err != nil {
		return KVDeleted{}, err
	}
	ok, err := s.node.DeleteKV(ctx, db, ns, key)
	if err != nil {
		return KVDeleted{}, apiError(err)
	}
	if !ok {
		return KVDeleted{}, apierr.NotFound("key", key)
	}
	return KVDeleted{Key: key, Namespace: ns, Deleted: true}, nil
}

// ScanQuery is a range scan: start <= key < end (end "" for no bound).
type ScanQuery struct {
	Namespace, Start, End, PageToken string
	Limit                            int
}

// Scan lists a namespace's pairs in key order, a page at a time. The page
// token is where the next page starts: just after the last key returned.
func (s *Service) Scan(ctx context.Context, db string, c engine.Consistency, q ScanQuery) (ScanPage, error) {
	ns, err := namespace(q.Namespace)
	if err != nil {
		return ScanPage{}, err
	}
	start := q.Start
	if q.PageToken != "" {
		b, err := base64.RawURLEncoding.DecodeString(q.PageToken)
		if err != nil || !utf8.Valid(b) || string(b) < q.Start {
			return ScanPage{}, apierr.Validation("page_token", apierr.Format, "page_token is not one this scan returned")
		}
		start = string(b)
	}
	limit := q.Limit
	if limit == 0 {
		limit = defScanLimit
	}
	kvs, err := s.node.ScanKV(ctx, db, c, ns, start, q.End, limit+1)
	if err != nil {
		return ScanPage{}, apiError(err)
	}
	page := ScanPage{Items: make([]KVPair, 0, min(len(kvs), limit))}
	for i, kv := range kvs {
		if i == limit {
			// The smallest key after the last one returned.
			page.NextPageToken = base64.RawURLEncoding.EncodeToString([]byte(kvs[i-1].Key + "\x00"))
			break
		}
		page.Items = append(page.Items, KVPair{Key: kv.Key, Value: kv.Value, Namespace: ns})
	}
	return page, nil
}

// SQLBatch is a request's statements, checked by sqlcheck and with their
// parameters decoded, ready to run.
type SQLBatch struct {
	stmts []checkedStatement
	many  bool // sent as statements: answer {"results": [...]}
}

// ParseSQL checks a request's statements.
func ParseSQL(req SQLRequest) (*SQLBatch, error) {
	stmts, err := statements(req)
	if err != nil {
		return nil, err
	}
	return &SQLBatch{stmts: stmts, many: req.Statements != nil}, nil
}

// Writes reports whether the batch changes anything (and so is replicated).
func (b *SQLBatch) Writes() bool {
	for _, st := range b.stmts {
		if !st.Rows || st.returning {
			return true
		}
	}
	return false
}

// SQL parses and runs a request (see Run).
func (s *Service) SQL(ctx context.Context, db string, c engine.Consistency, req SQLRequest) (any, error) {
	b, err := ParseSQL(req)
	if err != nil {
		return nil, err
	}
	return s.Run(ctx, db, c, b)
}

// Run runs a batch: its statements all read → one read transaction at
// consistency c; otherwise one replicated write transaction, in which
// reads and RETURNING clauses answer rows. One statement answers its
// result; several answer {"results": [...]}.
func (s *Service) Run(ctx context.Context, db string, c engine.Consistency, b *SQLBatch) (any, error) {
	stmts := b.stmts
	results := make([]any, len(stmts))
	if !b.Writes() {
		es := make([]engine.Statement, len(stmts))
		for i, st := range stmts {
			es[i] = st.Statement
		}
		rows, err := s.node.QueryAll(ctx, db, c, es)
		if err != nil {
			return nil, apiError(err)
		}
		for i, r := range rows {
			results[i] = queryResult(r)
		}
	} else {
		cmd := engine.Command{DB: db, Statements: make([]engine.Statement, len(stmts))}
		for i, st := range stmts {
			cmd.Statements[i] = st.Statement
		}
		res, err := s.node.Write(ctx, cmd)
		if err != nil {
			return nil, apiError(err)
		}
		for i, r := range res {
			switch {
			case r.Rows != nil:
				results[i] = queryResult(r.Rows)
			case stmts[i].counts:
				results[i] = WriteResult{RowsAffected: r.RowsAffected, LastInsertID: r.LastInsertID}
			default:
				results[i] = WriteResult{}
			}
		}
	}
	if !b.many {
		return results[0], nil
	}
	return SQLResults{Results: results}, nil
}

type checkedStatement struct {
	engine.Statement
	returning bool
	// counts: an INSERT, UPDATE, DELETE or REPLACE, whose counts mean
	// something; SQLite leaves other statements' counts at the
	// connection's last values, which are not this request's.
	counts bool
}

// statements validates a request's statements with sqlcheck and decodes
// their parameters. Rows marks what answers rows: reads, and writes with
// RETURNING.
func statements(req SQLRequest) ([]checkedStatement, error) {
	var in []SQLStatement
	switch {
	case req.Statements != nil && (req.Query != "" || len(req.Params) > 0):
		return nil, apierr.Validation("statements", apierr.Format, "send either query (with params) or statements, not both")
	case req.Statements != nil:
		if len(req.Statements) == 0 {
			return nil, apierr.Validation("statements", apierr.Required, "statements is empty")
		}
		if len(req.Statements) > maxStatements {
			return nil, apierr.Validation("statements", apierr.MaxLength, "at most %d statements per request", maxStatements)
		}
		in = req.Statements
	case req.Query == "":
		return nil, apierr.Validation("query", apierr.Required, "query is required")
	default:
		in = []SQLStatement{{Query: req.Query, Params: req.Params}}
	}
	out := make([]checkedStatement, len(in))
	for i, st := range in {
		field := "query"
		if req.Statements != nil {
			field = fmt.Sprintf("statements[%d]", i)
		}
		if strings.TrimSpace(st.Query) == "" {
			return nil, apierr.Validation(field, apierr.Required, "%s holds no SQL", field)
		}
		info, err := sqlcheck.Check(st.Query)
		if err != nil {
			e := apierr.As(apiError(err))
			if e.Details == nil {
				e.Details = map[string]any{}
			}
			e.Details["statement"] = i
			return nil, e
		}
		cs := checkedStatement{Statement: engine.Statement{SQL: st.Query}, returning: info.Returning}
		switch info.Verb {
		case "INSERT", "UPDATE", "DELETE", "REPLACE":
			cs.counts = true
		}
		cs.Rows = info.Kind == sqlcheck.Read || info.Returning
		if err := decodeParams(st.Params, &cs.Statement); err != nil {
			return nil, err
		}
		if err := paramsFit(info, cs.Statement); err != nil {
			return nil, err
		}
		out[i] = cs
	}
	return out, nil
}

// decodeParams reads an array (positional) or an object (named) of JSON
// scalars; numbers keep their exact integer value.
func decodeParams(raw json.RawMessage, st *engine.Statement) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	bad := apierr.Validation("params", apierr.Type, "params must be an array of values (for ?) or an object of them (for :name)")
	switch raw[0] {
	case '[':
		if err := dec.Decode(&st.Params); err != nil {
			return bad
		}
		for _, v := range st.Params {
			if err := scalar(v); err != nil {
				return err
			}
		}
	case '{':
		if err := dec.Decode(&st.Named); err != nil {
			return bad
		}
		for k, v := range st.Named {
			if k == "" {
				return apierr.Validation("params", apierr.Format, "a parameter name is empty")
			}
			if err := scalar(v); err != nil {
				return err
			}
		}
	default:
		return bad
	}
	return nil
}

// paramsFit refuses values no parameter takes, which SQLite would
// silently ignore (too few is SQLite's own error).
func paramsFit(info sqlcheck.Info, st engine.Statement) error {
	if len(st.Params) > info.ParamCount {
		return apierr.Validation("params", apierr.Range, "%d values for a statement with %d parameters", len(st.Params), info.ParamCount)
	}
	for k := range st.Named {
		if !slices.Contains(info.ParamNames, strings.TrimLeft(k, ":@$")) {
			return apierr.Validation("params", apierr.Unknown, "no parameter :%s in the statement", strings.TrimLeft(k, ":@$"))
		}
	}
	return nil
}

func scalar(v any) error {
	switch v.(type) {
	case nil, bool, string, json.Number:
		return nil
	}
	return apierr.Validation("params", apierr.Type, "a parameter is a JSON %s; values must be null, booleans, numbers or strings", jsonKind(v))
}

func jsonKind(v any) string {
	switch v.(type) {
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// queryResult makes rows JSON-safe: blobs as base64 strings (as
// encoding/json does), infinities as strings (JSON has no number for them).
func queryResult(r *engine.Rows) QueryResult {
	for _, row := range r.Rows {
		for i, v := range row {
			if f, ok := v.(float64); ok && math.IsInf(f, 0) {
				if f > 0 {
					row[i] = "Infinity"
				} else {
					row[i] = "-Infinity"
				}
			}
		}
	}
	return QueryResult{Columns: r.Columns, Types: r.Types, Rows: r.Rows}
}

// Tables lists the database's tables and views (not the engine's own).
func (s *Service) Tables(ctx context.Context, db string, c engine.Consistency) (TableList, error) {
	rows, err := s.node.Query(ctx, db, c, engine.Statement{SQL: `SELECT name, type FROM sqlite_schema
		WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\_%' ESCAPE '\'
		AND name NOT LIKE '\_flaredb\_%' ESCAPE '\' ORDER BY name`})
	if err != nil {
		return TableList{}, apiError(err)
	}
	out := TableList{Tables: make([]Table, 0, len(rows.Rows))}
	for _, r := range rows.Rows {
		out.Tables = append(out.Tables, Table{Name: str(r[0]), Type: str(r[1])})
	}
	return out, nil
}

// Table describes one table or view: its DDL, columns and indexes.
func (s *Service) Table(ctx context.Context, db string, c engine.Consistency, name string) (TableInfo, error) {
	if name == "" || engine.IsSystemTable(name) || strings.HasPrefix(strings.ToLower(name), "sqlite_") {
		return TableInfo{}, apierr.NotFound("table", name)
	}
	rs, err := s.node.QueryAll(ctx, db, c, []engine.Statement{
		{SQL: `SELECT name, type, sql FROM sqlite_schema WHERE type IN ('table', 'view') AND name = ? COLLATE NOCASE`, Params: []any{name}},
		{SQL: `SELECT name, type, "notnull", dflt_value, pk FROM pragma_table_info(?) ORDER BY cid`, Params: []any{name}},
		{SQL: `SELECT il.name, il."unique", il.origin, ii.name FROM pragma_index_list(?) il
			JOIN pragma_index_info(il.name) ii ORDER BY il.name, ii.seqno`, Params: []any{name}},
	})
	if err != nil {
		return TableInfo{}, apiError(err)
	}
	if len(rs[0].Rows) == 0 {
		return TableInfo{}, apierr.NotFound("table", name)
	}
	t := TableInfo{Name: str(rs[0].Rows[0][0]), Type: str(rs[0].Rows[0][1]), SQL: str(rs[0].Rows[0][2]),
		Columns: []Column{}, Indexes: []Index{}}
	for _, r := range rs[1].Rows {
		col := Column{Name: str(r[0]), Type: str(r[1]), NotNull: r[2] == int64(1), PrimaryKey: int(num(r[4]))}
		if d, ok := r[3].(string); ok {
			col.Default = &d
		}
		t.Columns = append(t.Columns, col)
	}
	for _, r := range rs[2].Rows {
		n := str(r[0])
		if len(t.Indexes) == 0 || t.Indexes[len(t.Indexes)-1].Name != n {
			t.Indexes = append(t.Indexes, Index{Name: n, Unique: r[1] == int64(1), Origin: str(r[2]), Columns: []string{}})
		}
		ix := &t.Indexes[len(t.Indexes)-1]
		ix.Columns = append(ix.Columns, str(r[3]))
	}
	return t, nil
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func num(v any) int64 {
	n, _ := v.(int64)
	return n
}

// Cluster describes the Raft group as this node sees it.
func (s *Service) Cluster(ctx context.Context) (ClusterStatus, error) {
	st := s.node.Status()
	out := ClusterStatus{NodeID: s.node.ID(), Role: st.Role, IsLeader: st.Role == "leader", LeaderID: st.LeaderID,
		Term: st.Term, AppliedIndex: st.AppliedIndex, CommitIndex: st.CommitIndex, Members: []Member{}}
	if st.LeaderID != "" {
		out.LeaderHTTP, _ = s.node.NodeHTTPAddr(ctx, st.LeaderID)
	}
	servers, err := s.node.Servers()
	if err != nil {
		return ClusterStatus{}, apiError(err)
	}
	for _, sv := range servers {
		m := Member{ID: sv.ID, RaftAddr: sv.Addr}
		m.HTTPAddr, _ = s.node.NodeHTTPAddr(ctx, sv.ID)
		out.Members = append(out.Members, m)
	}
	return out, nil
}

// AddMember adds a voter (on the leader); adding one already there with
// the same address changes nothing.
func (s *Service) AddMember(ctx context.Context, req AddMemberRequest) (Member, error) {
	if req.ID == "" {
		return Member{}, apierr.Validation("id", apierr.Required, "id is required")
	}
	if len(req.ID) > 128 || !utf8.ValidString(req.ID) {
		return Member{}, apierr.Validation("id", apierr.Format, "id must be UTF-8 of at most 128 bytes")
	}
	if _, _, err := net.SplitHostPort(req.RaftAddr); err != nil || req.RaftAddr == "" {
		return Member{}, apierr.Validation("raft_addr", apierr.Format, "raft_addr must be host:port")
	}
	if err := s.node.AddVoter(ctx, req.ID, req.RaftAddr); err != nil {
		return Member{}, apiError(err)
	}
	return Member{ID: req.ID, RaftAddr: req.RaftAddr}, nil
}

// RemoveMember removes a voter (on the leader).
func (s *Service) RemoveMember(ctx context.Context, id string) error {
	servers, err := s.node.Servers()
	if err != nil {
		return apiError(err)
	}
	found := false
	for _, sv := range servers {
		found = found || sv.ID == id
	}
	if !found {
		return apierr.NotFound("member", id)
	}
	return apiError(s.node.RemoveServer(ctx, id))
}
