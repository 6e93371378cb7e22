package chainfire_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/photoncloud/photon/internal/testutil"
	"github.com/photoncloud/photon/services/chainfire"
)

// api is a tiny REST client of one node for tests.
type api struct {
	t    *testing.T
	base string
}

// reply is a decoded envelope.
type reply struct {
	Status int
	Header http.Header
	Data   json.RawMessage `json:"data"`
	Error  *struct {
		Code    string         `json:"code"`
		Message string         `json:"message"`
		Details map[string]any `json:"details"`
	} `json:"error"`
	Meta struct {
		RequestID string `json:"request_id"`
		Timestamp string `json:"timestamp"`
	} `json:"meta"`
}

func (a api) do(method, path, contentType string, body []byte) reply {
	a.t.Helper()
	req, err := http.NewRequest(method, a.base+path, bytes.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var r reply
	if err := json.Unmarshal(raw, &r); err != nil {
		a.t.Fatalf("%s %s: body is not an envelope: %v: %s", method, path, err, raw)
	}
	if r.Meta.RequestID == "" || r.Meta.Timestamp == "" {
		a.t.Fatalf("%s %s: envelope without meta: %s", method, path, raw)
	}
	r.Status, r.Header = resp.StatusCode, resp.Header
	return r
}

func (a api) json(method, path string, body any) reply {
	a.t.Helper()
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			a.t.Fatal(err)
		}
	}
	return a.do(method, path, "application/json", b)
}

func (a api) ok(r reply, want int, into any) {
	a.t.Helper()
	if r.Status != want || r.Error != nil {
		a.t.Fatalf("status %d, want %d; error %+v", r.Status, want, r.Error)
	}
	if into != nil {
		if err := json.Unmarshal(r.Data, into); err != nil {
			a.t.Fatalf("decode data: %v: %s", err, r.Data)
		}
	}
}

func newNode(t *testing.T) (*chainfire.Server, api) {
	t.Helper()
	s := testutil.StartChainFire(t)
	return s, api{t: t, base: "http://" + s.HTTPAddr()}
}

func TestKVRoundTrip(t *testing.T) {
	_, c := newNode(t)
	keys := []string{"user:123", "a/b/c", "sp ace", "per%cent", "ключ", "x:/y:/z"}
	for _, key := range keys {
		path := "/api/v1/kv/" + escape(key)
		var put chainfire.PutResult
		c.ok(c.json("POST", path+"/put", map[string]any{"value": "v-" + key}), 200, &put)
		if put.Key != key || put.Value != "v-"+key || !put.Created || put.Version != 1 || put.ModRevision == 0 || put.CreateRevision != put.ModRevision {
			t.Errorf("put %q = %+v", key, put)
		}
		var again chainfire.PutResult
		c.ok(c.json("POST", path+"/put", map[string]any{"value": "w-" + key}), 200, &again)
		if again.Created || again.Version != 2 || again.CreateRevision != put.CreateRevision || again.ModRevision <= put.ModRevision {
			t.Errorf("second put %q = %+v (first %+v)", key, again, put)
		}
		var got chainfire.KeyValue
		c.ok(c.json("GET", path, nil), 200, &got)
		if got.Key != key || got.Value != "w-"+key || got.ModRevision != again.ModRevision {
			t.Errorf("get %q = %+v", key, got)
		}
		c.ok(c.json("GET", path+"?consistency=serializable", nil), 200, &got)
	}
	var list chainfire.ListResult
	c.ok(c.json("GET", "/api/v1/kv?prefix="+escape("x:/"), nil), 200, &list)
	if len(list.Items) != 1 || list.Items[0].Key != "x:/y:/z" || list.NextPageToken != "" {
		t.Errorf("list x:/ = %+v", list)
	}
	var del chainfire.DeleteResult
	c.ok(c.json("POST", "/api/v1/kv/"+escape("a/b/c")+"/delete", nil), 200, &del)
	if !del.Deleted || del.PrevValue != "w-a/b/c" {
		t.Errorf("delete = %+v", del)
	}
	r := c.json("GET", "/api/v1/kv/"+escape("a/b/c"), nil)
	if r.Status != 404 || r.Error == nil || r.Error.Code != "NOT_FOUND" {
		t.Errorf("get after delete: %d %+v", r.Status, r.Error)
	}
	r = c.json("POST", "/api/v1/kv/"+escape("a/b/c")+"/delete", nil)
	if r.Status != 404 || r.Error.Code != "NOT_FOUND" {
		t.Errorf("second delete: %d %+v", r.Status, r.Error)
	}
}

