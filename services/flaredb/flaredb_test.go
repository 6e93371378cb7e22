package flaredb_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/testutil"
	"github.com/photoncloud/photon/services/flaredb"
)

// TestKV runs the seed's KV examples and the rest of the KV API: defaults,
// keys that need escaping, scan bounds in byte order, and paging.
func TestKV(t *testing.T) {
	e := startFDB(t)

	t.Run("seed examples", func(t *testing.T) {
		a := e.do(t, req{method: "PUT", path: "/api/v1/kv/config:db_version", body: `{
"value": "1.0.0",
"namespace": "system"
}`})
		if got := strict[flaredb.KVPair](t, a, http.StatusOK); got != (flaredb.KVPair{Key: "config:db_version", Value: "1.0.0", Namespace: "system"}) {
			t.Fatalf("put answered %+v", got)
		}
		a = e.do(t, req{method: "GET", path: "/api/v1/kv/config:db_version?namespace=system"})
		testutil.ExactKeys(t, "the seed's get", a.Data, "key", "value", "namespace")
		if got := strict[flaredb.KVPair](t, a, http.StatusOK); got != (flaredb.KVPair{Key: "config:db_version", Value: "1.0.0", Namespace: "system"}) {
			t.Fatalf("get answered %+v", got)
		}
		// Neighbours of the config: prefix, on both sides of the range and
		// in another namespace.
		for _, k := range []string{"config:max_connections", "config:", "config", "config;", "config;x", "config9", "configa", "conf", "zzz"} {
			e.put(t, "", "system", k, "v-"+k)
		}
		e.put(t, "", "", "config:elsewhere", "default namespace")
		e.put(t, "", "other", "config:elsewhere", "other namespace")

		// The seed's literal query: ';' is part of end, "&&" is an empty pair.
		page := strict[flaredb.ScanPage](t, e.do(t, req{method: "GET", path: "/api/v1/scan?start=config:&end=config;&&namespace=system"}), http.StatusOK)
		want := []flaredb.KVPair{
			{Key: "config:", Value: "v-config:", Namespace: "system"},
			{Key: "config:db_version", Value: "1.0.0", Namespace: "system"},
			{Key: "config:max_connections", Value: "v-config:max_connections", Namespace: "system"},
		}
		if !slices.Equal(page.Items, want) || page.NextPageToken != "" {
			t.Fatalf("the seed's scan answered %+v, want %+v", page, want)
		}
		// Its data has exactly items (and no next_page_token when done).
		testutil.ExactKeys(t, "scan page", e.do(t, req{method: "GET", path: "/api/v1/scan?start=config:&end=config;&&namespace=system"}).Data, "items")
	})

	t.Run("default namespace", func(t *testing.T) {
		got := strict[flaredb.KVPair](t, e.do(t, req{method: "PUT", path: "/api/v1/kv/plain", body: `{"value":"x"}`}), http.StatusOK)
		if got != (flaredb.KVPair{Key: "plain", Value: "x", Namespace: "default"}) {
			t.Fatalf("put without namespace: %+v", got)
		}
		for _, p := range []string{"/api/v1/kv/plain", "/api/v1/kv/plain?namespace=default", "/api/v1/kv/plain?namespace="} {
			if got := strict[flaredb.KVPair](t, e.do(t, req{method: "GET", path: p}), http.StatusOK); got.Namespace != "default" || got.Value != "x" {
				t.Fatalf("GET %s: %+v", p, got)
			}
		}
		fails(t, e.do(t, req{method: "GET", path: "/api/v1/kv/plain?namespace=system"}), apierr.CodeNotFound)
		// The same key in two namespaces is two pairs.
		e.put(t, "", "ns2", "plain", "y")
		if got := strict[flaredb.KVPair](t, e.do(t, req{method: "GET", path: "/api/v1/kv/plain"}), http.StatusOK); got.Value != "x" {
			t.Fatalf("default's plain is %+v after a put in ns2", got)
		}
		// Overwrite.
		e.put(t, "", "", "plain", "x2")
		if got := strict[flaredb.KVPair](t, e.do(t, req{method: "GET", path: "/api/v1/kv/plain"}), http.StatusOK); got.Value != "x2" {
			t.Fatalf("after overwrite: %+v", got)
		}
		// The namespace may be in the query too (as GET and DELETE take it).
		got = strict[flaredb.KVPair](t, e.do(t, req{method: "PUT", path: "/api/v1/kv/plain?namespace=ns3", body: `{"value":"q"}`}), http.StatusOK)
		if got != (flaredb.KVPair{Key: "plain", Value: "q", Namespace: "ns3"}) {
			t.Fatalf("put with ?namespace=: %+v", got)
		}
		got = strict[flaredb.KVPair](t, e.do(t, req{method: "PUT", path: "/api/v1/kv/plain?namespace=ns3", body: `{"value":"q2","namespace":"ns3"}`}), http.StatusOK)
		if got.Namespace != "ns3" || got.Value != "q2" {
			t.Fatalf("put with the same namespace twice: %+v", got)
		}
		if got := strict[flaredb.KVPair](t, e.do(t, req{method: "GET", path: "/api/v1/kv/plain?namespace=ns3"}), http.StatusOK); got.Value != "q2" {
			t.Fatalf("ns3's plain: %+v", got)
		}
		// An empty value is a value.
		e.put(t, "", "", "empty", "")
		if got := strict[flaredb.KVPair](t, e.do(t, req{method: "GET", path: "/api/v1/kv/empty"}), http.StatusOK); got.Value != "" {
			t.Fatalf("empty value: %+v", got)
		}
		scan := strict[flaredb.ScanPage](t, e.do(t, req{method: "GET", path: "/api/v1/scan?start=plain&end=plain0"}), http.StatusOK)
		if len(scan.Items) != 1 || scan.Items[0] != (flaredb.KVPair{Key: "plain", Value: "x2", Namespace: "default"}) {
			t.Fatalf("scan of default: %+v", scan)
		}
	})

	t.Run("keys round-trip", func(t *testing.T) {
		keys := []string{"a/b/c", "dir/", "x:y:z", "with space", "tab\there", "ünïcödé/日本", "q?x&y=z#f", "percent%2Fliteral",
			"plus+sign", "semi;colon", "a//b", "/lead", "./x", "../x", ".", "..", "a/./b", "quote\"'", "emoji 🙂", "~tilde",
			strings.Repeat("k", 4096)}
		for i, k := range keys {
			e.put(t, "", "keys", k, fmt.Sprintf("v%d", i))
		}
		for i, k := range keys {
			got := strict[flaredb.KVPair](t, e.do(t, req{method: "GET", path: "/api/v1/kv/" + escapeKey(k) + "?namespace=keys"}), http.StatusOK)
			if got.Key != k || got.Value != fmt.Sprintf("v%d", i) {
				t.Fatalf("key %q came back as %+v", k, got)
			}
		}
		// A literal '/' names the same key as '/' escaped as %2F.
		for _, k := range []string{"a/b/c", "dir/", "ünïcödé/日本"} {
			got := strict[flaredb.KVPair](t, e.do(t, req{method: "GET", path: "/api/v1/kv/" + slashKey(k) + "?namespace=keys"}), http.StatusOK)
			if got.Key != k || got.Value != fmt.Sprintf("v%d", slices.Index(keys, k)) {
				t.Fatalf("GET %s: %+v", slashKey(k), got)
			}
		}
		page := strict[flaredb.ScanPage](t, e.do(t, req{method: "GET", path: "/api/v1/scan?namespace=keys&limit=1000"}), http.StatusOK)
		var scanned []string
		for _, it := range page.Items {
			scanned = append(scanned, it.Key)
		}
		want := slices.Clone(keys)
		slices.Sort(want)
		if !slices.Equal(scanned, want) {
			t.Fatalf("scan of keys: %q, want %q", scanned, want)
		}
		// The KV table holds exactly these keys, as SQL sees it.
		rows := e.query(t, "", `SELECT key FROM _flaredb_kv WHERE namespace = ? ORDER BY key`, "keys")
		var inSQL []string
		for _, r := range rows.Rows {
			inSQL = append(inSQL, r[0].(string))
		}
		if !slices.Equal(inSQL, want) {
			t.Fatalf("SQL sees keys %q, want %q", inSQL, want)
		}
		// Delete by escaped key.
		d := strict[flaredb.KVDeleted](t, e.do(t, req{method: "DELETE", path: "/api/v1/kv/" + escapeKey("with space") + "?namespace=keys"}), http.StatusOK)
		if d != (flaredb.KVDeleted{Key: "with space", Namespace: "keys", Deleted: true}) {
			t.Fatalf("delete: %+v", d)
		}
		fails(t, e.do(t, req{method: "GET", path: "/api/v1/kv/with%20space?namespace=keys"}), apierr.CodeNotFound)
	})

	t.Run("not found", func(t *testing.T) {
		e.unchanged(t, "missing keys", func() {
			d := fails(t, e.do(t, req{method: "GET", path: "/api/v1/kv/nothing-here"}), apierr.CodeNotFound)
			if d["id"] != "nothing-here" {
				t.Fatalf("details %v", d)
			}
			fails(t, e.do(t, req{method: "DELETE", path: "/api/v1/kv/nothing-here"}), apierr.CodeNotFound)
			// A key of another namespace is not there.
			fails(t, e.do(t, req{method: "DELETE", path: "/api/v1/kv/config:db_version"}), apierr.CodeNotFound)
			fails(t, e.do(t, req{method: "DELETE", path: "/api/v1/kv/config:db_version?namespace=nope"}), apierr.CodeNotFound)
		})
		e.put(t, "", "", "gone", "soon")
		strict[flaredb.KVDeleted](t, e.do(t, req{method: "DELETE", path: "/api/v1/kv/gone"}), http.StatusOK)
		fails(t, e.do(t, req{method: "GET", path: "/api/v1/kv/gone"}), apierr.CodeNotFound)
		fails(t, e.do(t, req{method: "DELETE", path: "/api/v1/kv/gone"}), apierr.CodeNotFound)
	})

	t.Run("scan bounds", func(t *testing.T) {
		// Byte order: upper case before lower case, ASCII before UTF-8.
		keys := []string{"A", "B", "Z", "a", "a\x01", "aa", "b", "é", "\u00ff", "日"}
		for _, k := range keys {
			e.put(t, "", "order", k, "v")
		}
		scan := func(q string) []string {
			t.Helper()
			p := strict[flaredb.ScanPage](t, e.do(t, req{method: "GET", path: "/api/v1/scan?namespace=order" + q}), http.StatusOK)
			if p.NextPageToken != "" {
				t.Fatalf("scan %s: a next_page_token on a short page", q)
			}
			out := []string{}
			for _, it := range p.Items {
				if it.Namespace != "order" {
					t.Fatalf("scan %s: item %+v", q, it)
				}
				out = append(out, it.Key)
			}
			return out
		}
		cases := []struct {
			q    string
			want []string
		}{
			{"", keys},
			{"&start=a", []string{"a", "a\x01", "aa", "b", "é", "\u00ff", "日"}},
			{"&start=a&end=b", []string{"a", "a\x01", "aa"}},
			{"&start=a%01&end=aa", []string{"a\x01"}},
			{"&end=a", []string{"A", "B", "Z"}},
			{"&start=B&end=B", []string{}},
			{"&start=b&end=a", []string{}},
			{"&start=" + url.QueryEscape("é"), []string{"é", "\u00ff", "日"}},
			{"&start=Z&end=" + url.QueryEscape("é"), []string{"Z", "a", "a\x01", "aa", "b"}},
			{"&start=zz", []string{"é", "\u00ff", "日"}},
			{"&start=" + url.QueryEscape("日") + "0", []string{}},
		}
		for _, c := range cases {
			if got := scan(c.q); !slices.Equal(got, c.want) {
				t.Errorf("scan %q: %q, want %q", c.q, got, c.want)
			}
		}
		// An empty namespace scan is an empty list, not null.
		a := e.do(t, req{method: "GET", path: "/api/v1/scan?namespace=nobody"})
		if got := string(a.Data); got != `{"items":[]}` {
			t.Fatalf("empty scan: %s", got)
		}
	})

	t.Run("paging", func(t *testing.T) {
		const n = 250
		all := make([]string, n)
		for i := range all {
			all[i] = fmt.Sprintf("k%03d", i)
		}
		putAll(t, e, "paging", all)
		for _, limit := range []int{0, 1, 7, 100, 125, 249, 250, 251, 1000} {
			var got []string
			token, pages := "", 0
			for {
				q := "/api/v1/scan?namespace=paging"
				if limit > 0 {
					q += "&limit=" + strconv.Itoa(limit)
				}
				if token != "" {
					q += "&page_token=" + url.QueryEscape(token)
				}
				p := strict[flaredb.ScanPage](t, e.do(t, req{method: "GET", path: q}), http.StatusOK)
				pages++
				per := limit
				if per == 0 {
					per = 100
				}
				if len(p.Items) > per || (p.NextPageToken != "" && len(p.Items) != per) {
					t.Fatalf("limit %d: a page of %d items, next %q", limit, len(p.Items), p.NextPageToken)
				}
				for _, it := range p.Items {
					got = append(got, it.Key)
				}
				if p.NextPageToken == "" {
					break
				}
				token = p.NextPageToken
				if pages > n+1 {
					t.Fatalf("limit %d: paging does not end", limit)
				}
			}
			per := limit
			if per == 0 {
				per = 100
			}
			if wantPages := max(1, (n+per-1)/per); pages != wantPages {
				t.Errorf("limit %d: %d pages, want %d", limit, pages, wantPages)
			}
			if !slices.Equal(got, all) {
				t.Fatalf("limit %d: paged %d keys %q…, want the %d in order", limit, len(got), got[:min(5, len(got))], n)
			}
		}
		// Paging within bounds: [k100, k200) in pages of 30.
		var got []string
		token := ""
		for {
			q := "/api/v1/scan?namespace=paging&start=k100&end=k200&limit=30"
			if token != "" {
				q += "&page_token=" + token
			}
			p := strict[flaredb.ScanPage](t, e.do(t, req{method: "GET", path: q}), http.StatusOK)
			for _, it := range p.Items {
				got = append(got, it.Key)
			}
			if token = p.NextPageToken; token == "" {
				break
			}
		}
		if !slices.Equal(got, all[100:200]) {
			t.Fatalf("bounded paging: %d keys from %v to %v", len(got), got[0], got[len(got)-1])
		}
		// A key added behind the cursor is not seen, one ahead of it is.
		p1 := strict[flaredb.ScanPage](t, e.do(t, req{method: "GET", path: "/api/v1/scan?namespace=paging&limit=10"}), http.StatusOK)
		e.put(t, "", "paging", "k005a", "behind")
		e.put(t, "", "paging", "k010a", "ahead")
		p2 := strict[flaredb.ScanPage](t, e.do(t, req{method: "GET", path: "/api/v1/scan?namespace=paging&limit=2&page_token=" + p1.NextPageToken}), http.StatusOK)
		if len(p2.Items) != 2 || p2.Items[0].Key != "k010" || p2.Items[1].Key != "k010a" {
			t.Fatalf("the page after k009: %+v", p2.Items)
		}

		e.unchanged(t, "bad scans", func() {
			for _, q := range []string{"limit=0", "limit=-1", "limit=1001", "limit=abc", "limit=1.5", "limit=1&limit=2", "page_token=!!", "bogus=1", "start=a&start=b"} {
				a := e.do(t, req{method: "GET", path: "/api/v1/scan?namespace=paging&" + q})
				if !a.Is(apierr.CodeValidation) {
					t.Errorf("scan ?%s: %s, want VALIDATION_ERROR", q, a)
				}
			}
			// A token from before start: not one this scan returned.
			invalid(t, e.do(t, req{method: "GET", path: "/api/v1/scan?namespace=paging&start=k200&page_token=" + p1.NextPageToken}), "page_token")
		})
	})
}

