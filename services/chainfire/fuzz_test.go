package chainfire_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/testutil"
	"github.com/photoncloud/photon/services/chainfire"
)

// The fuzz targets below drive one real node per target over real HTTP, as
// any client can: whatever arrives, the answer is the seed's envelope with a
// code from apierr's table and its status, never a 5xx other than 503, and a
// request answered with an error changes nothing.

// maxFuzzURL keeps requests well under net/http's header limit, whose plain
// text 431 is the HTTP server's answer, not ChainFire's.
const maxFuzzURL = 64 << 10

// fuzzClient is shared by every input of a target. It never follows a
// redirect: a 3xx is an answer to check, not to chase.
func fuzzClient() *http.Client {
	return &http.Client{
		Timeout:       20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// tableCodes are the codes ChainFire may answer: apierr's table but
// RATE_LIMITED, which it never sends.
var tableCodes = func() map[apierr.Code]bool {
	codes := testutil.ErrorCodes()
	delete(codes, apierr.CodeRateLimited)
	return codes
}()

// checkEnvelope reads resp and fails unless it is the seed's envelope with
// a code of tableCodes, and never a 5xx but 503 (no leader).
func checkEnvelope(t *testing.T, what string, resp *http.Response) testutil.Answer {
	t.Helper()
	return testutil.CheckEnvelope(t, what, resp, testutil.EnvelopeRules{Codes: tableCodes, Allow5xx: []int{http.StatusServiceUnavailable}})
}

// escapeWire percent-encodes the bytes that cannot travel in a request line
// (space, controls): the Go client refuses controls and the server answers a
// raw space with a plain-text 400 of its own. "%XX" of such a byte parses
// to the same value as the byte itself, so the input keeps its meaning.
func escapeWire(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f {
			b.WriteString("%" + strings.ToUpper(hex2(c)))
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// validHeaderValue is what the Go client accepts as a header value.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// badQueryField is the field a 400 for query string raw must name when it
// does not parse ("query") or holds a parameter the route does not know
// (the first such name), else "".
func badQueryField(raw string, known ...string) string {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return "query"
	}
	var unknown []string
	for k := range q {
		if !slices.Contains(known, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return ""
	}
	sort.Strings(unknown)
	return unknown[0]
}

// viaJSON is s as a JSON string carries it: invalid UTF-8 becomes U+FFFD.
func viaJSON(s string) string {
	b, _ := json.Marshal(s)
	var out string
	_ = json.Unmarshal(b, &out)
	return out
}

// storeRevision is the store's current revision.
func storeRevision(t *testing.T, cli *clientv3.Client) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, "\x00", clientv3.WithFromKey(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatalf("store revision: %v", err)
	}
	return resp.Header.Revision
}

// onlyExpiries reports whether every change in revisions (from, to] is the
// deletion of a key whose lease has ended: keys put with ttl_seconds by
// earlier inputs expire while later inputs run.
func onlyExpiries(t *testing.T, cli *clientv3.Client, from, to int64) (bool, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	wch := cli.Watch(ctx, "\x00", clientv3.WithFromKey(), clientv3.WithRev(from+1), clientv3.WithPrevKV())
	for resp := range wch {
		if err := resp.Err(); err != nil {
			t.Fatalf("reading changes after revision %d: %v", from, err)
		}
		done := false
		for _, ev := range resp.Events {
			if ev.Kv.ModRevision > to {
				done = true
				break
			}
			if ev.Type != clientv3.EventTypeDelete || ev.PrevKv == nil || ev.PrevKv.Lease == 0 {
				return false, ev.Type.String() + " " + strconv.Quote(string(ev.Kv.Key)) + " at revision " + strconv.FormatInt(ev.Kv.ModRevision, 10)
			}
			ttl, err := cli.TimeToLive(ctx, clientv3.LeaseID(ev.PrevKv.Lease))
			if err != nil {
				t.Fatalf("lease %x: %v", ev.PrevKv.Lease, err)
			}
			if ttl.TTL != -1 {
				return false, "delete of " + strconv.Quote(string(ev.Kv.Key)) + " whose lease is still alive"
			}
			if ev.Kv.ModRevision == to {
				done = true
			}
		}
		if done {
			return true, ""
		}
	}
	t.Fatalf("changes after revision %d: watch ended: %v", from, ctx.Err())
	return false, ""
}

var fuzzMethods = []string{"GET", "POST", "DELETE", "PUT"}

// fuzzMethod maps any string to one of the methods a client would send.
func fuzzMethod(s string) string {
	for _, m := range fuzzMethods {
		if strings.EqualFold(s, m) {
			return m
		}
	}
	return fuzzMethods[len(s)%len(fuzzMethods)]
}

// FuzzKVRequest sends any method, key path, Content-Type and body to
// /api/v1/kv/…, the routes that read, put and delete keys.
func FuzzKVRequest(f *testing.F) {
	long := strings.Repeat("k", chainfire.MaxKeyBytes+1)
	full := strings.Repeat("k", chainfire.MaxKeyBytes)
	const js = "application/json"
	seeds := []struct{ method, suffix, ct, body string }{
		{"GET", "user:123", "", ""},
		{"GET", "keep", "", ""},
		{"GET", "keep?consistency=serializable", "", ""},
		{"GET", "keep?consistency=eventual", "", ""},
		{"GET", "keep?consistency=linearizable&x=1", "", ""},
		{"GET", "", "", ""},
		{"GET", "a%2Fb%2Fc", "", ""},
		{"GET", "%ff", "", ""},
		{"GET", "%zz", "", ""},
		{"GET", long, "", ""},
		{"POST", "user:123/put", js, `{"value":"v"}`},
		{"POST", "a/b/c/put", js, `{"value":"v"}`},
		{"POST", "a%2Fb%2Fc/put", js, `{"value":"v"}`},
		{"POST", "x:/y:/z/put", js, `{"value":"v"}`},
		{"POST", "ключ/put", "application/json; charset=utf-8", `{"value":"значение"}`},
		{"POST", "%E2%9C%93/put", js, `{"value":"✓"}`},
		{"POST", "sp%20ace/put", js, `{"value":"v"}`},
		{"POST", "per%25cent/put", js, `{"value":"v"}`},
		{"POST", "nul%00byte/put", js, `{"value":"v"}`},
		{"POST", full + "/put", js, `{"value":"v"}`},
		{"POST", long + "/put", js, `{"value":"v"}`},
		{"POST", "keep/put", js, `{"value":"v","prev_revision":0}`},
		{"POST", "keep/put", js, `{"value":"v","prev_revision":1}`},
		{"POST", "keep/put", js, `{"value":"v","prev_revision":-1}`},
		{"POST", "keep/put", js, `{"value":"v","prev_revision":9223372036854775807}`},
		{"POST", "ttl/put", js, `{"value":"v","ttl_seconds":1}`},
		{"POST", "ttl/put", js, `{"value":"v","ttl_seconds":0}`},
		{"POST", "ttl/put", js, `{"value":"v","ttl_seconds":9000000001}`},
		{"POST", "keep/put", js, `{"value":"v","ttl_seconds":5,"prev_revision":0}`},
		{"POST", "keep/put", js, `{"value":"v","ttl_seconds":1.5}`},
		{"POST", "keep/put", js, `{"value":"v","ttl_seconds":1e400}`},
		{"POST", "keep/put", js, `{"value":`},
		{"POST", "keep/put", js, `["x"]`},
		{"POST", "keep/put", js, `null`},
		{"POST", "keep/put", js, `{"value":"x"}{}`},
		{"POST", "keep/put", js, `{"value":"x","valeu":"y"}`},
		{"POST", "keep/put", js, `{"":1}`},
		{"POST", "keep/put", js, `{"value":5}`},
		{"POST", "keep/put", js, `{"value":"x","prev_revision":"1"}`},
		{"POST", "keep/put", js, `{}`},
		{"POST", "keep/put", js, `{"value":null}`},
		{"POST", "keep/put", "", ""},
		{"POST", "keep/put", "", `{"value":"no content type"}`},
		{"POST", "keep/put", "application/x-www-form-urlencoded", `value=x`},
		{"POST", "keep/put", "text/plain", `{"value":"x"}`},
		{"POST", "keep/put", ";;;", `{"value":"x"}`},
		{"POST", "keep/put?x=1", js, `{"value":"x"}`},
		{"POST", "keep/put", js, "\xff\xfe"},
		{"POST", "keep/delete", "", ""},
		{"POST", "keep/delete", js, `{"prev_revision":1}`},
		{"POST", "keep/delete", js, `{"prev_revision":0}`},
		{"POST", "keep/delete", js, `{"value":"x"}`},
		{"POST", "absent/delete", "", ""},
		{"POST", "put", js, `{"value":"x"}`},
		{"POST", "delete", "", ""},
		{"POST", "", js, `{"value":"x"}`},
		{"POST", "keep/replace", js, `{"value":"x"}`},
		{"POST", "a//b/put", js, `{"value":"x"}`},
		{"POST", "a/../b/put", js, `{"value":"x"}`},
		{"PUT", "keep", js, `{"value":"x"}`},
		{"DELETE", "keep", "", ""},
		{"patch", "keep", "", ""},
	}
	for _, s := range seeds {
		f.Add(s.method, s.suffix, s.ct, []byte(s.body))
	}

	s := testutil.StartChainFire(f)
	base := "http://" + s.HTTPAddr() + "/api/v1/kv/"
	cli := s.Client()
	hc := fuzzClient()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "keep", "original"); err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, method, suffix, ct string, body []byte) {
		if len(suffix) > maxFuzzURL || !validHeaderValue(ct) {
			t.Skip("not something an HTTP client can send")
		}
		m := fuzzMethod(method)
		target := base + escapeWire(suffix)
		if _, err := url.Parse(target); err != nil {
			target = base + url.PathEscape(suffix)
		}
		req, err := http.NewRequest(m, target, bytes.NewReader(body))
		if err != nil {
			t.Fatalf("request %s %q: %v", m, target, err)
		}
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		what := m + " " + req.URL.RequestURI()

		before := storeRevision(t, cli)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		defer resp.Body.Close()
		a := checkEnvelope(t, what, resp)
		after := storeRevision(t, cli)

		if a.Err == nil {
			if a.Status != http.StatusOK {
				t.Fatalf("%s: success status %d, want 200", what, a.Status)
			}
			checkKVSuccess(t, hc, base, what, m, strings.TrimPrefix(req.URL.Path, "/api/v1/kv/"), a.Data, before, after)
			return
		}
		if after != before {
			if ok, change := onlyExpiries(t, cli, before, after); !ok {
				t.Fatalf("%s: answered %s, yet the store moved from revision %d to %d: %s", what, a, before, after, change)
			}
		}
	})
}

