// FlareDB's HTTP tests drive a whole in-process stack (ChainFire + IAM +
// the other services + a FlareDB group of one, on random loopback ports)
// through real HTTP, and read what the databases hold back through the SQL
// API (and the node's digest) to check what was, or was not, stored.
package flaredb_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/platform"
	"github.com/photoncloud/photon/internal/testutil"
	"github.com/photoncloud/photon/services/flaredb"
)

type fdbEnv struct {
	st   *platform.Stack
	base string // FlareDB's base URL
	iam  string
}

func startFDB(t *testing.T) *fdbEnv {
	t.Helper()
	st := testutil.StartStack(t, "")
	return &fdbEnv{st: st, base: "http://" + st.FlareDB.HTTPAddr(), iam: "http://" + st.IAM.HTTPAddr()}
}

// fdbCodes is what FlareDB may answer: apierr's table with its two codes.
func fdbCodes() map[apierr.Code]bool {
	c := testutil.ErrorCodes()
	c[apierr.CodeSQL] = true
	c[apierr.CodeConstraint] = true
	return c
}

func envelopeRules() testutil.EnvelopeRules { return testutil.EnvelopeRules{Codes: fdbCodes()} }

type req struct {
	method, path string
	token        string
	body         any // nil: none; string or []byte: as is; else JSON
	contentType  string
}

func newRequest(ctx context.Context, base string, r req) (*http.Request, error) {
	var rd io.Reader
	switch b := r.body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(raw)
	}
	hr, err := http.NewRequestWithContext(ctx, r.method, base+r.path, rd)
	if err != nil {
		return nil, err
	}
	if rd != nil {
		ct := r.contentType
		if ct == "" {
			ct = "application/json"
		}
		hr.Header.Set("Content-Type", ct)
	}
	if r.token != "" {
		hr.Header.Set("Authorization", "Bearer "+r.token)
	}
	return hr, nil
}

// send is for goroutines other than the test's: it never calls t.
func (e *fdbEnv) send(ctx context.Context, r req) (int, []byte, error) {
	hr, err := newRequest(ctx, e.base, r)
	if err != nil {
		return 0, nil, err
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp.StatusCode, raw, err
}

// do sends r and checks the answer is the seed's envelope with a code
// FlareDB may answer, never a 5xx.
func (e *fdbEnv) do(t testing.TB, r req) testutil.Answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hr, err := newRequest(ctx, e.base, r)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer resp.Body.Close()
	return testutil.CheckEnvelope(t, r.method+" "+r.path, resp, envelopeRules())
}

// ok and fails are testutil's, named short for the many call sites.
func ok[T any](t testing.TB, a testutil.Answer, status int) T {
	t.Helper()
	return testutil.OK[T](t, a, status)
}

func fails(t testing.TB, a testutil.Answer, code apierr.Code) map[string]any {
	t.Helper()
	return testutil.Fails(t, a, code)
}

// strict decodes a success's data into a T, failing on any field T lacks.
func strict[T any](t testing.TB, a testutil.Answer, status int) T {
	t.Helper()
	if a.Status != status || a.Err != nil {
		t.Fatalf("want %d: got %s", status, a)
	}
	var v T
	testutil.StrictData(t, string(a.Raw), a.Data, &v)
	return v
}

// invalid fails unless a is VALIDATION_ERROR on field.
func invalid(t testing.TB, a testutil.Answer, field string) {
	t.Helper()
	d := fails(t, a, apierr.CodeValidation)
	if d["field"] != field {
		t.Fatalf("want VALIDATION_ERROR on %q: got %s", field, a.Raw)
	}
}

// token issues a delegated token for principal at scope with roles.
func (e *fdbEnv) token(t testing.TB, principal, scope string, roles ...string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"principal_id": principal, "scope_id": scope, "roles": roles})
	hr, err := http.NewRequestWithContext(context.Background(), http.MethodPost, e.iam+"/api/v1/auth/token", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	hr.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatalf("issue token: %v", err)
	}
	defer resp.Body.Close()
	a := testutil.CheckEnvelope(t, "issue token", resp, envelopeRules())
	tok := ok[struct {
		Token string `json:"token"`
	}](t, a, http.StatusOK)
	return tok.Token
}

// inProject adds project_id (if not "") to path's query.
func inProject(path, project string) string {
	if project == "" {
		return path
	}
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return path + sep + "project_id=" + url.QueryEscape(project)
}

// result is a SQL answer decoded with exact numbers: a QueryResult, a
// WriteResult, or (for statements) the list of either.
type result struct {
	Columns      []string          `json:"columns"`
	Types        []string          `json:"types"`
	Rows         [][]any           `json:"rows"`
	RowsAffected *json.Number      `json:"rows_affected"`
	LastInsertID *json.Number      `json:"last_insert_id"`
	Results      []json.RawMessage `json:"results"`
}

// decodeResult reads raw keeping integers exact (json.Number).
func decodeResult(t testing.TB, raw json.RawMessage) result {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	var r result
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("SQL answer %s: %v", raw, err)
	}
	return r
}

// checkQuery fails unless raw is exactly a QueryResult's object.
func checkQuery(t testing.TB, raw json.RawMessage) result {
	t.Helper()
	testutil.ExactKeys(t, "query result", raw, "columns", "types", "rows")
	r := decodeResult(t, raw)
	if r.Columns == nil || r.Types == nil || r.Rows == nil || len(r.Columns) != len(r.Types) {
		t.Fatalf("query result %s: columns, types and rows must be arrays, columns and types alike", raw)
	}
	for _, row := range r.Rows {
		if len(row) != len(r.Columns) {
			t.Fatalf("query result %s: a row of %d values for %d columns", raw, len(row), len(r.Columns))
		}
	}
	return r
}