// putAll puts every key (value "v-"+key) of namespace ns concurrently, so
// the writes share Raft entries.
func putAll(t *testing.T, e *fdbEnv, ns string, keys []string) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(keys))
	sem := make(chan struct{}, 16)
	for _, k := range keys {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			st, raw, err := e.send(ctx, req{method: "PUT", path: "/api/v1/kv/" + escapeKey(k), body: map[string]any{"value": "v-" + k, "namespace": ns}})
			if err == nil && st != http.StatusOK {
				err = fmt.Errorf("put %s: %d %s", k, st, raw)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestSQL runs statements of every kind: reads answer columns, types and
// rows; writes their counts; DDL zero counts; statements one transaction.
func TestSQL(t *testing.T) {
	e := startFDB(t)

	// DDL answers counts of 0.
	a := e.sql(t, "", "", `CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, email TEXT, score REAL, big INTEGER, data BLOB)`)
	if n, id := checkWrite(t, ok[json.RawMessage](t, a, http.StatusOK)); n != 0 || id != 0 {
		t.Fatalf("CREATE TABLE answered %d, %d", n, id)
	}

	t.Run("write and query", func(t *testing.T) {
		a := e.sql(t, "", "", `INSERT INTO users (id, name, email, score) VALUES (123, 'alice', 'alice@example.com', 9.5)`)
		if n, id := checkWrite(t, a.Data); a.Status != http.StatusOK || n != 1 || id != 123 {
			t.Fatalf("insert: %s", a)
		}
		a = e.sql(t, "", "", `INSERT INTO users (name) VALUES ('bob'), ('carol')`)
		if n, id := checkWrite(t, a.Data); n != 2 || id != 125 {
			t.Fatalf("insert two: %s", a)
		}
		// DDL after a write: its counts are its own (0), not the
		// connection's last ones.
		a = e.sql(t, "", "", `CREATE INDEX users_email ON users (email)`)
		if n, id := checkWrite(t, a.Data); n != 0 || id != 0 {
			t.Fatalf("CREATE INDEX after an insert answered %d, %d", n, id)
		}
		// The seed's query.
		a = e.do(t, req{method: "POST", path: "/api/v1/sql", body: `{
"query": "SELECT * FROM users WHERE id = 123"
}`})
		r := checkQuery(t, ok[json.RawMessage](t, a, http.StatusOK))
		if !slices.Equal(r.Columns, []string{"id", "name", "email", "score", "big", "data"}) ||
			!slices.Equal(r.Types, []string{"INTEGER", "TEXT", "TEXT", "REAL", "INTEGER", "BLOB"}) ||
			rowsJSON(r.Rows) != `[[123,"alice","alice@example.com",9.5,null,null]]` {
			t.Fatalf("the seed's SELECT answered %s", a.Data)
		}
		// Expressions have no declared type; no rows is an empty list.
		r = e.query(t, "", `SELECT count(*) AS n, 1 + 1, 'x' FROM users`)
		if !slices.Equal(r.Columns, []string{"n", "1 + 1", "'x'"}) || !slices.Equal(r.Types, []string{"", "", ""}) || rowsJSON(r.Rows) != `[[3,2,"x"]]` {
			t.Fatalf("expressions: %+v", r)
		}
		a = e.sql(t, "", "", `SELECT * FROM users WHERE id < 0`)
		if !strings.Contains(string(a.Data), `"rows":[]`) {
			t.Fatalf("no rows: %s", a.Data)
		}
		a = e.sql(t, "", "", `UPDATE users SET score = 1 WHERE id > 123`)
		if n, _ := checkWrite(t, a.Data); n != 2 {
			t.Fatalf("update: %s", a)
		}
		a = e.sql(t, "", "", `UPDATE users SET score = 1 WHERE id < 0`)
		if n, _ := checkWrite(t, a.Data); n != 0 {
			t.Fatalf("update of none: %s", a)
		}
		// A trailing ';' and comments are fine.
		e.query(t, "", "SELECT 1; -- done")
	})

	t.Run("statements", func(t *testing.T) {
		a := e.do(t, req{method: "POST", path: "/api/v1/sql", body: map[string]any{"statements": []map[string]any{
			{"query": "INSERT INTO users (name) VALUES (?)", "params": []any{"dave"}},
			{"query": "SELECT name FROM users WHERE name = :n", "params": map[string]any{"n": "dave"}},
			{"query": "UPDATE users SET email = 'd@x' WHERE name = 'dave'"},
			{"query": "CREATE TABLE t2 (x)"},
			{"query": "INSERT INTO t2 VALUES (1), (2) RETURNING x"},
		}}})
		res := decodeResult(t, ok[json.RawMessage](t, a, http.StatusOK))
		testutil.ExactKeys(t, "statements' answer", a.Data, "results")
		if len(res.Results) != 5 {
			t.Fatalf("statements: %s", a.Data)
		}
		if n, _ := checkWrite(t, res.Results[0]); n != 1 {
			t.Fatalf("statement 0: %s", res.Results[0])
		}
		if r := checkQuery(t, res.Results[1]); rowsJSON(r.Rows) != `[["dave"]]` {
			t.Fatalf("a read inside the transaction does not see its insert: %s", res.Results[1])
		}
		if n, _ := checkWrite(t, res.Results[2]); n != 1 {
			t.Fatalf("statement 2: %s", res.Results[2])
		}
		if n, id := checkWrite(t, res.Results[3]); n != 0 || id != 0 {
			t.Fatalf("DDL inside statements: %s", res.Results[3])
		}
		if r := checkQuery(t, res.Results[4]); rowsJSON(r.Rows) != `[[1],[2]]` || !slices.Equal(r.Columns, []string{"x"}) {
			t.Fatalf("RETURNING inside statements: %s", res.Results[4])
		}
		// Statements that all read run as one read.
		a = e.do(t, req{method: "POST", path: "/api/v1/sql", body: `{"statements":[{"query":"SELECT count(*) FROM users"},{"query":"SELECT count(*) FROM t2"}]}`})
		res = decodeResult(t, ok[json.RawMessage](t, a, http.StatusOK))
		if len(res.Results) != 2 || rowsJSON(checkQuery(t, res.Results[0]).Rows) != `[[4]]` || rowsJSON(checkQuery(t, res.Results[1]).Rows) != `[[2]]` {
			t.Fatalf("read statements: %s", a.Data)
		}
		// One statement in statements still answers a list.
		a = e.do(t, req{method: "POST", path: "/api/v1/sql", body: `{"statements":[{"query":"SELECT 1"}]}`})
		if res := decodeResult(t, ok[json.RawMessage](t, a, http.StatusOK)); len(res.Results) != 1 {
			t.Fatalf("one statement: %s", a.Data)
		}
	})

	t.Run("statements are atomic", func(t *testing.T) {
		for _, c := range []struct {
			name, third string
			code        apierr.Code
		}{
			{"constraint", "INSERT INTO users (name) VALUES ('alice')", apierr.CodeConstraint},
			{"no such table", "INSERT INTO nowhere VALUES (1)", apierr.CodeSQL},
			{"syntax", "INSERT INTO users (name VALUES ('x')", apierr.CodeSQL},
			{"not null", "INSERT INTO users (email) VALUES ('x')", apierr.CodeConstraint},
		} {
			t.Run(c.name, func(t *testing.T) {
				e.unchanged(t, c.name, func() {
					a := e.do(t, req{method: "POST", path: "/api/v1/sql", body: map[string]any{"statements": []map[string]any{
						{"query": "INSERT INTO users (name) VALUES ('first')"},
						{"query": "CREATE TABLE second (x)"},
						{"query": c.third},
					}}})
					d := fails(t, a, c.code)
					if d["statement"] != float64(2) {
						t.Fatalf("details.statement: %s", a.Raw)
					}
				})
				fails(t, e.sql(t, "", "", "SELECT * FROM second"), apierr.CodeSQL)
				if r := e.query(t, "", "SELECT count(*) FROM users WHERE name = 'first'"); rowsJSON(r.Rows) != `[[0]]` {
					t.Fatalf("the first statement stayed: %+v", r)
				}
			})
		}
	})

	t.Run("returning", func(t *testing.T) {
		a := e.sql(t, "", "", `INSERT INTO users (name, score) VALUES ('erin', 2.25) RETURNING id, name, score`)
		r := checkQuery(t, ok[json.RawMessage](t, a, http.StatusOK))
		if !slices.Equal(r.Columns, []string{"id", "name", "score"}) || len(r.Rows) != 1 || r.Rows[0][1] != "erin" {
			t.Fatalf("RETURNING: %s", a.Data)
		}
		a = e.sql(t, "", "", `DELETE FROM users WHERE name = 'erin' RETURNING name`)
		if r := checkQuery(t, a.Data); rowsJSON(r.Rows) != `[["erin"]]` {
			t.Fatalf("DELETE RETURNING: %s", a.Data)
		}
		a = e.sql(t, "", "", `UPDATE users SET score = 3 WHERE name = 'nobody' RETURNING id`)
		if r := checkQuery(t, a.Data); len(r.Rows) != 0 || r.Rows == nil {
			t.Fatalf("UPDATE RETURNING nothing: %s", a.Data)
		}
	})

	t.Run("params and types", func(t *testing.T) {
		e.exec(t, "", `CREATE TABLE vals (k TEXT PRIMARY KEY, v)`)
		const p62 = "4611686018427387904" // 2^62, beyond a float64's exact integers + 1
		cases := []struct {
			k, param, want string
		}{
			{"p62", p62, p62},
			{"p62+1", "4611686018427387905", "4611686018427387905"},
			{"max", "9223372036854775807", "9223372036854775807"},
			{"min", "-9223372036854775808", "-9223372036854775808"},
			{"float", "1.5", "1.5"},
			{"exp", "1e3", "1000"},
			{"text", `"2^62"`, `"2^62"`},
			{"true", "true", "1"},
			{"false", "false", "0"},
			{"null", "null", "null"},
			{"unicode", `"日本 🙂"`, `"日本 🙂"`},
		}
		for _, c := range cases {
			// Positional.
			a := e.do(t, req{method: "POST", path: "/api/v1/sql", body: `{"query":"INSERT INTO vals VALUES (?, ?)","params":["` + c.k + `", ` + c.param + `]}`})
			if n, _ := checkWrite(t, ok[json.RawMessage](t, a, http.StatusOK)); n != 1 {
				t.Fatalf("%s: %s", c.k, a)
			}
			// Named, with each prefix.
			for i, p := range []string{":", "@", "$"} {
				k := fmt.Sprintf("%s/%d", c.k, i)
				a := e.do(t, req{method: "POST", path: "/api/v1/sql", body: `{"query":"INSERT INTO vals VALUES (` + p + `k, ` + p + `v)","params":{"k":"` + k + `","v":` + c.param + `}}`})
				if n, _ := checkWrite(t, ok[json.RawMessage](t, a, http.StatusOK)); n != 1 {
					t.Fatalf("%s: %s", k, a)
				}
			}
			for _, k := range []string{c.k, c.k + "/0", c.k + "/1", c.k + "/2"} {
				r := e.query(t, "", `SELECT v FROM vals WHERE k = ?`, k)
				if got := rowsJSON(r.Rows); got != "[["+c.want+"]]" {
					t.Errorf("%s came back as %s, want %s", k, got, c.want)
				}
			}
		}
		// A 2^62 read back compares equal in SQL too (no float rounding on the way in).
		if r := e.query(t, "", `SELECT v = 4611686018427387904, typeof(v) FROM vals WHERE k = 'p62'`); rowsJSON(r.Rows) != `[[1,"integer"]]` {
			t.Fatalf("2^62 stored as %s", rowsJSON(r.Rows))
		}
		// An integer past int64 is a REAL, as the same literal is in SQLite.
		a := e.do(t, req{method: "POST", path: "/api/v1/sql", body: `{"query":"SELECT typeof(?), typeof(9223372036854775808)","params":[9223372036854775808]}`})
		if r := checkQuery(t, ok[json.RawMessage](t, a, http.StatusOK)); rowsJSON(r.Rows) != `[["real","real"]]` {
			t.Fatalf("2^63 as a parameter: %s", a.Data)
		}
		// ?NNN binds by position.
		if r := e.query(t, "", `SELECT ?2, ?1`, "a", "b"); rowsJSON(r.Rows) != `[["b","a"]]` {
			t.Fatalf("?NNN: %s", rowsJSON(r.Rows))
		}
		// Blobs come back base64.
		raw := []byte{0, 0xff, 0x10, 'h', 'i'}
		e.exec(t, "", `INSERT INTO vals VALUES ('blob', x'00ff106869')`)
		r := e.query(t, "", `SELECT v, typeof(v), length(v) FROM vals WHERE k = 'blob'`)
		if len(r.Rows) != 1 || r.Rows[0][0] != base64.StdEncoding.EncodeToString(raw) || r.Rows[0][1] != "blob" || fmt.Sprint(r.Rows[0][2]) != "5" {
			t.Fatalf("blob came back as %s", rowsJSON(r.Rows))
		}
		// An empty blob is a blob ("" in base64), not NULL.
		e.exec(t, "", `INSERT INTO vals VALUES ('empty-blob', x'')`)
		if r := e.query(t, "", `SELECT v, typeof(v), v IS NULL FROM vals WHERE k = 'empty-blob'`); rowsJSON(r.Rows) != `[["","blob",0]]` {
			t.Errorf("a stored empty blob reads as %s, want [[\"\",\"blob\",0]]: NULL and x'' must differ", rowsJSON(r.Rows))
		}
		if r := e.query(t, "", `SELECT x'', typeof(x'')`); rowsJSON(r.Rows) != `[["","blob"]]` {
			t.Errorf("SELECT x'' answered %s, want [[\"\",\"blob\"]]", rowsJSON(r.Rows))
		}
		// Text in DATE, DATETIME and TIMESTAMP columns that reads as a time
		// comes back normalized, in UTC (the driver parses such columns;
		// docs/flaredb.md says so); SQLite itself keeps the text as
		// written, which SQL sees (below).
		e.exec(t, "", `CREATE TABLE events (d DATE, ts TIMESTAMP, dt DATETIME)`)
		stamps := [][]any{
			{"2025-12-12", "2025-12-12T08:30:00Z", "2025-12-12 08:30:00.123+02:00"},
			{"2025-12-12 08:30:00", "2025-12-12 08:30:00", "2025-12-12 08:30:00"},
		}
		for _, st := range stamps {
			e.exec(t, "", `INSERT INTO events VALUES (?, ?, ?)`, st...)
		}
		normalized := [][]any{
			{"2025-12-12 00:00:00", "2025-12-12 08:30:00", "2025-12-12 06:30:00.123"},
			{"2025-12-12 08:30:00", "2025-12-12 08:30:00", "2025-12-12 08:30:00"},
		}
		if r := e.query(t, "", `SELECT d, ts, dt FROM events ORDER BY rowid`); rowsJSON(r.Rows) != rowsJSON(normalized) {
			t.Errorf("date and time text came back as %s, want %s", rowsJSON(r.Rows), rowsJSON(normalized))
		}
		if r := e.query(t, "", `SELECT d = '2025-12-12', typeof(ts) FROM events WHERE rowid = 1`); rowsJSON(r.Rows) != `[[1,"text"]]` {
			t.Errorf("SQLite holds %s", rowsJSON(r.Rows))
		}
		// Infinities are strings (JSON has no number for them).
		if r := e.query(t, "", `SELECT 1e999, -1e999`); rowsJSON(r.Rows) != `[["Infinity","-Infinity"]]` {
			t.Fatalf("infinities: %s", rowsJSON(r.Rows))
		}
		// Bound values stay values: no injection through params.
		e.exec(t, "", `INSERT INTO vals VALUES (?, ?)`, "inject", "x'); DROP TABLE vals; --")
		if r := e.query(t, "", `SELECT v FROM vals WHERE k = 'inject'`); rowsJSON(r.Rows) != `[["x'); DROP TABLE vals; --"]]` {
			t.Fatalf("inject: %s", rowsJSON(r.Rows))
		}
	})

	t.Run("read-only pragmas", func(t *testing.T) {
		// sqlcheck lets read-only pragmas through as reads (docs/flaredb.md:
		// "pragmas other than the read-only ones" are refused); they answer
		// rows like any read.
		for _, c := range []struct{ q, want string }{
			{"PRAGMA table_info(users)", ""},
			{"PRAGMA index_list(users)", ""},
			{"PRAGMA user_version", `[[0]]`},
			{"PRAGMA integrity_check", `[["ok"]]`},
			{"PRAGMA quick_check", `[["ok"]]`},
			{"PRAGMA foreign_key_check", `[]`},
			{"PRAGMA foreign_keys", `[[1]]`},
			{"PRAGMA page_count", ""},
		} {
			a := e.sql(t, "", "", c.q)
			if a.Status != http.StatusOK {
				t.Errorf("%s: %s, want its rows", c.q, a)
				continue
			}
			if r := checkQuery(t, a.Data); c.want != "" && rowsJSON(r.Rows) != c.want {
				t.Errorf("%s: %s, want rows %s", c.q, a.Data, c.want)
			}
		}
	})

	t.Run("kv and sql are one database", func(t *testing.T) {
		e.put(t, "", "system", "config:db_version", "1.0.0")
		e.put(t, "", "", "plain", "x")
		r := e.query(t, "", `SELECT * FROM _flaredb_kv ORDER BY namespace, key`)
		if !slices.Equal(r.Columns, []string{"namespace", "key", "value"}) ||
			rowsJSON(r.Rows) != `[["default","plain","x"],["system","config:db_version","1.0.0"]]` {
			t.Fatalf("_flaredb_kv holds %+v", r)
		}
		// A join of a user table with the KV table, in one read.
		r = e.query(t, "", `SELECT u.name, kv.value FROM users u JOIN _flaredb_kv kv ON kv.key = 'plain' WHERE u.id = 123`)
		if rowsJSON(r.Rows) != `[["alice","x"]]` {
			t.Fatalf("join: %s", rowsJSON(r.Rows))
		}
		// Users read the KV table but never write it.
		e.unchanged(t, "writes to the KV table", func() {
			for _, q := range []string{
				`INSERT INTO _flaredb_kv VALUES ('default', 'sneaky', 'x')`,
				`UPDATE _flaredb_kv SET value = 'y'`,
				`DELETE FROM _flaredb_kv`,
				`DROP TABLE _flaredb_kv`,
				`ALTER TABLE _flaredb_kv ADD COLUMN extra`,
				`CREATE INDEX kv_value ON _flaredb_kv (value)`,
				`CREATE TRIGGER kv_on_kv AFTER INSERT ON _flaredb_kv BEGIN INSERT INTO users (name) VALUES (new.key); END`,
				`INSERT INTO _FLAREDB_KV VALUES ('default', 'sneaky', 'x')`,
				`DELETE FROM "_flaredb_kv"`,
				`DELETE FROM main._flaredb_kv`,
				`UPDATE _flaredb_meta SET v = 0`,
				`CREATE TABLE _flaredb_mine (x)`,
			} {
				a := e.sql(t, "", "", q)
				if !a.Is(apierr.CodeSQL) {
					t.Errorf("%s: %s, want SQL_ERROR", q, a)
				}
			}
			// Nor in a transaction with other statements.
			fails(t, e.do(t, req{method: "POST", path: "/api/v1/sql", body: `{"statements":[{"query":"INSERT INTO users (name) VALUES ('zed')"},{"query":"DELETE FROM _flaredb_kv"}]}`}), apierr.CodeSQL)
		})
		// A trigger or view of the user's may name the KV table, but what it
		// would write there is refused when it runs.
		e.exec(t, "", `CREATE TRIGGER kv_trig AFTER INSERT ON users BEGIN DELETE FROM _flaredb_kv; END`)
		e.exec(t, "", `CREATE VIEW kvv AS SELECT * FROM _flaredb_kv`)
		e.exec(t, "", `CREATE TRIGGER kvv_ins INSTEAD OF INSERT ON kvv BEGIN INSERT INTO _flaredb_kv VALUES (new.namespace, new.key, new.value); END`)
		e.unchanged(t, "writes to the KV table through triggers", func() {
			fails(t, e.sql(t, "", "", `INSERT INTO users (name) VALUES ('trigger')`), apierr.CodeSQL)
			fails(t, e.sql(t, "", "", `INSERT INTO kvv VALUES ('default', 'via-view', 'x')`), apierr.CodeSQL)
		})
		e.exec(t, "", `DROP TRIGGER kv_trig`)
		e.exec(t, "", `DROP VIEW kvv`)
		// The KV API sees what it wrote, untouched.
		if got := strict[flaredb.KVPair](t, e.do(t, req{method: "GET", path: "/api/v1/kv/plain"}), http.StatusOK); got.Value != "x" {
			t.Fatalf("after refused writes: %+v", got)
		}
	})

	t.Run("consistency", func(t *testing.T) {
		e.put(t, "", "", "c", "1")
		for _, c := range []string{"", "linearizable", "lease", "stale", "strong", "weak", "none", "LEASE"} {
			q := ""
			if c != "" {
				q = "consistency=" + c
			}
			if got := strict[flaredb.KVPair](t, e.do(t, req{method: "GET", path: "/api/v1/kv/c?" + q}), http.StatusOK); got.Value != "1" {
				t.Fatalf("GET kv at %q: %+v", c, got)
			}
			if p := strict[flaredb.ScanPage](t, e.do(t, req{method: "GET", path: "/api/v1/scan?start=c&end=d&" + q}), http.StatusOK); len(p.Items) != 1 {
				t.Fatalf("scan at %q: %+v", c, p)
			}
			strict[flaredb.TableList](t, e.do(t, req{method: "GET", path: "/api/v1/tables?" + q}), http.StatusOK)
			strict[flaredb.TableInfo](t, e.do(t, req{method: "GET", path: "/api/v1/tables/users?" + q}), http.StatusOK)
			// In the body or the query.
			a := e.do(t, req{method: "POST", path: "/api/v1/sql?" + q, body: `{"query":"SELECT name FROM users WHERE id = 123"}`})
			if r := checkQuery(t, ok[json.RawMessage](t, a, http.StatusOK)); rowsJSON(r.Rows) != `[["alice"]]` {
				t.Fatalf("SQL at %q: %s", c, a.Data)
			}
			a = e.do(t, req{method: "POST", path: "/api/v1/sql", body: `{"query":"SELECT name FROM users WHERE id = 123","consistency":"` + c + `"}`})
			if r := checkQuery(t, ok[json.RawMessage](t, a, http.StatusOK)); rowsJSON(r.Rows) != `[["alice"]]` {
				t.Fatalf("SQL at %q: %s", c, a.Data)
			}
		}
		// A write asking for a stale read is still a write (on the leader).
		a := e.do(t, req{method: "POST", path: "/api/v1/sql", body: `{"query":"INSERT INTO users (name) VALUES ('stale-writer')","consistency":"stale"}`})
		if n, _ := checkWrite(t, ok[json.RawMessage](t, a, http.StatusOK)); n != 1 {
			t.Fatalf("stale write: %s", a)
		}
		// Read your writes at every level.
		for i, c := range []string{"linearizable", "lease", "stale"} {
			v := strconv.Itoa(i + 10)
			e.put(t, "", "", "c", v)
			if got := strict[flaredb.KVPair](t, e.do(t, req{method: "GET", path: "/api/v1/kv/c?consistency=" + c}), http.StatusOK); got.Value != v {
				t.Fatalf("after put %s, GET at %s: %+v", v, c, got)
			}
		}
		e.unchanged(t, "bad consistency", func() {
			for _, r := range []req{
				{method: "GET", path: "/api/v1/kv/c?consistency=eventual"},
				{method: "GET", path: "/api/v1/scan?consistency=eventual"},
				{method: "GET", path: "/api/v1/tables?consistency=eventual"},
				{method: "GET", path: "/api/v1/tables/users?consistency=eventual"},
				{method: "POST", path: "/api/v1/sql?consistency=eventual", body: `{"query":"SELECT 1"}`},
				{method: "POST", path: "/api/v1/sql", body: `{"query":"SELECT 1","consistency":"eventual"}`},
				{method: "POST", path: "/api/v1/sql", body: `{"query":"INSERT INTO users (name) VALUES ('bad-consistency')","consistency":"eventual"}`},
				{method: "POST", path: "/api/v1/sql", body: `{"query":"SELECT 1","consistency":5}`},
			} {
				invalid(t, e.do(t, r), "consistency")
			}
		})
	})
}

// TestDeterminism checks that what SQLite would compute on each replica is
// computed once and stored (random(), CURRENT_TIMESTAMP, 'now'), and that
// what cannot be is refused, changing nothing.
func TestDeterminism(t *testing.T) {
	e := startFDB(t)
	e.exec(t, "", `CREATE TABLE r (id INTEGER PRIMARY KEY, n, ts, d, b)`)
	start := time.Now().UTC().Add(-time.Minute)
	e.exec(t, "", `INSERT INTO r (n, ts, d, b) VALUES (random(), CURRENT_TIMESTAMP, datetime('now'), randomblob(8))`)
	e.exec(t, "", `INSERT INTO r (n, ts, d, b) SELECT random(), CURRENT_DATE, strftime('%s', 'now'), hex(randomblob(4)) FROM r`)
	e.exec(t, "", `UPDATE r SET n = abs(random()) % 1000 WHERE id = 2`)
	first := e.query(t, "", `SELECT id, n, typeof(n), ts, d, typeof(b), length(b) FROM r ORDER BY id`)
	if len(first.Rows) != 2 {
		t.Fatalf("rows %s", rowsJSON(first.Rows))
	}
	// Stored values: reading again gives the same, at every consistency.
	for _, c := range []string{"linearizable", "lease", "stale"} {
		a := e.do(t, req{method: "POST", path: "/api/v1/sql?consistency=" + c, body: `{"query":"SELECT id, n, typeof(n), ts, d, typeof(b), length(b) FROM r ORDER BY id"}`})
		if got := rowsJSON(checkQuery(t, a.Data).Rows); got != rowsJSON(first.Rows) {
			t.Fatalf("read at %s: %s, then %s", c, rowsJSON(first.Rows), got)
		}
	}
	r1 := first.Rows[0]
	if r1[2] != "integer" || r1[5] != "blob" || fmt.Sprint(r1[6]) != "8" {
		t.Fatalf("random() and randomblob() stored %s", rowsJSON(first.Rows))
	}
	for _, v := range []any{r1[3], r1[4]} {
		ts, err := time.Parse(time.DateTime, fmt.Sprint(v))
		if err != nil || ts.Before(start) || ts.After(time.Now().UTC().Add(time.Minute)) {
			t.Fatalf("CURRENT_TIMESTAMP / datetime('now') stored %v (%v)", v, err)
		}
	}
	r2 := first.Rows[1]
	if _, err := time.Parse(time.DateOnly, fmt.Sprint(r2[3])); err != nil {
		t.Fatalf("CURRENT_DATE stored %v", r2[3])
	}
	if n, err := strconv.ParseInt(fmt.Sprint(r2[1]), 10, 64); err != nil || n < 0 || n >= 1000 {
		t.Fatalf("abs(random()) %% 1000 stored %v", r2[1])
	}
	// Reads may use them freely: one replica answers.
	if r := e.query(t, "", `SELECT typeof(random()), length(CURRENT_TIMESTAMP)`); rowsJSON(r.Rows) != `[["integer",19]]` {
		t.Fatalf("a read of random(): %s", rowsJSON(r.Rows))
	}

	e.unchanged(t, "statements that cannot be replicated", func() {
		for _, q := range []string{
			`CREATE TABLE t (a TEXT DEFAULT CURRENT_TIMESTAMP)`,
			`CREATE TABLE t (a INTEGER DEFAULT (random()))`,
			`ALTER TABLE r ADD COLUMN created TEXT DEFAULT CURRENT_TIMESTAMP`,
			`CREATE VIEW v AS SELECT random() AS x`,
			`CREATE TRIGGER tr AFTER INSERT ON r BEGIN UPDATE r SET n = random() WHERE id = new.id; END`,
			`CREATE INDEX i ON r (random())`,
			`BEGIN`, `BEGIN TRANSACTION`, `COMMIT`, `ROLLBACK`, `SAVEPOINT s`, `RELEASE s`,
			`ATTACH DATABASE 'other.db' AS other`, `ATTACH ':memory:' AS m`, `DETACH other`,
			`VACUUM`,
			`PRAGMA journal_mode = DELETE`, `PRAGMA journal_mode=MEMORY`, `PRAGMA foreign_keys = OFF`,
			`PRAGMA synchronous = OFF`, `PRAGMA writable_schema = ON`,
			`CREATE TEMP TABLE tt (x)`,
			`SELECT load_extension('x')`,
			`INSERT INTO r (n) VALUES (1); DROP TABLE r`,
			`SELECT 1; SELECT 2`,
			"SELECT 1\x00; DROP TABLE r",
		} {
			a := e.sql(t, "", "", q)
			if !a.Is(apierr.CodeSQL) {
				t.Errorf("%q: %s, want 400 SQL_ERROR", q, a)
			}
		}
	})
	// The refusal names the reason.
	a := e.sql(t, "", "", `CREATE TABLE t (a TEXT DEFAULT CURRENT_TIMESTAMP)`)
	if !a.Is(apierr.CodeSQL) || !strings.Contains(strings.ToLower(a.Err.Message), "current_timestamp") {
		t.Fatalf("DEFAULT CURRENT_TIMESTAMP: %s", a.Raw)
	}
}

// TestBadRequestsChangeNothing sends every kind of bad request a user can
// make; each gets the seed's error envelope with the right code and leaves
// every database as it was.
func TestBadRequestsChangeNothing(t *testing.T) {
	e := startFDB(t)
	e.exec(t, "", `CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, age INTEGER CHECK (age >= 0), team INTEGER REFERENCES teams (id))`)
	e.exec(t, "", `CREATE TABLE teams (id INTEGER PRIMARY KEY)`)
	e.exec(t, "", `INSERT INTO teams VALUES (1)`)
	e.exec(t, "", `INSERT INTO users (name, age, team) VALUES ('alice', 30, 1)`)
	e.put(t, "", "", "k", "v")
	e.put(t, "proj-x", "", "k", "project's")
	e.exec(t, "proj-x", `CREATE TABLE p (x)`)

	check := func(t *testing.T, r req, code apierr.Code, field string) testutil.Answer {
		t.Helper()
		var a testutil.Answer
		e.unchanged(t, r.method+" "+r.path, func() {
			a = e.do(t, r)
			fails(t, a, code)
			if field != "" && a.Err.Details["field"] != field {
				t.Fatalf("want details.field %q: got %s", field, a.Raw)
			}
		}, "proj-x")
		return a
	}

	t.Run("sql errors", func(t *testing.T) {
		a := check(t, req{method: "POST", path: "/api/v1/sql", body: `{"query":"SELEC * FROM users"}`}, apierr.CodeSQL, "")
		if !strings.Contains(a.Err.Message, `near "SELEC": syntax error`) {
			t.Fatalf("syntax error: want SQLite's message, got %q", a.Err.Message)
		}
		a = check(t, req{method: "POST", path: "/api/v1/sql", body: `{"query":"SELECT * FROM users WHERE"}`}, apierr.CodeSQL, "")
		if !strings.Contains(a.Err.Message, "incomplete input") {
			t.Fatalf("incomplete read: %q", a.Err.Message)
		}
		a = check(t, req{method: "POST", path: "/api/v1/sql", body: `{"query":"SELECT nope FROM users"}`}, apierr.CodeSQL, "")
		if !strings.Contains(a.Err.Message, "no such column: nope") {
			t.Fatalf("no such column: %q", a.Err.Message)
		}
		a = check(t, req{method: "POST", path: "/api/v1/sql", body: `{"query":"INSERT INTO nowhere VALUES (1)"}`}, apierr.CodeSQL, "")
		if !strings.Contains(a.Err.Message, "no such table: nowhere") {
			t.Fatalf("no such table: %q", a.Err.Message)
		}
		check(t, req{method: "POST", path: "/api/v1/sql", body: `{"query":"CREATE TABLE users (x)"}`}, apierr.CodeSQL, "")
		// Parameters must match the placeholders: too few, or ones no
		// placeholder takes (a miscounted list), are refused.
		check(t, req{method: "POST", path: "/api/v1/sql", body: `{"query":"SELECT ?, ?","params":[1]}`}, apierr.CodeSQL, "")
		check(t, req{method: "POST", path: "/api/v1/sql", body: `{"query":"SELECT :a, :b","params":{"a":1}}`}, apierr.CodeSQL, "")
		for q, msg := range map[string]string{
			`INSERT INTO users (name) VALUES ('alice')`:            "UNIQUE constraint failed: users.name",
			`INSERT INTO users (id, name) VALUES (1, 'again')`:     "UNIQUE constraint failed: users.id",
			`INSERT INTO users (age) VALUES (1)`:                   "NOT NULL constraint failed: users.name",
			`INSERT INTO users (name, age) VALUES ('neg', -1)`:     "CHECK constraint failed",
			`INSERT INTO users (name, team) VALUES ('orphan', 99)`: "FOREIGN KEY constraint failed",
			`UPDATE users SET name = NULL`:                         "NOT NULL constraint failed: users.name",
			`DELETE FROM teams`:                                    "FOREIGN KEY constraint failed",
		} {
			a := check(t, req{method: "POST", path: "/api/v1/sql", body: map[string]any{"query": q}}, apierr.CodeConstraint, "")
			if !strings.Contains(a.Err.Message, msg) {
				t.Errorf("%s: message %q, want %q", q, a.Err.Message, msg)
			}
		}
		// A constraint in statements names the statement.
		a = check(t, req{method: "POST", path: "/api/v1/sql", body: `{"statements":[{"query":"INSERT INTO users (name) VALUES ('new')"},{"query":"INSERT INTO users (name) VALUES ('new')"}]}`}, apierr.CodeConstraint, "")
		if a.Err.Details["statement"] != float64(1) {
			t.Fatalf("details: %s", a.Raw)
		}
	})

	t.Run("parameters no placeholder takes", func(t *testing.T) {
		for _, body := range []string{
			`{"query":"SELECT ?","params":[1,2]}`,
			`{"query":"INSERT INTO users (name, age) VALUES (?, ?)","params":["extra",1,2]}`,
			`{"query":"INSERT INTO users (name) VALUES (:n)","params":{"n":"unused","typo":1}}`,
			`{"query":"INSERT INTO users (name) VALUES ('none')","params":[1]}`,
		} {
			t.Run(body, func(t *testing.T) {
				e.unchanged(t, body, func() {
					if a := e.do(t, req{method: "POST", path: "/api/v1/sql", body: body}); !a.Is(apierr.CodeSQL) && !a.Is(apierr.CodeValidation) {
						t.Errorf("%s: %s, want 400 (a parameter no placeholder takes)", body, a)
					}
				}, "proj-x")
			})
		}
	})

	t.Run("request shape", func(t *testing.T) {
		for _, c := range []struct {
			name, body string
			code       apierr.Code
			field      string
		}{
			{"both query and statements", `{"query":"SELECT 1","statements":[{"query":"SELECT 2"}]}`, apierr.CodeValidation, "statements"},
			{"params and statements", `{"params":[1],"statements":[{"query":"SELECT ?"}]}`, apierr.CodeValidation, "statements"},
			{"empty body", ``, apierr.CodeValidation, "query"},
			{"empty object", `{}`, apierr.CodeValidation, "query"},
			{"empty query", `{"query":""}`, apierr.CodeValidation, "query"},
			{"blank query", `{"query":"   \n\t"}`, apierr.CodeValidation, "query"},
			{"comment only", `{"query":"-- nothing"}`, apierr.CodeValidation, "query"},
			{"semicolon only", `{"query":";"}`, apierr.CodeValidation, "query"},
			{"empty statements", `{"statements":[]}`, apierr.CodeValidation, "statements"},
			{"1001 statements", `{"statements":[` + strings.TrimSuffix(strings.Repeat(`{"query":"INSERT INTO users (name) VALUES ('many')"},`, 1001), ",") + `]}`, apierr.CodeValidation, "statements"},
			{"empty statement", `{"statements":[{"query":"INSERT INTO users (name) VALUES ('s')"},{"query":""}]}`, apierr.CodeValidation, "statements[1]"},
			{"params nested array", `{"query":"SELECT ?","params":[[1]]}`, apierr.CodeValidation, "params"},
			{"params nested object", `{"query":"SELECT ?","params":[{"a":1}]}`, apierr.CodeValidation, "params"},
			{"named nested", `{"query":"SELECT :a","params":{"a":[1]}}`, apierr.CodeValidation, "params"},
			{"named nested object", `{"query":"INSERT INTO users (name) VALUES (:a)","params":{"a":{"b":"c"}}}`, apierr.CodeValidation, "params"},
			{"params string", `{"query":"SELECT ?","params":"x"}`, apierr.CodeValidation, "params"},
			{"params number", `{"query":"SELECT ?","params":5}`, apierr.CodeValidation, "params"},
			{"params true", `{"query":"SELECT ?","params":true}`, apierr.CodeValidation, "params"},
			{"params huge float", `{"query":"SELECT ?","params":[1e400]}`, apierr.CodeValidation, "params"},
			{"params empty name", `{"query":"SELECT :a","params":{"":1}}`, apierr.CodeValidation, "params"},
			{"statement params nested", `{"statements":[{"query":"SELECT ?","params":[[1]]}]}`, apierr.CodeValidation, "params"},
			{"unknown field", `{"query":"SELECT 1","x":1}`, apierr.CodeValidation, "x"},
			{"unknown statement field", `{"statements":[{"query":"SELECT 1","sql":"x"}]}`, apierr.CodeValidation, "sql"},
			{"query not a string", `{"query":1}`, apierr.CodeValidation, "query"},
			{"statements not a list", `{"statements":{"query":"SELECT 1"}}`, apierr.CodeValidation, "statements"},
			{"consistency not a string", `{"query":"SELECT 1","consistency":true}`, apierr.CodeValidation, "consistency"},
			{"malformed", `{"query":`, apierr.CodeInvalidJSON, ""},
			{"not an object", `["SELECT 1"]`, apierr.CodeInvalidJSON, ""},
			{"trailing data", `{"query":"SELECT 1"} {"query":"SELECT 2"}`, apierr.CodeInvalidJSON, ""},
			{"not json", `SELECT 1`, apierr.CodeInvalidJSON, ""},
		} {
			t.Run(c.name, func(t *testing.T) {
				check(t, req{method: "POST", path: "/api/v1/sql", body: c.body}, c.code, c.field)
			})
		}
		// Wrong media type.
		check(t, req{method: "POST", path: "/api/v1/sql", body: `{"query":"SELECT 1"}`, contentType: "text/plain"}, apierr.CodeUnsupportedMediaType, "")
		check(t, req{method: "PUT", path: "/api/v1/kv/k", body: `{"value":"w"}`, contentType: "application/x-www-form-urlencoded"}, apierr.CodeUnsupportedMediaType, "")
	})

	t.Run("kv shape", func(t *testing.T) {
		for _, c := range []struct {
			name, path, body string
			code             apierr.Code
			field            string
		}{
			{"no value", "/api/v1/kv/k", `{"namespace":"default"}`, apierr.CodeValidation, "value"},
			{"null value", "/api/v1/kv/k", `{"value":null}`, apierr.CodeValidation, "value"},
			{"empty body", "/api/v1/kv/k", ``, apierr.CodeValidation, "value"},
			{"number value", "/api/v1/kv/k", `{"value":1}`, apierr.CodeValidation, "value"},
			{"object value", "/api/v1/kv/k", `{"value":{"a":1}}`, apierr.CodeValidation, "value"},
			{"namespace not a string", "/api/v1/kv/k", `{"value":"w","namespace":1}`, apierr.CodeValidation, "namespace"},
			{"long namespace", "/api/v1/kv/k", `{"value":"w","namespace":"` + strings.Repeat("n", 256) + `"}`, apierr.CodeValidation, "namespace"},
			{"unknown field", "/api/v1/kv/k", `{"value":"w","ttl":5}`, apierr.CodeValidation, "ttl"},
			{"key field", "/api/v1/kv/k", `{"value":"w","key":"other"}`, apierr.CodeValidation, "key"},
			{"malformed", "/api/v1/kv/k", `{"value":`, apierr.CodeInvalidJSON, ""},
			{"not an object", "/api/v1/kv/k", `"w"`, apierr.CodeInvalidJSON, ""},
			{"empty key", "/api/v1/kv/", `{"value":"w"}`, apierr.CodeValidation, "key"},
			{"long key", "/api/v1/kv/" + strings.Repeat("k", 4097), `{"value":"w"}`, apierr.CodeValidation, "key"},
			{"bad utf-8 key", "/api/v1/kv/%FF", `{"value":"w"}`, apierr.CodeValidation, "key"},
			{"namespaces differ", "/api/v1/kv/k?namespace=x", `{"value":"w","namespace":"y"}`, apierr.CodeValidation, "namespace"},
			{"long namespace in the query", "/api/v1/kv/k?namespace=" + strings.Repeat("n", 256), `{"value":"w"}`, apierr.CodeValidation, "namespace"},
			{"unknown query parameter", "/api/v1/kv/k?ttl=5", `{"value":"w"}`, apierr.CodeValidation, "ttl"},
		} {
			t.Run(c.name, func(t *testing.T) {
				check(t, req{method: "PUT", path: c.path, body: c.body}, c.code, c.field)
			})
		}
		for _, c := range []struct {
			name, method, path string
			code               apierr.Code
			field              string
		}{
			{"get empty key", "GET", "/api/v1/kv/", apierr.CodeValidation, "key"},
			{"delete empty key", "DELETE", "/api/v1/kv/", apierr.CodeValidation, "key"},
			{"get long key", "GET", "/api/v1/kv/" + strings.Repeat("k", 4097), apierr.CodeValidation, "key"},
			{"get bad utf-8", "GET", "/api/v1/kv/%C3%28", apierr.CodeValidation, "key"},
			{"get bad namespace", "GET", "/api/v1/kv/k?namespace=%FF", apierr.CodeValidation, "namespace"},
			{"scan bad namespace", "GET", "/api/v1/scan?namespace=" + strings.Repeat("n", 256), apierr.CodeValidation, "namespace"},
			{"get unknown parameter", "GET", "/api/v1/kv/k?limit=1", apierr.CodeValidation, "limit"},
			{"delete unknown parameter", "DELETE", "/api/v1/kv/k?consistency=stale", apierr.CodeValidation, "consistency"},
			{"scan unknown parameter", "GET", "/api/v1/scan?prefix=k", apierr.CodeValidation, "prefix"},
			{"sql unknown parameter", "POST", "/api/v1/sql?query=SELECT+1", apierr.CodeValidation, "query"},
			{"tables unknown parameter", "GET", "/api/v1/tables?limit=5", apierr.CodeValidation, "limit"},
			{"table unknown parameter", "GET", "/api/v1/tables/users?x=1", apierr.CodeValidation, "x"},
			{"cluster unknown parameter", "GET", "/api/v1/cluster?x=1", apierr.CodeValidation, "x"},
			{"repeated parameter", "GET", "/api/v1/kv/k?namespace=a&namespace=b", apierr.CodeValidation, "namespace"},
			{"bad project", "GET", "/api/v1/kv/k?project_id=Not%20An%20Id", apierr.CodeValidation, "project_id"},
			{"bad project on a write", "DELETE", "/api/v1/kv/k?project_id=_platform", apierr.CodeValidation, "project_id"},
			{"long project", "GET", "/api/v1/tables?project_id=" + strings.Repeat("p", 64), apierr.CodeValidation, "project_id"},
			{"missing key", "GET", "/api/v1/kv/missing", apierr.CodeNotFound, ""},
			{"missing key delete", "DELETE", "/api/v1/kv/missing", apierr.CodeNotFound, ""},
			{"missing in a project", "DELETE", "/api/v1/kv/missing?project_id=proj-x", apierr.CodeNotFound, ""},
			{"unknown route", "GET", "/api/v1/nothing", apierr.CodeNotFound, ""},
			{"wrong method", "PATCH", "/api/v1/kv/k", apierr.CodeMethodNotAllowed, ""},
			{"wrong method sql", "GET", "/api/v1/sql", apierr.CodeMethodNotAllowed, ""},
		} {
			t.Run(c.name, func(t *testing.T) {
				var body any
				if c.method == "POST" {
					body = `{"query":"SELECT 1"}`
				}
				check(t, req{method: c.method, path: c.path, body: body}, c.code, c.field)
			})
		}
	})

	t.Run("malformed query string", func(t *testing.T) {
		// A bad escape is a VALIDATION_ERROR on every route, with
		// details.field and details.constraint as every VALIDATION_ERROR.
		for _, r := range []req{
			{method: "GET", path: "/api/v1/kv/k?namespace=%zz"},
			{method: "PUT", path: "/api/v1/kv/k?project_id=%zz", body: `{"value":"w"}`},
			{method: "DELETE", path: "/api/v1/kv/k?namespace=%zz"},
			{method: "GET", path: "/api/v1/scan?page_token=%%%"},
			{method: "POST", path: "/api/v1/sql?consistency=%zz", body: `{"query":"SELECT 1"}`},
			{method: "GET", path: "/api/v1/tables?%zz=1"},
			{method: "GET", path: "/api/v1/tables/users?consistency=%"},
			{method: "GET", path: "/api/v1/cluster?%zz"},
		} {
			t.Run(r.method+" "+r.path, func(t *testing.T) {
				check(t, r, apierr.CodeValidation, "")
			})
		}
	})

	t.Run("oversized body", func(t *testing.T) {
		big := strings.Repeat("x", 4<<20) // the body around it tips it over 4 MiB
		check(t, req{method: "POST", path: "/api/v1/sql", body: `{"query":"INSERT INTO users (name) VALUES (?)","params":["` + big + `"]}`}, apierr.CodePayloadTooLarge, "")
		check(t, req{method: "PUT", path: "/api/v1/kv/big", body: `{"value":"` + big + `"}`}, apierr.CodePayloadTooLarge, "")
		check(t, req{method: "POST", path: "/api/v1/cluster/members", body: `{"id":"` + big + `"}`}, apierr.CodePayloadTooLarge, "")
		// The limit is FlareDB's 4 MiB, not the 1 MiB other services take.
		fine := strings.Repeat("y", 2<<20)
		a := e.do(t, req{method: "PUT", path: "/api/v1/kv/almost", body: `{"value":"` + fine + `"}`})
		if a.Status != http.StatusOK {
			t.Fatalf("a 2 MiB body: %s", a)
		}
		if got := strict[flaredb.KVPair](t, e.do(t, req{method: "GET", path: "/api/v1/kv/almost"}), http.StatusOK); len(got.Value) != len(fine) {
			t.Fatalf("a %d-byte value came back with %d bytes", len(fine), len(got.Value))
		}
		strict[flaredb.KVDeleted](t, e.do(t, req{method: "DELETE", path: "/api/v1/kv/almost"}), http.StatusOK)
	})

	t.Run("bad tokens", func(t *testing.T) {
		for _, r := range []req{
			{method: "GET", path: "/api/v1/kv/k", token: "garbage"},
			{method: "PUT", path: "/api/v1/kv/k", token: "garbage", body: `{"value":"w"}`},
			{method: "POST", path: "/api/v1/sql", token: "a.b.c", body: `{"query":"DELETE FROM users"}`},
			{method: "GET", path: "/api/v1/tables", token: "garbage"},
			{method: "GET", path: "/api/v1/cluster", token: "garbage"},
		} {
			check(t, r, apierr.CodeUnauthenticated, "")
		}
	})
}

// TestTables lists user tables and views (never the engine's or SQLite's
// own) and describes one: columns and indexes.
func TestTables(t *testing.T) {
	e := startFDB(t)
	if got := string(e.do(t, req{method: "GET", path: "/api/v1/tables"}).Data); got != `{"tables":[]}` {
		t.Fatalf("tables of a new database: %s", got)
	}
	e.put(t, "", "", "k", "v") // the KV table has rows
	for _, q := range []string{
		`CREATE TABLE users (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL DEFAULT 'anon', email VARCHAR(255) UNIQUE, age INT DEFAULT 0, bio)`,
		`CREATE INDEX users_name_email ON users (name, email)`,
		`CREATE UNIQUE INDEX users_age ON users (age)`,
		`CREATE TABLE members (team TEXT, user INTEGER NOT NULL, role TEXT, PRIMARY KEY (team, user))`,
		`CREATE VIEW adults AS SELECT id, name FROM users WHERE age >= 18`,
		`CREATE TABLE "odd name/with slash" (x)`,
		`INSERT INTO users (name) VALUES ('a')`, // sqlite_sequence gets a row
	} {
		e.exec(t, "", q)
	}
	list := strict[flaredb.TableList](t, e.do(t, req{method: "GET", path: "/api/v1/tables"}), http.StatusOK)
	want := []flaredb.Table{{Name: "adults", Type: "view"}, {Name: "members", Type: "table"}, {Name: "odd name/with slash", Type: "table"}, {Name: "users", Type: "table"}}
	if !slices.Equal(list.Tables, want) {
		t.Fatalf("tables: %+v, want %+v", list.Tables, want)
	}

	str := func(s string) *string { return &s }
	col := func(name, typ string, notNull bool, def *string, pk int) flaredb.Column {
		return flaredb.Column{Name: name, Type: typ, NotNull: notNull, Default: def, PrimaryKey: pk}
	}
	for _, c := range []struct {
		path string
		want flaredb.TableInfo
	}{
		{"/api/v1/tables/users", flaredb.TableInfo{Name: "users", Type: "table",
			SQL: `CREATE TABLE users (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL DEFAULT 'anon', email VARCHAR(255) UNIQUE, age INT DEFAULT 0, bio)`,
			Columns: []flaredb.Column{col("id", "INTEGER", false, nil, 1), col("name", "TEXT", true, str("'anon'"), 0),
				col("email", "VARCHAR(255)", false, nil, 0), col("age", "INT", false, str("0"), 0), col("bio", "", false, nil, 0)},
			Indexes: []flaredb.Index{
				{Name: "sqlite_autoindex_users_1", Unique: true, Origin: "u", Columns: []string{"email"}},
				{Name: "users_age", Unique: true, Origin: "c", Columns: []string{"age"}},
				{Name: "users_name_email", Unique: false, Origin: "c", Columns: []string{"name", "email"}},
			}}},
		{"/api/v1/tables/members", flaredb.TableInfo{Name: "members", Type: "table",
			SQL:     `CREATE TABLE members (team TEXT, user INTEGER NOT NULL, role TEXT, PRIMARY KEY (team, user))`,
			Columns: []flaredb.Column{col("team", "TEXT", false, nil, 1), col("user", "INTEGER", true, nil, 2), col("role", "TEXT", false, nil, 0)},
			Indexes: []flaredb.Index{{Name: "sqlite_autoindex_members_1", Unique: true, Origin: "pk", Columns: []string{"team", "user"}}}}},
		{"/api/v1/tables/adults", flaredb.TableInfo{Name: "adults", Type: "view",
			SQL:     `CREATE VIEW adults AS SELECT id, name FROM users WHERE age >= 18`,
			Columns: []flaredb.Column{col("id", "INTEGER", false, nil, 0), col("name", "TEXT", false, nil, 0)},
			Indexes: []flaredb.Index{}}},
		{"/api/v1/tables/odd%20name%2Fwith%20slash", flaredb.TableInfo{Name: "odd name/with slash", Type: "table",
			SQL:     `CREATE TABLE "odd name/with slash" (x)`,
			Columns: []flaredb.Column{col("x", "", false, nil, 0)}, Indexes: []flaredb.Index{}}},
	} {
		a := e.do(t, req{method: "GET", path: c.path})
		testutil.ExactKeys(t, c.path, a.Data, "name", "type", "sql", "columns", "indexes")
		got := strict[flaredb.TableInfo](t, a, http.StatusOK)
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(c.want)
		if string(gj) != string(wj) {
			t.Errorf("GET %s:\n got %s\nwant %s", c.path, gj, wj)
		}
	}
	// Column objects have exactly the documented fields.
	a := e.do(t, req{method: "GET", path: "/api/v1/tables/users"})
	var raw struct {
		Columns []json.RawMessage `json:"columns"`
		Indexes []json.RawMessage `json:"indexes"`
	}
	if err := json.Unmarshal(a.Data, &raw); err != nil || len(raw.Columns) == 0 || len(raw.Indexes) == 0 {
		t.Fatalf("%s: %v", a.Data, err)
	}
	testutil.ExactKeys(t, "a column", raw.Columns[1], "name", "type", "not_null", "default", "primary_key")
	testutil.ExactKeys(t, "an index", raw.Indexes[0], "name", "unique", "origin", "columns")

	e.unchanged(t, "tables that are not there", func() {
		for _, name := range []string{"nope", "_flaredb_kv", "_FLAREDB_KV", "_flaredb_meta", "_flaredb_nodes", "sqlite_schema",
			"sqlite_master", "sqlite_sequence", "SQLITE_SEQUENCE", "users_age", "sqlite_autoindex_users_1", "Users%20"} {
			d := fails(t, e.do(t, req{method: "GET", path: "/api/v1/tables/" + name}), apierr.CodeNotFound)
			if d["kind"] != "table" {
				t.Errorf("GET /tables/%s: details %v", name, d)
			}
		}
	})
	// Names are SQLite's: case-insensitive.
	if got := strict[flaredb.TableInfo](t, e.do(t, req{method: "GET", path: "/api/v1/tables/USERS"}), http.StatusOK); got.Name != "users" {
		t.Errorf("GET /tables/USERS: %+v", got)
	}
	// A dropped table is gone from both.
	e.exec(t, "", `DROP VIEW adults`)
	fails(t, e.do(t, req{method: "GET", path: "/api/v1/tables/adults"}), apierr.CodeNotFound)
	list = strict[flaredb.TableList](t, e.do(t, req{method: "GET", path: "/api/v1/tables"}), http.StatusOK)
	if len(list.Tables) != 3 {
		t.Fatalf("after DROP VIEW: %+v", list.Tables)
	}
}

// TestTenancy checks that each project has its own database: a token sees
// only its project's tables and keys, another project's are 404 on reads of
// one resource and 403 on writes and lists, and a viewer only reads. A
// shared database would fail the first checks with proj-b's token: the
// table list would hold "secrets", the SELECT would answer proj-a's row and
// proj-b's CREATE TABLE secrets would fail as "already exists".
func TestTenancy(t *testing.T) {
	e := startFDB(t)
	a := e.token(t, "alice", "proj-a", "member")
	b := e.token(t, "bob", "proj-b", "member")
	viewer := e.token(t, "vera", "proj-a", "viewer")

	// proj-a's token writes its own database, without naming it.
	ok[json.RawMessage](t, e.sql(t, "", a, `CREATE TABLE secrets (id INTEGER PRIMARY KEY, v TEXT)`), http.StatusOK)
	ok[json.RawMessage](t, e.sql(t, "", a, `INSERT INTO secrets (v) VALUES ('a-secret')`), http.StatusOK)
	strict[flaredb.KVPair](t, e.do(t, req{method: "PUT", path: "/api/v1/kv/secret", token: a, body: `{"value":"a-kv"}`}), http.StatusOK)
	strict[flaredb.KVPair](t, e.do(t, req{method: "PUT", path: "/api/v1/kv/config:x?project_id=proj-a", token: a, body: `{"value":"a-sys","namespace":"system"}`}), http.StatusOK)
	if r := checkQuery(t, e.sql(t, "", a, `SELECT v FROM secrets`).Data); rowsJSON(r.Rows) != `[["a-secret"]]` {
		t.Fatalf("proj-a reads %s", rowsJSON(r.Rows))
	}
	if got := strict[flaredb.KVPair](t, e.do(t, req{method: "GET", path: "/api/v1/kv/secret", token: a}), http.StatusOK); got.Value != "a-kv" {
		t.Fatalf("proj-a's key: %+v", got)
	}
	// The admin's platform database is another one again.
	e.exec(t, "", `CREATE TABLE platform_only (x)`)
	e.put(t, "", "", "secret", "platform-kv")

	// proj-b's reads before anything was written in proj-b.
	reads := func(t *testing.T, tok string) {
		t.Helper()
		list := strict[flaredb.TableList](t, e.do(t, req{method: "GET", path: "/api/v1/tables", token: tok}), http.StatusOK)
		if len(list.Tables) != 0 {
			t.Fatalf("another project lists %+v", list.Tables)
		}
		if ans := e.sql(t, "", tok, `SELECT * FROM secrets`); !ans.Is(apierr.CodeSQL) || !strings.Contains(ans.Err.Message, "no such table: secrets") {
			t.Fatalf("another project's SELECT: %s", ans.Raw)
		}
		fails(t, e.do(t, req{method: "GET", path: "/api/v1/kv/secret", token: tok}), apierr.CodeNotFound)
		for _, q := range []string{"", "?namespace=system"} {
			if p := strict[flaredb.ScanPage](t, e.do(t, req{method: "GET", path: "/api/v1/scan" + q, token: tok}), http.StatusOK); len(p.Items) != 0 {
				t.Fatalf("another project scans %+v", p.Items)
			}
		}
		if r := checkQuery(t, e.sql(t, "", tok, `SELECT * FROM _flaredb_kv WHERE namespace != 'elsewhere'`).Data); len(r.Rows) != 0 {
			t.Fatalf("another project's KV table holds %s", rowsJSON(r.Rows))
		}
		// One resource of a database: 404. (Reads in one transaction, as
		// GET /tables/{name} and statements that all read make.)
		fails(t, e.do(t, req{method: "GET", path: "/api/v1/tables/secrets", token: tok}), apierr.CodeNotFound)
		a := e.do(t, req{method: "POST", path: "/api/v1/sql", token: tok, body: `{"statements":[{"query":"SELECT 1"},{"query":"SELECT count(*) FROM sqlite_schema"}]}`})
		if res := decodeResult(t, ok[json.RawMessage](t, a, http.StatusOK)); len(res.Results) != 2 {
			t.Fatalf("read statements: %s", a.Data)
		}
	}
	t.Run("a project never written", func(t *testing.T) {
		c := e.token(t, "carol", "proj-c", "member")
		e.unchanged(t, "proj-c's reads", func() { reads(t, c) }, "proj-a")
	})
	t.Run("a failed write leaves no database", func(t *testing.T) {
		// A refused write leaves no trace, not even an empty database.
		d := e.token(t, "dan", "proj-d", "member")
		e.unchanged(t, "proj-d's failed write", func() {
			fails(t, e.sql(t, "", d, `INSERT INTO nowhere VALUES (1)`), apierr.CodeSQL)
		}, "proj-a")
		e.unchanged(t, "proj-d's delete of a missing key", func() {
			fails(t, e.do(t, req{method: "DELETE", path: "/api/v1/kv/secret", token: d}), apierr.CodeNotFound)
		}, "proj-a")
	})

	t.Run("another project sees nothing", func(t *testing.T) {
		// proj-b has a database of its own, with one key.
		strict[flaredb.KVPair](t, e.do(t, req{method: "PUT", path: "/api/v1/kv/b-only", token: b, body: `{"value":"b","namespace":"elsewhere"}`}), http.StatusOK)
		e.unchanged(t, "proj-b's reads", func() {
			reads(t, b)
			fails(t, e.do(t, req{method: "DELETE", path: "/api/v1/kv/secret", token: b}), apierr.CodeNotFound)
		}, "proj-a", "proj-b")
		// proj-b's own table of the same name is its own.
		ok[json.RawMessage](t, e.sql(t, "", b, `CREATE TABLE secrets (id INTEGER PRIMARY KEY, v TEXT)`), http.StatusOK)
		ok[json.RawMessage](t, e.sql(t, "", b, `INSERT INTO secrets (v) VALUES ('b-secret')`), http.StatusOK)
		strict[flaredb.KVPair](t, e.do(t, req{method: "PUT", path: "/api/v1/kv/secret?project_id=proj-b", token: b, body: `{"value":"b-kv"}`}), http.StatusOK)
		if r := checkQuery(t, e.sql(t, "", b, `SELECT v FROM secrets`).Data); rowsJSON(r.Rows) != `[["b-secret"]]` {
			t.Fatalf("proj-b reads %s", rowsJSON(r.Rows))
		}
		if r := checkQuery(t, e.sql(t, "", a, `SELECT v FROM secrets`).Data); rowsJSON(r.Rows) != `[["a-secret"]]` {
			t.Fatalf("proj-a reads %s after proj-b's writes", rowsJSON(r.Rows))
		}
		if got := strict[flaredb.KVPair](t, e.do(t, req{method: "GET", path: "/api/v1/kv/secret", token: a}), http.StatusOK); got.Value != "a-kv" {
			t.Fatalf("proj-a's key after proj-b's put: %+v", got)
		}
	})

	t.Run("naming another project", func(t *testing.T) {
		e.unchanged(t, "proj-b's token naming proj-a", func() {
			// Reads of one resource: 404, as a missing one.
			fails(t, e.do(t, req{method: "GET", path: "/api/v1/kv/secret?project_id=proj-a", token: b}), apierr.CodeNotFound)
			fails(t, e.do(t, req{method: "GET", path: "/api/v1/kv/nothing?project_id=proj-a", token: b}), apierr.CodeNotFound)
			fails(t, e.do(t, req{method: "GET", path: "/api/v1/tables/secrets?project_id=proj-a", token: b}), apierr.CodeNotFound)
			// Writes and lists: 403.
			for _, r := range []req{
				{method: "PUT", path: "/api/v1/kv/secret?project_id=proj-a", body: `{"value":"stolen"}`},
				{method: "DELETE", path: "/api/v1/kv/secret?project_id=proj-a"},
				{method: "GET", path: "/api/v1/scan?project_id=proj-a"},
				{method: "GET", path: "/api/v1/tables?project_id=proj-a"},
				{method: "POST", path: "/api/v1/sql?project_id=proj-a", body: `{"query":"SELECT * FROM secrets"}`},
				{method: "POST", path: "/api/v1/sql?project_id=proj-a", body: `{"query":"DELETE FROM secrets"}`},
				{method: "POST", path: "/api/v1/sql?project_id=proj-a", body: `{"query":"SELECT 1","consistency":"stale"}`},
				{method: "POST", path: "/api/v1/sql?project_id=proj-a", body: `{"statements":[{"query":"SELECT * FROM secrets"}]}`},
			} {
				r.token = b
				fails(t, e.do(t, r), apierr.CodeForbidden)
			}
			// Nor the platform's database, which only system callers use: an
			// empty project_id is the token's own project.
			if ans := e.do(t, req{method: "POST", path: "/api/v1/sql?project_id=", token: b, body: `{"query":"SELECT * FROM platform_only"}`}); !ans.Is(apierr.CodeSQL) || !strings.Contains(ans.Err.Message, "no such table: platform_only") {
				t.Fatalf("proj-b's SELECT of the platform's table: %s", ans.Raw)
			}
			// The cluster is the platform's.
			fails(t, e.do(t, req{method: "GET", path: "/api/v1/cluster", token: b}), apierr.CodeForbidden)
			fails(t, e.do(t, req{method: "POST", path: "/api/v1/cluster/members", token: b, body: `{"id":"x","raft_addr":"127.0.0.1:1"}`}), apierr.CodeForbidden)
			fails(t, e.do(t, req{method: "DELETE", path: "/api/v1/cluster/members/flaredb-1", token: b}), apierr.CodeForbidden)
		}, "proj-a", "proj-b")
	})

	t.Run("viewer", func(t *testing.T) {
		if r := checkQuery(t, ok[json.RawMessage](t, e.sql(t, "", viewer, `SELECT v FROM secrets`), http.StatusOK)); rowsJSON(r.Rows) != `[["a-secret"]]` {
			t.Fatalf("viewer reads %s", rowsJSON(r.Rows))
		}
		ok[json.RawMessage](t, e.sql(t, "proj-a", viewer, `SELECT count(*) FROM _flaredb_kv`), http.StatusOK)
		ok[json.RawMessage](t, e.do(t, req{method: "POST", path: "/api/v1/sql", token: viewer, body: `{"statements":[{"query":"SELECT 1"},{"query":"SELECT v FROM secrets"}]}`}), http.StatusOK)
		if got := strict[flaredb.KVPair](t, e.do(t, req{method: "GET", path: "/api/v1/kv/secret", token: viewer}), http.StatusOK); got.Value != "a-kv" {
			t.Fatalf("viewer's GET: %+v", got)
		}
		strict[flaredb.ScanPage](t, e.do(t, req{method: "GET", path: "/api/v1/scan", token: viewer}), http.StatusOK)
		strict[flaredb.TableList](t, e.do(t, req{method: "GET", path: "/api/v1/tables", token: viewer}), http.StatusOK)
		strict[flaredb.TableInfo](t, e.do(t, req{method: "GET", path: "/api/v1/tables/secrets", token: viewer}), http.StatusOK)
		e.unchanged(t, "a viewer's writes", func() {
			for _, r := range []req{
				{method: "POST", path: "/api/v1/sql", body: `{"query":"INSERT INTO secrets (v) VALUES ('viewer')"}`},
				{method: "POST", path: "/api/v1/sql", body: `{"query":"UPDATE secrets SET v = 'x' RETURNING v"}`},
				{method: "POST", path: "/api/v1/sql", body: `{"query":"CREATE TABLE mine (x)"}`},
				{method: "POST", path: "/api/v1/sql", body: `{"query":"DROP TABLE secrets"}`},
				{method: "POST", path: "/api/v1/sql", body: `{"query":"PRAGMA user_version = 3"}`},
				{method: "POST", path: "/api/v1/sql", body: `{"statements":[{"query":"SELECT 1"},{"query":"DELETE FROM secrets"}]}`},
				{method: "POST", path: "/api/v1/sql", body: `{"query":"WITH x AS (SELECT 1) DELETE FROM secrets"}`},
				{method: "PUT", path: "/api/v1/kv/secret", body: `{"value":"viewer"}`},
				{method: "DELETE", path: "/api/v1/kv/secret"},
			} {
				r.token = viewer
				fails(t, e.do(t, r), apierr.CodeForbidden)
			}
		}, "proj-a")
	})

	t.Run("admin", func(t *testing.T) {
		// Without project_id: the platform database.
		list := strict[flaredb.TableList](t, e.do(t, req{method: "GET", path: "/api/v1/tables"}), http.StatusOK)
		if !slices.Equal(list.Tables, []flaredb.Table{{Name: "platform_only", Type: "table"}}) {
			t.Fatalf("the admin's platform tables: %+v", list.Tables)
		}
		fails(t, e.sql(t, "", "", `SELECT * FROM secrets`), apierr.CodeSQL)
		if got := strict[flaredb.KVPair](t, e.do(t, req{method: "GET", path: "/api/v1/kv/secret"}), http.StatusOK); got.Value != "platform-kv" {
			t.Fatalf("the platform's key: %+v", got)
		}
		fails(t, e.do(t, req{method: "GET", path: "/api/v1/kv/config:x?namespace=system"}), apierr.CodeNotFound)
		// With project_id: that project's.
		if r := e.query(t, "proj-a", `SELECT v FROM secrets`); rowsJSON(r.Rows) != `[["a-secret"]]` {
			t.Fatalf("admin in proj-a reads %s", rowsJSON(r.Rows))
		}
		if r := e.query(t, "proj-b", `SELECT v FROM secrets`); rowsJSON(r.Rows) != `[["b-secret"]]` {
			t.Fatalf("admin in proj-b reads %s", rowsJSON(r.Rows))
		}
		if got := strict[flaredb.KVPair](t, e.do(t, req{method: "GET", path: "/api/v1/kv/config:x?namespace=system&project_id=proj-a"}), http.StatusOK); got.Value != "a-sys" {
			t.Fatalf("admin's GET in proj-a: %+v", got)
		}
		list = strict[flaredb.TableList](t, e.do(t, req{method: "GET", path: "/api/v1/tables?project_id=proj-a"}), http.StatusOK)
		if !slices.Equal(list.Tables, []flaredb.Table{{Name: "secrets", Type: "table"}}) {
			t.Fatalf("admin lists proj-a's tables: %+v", list.Tables)
		}
		p := strict[flaredb.ScanPage](t, e.do(t, req{method: "GET", path: "/api/v1/scan?project_id=proj-a"}), http.StatusOK)
		if len(p.Items) != 1 || p.Items[0].Key != "secret" || p.Items[0].Value != "a-kv" {
			t.Fatalf("admin scans proj-a: %+v", p.Items)
		}
		// The admin writes there too, and proj-a's token sees it.
		e.exec(t, "proj-a", `INSERT INTO secrets (v) VALUES ('from-admin')`)
		if r := checkQuery(t, e.sql(t, "", a, `SELECT v FROM secrets ORDER BY id`).Data); rowsJSON(r.Rows) != `[["a-secret"],["from-admin"]]` {
			t.Fatalf("proj-a reads %s", rowsJSON(r.Rows))
		}
		// A project that was never written reads as an empty database.
		if got := string(e.do(t, req{method: "GET", path: "/api/v1/tables?project_id=proj-never"}).Data); got != `{"tables":[]}` {
			t.Fatalf("an unwritten project's tables: %s", got)
		}
		// The token's own project, named, is its own.
		strict[flaredb.KVPair](t, e.do(t, req{method: "GET", path: "/api/v1/kv/secret?project_id=proj-a", token: a}), http.StatusOK)
	})
}

// TestCluster checks GET /api/v1/cluster on the stack's group of one, and
// that membership changes are refused when malformed (a real change would
// break the group of one).
func TestCluster(t *testing.T) {
	e := startFDB(t)
	e.put(t, "", "", "k", "v")
	a := e.do(t, req{method: "GET", path: "/api/v1/cluster"})
	testutil.ExactKeys(t, "cluster", a.Data, "node_id", "role", "is_leader", "leader_id", "leader_http", "term", "applied_index", "commit_index", "members")
	c := strict[flaredb.ClusterStatus](t, a, http.StatusOK)
	addr := e.st.FlareDB.HTTPAddr()
	if c.NodeID == "" || c.Role != "leader" || !c.IsLeader || c.LeaderID != c.NodeID || c.LeaderHTTP != addr || c.Term == 0 || c.AppliedIndex == 0 || c.CommitIndex < c.AppliedIndex {
		t.Fatalf("cluster: %+v", c)
	}
	if len(c.Members) != 1 || c.Members[0] != (flaredb.Member{ID: c.NodeID, RaftAddr: e.st.FlareDB.RaftAddr(), HTTPAddr: addr}) {
		t.Fatalf("members: %+v (raft %s, http %s)", c.Members, e.st.FlareDB.RaftAddr(), addr)
	}
	e.unchanged(t, "bad membership changes", func() {
		for _, body := range []string{`{}`, `{"id":"","raft_addr":"127.0.0.1:1"}`, `{"id":"n2"}`, `{"id":"n2","raft_addr":"nope"}`,
			`{"id":"` + strings.Repeat("n", 129) + `","raft_addr":"127.0.0.1:1"}`, `{"id":"n2","raft_addr":"127.0.0.1:1","x":1}`} {
			fails(t, e.do(t, req{method: "POST", path: "/api/v1/cluster/members", body: body}), apierr.CodeValidation)
		}
		fails(t, e.do(t, req{method: "POST", path: "/api/v1/cluster/members", body: `{"id":`}), apierr.CodeInvalidJSON)
		fails(t, e.do(t, req{method: "DELETE", path: "/api/v1/cluster/members/nobody"}), apierr.CodeNotFound)
	})
	// Health, without a token.
	resp, err := http.Get(e.base + "/health")
	if err != nil {
		t.Fatal(err)
	}
	h := testutil.CheckEnvelope(t, "GET /health", resp, envelopeRules())
	resp.Body.Close()
	if h.Status != http.StatusOK || !strings.Contains(string(h.Data), `"status":"ok"`) {
		t.Fatalf("health: %s", h.Raw)
	}
}
