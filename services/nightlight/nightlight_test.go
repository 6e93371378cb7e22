// NightLight's tests drive the Prometheus HTTP API of a whole in-process
// stack: the registry's services scraped, remote write and read, tenancy
// by project, rules, restarts and bad input.
package nightlight_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/photoncloud/photon/internal/platform"
	"github.com/photoncloud/photon/internal/registry"
	"github.com/photoncloud/photon/internal/testutil"
)

type env struct {
	t   *testing.T
	st  *platform.Stack
	cfg platform.Config
	url string
}

func start(t *testing.T, tweak func(*platform.Config)) *env {
	t.Helper()
	cfg := testutil.StackConfig(t, "")
	if tweak != nil {
		tweak(&cfg)
	}
	st := testutil.StartStackWith(t, cfg)
	return &env{t: t, st: st, cfg: cfg, url: "http://" + st.NightLight.HTTPAddr()}
}

// apiResult is the Prometheus API's answer.
type apiResult struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	code      int
}

// get calls the API with token ("" for none: loopback trust, the admin).
func (e *env) get(token, path string, q url.Values) apiResult {
	e.t.Helper()
	req, _ := http.NewRequest("GET", e.url+path+"?"+q.Encode(), nil)
	return e.do(token, req)
}

func (e *env) do(token string, req *http.Request) apiResult {
	e.t.Helper()
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r apiResult
	if err := json.Unmarshal(b, &r); err != nil && resp.StatusCode != 204 {
		e.t.Fatalf("%s %s: %d %s", req.Method, req.URL.Path, resp.StatusCode, b)
	}
	r.code = resp.StatusCode
	return r
}

type sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (e *env) instant(token, query string, at time.Time) []sample {
	e.t.Helper()
	r := e.get(token, "/api/v1/query", url.Values{"query": {query}, "time": {fmt.Sprint(float64(at.UnixMilli()) / 1000)}})
	if r.Status != "success" {
		e.t.Fatalf("query %q: %d %s %s", query, r.code, r.ErrorType, r.Error)
	}
	var d struct {
		Result []sample `json:"result"`
	}
	if err := json.Unmarshal(r.Data, &d); err != nil {
		e.t.Fatal(err)
	}
	return d.Result
}

// write sends series (name and labels → value at ts) by remote write 1.0.
func (e *env) write(token string, ts time.Time, series map[string]float64) int {
	e.t.Helper()
	var wr prompb.WriteRequest
	keys := make([]string, 0, len(series))
	for k := range series {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ls := []prompb.Label{}
		for _, kv := range strings.Split(k, ",") {
			n, v, _ := strings.Cut(kv, "=")
			ls = append(ls, prompb.Label{Name: n, Value: v})
		}
		sort.Slice(ls, func(i, j int) bool { return ls[i].Name < ls[j].Name })
		wr.Timeseries = append(wr.Timeseries, prompb.TimeSeries{Labels: ls, Samples: []prompb.Sample{{Value: series[k], Timestamp: ts.UnixMilli()}}})
	}
	raw, err := wr.Marshal()
	if err != nil {
		e.t.Fatal(err)
	}
	return e.post(token, "/api/v1/write", snappy.Encode(nil, raw))
}

// post sends body (already snappy-encoded) as a remote write 1.0 request.
func (e *env) post(token, path string, body []byte) int {
	e.t.Helper()
	resp, _ := e.send(token, path, body, "application/x-protobuf", "X-Prometheus-Remote-Write-Version", "0.1.0")
	return resp.StatusCode
}

// send POSTs a snappy-encoded protobuf body as remote write and read send
// theirs, with contentType and the protocol's version header, and returns
// the answer with its body read.
func (e *env) send(token, path string, body []byte, contentType, versionHeader, version string) (*http.Response, []byte) {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.url+path, bytes.NewReader(body))
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", contentType)
	req.Header.Set(versionHeader, version)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// iam calls IAM as the loopback admin; an object that already exists is
// fine (tokens of two users of one project share it).
func (e *env) iam(path string, body string) map[string]any {
	e.t.Helper()
	resp, err := http.Post("http://"+e.st.IAM.HTTPAddr()+path, "application/json", strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var env struct {
		Data map[string]any `json:"data"`
	}
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &env)
	if resp.StatusCode/100 != 2 && resp.StatusCode != http.StatusConflict {
		e.t.Fatalf("POST %s: %d %s", path, resp.StatusCode, b)
	}
	return env.Data
}

