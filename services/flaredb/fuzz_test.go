package flaredb_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/testutil"
	"github.com/photoncloud/photon/services/flaredb"
	"github.com/photoncloud/photon/services/flaredb/sqlcheck"
)

// The fuzz targets below drive one in-process stack per target over real
// HTTP as the tokenless loopback admin, in a project of their own. Whatever
// the input, the answer is the seed's envelope with a code FlareDB may
// answer at its status, never a 5xx; an error changes nothing (the
// databases' tables and rows, and which databases exist, are the same
// after it); a success is what was asked.

const (
	fuzzSQLProject = "fuzz-sql"
	fuzzKVProject  = "fuzz-kv"
	fuzzMaxBody    = 4 << 20 // flaredb.Config's default
)

// fuzzEnv is a target's stack.
type fuzzEnv struct {
	*fdbEnv
	hc *http.Client
}

func fuzzStack(f *testing.F) *fuzzEnv {
	f.Helper()
	st := testutil.StartStack(f, "")
	return &fuzzEnv{
		fdbEnv: &fdbEnv{st: st, base: "http://" + st.FlareDB.HTTPAddr(), iam: "http://" + st.IAM.HTTPAddr()},
		hc: &http.Client{Timeout: 20 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	}
}

// call sends body (nil: none) as application/json to pathQuery, which
// must already be a valid URL path and query, and checks the envelope.
func (e *fuzzEnv) call(t testing.TB, method, pathQuery string, body []byte) testutil.Answer {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, e.base+pathQuery, rd)
	if err != nil {
		t.Fatalf("request %s %s: %v", method, pathQuery, err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	what := method + " " + pathQuery
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	defer resp.Body.Close()
	return testutil.CheckEnvelope(t, what, resp, envelopeRules())
}

// fuzzState is what a refused request must leave: the rows of the
// target's database and the platform's, and which databases exist.
type fuzzState struct{ dump, dbs string }

func (e *fuzzEnv) state(t testing.TB, project string) fuzzState {
	t.Helper()
	return fuzzState{dump: e.dump(t, project), dbs: strings.Join(e.st.FlareDB.Service().Node().Databases(), ",")}
}

func (e *fuzzEnv) same(t testing.TB, what string, before fuzzState, project string, a testutil.Answer) {
	t.Helper()
	if after := e.state(t, project); after != before {
		t.Fatalf("%s: answered %s, yet the data moved:\nbefore: %s\n%s\nafter: %s\n%s", what, a, before.dbs, before.dump, after.dbs, after.dump)
	}
}

// fuzzAnyOf fails unless a is an error with one of codes.
func fuzzAnyOf(t testing.TB, what string, a testutil.Answer, why string, codes ...apierr.Code) {
	t.Helper()
	if a.Err == nil || !slices.Contains(codes, a.Err.Code) {
		t.Fatalf("%s: %s answered %s, want one of %v", what, why, a, codes)
	}
}

// fuzzConsistency is the service's rule for consistency values.
func fuzzConsistency(s string) bool {
	switch strings.ToLower(s) {
	case "", "linearizable", "strong", "lease", "weak", "stale", "none":
		return true
	}
	return false
}

// FuzzSQL sends any body to POST /api/v1/sql in a project holding a table
// t (id, name UNIQUE NOT NULL, v) with a few rows, and KV pairs.
func FuzzSQL(f *testing.F) {
	for _, s := range []string{
		`{"query": "SELECT * FROM t WHERE id = 1"}`,
		`{"query":"SELECT id, name, v FROM t ORDER BY id","consistency":"stale"}`,
		`{"query":"SELECT * FROM _flaredb_kv"}`,
		`{"query":"SELECT ?, :x","params":[1]}`,
		`{"query":"SELECT :a, @b, $c","params":{"a":1,"b":"x","c":null}}`,
		`{"query":"INSERT INTO t (name, v) VALUES (?, ?)","params":["fuzz",4611686018427387904]}`,
		`{"query":"INSERT INTO t (name) VALUES ('one')"}`, // a UNIQUE violation
		`{"query":"INSERT INTO t (v) VALUES (1)"}`,        // NOT NULL
		`{"query":"INSERT INTO t (name, v) VALUES (hex(randomblob(8)), CURRENT_TIMESTAMP) RETURNING id"}`,
		`{"query":"UPDATE t SET v = random() WHERE id = 2 RETURNING v"}`,
		`{"query":"DELETE FROM t WHERE name LIKE 'fuzz%'"}`,
		`{"query":"CREATE TABLE IF NOT EXISTS scratch (x)"}`,
		`{"query":"DROP TABLE IF EXISTS scratch"}`,
		`{"query":"CREATE TABLE bad (a DEFAULT CURRENT_TIMESTAMP)"}`,
		`{"query":"INSERT INTO _flaredb_kv VALUES ('default','x','y')"}`,
		`{"query":"BEGIN"}`, `{"query":"ATTACH 'x' AS y"}`, `{"query":"PRAGMA journal_mode = DELETE"}`, `{"query":"PRAGMA user_version"}`,
		`{"query":"SELEC 1"}`, `{"query":"SELECT 1; SELECT 2"}`, `{"query":"SELECT 1;"}`, `{"query":"-- nothing"}`,
		`{"query":"SELECT x'00ff', 1e999, -0.0, 9223372036854775807"}`,
		`{"statements":[{"query":"INSERT INTO t (name) VALUES ('s1')"},{"query":"SELECT count(*) FROM t"},{"query":"DELETE FROM t WHERE name = 's1'"}]}`,
		`{"statements":[{"query":"INSERT INTO t (name) VALUES ('s2')"},{"query":"INSERT INTO t (name) VALUES ('s2')"}]}`,
		`{"statements":[{"query":"SELECT 1"},{"query":"SELECT 2","params":[]}]}`,
		`{"statements":[{"query":"SELECT 1"},{"query":""}]}`,
		`{"statements":[]}`, `{"statements":null,"query":"SELECT 1"}`,
		`{"query":"SELECT 1","statements":[{"query":"SELECT 2"}]}`,
		`{"query":"SELECT ?","params":[[1]]}`, `{"query":"SELECT ?","params":{"a":{}}}`, `{"query":"SELECT ?","params":"x"}`,
		`{"query":"SELECT ?","params":[1e400]}`, `{"query":"SELECT ?","params":[-9223372036854775809]}`,
		`{"query":"SELECT 1","consistency":"eventual"}`, `{"query":"SELECT 1","consistency":"LEASE"}`,
		`{"query":"SELECT 1","extra":true}`, `{"query":1}`,
		"{\"query\":\"SELECT 1\x00\"}", `{"query":"SELECT '\u0000'"}`,
		``, `null`, `[]`, `{`, `{}`, `{}{}`, `"SELECT 1"`,
	} {
		f.Add([]byte(s))
	}
	e := fuzzStack(f)
	for _, q := range []string{
		`CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, v)`,
		`INSERT INTO t (name, v) VALUES ('one', 1), ('two', 2.5), ('three', x'0102')`,
	} {
		e.exec(f, fuzzSQLProject, q)
	}
	e.put(f, fuzzSQLProject, "", "k", "v")
	path := "/api/v1/sql?project_id=" + fuzzSQLProject

	f.Fuzz(func(t *testing.T, body []byte) {
		const what = "POST /api/v1/sql"
		before := e.state(t, fuzzSQLProject)
		a := e.call(t, "POST", path, body)
		if a.Err != nil {
			e.same(t, what, before, fuzzSQLProject, a)
		}
		req, ok := testutil.RequestOf[flaredb.SQLRequest](t, what, body, fuzzMaxBody, a)
		if !ok {
			return
		}
		switch {
		case !fuzzConsistency(req.Consistency):
			fuzzAnyOf(t, what, a, "an unknown consistency", apierr.CodeValidation)
			return
		case req.Statements != nil && (req.Query != "" || len(req.Params) > 0):
			fuzzAnyOf(t, what, a, "query and statements together", apierr.CodeValidation)
			return
		case req.Statements == nil && req.Query == "", req.Statements != nil && len(req.Statements) == 0:
			fuzzAnyOf(t, what, a, "no statement", apierr.CodeValidation)
			return
		}
		stmts := req.Statements
		if stmts == nil {
			stmts = []flaredb.SQLStatement{{Query: req.Query, Params: req.Params}}
		}
		readOnly := true
		for _, st := range stmts {
			info, err := sqlcheck.Check(st.Query)
			readOnly = readOnly && err == nil && info.Kind == sqlcheck.Read && !info.Returning
		}
		if a.Err != nil {
			// The statement, its parameters or the data refused it.
			fuzzAnyOf(t, what, a, "a well-formed request", apierr.CodeValidation, apierr.CodeSQL, apierr.CodeConstraint)
			return
		}
		if a.Status != http.StatusOK {
			t.Fatalf("%s: %s", what, a)
		}
		if readOnly {
			e.same(t, what+" (reads only)", before, fuzzSQLProject, a)
		}
		results := []json.RawMessage{a.Data}
		if req.Statements != nil {
			testutil.ExactKeys(t, what, a.Data, "results")
			results = decodeResult(t, a.Data).Results
			if len(results) != len(req.Statements) {
				t.Fatalf("%s: %d statements answered %d results: %s", what, len(req.Statements), len(results), a.Data)
			}
		}
		for _, r := range results {
			var keys map[string]json.RawMessage
			if err := json.Unmarshal(r, &keys); err != nil {
				t.Fatalf("%s: result %s: %v", what, r, err)
			}
			if _, isRows := keys["columns"]; isRows {
				checkQuery(t, r)
			} else {
				checkWrite(t, r)
			}
		}
	})
}

// fuzzQuery parses a raw query as the service must: split on '&' only
// (';' is data, as in the seed's scan example), skip empty pairs,
// unescape keys and values.
func fuzzQuery(raw string) (url.Values, bool) {
	v := url.Values{}
	for _, pair := range strings.Split(raw, "&") {
		if pair == "" {
			continue
		}
		k, val, _ := strings.Cut(pair, "=")
		k, err1 := url.QueryUnescape(k)
		val, err2 := url.QueryUnescape(val)
		if err1 != nil || err2 != nil {
			return nil, false
		}
		v[k] = append(v[k], val)
	}
	return v, true
}

// fuzzKVOps are FuzzKV's operations, chosen by the op byte.
var fuzzKVOps = []string{"PUT", "GET", "DELETE", "SCAN"}

// FuzzKV sends any key, query and body to the KV routes (op picks PUT,
// GET or DELETE /api/v1/kv/{key}, or GET /api/v1/scan) in a project
// holding a few pairs, and checks each answer against what the KV table
// holds, read through SQL.
func FuzzKV(f *testing.F) {
	type seed struct {
		op         uint8
		key, query string
		body       string
	}
	for _, s := range []seed{
		{0, "config:db_version", "", `{"value":"1.0.0","namespace":"system"}`}, // the seed's
		{1, "config:db_version", "namespace=system", ""},
		{3, "", "start=config:&end=config;&&namespace=system", ""}, // the seed's scan
		{0, "a/b c", "", `{"value":"x"}`}, {1, "a/b c", "", ""}, {2, "a/b c", "", ""}, {2, "a/b c", "", ""},
		{0, "k", "", `{"value":""}`}, {0, "k", "", `{}`}, {0, "k", "", ``}, {0, "k", "", `{"value":1}`}, {0, "k", "", `{"value":null}`},
		{0, "k", "", `{"value":"v","ttl":1}`}, {0, "k", "", `{"value":`}, {0, "k", "namespace=x", `{"value":"v"}`}, {0, "k", "namespace=x", `{"value":"v","namespace":"y"}`},
		{0, "k", "namespace=x", `{"value":"v","namespace":"x"}`},
		{0, "k", "", `{"value":"v","namespace":"` + strings.Repeat("n", 256) + `"}`},
		{0, "", "", `{"value":"v"}`}, {0, strings.Repeat("k", 4097), "", `{"value":"v"}`}, {0, "\xff", "", `{"value":"v"}`},
		{0, "..", "", `{"value":"dots"}`}, {1, ".", "", ""}, {0, "日本", "", `{"value":"🙂"}`},
		{1, "missing", "", ""}, {2, "missing", "", ""}, {1, "k", "namespace=default&consistency=stale", ""},
		{1, "k", "consistency=eventual", ""}, {1, "k", "limit=1", ""}, {1, "k", "namespace=a&namespace=b", ""},
		{1, "k", "namespace=%zz", ""}, {2, "k", "namespace=%", ""}, {3, "", "page_token=%%%", ""},
		{1, "k", "project_id=other", ""}, {1, "k", "org_id=org-1", ""},
		{3, "", "", ""}, {3, "", "limit=1", ""}, {3, "", "limit=2&start=k", ""}, {3, "", "limit=0", ""}, {3, "", "limit=1001", ""},
		{3, "", "limit=x", ""}, {3, "", "start=z&end=a", ""}, {3, "", "namespace=system&consistency=lease", ""},
		{3, "", "page_token=aw", ""}, {3, "", "page_token=aw&start=z", ""}, {3, "", "page_token=!", ""}, {3, "", "prefix=k", ""},
	} {
		f.Add(s.op, s.key, s.query, []byte(s.body))
	}
	e := fuzzStack(f)
	for _, kv := range [][3]string{{"default", "k", "v"}, {"default", "k2", "v2"}, {"default", "a/b c", "slash"},
		{"system", "config:db_version", "0.9"}, {"system", "config:max", "10"}, {"other", "k", "other"}} {
		e.put(f, fuzzKVProject, kv[0], kv[1], kv[2])
	}

	f.Fuzz(func(t *testing.T, opByte uint8, key, rawQuery string, body []byte) {
		op := fuzzKVOps[int(opByte)%len(fuzzKVOps)]
		for i := 0; i < len(rawQuery); i++ {
			if c := rawQuery[i]; c <= ' ' || c >= 0x7f || c == '#' {
				t.Skip("the query is not one an HTTP client sends as is")
			}
		}
		rawQuery = "project_id=" + fuzzKVProject + "&" + rawQuery
		path := "/api/v1/kv/" + escapeKey(key) + "?" + rawQuery
		method := op
		if op == "SCAN" {
			path, method = "/api/v1/scan?"+rawQuery, "GET"
		}
		if op != "PUT" {
			body = nil
		}
		what := op + " " + path
		before := e.state(t, fuzzKVProject)
		a := e.call(t, method, path, body)
		if a.Err != nil {
			e.same(t, what, before, fuzzKVProject, a)
		}

		known := map[string][]string{"PUT": {"namespace"}, "GET": {"namespace", "consistency"}, "DELETE": {"namespace"},
			"SCAN": {"namespace", "start", "end", "limit", "page_token", "consistency"}}[op]
		q, parsed := fuzzQuery(rawQuery)
		bad := !parsed
		for k, vs := range q {
			bad = bad || len(vs) > 1 || !(k == "project_id" || k == "org_id" || slices.Contains(known, k))
		}
		if bad || !fuzzConsistency(q.Get("consistency")) {
			fuzzAnyOf(t, what, a, "a bad query", apierr.CodeValidation)
			return
		}
		ns := q.Get("namespace")
		nsOK := len(ns) <= 255 && utf8.ValidString(ns)
		if ns == "" {
			ns = "default"
		}
		keyOK := key != "" && len(key) <= 4096 && utf8.ValidString(key)
		// stored reads what the KV table holds for key, through SQL.
		stored := func(ns, key string) (string, bool) {
			r := e.query(t, fuzzKVProject, `SELECT value FROM _flaredb_kv WHERE namespace = ? AND key = ?`, ns, key)
			if len(r.Rows) == 0 {
				return "", false
			}
			return r.Rows[0][0].(string), true
		}

		switch op {
		case "PUT":
			req, ok := testutil.RequestOf[flaredb.PutKVRequest](t, what, body, fuzzMaxBody, a)
			if !ok {
				return
			}
			// The namespace is the query's or the body's; two different
			// ones are refused.
			inQuery := q.Get("namespace")
			conflict := inQuery != "" && req.Namespace != "" && inQuery != req.Namespace
			if inQuery != "" {
				req.Namespace = inQuery
			}
			ns := req.Namespace
			if ns == "" {
				ns = "default"
			}
			if conflict || !keyOK || len(req.Namespace) > 255 || !utf8.ValidString(req.Namespace) || req.Value == nil {
				fuzzAnyOf(t, what, a, "an invalid put", apierr.CodeValidation)
				return
			}
			var got flaredb.KVPair
			if a.Status != http.StatusOK {
				t.Fatalf("%s: a valid put answered %s", what, a)
			}
			testutil.StrictData(t, what, a.Data, &got)
			if got != (flaredb.KVPair{Key: key, Value: *req.Value, Namespace: ns}) {
				t.Fatalf("%s: answered %+v", what, got)
			}
			if v, ok := stored(ns, key); !ok || v != *req.Value {
				t.Fatalf("%s: the KV table holds %q (%v)", what, v, ok)
			}
		case "GET", "DELETE":
			if !keyOK || !nsOK {
				fuzzAnyOf(t, what, a, "an invalid key or namespace", apierr.CodeValidation)
				return
			}
			v, had := stored(ns, key)
			if op == "DELETE" {
				// stored ran after the delete: it must be gone either way.
				if had {
					t.Fatalf("%s: answered %s, the key is still there", what, a)
				}
				if a.Err != nil {
					fuzzAnyOf(t, what, a, "a key that was not there", apierr.CodeNotFound)
					return
				}
				var got flaredb.KVDeleted
				testutil.StrictData(t, what, a.Data, &got)
				if got != (flaredb.KVDeleted{Key: key, Namespace: ns, Deleted: true}) {
					t.Fatalf("%s: answered %+v", what, got)
				}
				return
			}
			if !had {
				fuzzAnyOf(t, what, a, "a missing key", apierr.CodeNotFound)
				return
			}
			var got flaredb.KVPair
			if a.Status != http.StatusOK {
				t.Fatalf("%s: a stored key answered %s", what, a)
			}
			testutil.StrictData(t, what, a.Data, &got)
			if got != (flaredb.KVPair{Key: key, Value: v, Namespace: ns}) {
				t.Fatalf("%s: answered %+v, the table holds %q", what, got, v)
			}
		case "SCAN":
			limit := 100
			if s := q.Get("limit"); s != "" {
				n, err := strconv.Atoi(s)
				if err != nil || n < 1 || n > 1000 {
					fuzzAnyOf(t, what, a, "a bad limit", apierr.CodeValidation)
					return
				}
				limit = n
			}
			if !nsOK {
				fuzzAnyOf(t, what, a, "a bad namespace", apierr.CodeValidation)
				return
			}
			start := q.Get("start")
			if tok := q.Get("page_token"); tok != "" {
				if a.Err != nil {
					// A token this scan did not hand out may be refused.
					fuzzAnyOf(t, what, a, "a page token", apierr.CodeValidation)
					return
				}
			}
			if a.Status != http.StatusOK {
				t.Fatalf("%s: a valid scan answered %s", what, a)
			}
			var page flaredb.ScanPage
			testutil.StrictData(t, what, a.Data, &page)
			if page.Items == nil || len(page.Items) > limit {
				t.Fatalf("%s: %d items for limit %d: %s", what, len(page.Items), limit, a.Data)
			}
			if q.Get("page_token") != "" {
				// Past the token: only check the bounds and the order.
				for i, it := range page.Items {
					if it.Namespace != ns || it.Key < start || (q.Get("end") != "" && it.Key >= q.Get("end")) || (i > 0 && it.Key <= page.Items[i-1].Key) {
						t.Fatalf("%s: item %d %+v out of [%q, %q) or order", what, i, it, start, q.Get("end"))
					}
				}
				return
			}
			end := q.Get("end")
			sqlq := `SELECT key, value FROM _flaredb_kv WHERE namespace = ? AND key >= ?`
			args := []any{ns, start}
			if end != "" {
				sqlq += ` AND key < ?`
				args = append(args, end)
			}
			r := e.query(t, fuzzKVProject, sqlq+` ORDER BY key LIMIT ?`, append(args, limit+1)...)
			var want []flaredb.KVPair
			for _, row := range r.Rows {
				want = append(want, flaredb.KVPair{Key: row[0].(string), Value: row[1].(string), Namespace: ns})
			}
			more := len(want) > limit
			want = want[:min(len(want), limit)]
			if !slices.Equal(page.Items, want) && !(len(want) == 0 && len(page.Items) == 0) {
				t.Fatalf("%s: items %+v, the table holds %+v", what, page.Items, want)
			}
			if more != (page.NextPageToken != "") {
				t.Fatalf("%s: next_page_token %q with more=%v", what, page.NextPageToken, more)
			}
			if more {
				// The next page starts just past the last item.
				next := e.call(t, "GET", "/api/v1/scan?"+rawQuery+"&page_token="+url.QueryEscape(page.NextPageToken), nil)
				if next.Status != http.StatusOK {
					t.Fatalf("%s: the next page answered %s", what, next)
				}
				var p2 flaredb.ScanPage
				testutil.StrictData(t, what, next.Data, &p2)
				if len(p2.Items) == 0 || p2.Items[0].Key <= want[len(want)-1].Key {
					t.Fatalf("%s: the next page %+v does not follow %q", what, p2.Items, want[len(want)-1].Key)
				}
			}
		}
	})
}
