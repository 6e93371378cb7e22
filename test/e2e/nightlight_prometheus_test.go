package e2e

// NightLight against the real thing: Debian's Prometheus scrapes an exporter
// this test drives and remote-writes every sample to NightLight, so both
// hold exactly the same samples; then the same PromQL, at the same
// evaluation times, must give the same answers from both over HTTP.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/photoncloud/photon/internal/testutil"
)

const (
	// promJob is the exporter's job; every comparison is scoped to it, so
	// the series NightLight scrapes by itself never enter one.
	promJob = "nlcmp"
	// scrapes is how many scrapes the comparisons need: the range queries
	// look 24 s back and must see the series that goes stale (at
	// staleStep) and the counter reset (at resetStep).
	scrapes   = 30
	staleStep = 15
	resetStep = 20
)

// TestNightLightMatchesPrometheus: for rates, histogram quantiles,
// aggregations, offsets, subqueries, label functions, absent, arithmetic and
// comparisons, NightLight's /api/v1/query and /api/v1/query_range answer
// exactly as Prometheus does on the same samples; so do /api/v1/series,
// /api/v1/labels and /api/v1/label/<name>/values.
func TestNightLightMatchesPrometheus(t *testing.T) {
	promBin := prometheusBinary(t)
	exp := startExporter(t)
	nl := startNightLight(t)
	prom := startScrapingPrometheus(t, promBin, exp.addr, nl.url+"/api/v1/write")
	hc := &http.Client{Timeout: 30 * time.Second}
	t.Cleanup(hc.CloseIdleConnections)

	eventually(t, 3*time.Minute, fmt.Sprintf("%d scrapes of the exporter", scrapes), func() error {
		if n := exp.scrapes(); n < scrapes {
			return fmt.Errorf("%d scrapes so far", n)
		}
		return nil
	})

	// The evaluation time: 4.5 s before the last scrape Prometheus
	// committed, so a negative offset still looks at samples both sides
	// have, and half a scrape interval off the scrapes: with ranges,
	// offsets and steps in whole seconds, no window then starts or ends on
	// a sample, where Prometheus 2 (closed windows) and 3 (left-open
	// windows, NightLight's engine) legitimately differ.
	last := promInstant(t, hc, prom, `timestamp(up{job="`+promJob+`"})`, "")
	if len(last) != 1 {
		t.Fatalf("timestamp(up): %d series, want 1", len(last))
	}
	lastMs := int64(math.Round(last[0] * 1000))
	evalMs := lastMs - 4_500
	eval := msTime(evalMs)
	start := msTime(evalMs - 24_000)
	t.Logf("last scrape at %d ms; evaluating at %s (range queries from %s); stand-in=%v", lastMs, eval, start, nl.standIn)
	// A subquery evaluates its inner query at multiples of its step, so
	// its inner windows start on whole seconds: on a sample only if the
	// scrapes fall on whole seconds, which they do for one target in a
	// thousand (their phase comes from a hash of the target).
	subqueryOnSample := lastMs%1000 == 0 && !nl.standIn

	// NightLight has everything Prometheus has up to the last scrape once
	// the raw samples of every series agree (remote write trails by its
	// batch deadline, and series travel in different shards).
	raw := url.Values{"query": {`{job="` + promJob + `"}[60s]`}, "time": {msTime(lastMs + 500)}}
	eventually(t, 60*time.Second, "NightLight to hold Prometheus's samples", func() error {
		p, err := apiGet(hc, prom, "/api/v1/query", raw)
		if err != nil {
			return err
		}
		n, err := apiGet(hc, nl.url, "/api/v1/query", raw)
		if err != nil {
			return err
		}
		_, err = sameResult(p, n, false, true)
		return err
	})

	queries := []string{
		// raw series, the counter reset and the series that went stale
		`nlcmp_requests_total`,
		`nlcmp_jobs_total`,
		`nlcmp_temperature_celsius`,
		`nlcmp_temperature_celsius{room="attic"}`,
		`up{job="` + promJob + `"}`,
		`scrape_samples_scraped{job="` + promJob + `"}`,
		`timestamp(nlcmp_requests_total)`,
		// counters
		`rate(nlcmp_requests_total[5s])`,
		`irate(nlcmp_requests_total[5s])`,
		`increase(nlcmp_requests_total[10s])`,
		`rate(nlcmp_jobs_total[10s])`,
		`increase(nlcmp_jobs_total[15s])`,
		`resets(nlcmp_jobs_total[30s])`,
		`rate(nlcmp_requests_total{code=~"5.."}[7s])`,
		// gauges
		`delta(nlcmp_temperature_celsius[10s])`,
		`deriv(nlcmp_queue_length[10s])`,
		`idelta(nlcmp_queue_length[5s])`,
		`changes(nlcmp_queue_length[20s])`,
		`predict_linear(nlcmp_queue_length[20s], 60)`,
		`avg_over_time(nlcmp_temperature_celsius[15s])`,
		`max_over_time(nlcmp_temperature_celsius[15s])`,
		`quantile_over_time(0.9, nlcmp_temperature_celsius[15s])`,
		`stddev_over_time(nlcmp_queue_length[20s])`,
		`count_over_time(nlcmp_temperature_celsius[20s])`,
		`last_over_time(nlcmp_temperature_celsius[20s])`,
		`present_over_time(nlcmp_temperature_celsius[20s])`,
		// histograms and summaries
		`histogram_quantile(0.9, sum by (le) (rate(nlcmp_latency_seconds_bucket[10s])))`,
		`histogram_quantile(0.5, rate(nlcmp_latency_seconds_bucket[10s]))`,
		`histogram_quantile(0.99, sum by (le, method) (increase(nlcmp_latency_seconds_bucket[20s])))`,
		`rate(nlcmp_latency_seconds_sum[10s]) / rate(nlcmp_latency_seconds_count[10s])`,
		`nlcmp_rpc_duration_seconds`,
		`nlcmp_rpc_duration_seconds{quantile="0.9"} > 0.3`,
		`rate(nlcmp_rpc_duration_seconds_count[10s])`,
		// aggregations
		`sum by (code) (rate(nlcmp_requests_total[10s]))`,
		`avg by (method) (nlcmp_requests_total)`,
		`max by (code) (nlcmp_requests_total)`,
		`min without (method) (nlcmp_requests_total)`,
		`count by (method) (nlcmp_requests_total)`,
		`topk(2, nlcmp_requests_total)`,
		`bottomk(1, rate(nlcmp_requests_total[10s]))`,
		`quantile(0.5, nlcmp_temperature_celsius)`,
		`stddev(nlcmp_temperature_celsius)`,
		`count_values("length", nlcmp_queue_length)`,
		`group by (code) (nlcmp_requests_total)`,
		`sum(nlcmp_requests_total)`,
		`sort_desc(sum by (code) (nlcmp_requests_total))`,
		// offsets, @ and subqueries
		`nlcmp_requests_total offset 5s`,
		`rate(nlcmp_requests_total[5s] offset 10s)`,
		`nlcmp_requests_total offset -3s`,
		`nlcmp_requests_total @ ` + msTime(lastMs-10_000),
		`max_over_time(rate(nlcmp_requests_total[10s])[30s:2s])`,
		`avg_over_time(sum by (code) (nlcmp_requests_total)[20s:3s])`,
		`min_over_time(nlcmp_queue_length[15s:1s] offset 2s)`,
		// label functions and absent
		`label_replace(nlcmp_requests_total, "class", "${1}xx", "code", "(.).*")`,
		`label_join(nlcmp_requests_total, "key", "-", "method", "code")`,
		`absent(nlcmp_nonexistent)`,
		`absent(nlcmp_temperature_celsius{room="attic"})`,
		`absent_over_time(nlcmp_temperature_celsius{room="attic"}[5s])`,
		// arithmetic and comparisons
		`nlcmp_requests_total * 2 + 1`,
		`nlcmp_requests_total / on (instance, job) group_left sum by (instance, job) (nlcmp_requests_total)`,
		`sum by (code) (nlcmp_requests_total) / ignoring (code) group_left sum(nlcmp_requests_total)`,
		`nlcmp_requests_total{method="GET"} - on (code) nlcmp_requests_total{method="POST"}`,
		`nlcmp_requests_total > 40`,
		`nlcmp_temperature_celsius > bool 21`,
		`rate(nlcmp_requests_total[5s]) >= 2 and nlcmp_requests_total{code="200"}`,
		`nlcmp_requests_total{code="200"} or nlcmp_requests_total{code="404"}`,
		`nlcmp_requests_total unless nlcmp_requests_total{method="GET"}`,
		`nlcmp_queue_length % 3 == 1`,
		`-nlcmp_temperature_celsius ^ 2`,
		`scalar(sum(nlcmp_queue_length)) * vector(2)`,
		`time() - timestamp(nlcmp_queue_length)`,
		`round(rate(nlcmp_requests_total[10s]), 0.25)`,
		`clamp(nlcmp_temperature_celsius, 20.5, 22)`,
		`abs(delta(nlcmp_temperature_celsius[10s])) > 0`,
		`sqrt(nlcmp_queue_length) + on () group_right ln(nlcmp_temperature_celsius)`,
	}

	var compared, differ, inexactCalls, inexactValues int
	record := func(what string, inexact int, err error) {
		compared++
		if err != nil {
			differ++
		}
		if inexact > 0 {
			inexactCalls++
			inexactValues += inexact
		}
	}
	for _, q := range queries {
		if subqueryOnSample && strings.Contains(q, "s:") {
			t.Logf("not comparing %s: scrapes on whole seconds put its inner windows' starts on samples", q)
			continue
		}
		t.Run("query/"+q, func(t *testing.T) {
			compare(t, hc, prom, nl, "/api/v1/query", url.Values{"query": {q}, "time": {eval}}, record)
		})
		for _, step := range []string{"1", "3"} {
			t.Run("query_range/"+step+"s/"+q, func(t *testing.T) {
				compare(t, hc, prom, nl, "/api/v1/query_range",
					url.Values{"query": {q}, "start": {start}, "end": {eval}, "step": {step}}, record)
			})
		}
	}

	match := `{job="` + promJob + `"}`
	window := url.Values{"match[]": {match}, "start": {msTime(lastMs - 60_000)}, "end": {eval}}
	for _, path := range []string{"/api/v1/series", "/api/v1/labels", "/api/v1/label/__name__/values", "/api/v1/label/code/values", "/api/v1/label/room/values", "/api/v1/label/le/values"} {
		t.Run(path, func(t *testing.T) {
			compare(t, hc, prom, nl, path, window, record)
		})
	}
	t.Logf("%d API calls compared (%d queries × instant and 2 range steps, 6 series/label calls): %d differ; %d agree only within %g (%d values)",
		compared, len(queries), differ, inexactCalls, relTolerance, inexactValues)
}