// checkKVSuccess checks a 200 answer to method on the key path (the path
// after /api/v1/kv/, unescaped as the server's ServeMux sees it): it is about
// the key the path names, and a put or delete took effect, as a read of the
// key (escaped as a client should) shows.
func checkKVSuccess(t *testing.T, hc *http.Client, base, what, method, path string, data json.RawMessage, before, after int64) {
	t.Helper()
	decode := func(v any) {
		t.Helper()
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			t.Fatalf("%s: data %s: %v", what, data, err)
		}
	}
	read := func(key string) testutil.Answer {
		t.Helper()
		resp, err := hc.Get(base + escape(key))
		if err != nil {
			t.Fatalf("%s: reading %q back: %v", what, key, err)
		}
		defer resp.Body.Close()
		return checkEnvelope(t, what+": reading "+strconv.Quote(key)+" back", resp)
	}
	if method == "GET" {
		var kv chainfire.KeyValue
		decode(&kv)
		if kv.Key != path || kv.ModRevision < 1 || kv.CreateRevision < 1 || kv.Version < 1 {
			t.Fatalf("%s: read %q, got %s", what, path, data)
		}
		return
	}
	if method != "POST" {
		t.Fatalf("%s: %s answered 200: %s", what, method, data)
	}
	if after <= before {
		t.Fatalf("%s: answered 200 but the store stayed at revision %d: %s", what, before, data)
	}
	switch {
	case strings.HasSuffix(path, "/put"):
		var put chainfire.PutResult
		decode(&put)
		if want := strings.TrimSuffix(path, "/put"); put.Key != want {
			t.Fatalf("%s: put key %q, the path names %q", what, put.Key, want)
		}
		if put.ModRevision <= before || put.ModRevision > after {
			t.Fatalf("%s: put at revision %d, outside (%d, %d]", what, put.ModRevision, before, after)
		}
		got := read(put.Key)
		if got.Err != nil && got.Err.Code == apierr.CodeNotFound && put.TTLSeconds > 0 {
			return // already expired
		}
		var kv chainfire.KeyValue
		if got.Err != nil || json.Unmarshal(got.Data, &kv) != nil || kv != put.KeyValue {
			t.Fatalf("%s: put %s, but reading it back answered %s", what, data, got)
		}
	case strings.HasSuffix(path, "/delete"):
		var del chainfire.DeleteResult
		decode(&del)
		if want := strings.TrimSuffix(path, "/delete"); del.Key != want || !del.Deleted {
			t.Fatalf("%s: delete of %q answered %s", what, want, data)
		}
		if got := read(del.Key); got.Err == nil || got.Err.Code != apierr.CodeNotFound {
			t.Fatalf("%s: deleted %q, but reading it back answered %s", what, del.Key, got)
		}
	default:
		t.Fatalf("%s: a POST that is neither put nor delete answered 200: %s", what, data)
	}
}