// escape percent-encodes a key for a path, "/" included, as a client must
// for a key that holds "/" and should (but need not) for ":".
func escape(key string) string {
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		ch := key[i]
		if ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || strings.IndexByte("-._~:", ch) >= 0 {
			b.WriteByte(ch)
			continue
		}
		b.WriteString("%" + strings.ToUpper(hex2(ch)))
	}
	return b.String()
}

func hex2(b byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[b>>4], digits[b&15]})
}

func TestKeyWithSlashUnescaped(t *testing.T) {
	_, c := newNode(t)
	// A client that does not escape "/" still reaches the right key: the
	// verb is the last segment.
	c.ok(c.json("POST", "/api/v1/kv/dir/sub/key/put", map[string]any{"value": "1"}), 200, nil)
	var got chainfire.KeyValue
	c.ok(c.json("GET", "/api/v1/kv/dir%2Fsub%2Fkey", nil), 200, &got)
	if got.Key != "dir/sub/key" {
		t.Errorf("key = %q", got.Key)
	}
}

func TestCompareAndSwap(t *testing.T) {
	_, c := newNode(t)
	var first chainfire.PutResult
	c.ok(c.json("POST", "/api/v1/kv/cas/put", map[string]any{"value": "a", "prev_revision": 0}), 200, &first)
	r := c.json("POST", "/api/v1/kv/cas/put", map[string]any{"value": "b", "prev_revision": 0})
	if r.Status != 409 || r.Error.Code != "CONFLICT" || r.Error.Details["current_revision"] != float64(first.ModRevision) {
		t.Fatalf("create-only put on an existing key: %d %+v", r.Status, r.Error)
	}
	r = c.json("POST", "/api/v1/kv/cas/put", map[string]any{"value": "b", "prev_revision": first.ModRevision - 1})
	if r.Status != 409 || r.Error.Code != "CONFLICT" {
		t.Fatalf("stale CAS: %d %+v", r.Status, r.Error)
	}
	var got chainfire.KeyValue
	c.ok(c.json("GET", "/api/v1/kv/cas", nil), 200, &got)
	if got.Value != "a" {
		t.Fatalf("a failed CAS changed the value to %q", got.Value)
	}
	var second chainfire.PutResult
	c.ok(c.json("POST", "/api/v1/kv/cas/put", map[string]any{"value": "b", "prev_revision": first.ModRevision}), 200, &second)
	r = c.json("POST", "/api/v1/kv/cas/delete", map[string]any{"prev_revision": first.ModRevision})
	if r.Status != 409 || r.Error.Code != "CONFLICT" {
		t.Fatalf("stale CAS delete: %d %+v", r.Status, r.Error)
	}
	c.ok(c.json("POST", "/api/v1/kv/cas/delete", map[string]any{"prev_revision": second.ModRevision}), 200, nil)
}