// projectToken makes an org and project (once) and returns a token with
// role there for a new user bound to it.
func (e *env) projectToken(org, project, user, role string) string {
	e.t.Helper()
	e.iam("/api/v1/orgs", `{"id":"`+org+`","name":"`+org+`"}`)
	e.iam("/api/v1/projects", `{"id":"`+project+`","name":"`+project+`","org_id":"`+org+`"}`)
	e.iam("/api/v1/users", `{"id":"`+user+`","name":"`+user+`","type":"user"}`)
	e.iam("/api/v1/bindings", `{"principal_id":"`+user+`","role":"`+role+`","scope_id":"`+project+`"}`)
	tok := e.iam("/api/v1/auth/token", `{"principal_id":"`+user+`","scope_id":"`+project+`","roles":["`+role+`"],"ttl_seconds":3600}`)
	return tok["token"].(string)
}

// TestUpWithinTwoScrapeIntervals: every service in the registry is a
// target, and `up` is 1 for each of them at two scrape intervals after
// NightLight started — read from the samples' own timestamps.
func TestUpWithinTwoScrapeIntervals(t *testing.T) {
	// Prometheus's smallest common interval is seconds; 3 s rather than
	// the stack's 1 s keeps scheduling noise on a loaded machine small
	// beside the interval the claim is about.
	e := start(t, func(c *platform.Config) { c.NightLight.ScrapeInterval = 3 * time.Second })
	started := time.Now()
	interval := e.cfg.NightLight.ScrapeInterval
	entries, err := registry.List(testutil.Context(t), e.st.ChainFire.Client(), "")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, en := range entries {
		want[en.Service+"/"+en.Node] = true
	}
	for _, svc := range []string{"chainfire", "flaredb", "iam", "creditservice", "prismnet", "plasmavmc", "lightningstor", "nightlight"} {
		found := false
		for k := range want {
			found = found || strings.HasPrefix(k, svc+"/")
		}
		if !found {
			t.Fatalf("%s is not in the registry: %v", svc, want)
		}
	}
	at := started.Add(2 * interval)
	time.Sleep(time.Until(at.Add(500 * time.Millisecond)))
	got := map[string]bool{}
	for _, s := range e.instant("", "up", at) {
		if s.Value[1] != "1" {
			t.Errorf("up{job=%q,instance=%q} = %v", s.Metric["job"], s.Metric["instance"], s.Value[1])
		}
		got[s.Metric["job"]+"/"+s.Metric["instance"]] = true
	}
	for k := range want {
		if !got[k] {
			t.Errorf("no up sample for %s within two scrape intervals (%v) of the start; have %v", k, 2*interval, got)
		}
	}
}