// fuzzKeys are stored before FuzzListQuery and FuzzWatchQuery run, so lists
// have pages and watches from a revision have history to replay.
func fuzzKeys(t testing.TB, cli *clientv3.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	keys := []string{"a", "a/b", "a/b/c", "a:c", "a%2Fb", "ab", "b", "ключ", "✓", "x\x00y", "\x00", "\u00ff\u00ff", "sp ace"}
	for i := 0; i < 30; i++ {
		keys = append(keys, "page/"+strconv.Itoa(100+i))
	}
	for _, k := range keys {
		if _, err := cli.Put(ctx, k, "v-"+k); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cli.Delete(ctx, "ab"); err != nil {
		t.Fatal(err)
	}
}

// FuzzListQuery sends any query string to GET /api/v1/kv.
func FuzzListQuery(f *testing.F) {
	tok := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	long := strings.Repeat("k", chainfire.MaxKeyBytes+1)
	for _, s := range []string{
		"", "prefix=a", "prefix=a%2F", "prefix=a/", "prefix=a:", "prefix=%D0%BA", "prefix=page/&limit=7",
		"prefix=page/&limit=7&page_token=" + tok("page/106\x00"), "page_token=" + tok("page/1"),
		"prefix=a&page_token=Yg", "prefix=a&page_token=!!!", "prefix=&page_token=" + tok("\x00"),
		"prefix=" + long, "prefix=%ff", "prefix=%00", "prefix=%zz", "limit=0", "limit=-3", "limit=ten", "limit=1001",
		"limit=1000", "limit=%2B5", "limit=1&limit=2", "limit=99999999999999999999", "consistency=serializable",
		"consistency=linearizable&prefix=a", "consistency=eventual", "consistency=", "prefx=a", "a=%zz",
		"prefix=a;limit=1", "=", "&&&", "%", "\x92", "%92=1", "prefix=a+b", "prefix=sp ace", "prefix=x\x00y", "prefix=a#frag", "#%",
	} {
		f.Add(s)
	}

	s := testutil.StartChainFire(f)
	fuzzKeys(f, s.Client())
	hc := fuzzClient()

	f.Fuzz(func(t *testing.T, raw string) {
		wire := escapeWire(raw)
		if len(wire) > maxFuzzURL {
			t.Skip("too long for a request line")
		}
		u := &url.URL{Scheme: "http", Host: s.HTTPAddr(), Path: "/api/v1/kv", RawQuery: wire}
		req, err := http.NewRequest("GET", "http://"+s.HTTPAddr(), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.URL = u // parsing u.String() would take a '#' in the query for a fragment
		what := "GET " + u.RequestURI()
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		defer resp.Body.Close()
		a := checkEnvelope(t, what, resp)

		if field := badQueryField(wire, "prefix", "limit", "page_token", "consistency"); field != "" {
			if a.Err == nil || a.Status != http.StatusBadRequest || a.Err.Code != apierr.CodeValidation || a.Err.Details["field"] != viaJSON(field) {
				t.Fatalf("%s: a bad query (%s) answered %s, want 400 VALIDATION_ERROR on %q", what, field, a, field)
			}
			return
		}
		q, _ := url.ParseQuery(wire)
		if a.Err != nil {
			if a.Err.Code != apierr.CodeValidation && a.Err.Code != apierr.CodeUnavailable {
				t.Fatalf("%s: a list answered %s", what, a)
			}
			return
		}
		if a.Status != http.StatusOK {
			t.Fatalf("%s: status %d", what, a.Status)
		}
		var l struct {
			Items         []chainfire.KeyValue `json:"items"`
			NextPageToken string               `json:"next_page_token"`
			Revision      int64                `json:"revision"`
		}
		if err := json.Unmarshal(a.Data, &l); err != nil {
			t.Fatalf("%s: data is not a list: %v: %s", what, err, a.Data)
		}
		if l.Items == nil || l.Revision < 1 {
			t.Fatalf("%s: list without items or revision: %s", what, a.Data)
		}
		prefix := q.Get("prefix")
		limit := chainfire.DefListLimit
		if s := q.Get("limit"); s != "" {
			if limit, err = strconv.Atoi(s); err != nil {
				t.Fatalf("%s: limit %q accepted: %s", what, s, a.Data)
			}
		}
		if len(l.Items) > limit {
			t.Fatalf("%s: %d items over limit %d", what, len(l.Items), limit)
		}
		start := ""
		if tok := q.Get("page_token"); tok != "" {
			b, err := base64.RawURLEncoding.DecodeString(tok)
			if err != nil {
				t.Fatalf("%s: page_token %q accepted: %v", what, tok, err)
			}
			start = string(b)
		}
		for i, it := range l.Items {
			if !strings.HasPrefix(it.Key, prefix) {
				t.Fatalf("%s: item %q lacks prefix %q", what, it.Key, prefix)
			}
			if it.Key < start {
				t.Fatalf("%s: item %q before the page start %q", what, it.Key, start)
			}
			if i > 0 && l.Items[i-1].Key >= it.Key {
				t.Fatalf("%s: items not sorted by key: %q then %q", what, l.Items[i-1].Key, it.Key)
			}
		}
		if l.NextPageToken != "" && len(l.Items) != limit {
			t.Fatalf("%s: a next page after a short page of %d (limit %d)", what, len(l.Items), limit)
		}
	})
}

// FuzzWatchQuery sends any query string to GET /api/v1/watch with a short
// client deadline: the answer is a stream or an error envelope, in time.
func FuzzWatchQuery(f *testing.F) {
	for _, s := range []string{
		"", "prefix=a", "prefix=a%2F", "prefix=%D0%BA", "key=a", "key=a%2Fb", "key=", "key=%ff", "prefix=%ff",
		"key=a&prefix=a", "start_revision=1", "prefix=a&start_revision=1", "key=a%2Fb&start_revision=2",
		"start_revision=0", "start_revision=-1", "start_revision=x", "start_revision=9223372036854775807",
		"start_revision=99999999999999999999", "start_revision=", "prefix=" + strings.Repeat("k", chainfire.MaxKeyBytes+1),
		"key=" + strings.Repeat("k", chainfire.MaxKeyBytes+1), "prefx=a", "a=%zz", "prefix=a;key=b", "%", "=",
		"prefix=x\x00y&start_revision=1", "key=%00", "key=a#%", "\x92", "prefix=%92",
	} {
		f.Add(s)
	}

	s := testutil.StartChainFire(f)
	fuzzKeys(f, s.Client())
	hc := fuzzClient()
	const deadline = 300 * time.Millisecond

	f.Fuzz(func(t *testing.T, raw string) {
		wire := escapeWire(raw)
		if len(wire) > maxFuzzURL {
			t.Skip("too long for a request line")
		}
		u := &url.URL{Scheme: "http", Host: s.HTTPAddr(), Path: "/api/v1/watch", RawQuery: wire}
		what := "GET " + u.RequestURI()
		watch := func(d time.Duration) (*http.Response, context.CancelFunc, error) {
			ctx, cancel := context.WithTimeout(context.Background(), d)
			req, err := http.NewRequestWithContext(ctx, "GET", "http://"+s.HTTPAddr(), nil)
			if err != nil {
				t.Fatal(err)
			}
			req.URL = u // as in FuzzListQuery
			resp, err := hc.Do(req)
			if err != nil {
				cancel()
			}
			return resp, cancel, err
		}
		began, limit := time.Now(), deadline
		resp, cancel, err := watch(limit)
		if errors.Is(err, context.DeadlineExceeded) {
			// No headers in 300 ms may be a loaded machine: give it 5 s
			// before calling it a hang.
			began, limit = time.Now(), 5*time.Second
			resp, cancel, err = watch(limit)
		}
		if err != nil {
			t.Fatalf("%s: no answer: %v", what, err)
		}
		defer cancel()
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			a := checkEnvelope(t, what, resp)
			if field := badQueryField(wire, "prefix", "key", "start_revision"); field != "" {
				if a.Err == nil || a.Status != http.StatusBadRequest || a.Err.Code != apierr.CodeValidation || a.Err.Details["field"] != viaJSON(field) {
					t.Fatalf("%s: a bad query (%s) answered %s, want 400 VALIDATION_ERROR on %q", what, field, a, field)
				}
				return
			}
			if a.Err.Code != apierr.CodeValidation && a.Err.Code != apierr.CodeUnavailable {
				t.Fatalf("%s: a watch answered %s", what, a)
			}
			return
		}
		if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Fatalf("%s: 200 with Content-Type %q", what, ct)
		}
		checkStream(t, what, wire, resp.Body)
		if took := time.Since(began); took > limit+2*time.Second {
			t.Fatalf("%s: the stream outlived its client's deadline: %v", what, took)
		}
	})
}