func TestTTL(t *testing.T) {
	_, c := newNode(t)
	var put chainfire.PutResult
	c.ok(c.json("POST", "/api/v1/kv/ephemeral/put", map[string]any{"value": "x", "ttl_seconds": 1}), 200, &put)
	if put.LeaseID == 0 || put.TTLSeconds != 1 {
		t.Fatalf("put with ttl = %+v", put)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := c.json("GET", "/api/v1/kv/ephemeral", nil)
		if r.Status == 404 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("key with ttl_seconds=1 still there after 10s: %d", r.Status)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestListPages(t *testing.T) {
	_, c := newNode(t)
	for i := 0; i < 25; i++ {
		c.ok(c.json("POST", "/api/v1/kv/page:"+string(rune('a'+i))+"/put", map[string]any{"value": "v"}), 200, nil)
	}
	c.ok(c.json("POST", "/api/v1/kv/pagf/put", map[string]any{"value": "outside"}), 200, nil)
	var keys []string
	token := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("too many pages")
		}
		var l chainfire.ListResult
		c.ok(c.json("GET", "/api/v1/kv?prefix=page:&limit=7&page_token="+token, nil), 200, &l)
		for _, it := range l.Items {
			keys = append(keys, it.Key)
		}
		if l.NextPageToken == "" {
			break
		}
		token = l.NextPageToken
	}
	if len(keys) != 25 {
		t.Fatalf("listed %d keys, want 25: %v", len(keys), keys)
	}
	for i, k := range keys {
		if k != "page:"+string(rune('a'+i)) {
			t.Fatalf("key %d = %q: not sorted or a gap", i, k)
		}
	}
}