// TestTenancy: a project's token reads only its project's series (whatever
// its selectors say), its remote writes are stamped with its project, and
// the platform's endpoints are the system scope's.
func TestTenancy(t *testing.T) {
	e := start(t, nil)
	a := e.projectToken("org-a", "proj-a", "alice", "member")
	b := e.projectToken("org-b", "proj-b", "bob", "member")
	viewer := e.projectToken("org-a", "proj-a", "val", "viewer")
	now := time.Now()
	if code := e.write(a, now, map[string]float64{"__name__=jobs_total,queue=q1": 1, "__name__=jobs_total,queue=q2,project_id=proj-b": 2}); code != 204 {
		t.Fatalf("alice's remote write: %d", code)
	}
	if code := e.write(b, now, map[string]float64{"__name__=jobs_total,queue=q1": 10}); code != 204 {
		t.Fatalf("bob's remote write: %d", code)
	}
	if code := e.write(viewer, now, map[string]float64{"__name__=jobs_total,queue=q9": 9}); code != 403 {
		t.Fatalf("a viewer's remote write: %d, want 403", code)
	}
	at := now.Add(time.Second)
	// Alice's forged project_id was overwritten: both her series are hers.
	for _, q := range []string{`jobs_total`, `jobs_total{project_id="proj-b"}`, `{__name__=~".+"}`, `up`} {
		for _, s := range e.instant(a, q, at) {
			if s.Metric["project_id"] != "proj-a" {
				t.Errorf("alice's %q sees %v", q, s.Metric)
			}
		}
	}
	if got := e.instant(a, "sum(jobs_total)", at); len(got) != 1 || got[0].Value[1] != "3" {
		t.Errorf("alice's sum = %v, want 3", got)
	}
	if got := e.instant(viewer, "sum(jobs_total)", at); len(got) != 1 || got[0].Value[1] != "3" {
		t.Errorf("the viewer's sum = %v, want alice's 3", got)
	}
	if got := e.instant(b, "sum(jobs_total)", at); len(got) != 1 || got[0].Value[1] != "10" {
		t.Errorf("bob's sum = %v, want 10", got)
	}
	if got := e.instant("", `sum by (project_id) (jobs_total)`, at); len(got) != 2 {
		t.Errorf("the admin sees %v, want both projects", got)
	}
	// Label lookups and series listings are scoped too.
	r := e.get(a, "/api/v1/label/project_id/values", nil)
	if string(r.Data) != `["proj-a"]` {
		t.Errorf("alice's project_id values = %s", r.Data)
	}
	r = e.get(a, "/api/v1/label/job/values", nil)
	if string(r.Data) != `[]` {
		t.Errorf("alice sees the platform's jobs: %s", r.Data)
	}
	r = e.get(b, "/api/v1/series", url.Values{"match[]": {`{__name__=~"jobs.*"}`}})
	if strings.Contains(string(r.Data), "proj-a") || !strings.Contains(string(r.Data), "proj-b") {
		t.Errorf("bob's series = %s", r.Data)
	}
	for _, p := range []string{"/api/v1/targets", "/api/v1/status/tsdb", "/api/v1/rules", "/api/v1/alerts", "/api/v1/metadata", "/api/v1/status/config"} {
		if r := e.get(a, p, nil); r.code != 403 || r.Status != "error" || r.ErrorType != "forbidden" {
			t.Errorf("alice GET %s = %d %s", p, r.code, r.ErrorType)
		}
		if r := e.get("", p, nil); r.code != 200 {
			t.Errorf("the admin GET %s = %d %s", p, r.code, r.Error)
		}
	}
	if r := e.get("not-a-token", "/api/v1/query", url.Values{"query": {"up"}}); r.code != 401 || r.ErrorType != "unauthorized" {
		t.Errorf("a bad token = %d %s", r.code, r.ErrorType)
	}
}

// TestBadInput: Prometheus's own errors and statuses.
func TestBadInput(t *testing.T) {
	e := start(t, nil)
	now := fmt.Sprint(time.Now().Unix())
	for _, tc := range []struct {
		path string
		q    url.Values
		code int
		typ  string
	}{
		{"/api/v1/query", url.Values{"query": {"sum(rate(x[5m]"}}, 400, "bad_data"},
		{"/api/v1/query", url.Values{"query": {"up"}, "time": {"yesterday"}}, 400, "bad_data"},
		{"/api/v1/query_range", url.Values{"query": {"up"}, "start": {now}, "end": {now}, "step": {"0"}}, 400, "bad_data"},
		{"/api/v1/query_range", url.Values{"query": {"up"}, "start": {now}, "end": {"0"}, "step": {"15"}}, 400, "bad_data"},
		{"/api/v1/query_range", url.Values{"query": {"up"}, "start": {"0"}, "end": {now}, "step": {"1"}}, 400, "bad_data"}, // > 11,000 points
		{"/api/v1/query", url.Values{"query": {`count(count_over_time({__name__=~".+"}[1y]))`}, "timeout": {"0.000001"}}, 503, "timeout"},
		{"/api/v1/series", url.Values{}, 400, "bad_data"},
	} {
		r := e.get("", tc.path, tc.q)
		if r.code != tc.code || r.Status != "error" || r.ErrorType != tc.typ || r.Error == "" {
			t.Errorf("%s %v = %d %q %q, want %d %s", tc.path, tc.q, r.code, r.ErrorType, r.Error, tc.code, tc.typ)
		}
	}
	if code := e.post("", "/api/v1/write", []byte("not snappy at all")); code != 400 {
		t.Errorf("remote write with a bad body: %d, want 400", code)
	}
	if code := e.post("", "/api/v1/write", snappy.Encode(nil, []byte{0xff, 0xff, 0xff})); code != 400 {
		t.Errorf("remote write with a bad protobuf: %d, want 400", code)
	}
}