// checkStream reads an SSE stream until the client's deadline ends it: each
// event is well formed and matches the watch's filter.
func checkStream(t *testing.T, what, wire string, body io.Reader) {
	t.Helper()
	if field := badQueryField(wire, "prefix", "key", "start_revision"); field != "" {
		t.Fatalf("%s: a bad query (%s) was answered with a stream", what, field)
	}
	q, _ := url.ParseQuery(wire)
	var err error
	match := func(k string) bool { return strings.HasPrefix(k, q.Get("prefix")) }
	if q.Has("key") {
		match = func(k string) bool { return k == q.Get("key") }
	}
	var from int64
	if s := q.Get("start_revision"); s != "" {
		if from, err = strconv.ParseInt(s, 10, 64); err != nil || from < 1 {
			t.Fatalf("%s: start_revision %q was accepted", what, s)
		}
	}
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	first := true
	var id, event string
	for sc.Scan() {
		line := sc.Text()
		if first {
			if line != ": watching" {
				t.Fatalf("%s: stream starts with %q", what, line)
			}
			first = false
			continue
		}
		switch {
		case line == "" || strings.HasPrefix(line, ":"):
			id, event = "", ""
		case strings.HasPrefix(line, "id: "):
			id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data := []byte(strings.TrimPrefix(line, "data: "))
			if event == "error" {
				var e testutil.ErrorObject
				if err := json.Unmarshal(data, &e); err != nil || !tableCodes[e.Code] || e.Message == "" {
					t.Fatalf("%s: error event %s", what, data)
				}
				continue
			}
			var ev chainfire.WatchEvent
			if err := json.Unmarshal(data, &ev); err != nil {
				t.Fatalf("%s: event data %s: %v", what, data, err)
			}
			if (event != "put" && event != "delete") || ev.Type != event || id != strconv.FormatInt(ev.ModRevision, 10) {
				t.Fatalf("%s: event %q id %q disagree with data %s", what, event, id, data)
			}
			if !match(ev.Key) {
				t.Fatalf("%s: event for key %q outside the watch", what, ev.Key)
			}
			if from > 0 && ev.ModRevision < from {
				t.Fatalf("%s: event at revision %d before start_revision %d", what, ev.ModRevision, from)
			}
		default:
			t.Fatalf("%s: stray stream line %q", what, line)
		}
	}
	if first {
		t.Fatalf("%s: a 200 stream without its first comment (%v)", what, sc.Err())
	}
}