// TestBadInput sends every malformed request a user can make; each gets
// the error envelope with the right code and changes nothing.
func TestBadInput(t *testing.T) {
	_, c := newNode(t)
	c.ok(c.json("POST", "/api/v1/kv/keep/put", map[string]any{"value": "original"}), 200, nil)
	long := strings.Repeat("k", chainfire.MaxKeyBytes+1)
	big := `{"value":"` + strings.Repeat("x", 1<<20) + `"}`
	tests := []struct {
		name, method, path, ctype, body string
		status                          int
		code, field                     string
	}{
		{"empty key get", "GET", "/api/v1/kv/", "", "", 400, "VALIDATION_ERROR", "key"},
		{"empty key put", "POST", "/api/v1/kv/put", "application/json", `{"value":"x"}`, 400, "VALIDATION_ERROR", "key"},
		{"empty key delete", "POST", "/api/v1/kv/delete", "", "", 400, "VALIDATION_ERROR", "key"},
		{"key over 1 KiB", "POST", "/api/v1/kv/" + long + "/put", "application/json", `{"value":"x"}`, 400, "VALIDATION_ERROR", "key"},
		{"key over 1 KiB get", "GET", "/api/v1/kv/" + long, "", "", 400, "VALIDATION_ERROR", "key"},
		{"value over the limit", "POST", "/api/v1/kv/keep/put", "application/json", big, 413, "PAYLOAD_TOO_LARGE", ""},
		{"missing value", "POST", "/api/v1/kv/keep/put", "application/json", `{}`, 400, "VALIDATION_ERROR", "value"},
		{"null value", "POST", "/api/v1/kv/keep/put", "application/json", `{"value":null}`, 400, "VALIDATION_ERROR", "value"},
		{"no body", "POST", "/api/v1/kv/keep/put", "", "", 400, "VALIDATION_ERROR", "value"},
		{"invalid JSON", "POST", "/api/v1/kv/keep/put", "application/json", `{"value":`, 400, "INVALID_JSON", ""},
		{"not an object", "POST", "/api/v1/kv/keep/put", "application/json", `["x"]`, 400, "INVALID_JSON", ""},
		{"unknown field", "POST", "/api/v1/kv/keep/put", "application/json", `{"value":"x","valeu":"y"}`, 400, "VALIDATION_ERROR", "valeu"},
		{"wrong type", "POST", "/api/v1/kv/keep/put", "application/json", `{"value":5}`, 400, "VALIDATION_ERROR", "value"},
		{"ttl zero", "POST", "/api/v1/kv/keep/put", "application/json", `{"value":"x","ttl_seconds":0}`, 400, "VALIDATION_ERROR", "ttl_seconds"},
		{"negative prev_revision", "POST", "/api/v1/kv/keep/put", "application/json", `{"value":"x","prev_revision":-1}`, 400, "VALIDATION_ERROR", "prev_revision"},
		{"form body", "POST", "/api/v1/kv/keep/put", "application/x-www-form-urlencoded", `value=x`, 415, "UNSUPPORTED_MEDIA_TYPE", ""},
		{"unknown verb", "POST", "/api/v1/kv/keep/replace", "application/json", `{"value":"x"}`, 404, "NOT_FOUND", ""},
		{"wrong method", "PUT", "/api/v1/kv/keep", "application/json", `{"value":"x"}`, 405, "METHOD_NOT_ALLOWED", ""},
		{"unknown route", "GET", "/api/v2/kv", "", "", 404, "NOT_FOUND", ""},
		{"prefix over 1 KiB", "GET", "/api/v1/kv?prefix=" + long, "", "", 400, "VALIDATION_ERROR", "prefix"},
		{"malformed prefix escape", "GET", "/api/v1/kv?prefix=%zz", "", "", 400, "VALIDATION_ERROR", "query"},
		{"limit zero", "GET", "/api/v1/kv?limit=0", "", "", 400, "VALIDATION_ERROR", "limit"},
		{"limit negative", "GET", "/api/v1/kv?limit=-3", "", "", 400, "VALIDATION_ERROR", "limit"},
		{"limit not a number", "GET", "/api/v1/kv?limit=ten", "", "", 400, "VALIDATION_ERROR", "limit"},
		{"limit too big", "GET", "/api/v1/kv?limit=1001", "", "", 400, "VALIDATION_ERROR", "limit"},
		{"bad page token", "GET", "/api/v1/kv?prefix=a&page_token=!!!", "", "", 400, "VALIDATION_ERROR", "page_token"},
		{"page token of another prefix", "GET", "/api/v1/kv?prefix=a&page_token=Yg", "", "", 400, "VALIDATION_ERROR", "page_token"},
		{"unknown query parameter", "GET", "/api/v1/kv?prefx=a", "", "", 400, "VALIDATION_ERROR", "prefx"},
		{"bad consistency", "GET", "/api/v1/kv/keep?consistency=eventual", "", "", 400, "VALIDATION_ERROR", "consistency"},
		{"member without node_id", "POST", "/api/v1/cluster/members", "application/json", `{"address":"127.0.0.1:1"}`, 400, "VALIDATION_ERROR", "node_id"},
		{"member node_id zero", "POST", "/api/v1/cluster/members", "application/json", `{"node_id":0,"address":"127.0.0.1:1"}`, 400, "VALIDATION_ERROR", "node_id"},
		{"member node_id negative", "POST", "/api/v1/cluster/members", "application/json", `{"node_id":-2,"address":"127.0.0.1:1"}`, 400, "VALIDATION_ERROR", "node_id"},
		{"member without address", "POST", "/api/v1/cluster/members", "application/json", `{"node_id":2}`, 400, "VALIDATION_ERROR", "address"},
		{"member bad address", "POST", "/api/v1/cluster/members", "application/json", `{"node_id":2,"address":"nowhere"}`, 400, "VALIDATION_ERROR", "address"},
		{"member exists", "POST", "/api/v1/cluster/members", "application/json", `{"node_id":1,"address":"127.0.0.1:1"}`, 409, "ALREADY_EXISTS", ""},
		{"remove unknown member", "DELETE", "/api/v1/cluster/members/9", "", "", 404, "NOT_FOUND", ""},
		{"remove bad member id", "DELETE", "/api/v1/cluster/members/x", "", "", 400, "VALIDATION_ERROR", "node_id"},
		{"watch bad revision", "GET", "/api/v1/watch?prefix=a&start_revision=0", "", "", 400, "VALIDATION_ERROR", "start_revision"},
		{"watch key and prefix", "GET", "/api/v1/watch?prefix=a&key=b", "", "", 400, "VALIDATION_ERROR", "key"},
		{"watch prefix not UTF-8", "GET", "/api/v1/watch?prefix=%ff", "", "", 400, "VALIDATION_ERROR", "prefix"},
		{"list prefix not UTF-8", "GET", "/api/v1/kv?prefix=%ff", "", "", 400, "VALIDATION_ERROR", "prefix"},
	}
	var before chainfire.ListResult
	c.ok(c.json("GET", "/api/v1/kv", nil), 200, &before)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := api{t: t, base: c.base}
			r := c.do(tt.method, tt.path, tt.ctype, []byte(tt.body))
			if r.Status != tt.status || r.Error == nil || r.Error.Code != tt.code {
				t.Fatalf("got %d %+v, want %d %s", r.Status, r.Error, tt.status, tt.code)
			}
			if tt.field != "" && r.Error.Details["field"] != tt.field {
				t.Errorf("details.field = %v, want %q", r.Error.Details["field"], tt.field)
			}
			if r.Error.Message == "" {
				t.Error("empty error message")
			}
		})
	}
	var after chainfire.ListResult
	c.ok(c.json("GET", "/api/v1/kv", nil), 200, &after)
	if after.Revision != before.Revision {
		t.Errorf("bad requests changed the store: revision %d → %d", before.Revision, after.Revision)
	}
	var got chainfire.KeyValue
	c.ok(c.json("GET", "/api/v1/kv/keep", nil), 200, &got)
	if got.Value != "original" {
		t.Errorf("value changed to %q", got.Value)
	}
}