// TestRestartKeepsData: samples written before a stop are there after a
// start on the same data dir (WAL replay).
func TestRestartKeepsData(t *testing.T) {
	dir := t.TempDir()
	cfg := testutil.StackConfig(t, dir)
	st := testutil.StartStackWith(t, cfg)
	e := &env{t: t, st: st, cfg: cfg, url: "http://" + st.NightLight.HTTPAddr()}
	ts := time.Now().Add(-time.Minute)
	if code := e.write("", ts, map[string]float64{"__name__=kept,k=v": 42}); code != 204 {
		t.Fatalf("write: %d", code)
	}
	if err := st.Stop(testutil.Context(t)); err != nil {
		t.Fatal(err)
	}
	st2 := testutil.StartStackWith(t, cfg)
	e2 := &env{t: t, st: st2, cfg: cfg, url: "http://" + st2.NightLight.HTTPAddr()}
	if got := e2.instant("", "kept", ts); len(got) != 1 || got[0].Value[1] != "42" {
		t.Fatalf("after restart: %v", got)
	}
}

// TestRules: recording and alerting rules from a rule file named in the
// config file, evaluated on their interval, listed at /rules and /alerts.
func TestRules(t *testing.T) {
	dir := t.TempDir()
	rules := `groups:
- name: photon
  interval: 1s
  rules:
  - record: job:up:sum
    expr: sum by (job) (up)
  - alert: AlwaysFiring
    expr: vector(1)
    labels: {severity: page}
    annotations: {summary: "it fires"}
`
	if err := os.WriteFile(filepath.Join(dir, "rules.yml"), []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte("rule_files: [rules.yml]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := start(t, func(c *platform.Config) { c.NightLight.ConfigFile = filepath.Join(dir, "prometheus.yml") })
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := e.instant("", `job:up:sum{job="iam"}`, time.Now())
		r := e.get("", "/api/v1/alerts", nil)
		if len(got) == 1 && got[0].Value[1] == "1" && strings.Contains(string(r.Data), `"alertname":"AlwaysFiring"`) && strings.Contains(string(r.Data), `"state":"firing"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("recorded %v; alerts %s", got, r.Data)
		}
		time.Sleep(200 * time.Millisecond)
	}
	r := e.get("", "/api/v1/rules", nil)
	for _, want := range []string{`"name":"photon"`, `"name":"job:up:sum"`, `"type":"recording"`, `"name":"AlwaysFiring"`, `"type":"alerting"`} {
		if !strings.Contains(string(r.Data), want) {
			t.Errorf("/rules lacks %s: %s", want, r.Data)
		}
	}
}

// read asks /api/v1/read (remote read, sampled) for series matching
// name=value in [from, to] and returns their label sets and sample counts.
func (e *env) read(token string, from, to time.Time, name, value string) map[string]int {
	e.t.Helper()
	rr := prompb.ReadRequest{Queries: []*prompb.Query{{
		StartTimestampMs: from.UnixMilli(), EndTimestampMs: to.UnixMilli(),
		Matchers: []*prompb.LabelMatcher{{Type: prompb.LabelMatcher_EQ, Name: name, Value: value}},
	}}}
	raw, err := rr.Marshal()
	if err != nil {
		e.t.Fatal(err)
	}
	resp, body := e.send(token, "/api/v1/read", snappy.Encode(nil, raw), "application/x-protobuf", "X-Prometheus-Remote-Read-Version", "0.1.0")
	if resp.StatusCode != 200 {
		e.t.Fatalf("remote read: %d %s", resp.StatusCode, body)
	}
	dec, err := snappy.Decode(nil, body)
	if err != nil {
		e.t.Fatal(err)
	}
	var out prompb.ReadResponse
	if err := out.Unmarshal(dec); err != nil {
		e.t.Fatal(err)
	}
	got := map[string]int{}
	for _, ts := range out.Results[0].Timeseries {
		var ls []string
		for _, l := range ts.Labels {
			ls = append(ls, l.Name+"="+l.Value)
		}
		got[strings.Join(ls, ",")] = len(ts.Samples)
	}
	return got
}

// TestRemoteRead: what was written reads back by remote read, scoped by
// the caller's project like every other read.
func TestRemoteRead(t *testing.T) {
	e := start(t, nil)
	a := e.projectToken("org-r", "proj-r", "rita", "member")
	t0 := time.Now().Add(-time.Minute)
	for i := 0; i < 5; i++ {
		ts := t0.Add(time.Duration(i) * time.Second)
		if code := e.write("", ts, map[string]float64{"__name__=rr,side=platform": float64(i)}); code != 204 {
			t.Fatalf("write: %d", code)
		}
		if code := e.write(a, ts, map[string]float64{"__name__=rr,side=project": float64(i)}); code != 204 {
			t.Fatalf("write: %d", code)
		}
	}
	all := e.read("", t0, t0.Add(time.Minute), "__name__", "rr")
	want := map[string]int{"__name__=rr,side=platform": 5, "__name__=rr,project_id=proj-r,side=project": 5}
	if fmt.Sprint(all) != fmt.Sprint(want) {
		t.Fatalf("admin's remote read = %v, want %v", all, want)
	}
	mine := e.read(a, t0, t0.Add(time.Minute), "__name__", "rr")
	if fmt.Sprint(mine) != fmt.Sprint(map[string]int{"__name__=rr,project_id=proj-r,side=project": 5}) {
		t.Fatalf("the project's remote read = %v", mine)
	}
}

// TestConfigFileStaticTargets: a job of the operator's config file (a
// static target with target and metric relabeling) is scraped beside the
// registry's, with Prometheus's per-scrape series.
func TestConfigFileStaticTargets(t *testing.T) {
	exporter := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "# TYPE widgets_total counter\nwidgets_total{color=\"red\"} 7\n# TYPE noise gauge\nnoise 1\n")
	}))
	t.Cleanup(exporter.Close)
	dir := t.TempDir()
	conf := `scrape_configs:
- job_name: widgets
  scrape_interval: 1s
  static_configs:
  - targets: ['` + strings.TrimPrefix(exporter.URL, "http://") + `']
    labels: {team: a}
  relabel_configs:
  - target_label: env
    replacement: test
  metric_relabel_configs:
  - source_labels: [__name__]
    regex: noise
    action: drop
`
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	e := start(t, func(c *platform.Config) { c.NightLight.ConfigFile = filepath.Join(dir, "prometheus.yml") })
	// Both jobs' first scrapes land anywhere in their first interval:
	// wait until each has one.
	deadline := time.Now().Add(20 * time.Second)
	var got []sample
	for time.Now().Before(deadline) {
		got = e.instant("", `widgets_total`, time.Now())
		if len(got) == 1 && len(e.instant("", `up{job="iam"}`, time.Now())) == 1 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(got) != 1 || got[0].Value[1] != "7" || got[0].Metric["env"] != "test" || got[0].Metric["team"] != "a" || got[0].Metric["job"] != "widgets" {
		t.Fatalf("widgets_total = %v", got)
	}
	if n := e.instant("", `noise`, time.Now()); len(n) != 0 {
		t.Errorf("a dropped metric was stored: %v", n)
	}
	for _, q := range []string{`up{job="widgets"}`, `scrape_duration_seconds{job="widgets"}`, `scrape_samples_scraped{job="widgets"}`, `up{job="iam"}`} {
		if s := e.instant("", q, time.Now()); len(s) != 1 {
			t.Errorf("%s = %v", q, s)
		}
	}
	if s := e.instant("", `scrape_samples_post_metric_relabeling{job="widgets"}`, time.Now()); len(s) != 1 || s[0].Value[1] != "1" {
		t.Errorf("samples after metric relabeling = %v, want 1", s)
	}
}

// TestRemoteWrite2: a remote-write 2.0 request (symbols table, the
// io.prometheus.write.v2.Request content type) is taken, and stamped with
// the writer's project like 1.0.
func TestRemoteWrite2(t *testing.T) {
	e := start(t, nil)
	tok := e.projectToken("org-w", "proj-w", "wendy", "member")
	st := writev2.NewSymbolTable()
	ts := time.Now().Add(-time.Second)
	req := writev2.Request{Timeseries: []writev2.TimeSeries{{
		LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "rw2_total", "k", "v"), nil),
		Samples:    []writev2.Sample{{Value: 5, Timestamp: ts.UnixMilli()}},
		Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_COUNTER},
	}}}
	req.Symbols = st.Symbols()
	raw, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	resp, body := e.send(tok, "/api/v1/write", snappy.Encode(nil, raw), "application/x-protobuf;proto=io.prometheus.write.v2.Request", "X-Prometheus-Remote-Write-Version", "2.0.0")
	if resp.StatusCode != 204 || resp.Header.Get("X-Prometheus-Remote-Write-Samples-Written") != "1" {
		t.Fatalf("remote write 2.0: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	if got := e.instant("", "rw2_total", ts); len(got) != 1 || got[0].Metric["project_id"] != "proj-w" || got[0].Value[1] != "5" {
		t.Fatalf("rw2_total = %v", got)
	}
}