// checkWrite fails unless raw is exactly a WriteResult's object, and
// returns its counts.
func checkWrite(t testing.TB, raw json.RawMessage) (affected, lastID int64) {
	t.Helper()
	testutil.ExactKeys(t, "write result", raw, "rows_affected", "last_insert_id")
	r := decodeResult(t, raw)
	var err1, err2 error
	affected, err1 = r.RowsAffected.Int64()
	lastID, err2 = r.LastInsertID.Int64()
	if err1 != nil || err2 != nil {
		t.Fatalf("write result %s: counts are not integers", raw)
	}
	return affected, lastID
}

// sql runs one statement as the tokenless loopback admin in project ("" is
// the platform database) and returns the answer.
func (e *fdbEnv) sql(t testing.TB, project, token, query string, params ...any) testutil.Answer {
	t.Helper()
	body := map[string]any{"query": query}
	if len(params) > 0 {
		body["params"] = params
	}
	return e.do(t, req{method: "POST", path: inProject("/api/v1/sql", project), token: token, body: body})
}

// query runs a read as the admin and returns its rows.
func (e *fdbEnv) query(t testing.TB, project, query string, params ...any) result {
	t.Helper()
	a := e.sql(t, project, "", query, params...)
	if a.Status != http.StatusOK {
		t.Fatalf("%s: %s", query, a)
	}
	return checkQuery(t, a.Data)
}

// exec runs a write as the admin and returns its rows affected.
func (e *fdbEnv) exec(t testing.TB, project, query string, params ...any) int64 {
	t.Helper()
	a := e.sql(t, project, "", query, params...)
	if a.Status != http.StatusOK {
		t.Fatalf("%s: %s", query, a)
	}
	n, _ := checkWrite(t, a.Data)
	return n
}

// rowsJSON renders rows as JSON, for comparing.
func rowsJSON(rows [][]any) string {
	b, _ := json.Marshal(rows)
	return string(b)
}

// dump is every database's schema and every row of every table (the KV
// table too), read back through the SQL API as the admin: what a refused
// request must leave as it was. The engine's bookkeeping (_flaredb_meta,
// which counts applied entries) is left out, as the node's digest leaves it.
func (e *fdbEnv) dump(t testing.TB, projects ...string) string {
	t.Helper()
	var b strings.Builder
	for _, p := range append([]string{""}, projects...) {
		fmt.Fprintf(&b, "== database %q\n", p)
		schema := e.query(t, p, `SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY type, name`)
		b.WriteString(rowsJSON(schema.Rows) + "\n")
		for _, r := range schema.Rows {
			name, _ := r[1].(string)
			if r[0] != "table" || strings.HasPrefix(name, "sqlite_") || name == "_flaredb_meta" {
				continue
			}
			rows := e.query(t, p, `SELECT * FROM "`+strings.ReplaceAll(name, `"`, `""`)+`"`)
			lines := make([]string, len(rows.Rows))
			for i, row := range rows.Rows {
				lines[i] = rowsJSON([][]any{row})
			}
			slices.Sort(lines)
			fmt.Fprintf(&b, "-- %s %v\n%s\n", name, rows.Columns, strings.Join(lines, "\n"))
		}
	}
	return b.String()
}

// digest is the node's hash of every database it holds, or "" (after
// reporting the failure without stopping the test) if it cannot make one.
func (e *fdbEnv) digest(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	node := e.st.FlareDB.Service().Node()
	d, err := node.Digest(ctx)
	if err != nil {
		t.Errorf("the node's digest: %v", err)
		return ""
	}
	return strings.Join(node.Databases(), ",") + " " + d
}

// unchanged fails unless the databases (the platform's and projects') hold
// the same after fn as before it, and the node holds the same databases
// with the same digest.
func (e *fdbEnv) unchanged(t testing.TB, what string, fn func(), projects ...string) {
	t.Helper()
	before, d0 := e.dump(t, projects...), e.digest(t)
	fn()
	after, d1 := e.dump(t, projects...), e.digest(t)
	if before != after {
		t.Fatalf("%s changed the data:\nbefore:\n%s\nafter:\n%s", what, before, after)
	}
	if d0 != "" && d1 != "" && d0 != d1 {
		t.Fatalf("%s changed the node's databases: digest %s → %s", what, d0, d1)
	}
}

// put sets key (path-escaped here) as the admin in project.
func (e *fdbEnv) put(t testing.TB, project, ns, key, value string) {
	t.Helper()
	body := map[string]any{"value": value}
	if ns != "" {
		body["namespace"] = ns
	}
	got := strict[flaredb.KVPair](t, e.do(t, req{method: "PUT", path: inProject("/api/v1/kv/"+escapeKey(key), project), body: body}), http.StatusOK)
	want := flaredb.KVPair{Key: key, Value: value, Namespace: ns}
	if ns == "" {
		want.Namespace = "default"
	}
	if got != want {
		t.Fatalf("put %q: got %+v, want %+v", key, got, want)
	}
}

// escapeKey escapes key for a URL path, '/' included (%2F): a path whose
// segments are empty, "." or ".." is cleaned, and so redirected, by
// ServeMux before any route sees it, so such keys can only be named
// escaped.
func escapeKey(key string) string {
	switch k := url.PathEscape(key); k {
	case ".", "..":
		return strings.Repeat("%2E", len(k))
	default:
		return k
	}
}

// slashKey escapes each '/'-separated segment of key, keeping the '/'
// literal, as a user writing a path by hand would.
func slashKey(key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}