func TestWatchSSE(t *testing.T) {
	_, c := newNode(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", c.base+"/api/v1/watch?prefix=w/", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("watch: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	c.ok(c.json("POST", "/api/v1/kv/w%2F1/put", map[string]any{"value": "one"}), 200, nil)
	c.ok(c.json("POST", "/api/v1/kv/other/put", map[string]any{"value": "not watched"}), 200, nil)
	c.ok(c.json("POST", "/api/v1/kv/w%2F1/delete", nil), 200, nil)
	events := readEvents(t, resp.Body, 2)
	if events[0].Type != "put" || events[0].Key != "w/1" || events[0].Value != "one" {
		t.Errorf("first event = %+v", events[0])
	}
	if events[1].Type != "delete" || events[1].Key != "w/1" || events[1].ModRevision <= events[0].ModRevision {
		t.Errorf("second event = %+v", events[1])
	}

	// Resuming from the first event's id replays the delete.
	req, _ = http.NewRequestWithContext(ctx, "GET", c.base+"/api/v1/watch?key=w%2F1", nil)
	req.Header.Set("Last-Event-ID", jsonNumber(events[0].ModRevision))
	resp2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	if ev := readEvents(t, resp2.Body, 1); ev[0].Type != "delete" || ev[0].ModRevision != events[1].ModRevision {
		t.Errorf("resumed event = %+v", ev[0])
	}
}

func jsonNumber(n int64) string { b, _ := json.Marshal(n); return string(b) }

// readEvents reads n SSE events, checking that each id equals its revision.
func readEvents(t *testing.T, body io.Reader, n int) []chainfire.WatchEvent {
	t.Helper()
	type result struct {
		evs []chainfire.WatchEvent
		err string
	}
	done := make(chan result, 1)
	go func() {
		sc := bufio.NewScanner(body)
		var out []chainfire.WatchEvent
		var id, event string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "id: "):
				id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				var ev chainfire.WatchEvent
				if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev); err != nil {
					done <- result{err: err.Error()}
					return
				}
				if ev.Type != event || id != jsonNumber(ev.ModRevision) {
					done <- result{err: "event/id lines disagree with data: " + event + " " + id + " " + line}
					return
				}
				out = append(out, ev)
				if len(out) == n {
					done <- result{evs: out}
					return
				}
			}
		}
		done <- result{err: "stream ended early"}
	}()
	select {
	case r := <-done:
		if r.err != "" {
			t.Fatal(r.err)
		}
		return r.evs
	case <-time.After(10 * time.Second):
		t.Fatalf("no %d events within 10s", n)
	}
	return nil
}