// ---- the two sides ----

// nightLight is the Prometheus-compatible receiver under test.
type nightLight struct {
	url     string
	standIn bool
}

// startNightLight starts NightLight in `photon up` on free ports and
// returns its API. With NIGHTLIGHT_STANDIN=1 a second Debian Prometheus
// with its remote-write receiver stands in (the same API, the same engine
// as the scraper): a check of this harness, where every answer must be
// bit-equal.
func startNightLight(t *testing.T) nightLight {
	t.Helper()
	if os.Getenv("NIGHTLIGHT_STANDIN") == "1" {
		t.Log("NIGHTLIGHT_STANDIN=1: comparing against a stand-in Prometheus receiver")
		cfg := filepath.Join(t.TempDir(), "standin.yml")
		if err := os.WriteFile(cfg, []byte("global: {}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		addr := startPrometheus(t, prometheusBinary(t), cfg, "--web.enable-remote-write-receiver")
		return nightLight{url: "http://" + addr, standIn: true}
	}
	addr := testutil.FreeAddr(t)
	startUpStack(t, "--nightlight-addr", addr)
	u := "http://" + addr
	eventually(t, 60*time.Second, "NightLight ready", func() error { return ready(u) })
	return nightLight{url: u}
}

// prometheusBinary is Debian's prometheus (scripts/install-deps.sh installs
// it); the test skips only when it is absent.
func prometheusBinary(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("prometheus is not installed (scripts/install-deps.sh installs Debian's)")
	}
	return bin
}

// startScrapingPrometheus starts Prometheus scraping the exporter every
// second and remote-writing to writeURL with short batch deadlines, so
// samples arrive within a fraction of a second.
func startScrapingPrometheus(t *testing.T, bin, target, writeURL string) string {
	t.Helper()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: %s
    static_configs:
      - targets: [%q]
        labels: {env: e2e}
remote_write:
  - url: %q
    queue_config:
      batch_send_deadline: 100ms
      max_samples_per_send: 500
      min_backoff: 20ms
      max_backoff: 500ms
`, promJob, target, writeURL)
	path := filepath.Join(t.TempDir(), "prometheus.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return "http://" + startPrometheus(t, bin, path)
}

// startPrometheus runs bin with config on a free loopback port and its own
// TSDB directory, waits until /-/ready answers, and stops it (SIGTERM,
// then kill) when the test ends. It returns the listen address.
func startPrometheus(t *testing.T, bin, config string, extra ...string) string {
	t.Helper()
	addr := testutil.FreeAddr(t)
	dir := t.TempDir()
	args := append([]string{
		"--config.file=" + config,
		"--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr,
		"--log.level=warn",
	}, extra...)
	cmd := exec.Command(bin, args...)
	logs := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("prometheus %s log:\n%s", addr, logs)
		}
	})
	eventually(t, 30*time.Second, "prometheus on "+addr+" ready", func() error {
		select {
		case <-exited:
			return permanent(fmt.Errorf("prometheus exited:\n%s", logs))
		default:
		}
		return ready("http://" + addr)
	})
	return addr
}

// ready is nil once base's /-/ready answers 200.
func ready(base string) error {
	resp, err := http.Get(base + "/-/ready")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/-/ready: %s", resp.Status)
	}
	return nil
}

// ---- the exporter ----

// exporter serves client_golang metrics whose values are a function of the
// scrape number alone, so every run sees the same data: labelled counters,
// a counter that resets, gauges (one series of which disappears, so
// Prometheus writes a staleness marker), a histogram and a summary.
type exporter struct {
	addr string

	mu      sync.Mutex
	step    int
	reqs    *prometheus.CounterVec
	temp    *prometheus.GaugeVec
	queue   prometheus.Gauge
	latency *prometheus.HistogramVec
	rpc     prometheus.Summary
}

func startExporter(t *testing.T) *exporter {
	t.Helper()
	e := &exporter{
		reqs:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "nlcmp_requests_total", Help: "Requests by method and code."}, []string{"method", "code"}),
		temp:  prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "nlcmp_temperature_celsius", Help: "Temperature by room."}, []string{"room"}),
		queue: prometheus.NewGauge(prometheus.GaugeOpts{Name: "nlcmp_queue_length", Help: "Queue length."}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "nlcmp_latency_seconds", Help: "Latency.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2.5}}, []string{"method"}),
		rpc: prometheus.NewSummary(prometheus.SummaryOpts{Name: "nlcmp_rpc_duration_seconds", Help: "RPC duration.",
			Objectives: map[float64]float64{0.5: 0.05, 0.9: 0.01, 0.99: 0.001}}),
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(e.reqs, e.temp, e.queue, e.latency, e.rpc, jobsCounter{e})
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.advance()
		metrics.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	e.addr = srv.Listener.Addr().String()
	return e
}

// advance is one scrape's worth of activity: step n's increments,
// observations and gauge values. At the first scrape every counter,
// histogram and summary exists at zero, as in a process just started:
// Prometheus 3 changed rate's extrapolation towards the start of a series
// (it caps it at half a scrape interval before clamping it at the
// counter's zero point; 2.42 clamps first), and from a first sample of 0
// both extrapolate exactly to it.
func (e *exporter) advance() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.step++
	n := e.step
	for i, m := range []string{"GET", "POST"} {
		for j, c := range []string{"200", "404", "500"} {
			inc := float64((n*(i+2)+j*3)%7 + j)
			if n == 1 {
				inc = 0
			}
			e.reqs.WithLabelValues(m, c).Add(inc)
		}
		h := e.latency.WithLabelValues(m)
		for k := range n%4 + 2 {
			if n > 1 {
				h.Observe(float64((n*(k+1)+i*5)%29) / 10)
			}
		}
	}
	for i, room := range []string{"kitchen", "cellar", "attic"} {
		if room == "attic" && n >= staleStep {
			e.temp.DeleteLabelValues(room)
			continue
		}
		e.temp.WithLabelValues(room).Set(20 + float64(n%9)/3 + float64(i)*0.7)
	}
	e.queue.Set(float64(n * 7 % 10))
	if n > 1 {
		e.rpc.Observe(float64(n%11) / 10)
		e.rpc.Observe(float64(n%5) / 7)
	}
}

// scrapes is how many scrapes the exporter has served.
func (e *exporter) scrapes() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.step
}

// jobsCounter is a counter whose process "restarts" at resetStep: it starts
// again from zero, which rate and increase must see as a reset.
type jobsCounter struct{ e *exporter }

var jobsDesc = prometheus.NewDesc("nlcmp_jobs_total", "Jobs done; resets once.", []string{"queue"}, nil)

func (c jobsCounter) Describe(ch chan<- *prometheus.Desc) { ch <- jobsDesc }

func (c jobsCounter) Collect(ch chan<- prometheus.Metric) {
	c.e.mu.Lock()
	n := c.e.step
	c.e.mu.Unlock()
	for i, q := range []string{"fast", "slow"} {
		v := float64((n - 1) * (3 - i))
		if n >= resetStep {
			v = float64((n - resetStep) * (2 + i))
		}
		ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.CounterValue, v, q)
	}
}

// ---- comparing answers ----

// apiAnswer is a Prometheus API response body.
type apiAnswer struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Warnings  []string        `json:"warnings"`
	Infos     []string        `json:"infos"`
}

// apiGet asks base's API and decodes the answer: query_range as a form
// POST (the way Grafana sends it), everything else as a GET, so both
// forms are exercised.
func apiGet(hc *http.Client, base, path string, params url.Values) (apiAnswer, error) {
	var resp *http.Response
	var err error
	if path == "/api/v1/query_range" {
		resp, err = hc.PostForm(base+path, params)
	} else {
		resp, err = hc.Get(base + path + "?" + params.Encode())
	}
	if err != nil {
		return apiAnswer{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return apiAnswer{}, err
	}
	var a apiAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return apiAnswer{}, fmt.Errorf("%s %s: %s: not JSON: %.300s", base, path, resp.Status, body)
	}
	if resp.StatusCode != http.StatusOK || a.Status != "success" {
		return a, fmt.Errorf("%s %s: %s: %s: %s", base, path, resp.Status, a.ErrorType, a.Error)
	}
	return a, nil
}

// compare asks both sides the same thing and fails t (and records the
// difference) unless the data agree (see sameResult). Warnings and infos
// are only logged: Prometheus 3 adds annotations 2.42 never gave.
func compare(t *testing.T, hc *http.Client, prom string, nl nightLight, path string, params url.Values, record func(string, int, error)) {
	t.Helper()
	p, err := apiGet(hc, prom, path, params)
	if err != nil {
		t.Fatalf("Prometheus: %v", err)
	}
	n, err := apiGet(hc, nl.url, path, params)
	if err != nil {
		t.Fatalf("NightLight: %v", err)
	}
	q := params.Get("query")
	// A query_range that finds nothing would compare nothing.
	if path == "/api/v1/query_range" && bytes.Contains(p.Data, []byte(`"result":[]`)) {
		t.Errorf("Prometheus finds nothing for %s: the comparison would test nothing", q)
	}
	if fmt.Sprint(p.Warnings, p.Infos) != fmt.Sprint(n.Warnings, n.Infos) {
		t.Logf("annotations differ: Prometheus %q %q, NightLight %q %q", p.Warnings, p.Infos, n.Warnings, n.Infos)
	}
	inexact, err := sameResult(p, n, strings.Contains(q, "sort"), nl.standIn || !strings.Contains(q, "avg"))
	record(path+" "+q, inexact, err)
	if err != nil {
		t.Errorf("%s %v:\n%v\nPrometheus: %.2000s\nNightLight: %.2000s", path, params, err, p.Data, n.Data)
	} else if inexact > 0 {
		t.Logf("%d values equal only within %g (relative)", inexact, relTolerance)
	}
}

// relTolerance bounds how far a NightLight average may be from
// Prometheus 2.42's; every other value must be bit-equal. 2.42 averages
// incrementally (mean += x/n - mean/n) in avg and avg_over_time, where
// Prometheus 3 (NightLight's engine) sums directly with Kahan
// compensation: the same samples then give averages a few ulps apart
// (22.1 against 22.099999999999994). A semantic difference is many orders
// of magnitude larger.
const relTolerance = 1e-12

// sameResult compares two answers' data as parsed JSON: result type, label
// sets and timestamps exactly, sample values (the strings Prometheus
// formats floats to) exactly when exact is set and else within
// relTolerance, counting the values that are not bit-equal. Series order is
// compared only when ordered is set (sort, sort_desc): elsewhere the API
// leaves it unspecified.
func sameResult(p, n apiAnswer, ordered, exact bool) (inexact int, err error) {
	pv, err := normalize(p.Data, ordered)
	if err != nil {
		return 0, fmt.Errorf("Prometheus: %w", err)
	}
	nv, err := normalize(n.Data, ordered)
	if err != nil {
		return 0, fmt.Errorf("NightLight: %w", err)
	}
	var diffs []string
	walkDiff("", pv, nv, exact, &inexact, &diffs)
	if len(diffs) == 0 {
		return inexact, nil
	}
	if len(diffs) > 10 {
		diffs = append(diffs[:10], fmt.Sprintf("… %d more", len(diffs)-10))
	}
	return inexact, errors.New(strings.Join(diffs, "\n"))
}

// walkDiff appends to diffs where b differs from a (Prometheus's and
// NightLight's decoded data), naming the place by path.
func walkDiff(path string, a, b any, exact bool, inexact *int, diffs *[]string) {
	switch av := a.(type) {
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok || len(av) != len(bv) {
			*diffs = append(*diffs, fmt.Sprintf("%s: Prometheus %s, NightLight %s", path, mustJSON(a), mustJSON(b)))
			return
		}
		for k, x := range av {
			y, ok := bv[k]
			if !ok {
				*diffs = append(*diffs, fmt.Sprintf("%s: Prometheus %s, NightLight %s", path, mustJSON(a), mustJSON(b)))
				return
			}
			walkDiff(path+"."+k, x, y, exact, inexact, diffs)
		}
	case []any:
		bv, ok := b.([]any)
		if !ok || len(av) != len(bv) {
			*diffs = append(*diffs, fmt.Sprintf("%s: Prometheus %.500s, NightLight %.500s", path, mustJSON(a), mustJSON(b)))
			return
		}
		if sample(av) && sample(bv) && mustJSON(av[0]) == mustJSON(bv[0]) && av[1] != bv[1] {
			x, _ := strconv.ParseFloat(av[1].(string), 64)
			y, _ := strconv.ParseFloat(bv[1].(string), 64)
			if !exact && math.Abs(x-y) <= relTolerance*math.Max(math.Abs(x), math.Abs(y)) {
				*inexact++
				return
			}
			*diffs = append(*diffs, fmt.Sprintf("%s at %v: Prometheus %s, NightLight %s", path, av[0], av[1], bv[1]))
			return
		}
		for i := range av {
			walkDiff(fmt.Sprintf("%s[%d]", path, i), av[i], bv[i], exact, inexact, diffs)
		}
	default:
		if mustJSON(a) != mustJSON(b) {
			*diffs = append(*diffs, fmt.Sprintf("%s: Prometheus %s, NightLight %s", path, mustJSON(a), mustJSON(b)))
		}
	}
}

// sample reports whether v is a [timestamp, "value"] pair.
func sample(v []any) bool {
	if len(v) != 2 {
		return false
	}
	_, ts := v[0].(json.Number)
	_, val := v[1].(string)
	return ts && val
}

// normalize decodes data keeping numbers as written and, unless ordered,
// sorts vector and matrix results and series lists by their encoding.
func normalize(data json.RawMessage, ordered bool) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	sortList := func(list []any) {
		if ordered {
			return
		}
		sort.Slice(list, func(i, j int) bool { return mustJSON(list[i]) < mustJSON(list[j]) })
	}
	switch d := v.(type) {
	case map[string]any:
		if list, ok := d["result"].([]any); ok {
			sortList(list)
		}
	case []any: // series, labels, label values
		sortList(d)
	}
	return v, nil
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// promInstant evaluates q on Prometheus (now, or at time at) and returns
// the values of the resulting vector.
func promInstant(t *testing.T, hc *http.Client, base, q, at string) []float64 {
	t.Helper()
	params := url.Values{"query": {q}}
	if at != "" {
		params.Set("time", at)
	}
	a, err := apiGet(hc, base, "/api/v1/query", params)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Result []struct {
			Value [2]any `json:"value"`
		} `json:"result"`
	}
	if err := json.Unmarshal(a.Data, &d); err != nil {
		t.Fatal(err)
	}
	var out []float64
	for _, r := range d.Result {
		s, _ := r.Value[1].(string)
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("%s: value %v", q, r.Value)
		}
		out = append(out, f)
	}
	return out
}

// msTime formats a Unix time in milliseconds as the API's seconds.
func msTime(ms int64) string {
	return strconv.FormatFloat(float64(ms)/1000, 'f', 3, 64)
}