func TestEtcdAPICompatibility(t *testing.T) {
	s, c := newNode(t)
	cli := testutil.EtcdClient(t, s.GRPCAddr())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "from/grpc", "hello"); err != nil {
		t.Fatal(err)
	}
	var got chainfire.KeyValue
	c.ok(c.json("GET", "/api/v1/kv/from%2Fgrpc", nil), 200, &got)
	if got.Value != "hello" {
		t.Errorf("REST read %q of a gRPC write", got.Value)
	}
	c.ok(c.json("POST", "/api/v1/kv/from%2Frest/put", map[string]any{"value": "world"}), 200, nil)
	resp, err := cli.Get(ctx, "from/rest")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "world" {
		t.Fatalf("gRPC read of a REST write: %v %v", resp, err)
	}

	etcdctl, err := exec.LookPath("etcdctl")
	if err != nil {
		t.Skip("etcdctl not installed (Debian package etcd-client; scripts/install-deps.sh installs it)")
	}
	run := func(args ...string) string {
		cmd := exec.Command(etcdctl, append([]string{"--endpoints", s.GRPCAddr()}, args...)...)
		cmd.Env = append(cmd.Environ(), "ETCDCTL_API=3")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("etcdctl %v: %v: %s", args, err, out)
		}
		return string(out)
	}
	if out := run("get", "from/rest", "--print-value-only"); strings.TrimSpace(out) != "world" {
		t.Errorf("etcdctl get = %q", out)
	}
	run("put", "from/etcdctl", "hi")
	c.ok(c.json("GET", "/api/v1/kv/from%2Fetcdctl", nil), 200, &got)
	if got.Value != "hi" {
		t.Errorf("REST read %q of an etcdctl write", got.Value)
	}
	if out := run("member", "list"); !strings.Contains(out, "node-1") {
		t.Errorf("etcdctl member list = %q", out)
	}
}

func TestClusterStatusAndLearner(t *testing.T) {
	_, c := newNode(t)
	var st chainfire.ClusterStatus
	c.ok(c.json("GET", "/api/v1/cluster/status", nil), 200, &st)
	if st.NodeID != 1 || st.Role != "leader" || !st.IsLeader || st.LeaderID != 1 || st.Term == 0 || st.ClusterID == "" || len(st.Members) != 1 {
		t.Fatalf("status = %+v", st)
	}
	// Adding a member that never starts must not cost the cluster its
	// quorum: it joins as a learner.
	var added chainfire.AddMemberResult
	c.ok(c.json("POST", "/api/v1/cluster/members", map[string]any{"node_id": 2, "address": testutil.FreeAddr(t)}), 201, &added)
	if !added.Member.IsLearner || added.Member.NodeID != 2 || added.InitialClusterState != "existing" ||
		!strings.Contains(added.InitialCluster, "node-1=") || !strings.Contains(added.InitialCluster, "node-2=") {
		t.Fatalf("add member = %+v", added)
	}
	c.ok(c.json("POST", "/api/v1/kv/still/put", map[string]any{"value": "writable"}), 200, nil)
	var ml chainfire.MemberList
	c.ok(c.json("GET", "/api/v1/cluster/members", nil), 200, &ml)
	if len(ml.Members) != 2 || ml.Members[1].NodeID != 2 || ml.Members[1].Started {
		t.Fatalf("members = %+v", ml)
	}
	r := c.json("POST", "/api/v1/cluster/members", map[string]any{"node_id": 2, "address": testutil.FreeAddr(t)})
	if r.Status != 409 {
		t.Fatalf("re-adding node 2: %d", r.Status)
	}
	c.ok(c.json("DELETE", "/api/v1/cluster/members/2", nil), 200, nil)
	c.ok(c.json("GET", "/api/v1/cluster/members", nil), 200, &ml)
	if len(ml.Members) != 1 {
		t.Fatalf("members after remove = %+v", ml)
	}
}

func TestHealthAndMetrics(t *testing.T) {
	_, c := newNode(t)
	var h struct {
		Status, Service, Version string
		Checks                   map[string]string
	}
	c.ok(c.json("GET", "/health", nil), 200, &h)
	if h.Status != "ok" || h.Service != "chainfire" || h.Checks["raft"] != "ok" {
		t.Fatalf("health = %+v", h)
	}
	c.json("GET", "/api/v1/kv/nothing", nil)
	resp, err := http.Get(c.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`photon_http_requests_total{code="404",method="GET",route="GET /api/v1/kv/{key...}",service="chainfire"} 1`,
		`photon_http_request_duration_seconds_bucket{method="GET",route="GET /health"`,
		`etcd_server_has_leader 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
