package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/photoncloud/photon/bench/internal/pairbench"
)

// runner drives one run against the two servers: targets[0] is NightLight
// (or its stand-in), targets[1] Prometheus.
type runner struct {
	opt     options
	gen     *generator
	targets [2]*server
	hc      *http.Client
	stderr  io.Writer
}

// turn is one scrape's whole stream sent to one target.
type turn struct {
	target   int
	scrape   int
	samples  int
	dur      time.Duration
	cpu      pairbench.CPU
	errs     int
	firstErr error
}

func (t turn) rate() float64 { return float64(t.samples) / t.dur.Seconds() }

// queryCase is one PromQL expression's latencies, one per round per target.
type queryCase struct {
	expr   string
	lats   [2][]time.Duration
	series [2]int // series in the answer
	same   string // whether the two answers were equal, and if not how
	ratio  pairbench.Ratio
	ok     bool
}

type results struct {
	turns      []turn
	first      pairbench.Ratio // scrape 0, which creates the series
	ingest     pairbench.Ratio // scrapes 1.., samples/s NightLight/Prometheus
	ingestOK   bool
	base, post [2]mem
	headSeries [2]int
	queries    []queryCase
	qStart     time.Time
	qEnd       time.Time
	errs       int
}

func (r *runner) run(ctx context.Context) (*results, error) {
	res := &results{}
	// Baseline memory: both idle and ready, before the first sample.
	time.Sleep(r.opt.settle)
	for i, s := range r.targets {
		m, err := readMem(s.Pid)
		if err != nil {
			return nil, err
		}
		res.base[i] = m
	}
	if err := r.ingest(ctx, res); err != nil {
		return nil, err
	}
	time.Sleep(r.opt.settle)
	for i, s := range r.targets {
		m, err := readMem(s.Pid)
		if err != nil {
			return nil, err
		}
		res.post[i] = m
		n, err := r.headSeries(ctx, s)
		if err != nil {
			return nil, err
		}
		if n < r.opt.series {
			return nil, fmt.Errorf("%s holds %d head series after ingesting, want at least %d", s.name, n, r.opt.series)
		}
		res.headSeries[i] = n
	}
	if err := r.queryAll(ctx, res); err != nil {
		return nil, err
	}
	return res, nil
}

// ingest sends every scrape to both targets in turn, the order alternating
// as pairbench.CycleOrder has it; each scrape is encoded once, untimed,
// before its two turns, so both get the same bytes and the encoding is in
// neither's time.
func (r *runner) ingest(ctx context.Context, res *results) error {
	var rates [2][]float64
	for k := range r.opt.scrapes {
		batches, n, err := r.gen.scrape(k)
		if err != nil {
			return err
		}
		var line strings.Builder
		for _, i := range pairbench.CycleOrder(2, k) {
			t := r.send(ctx, i, batches)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			t.scrape, t.samples = k, n
			res.turns = append(res.turns, t)
			res.errs += t.errs
			if k > 0 {
				rates[i] = append(rates[i], t.rate())
			}
			fmt.Fprintf(&line, "  %s %8.0f", r.targets[i].name, t.rate())
			if t.errs > 0 {
				fmt.Fprintf(&line, " (%d errs, first: %v)", t.errs, t.firstErr)
			}
			time.Sleep(r.opt.gap)
		}
		fmt.Fprintf(r.stderr, "scrape %2d/%d (samples/s)%s\n", k+1, r.opt.scrapes, line.String())
	}
	first := res.turns[:2]
	if first[0].target != 0 {
		first = []turn{first[1], first[0]}
	}
	res.first, _ = pairbench.Pair([]float64{first[0].rate()}, []float64{first[1].rate()})
	res.ingest, res.ingestOK = pairbench.Pair(rates[0], rates[1])
	return nil
}

// send posts batches to target i from --conc writers, each taking the next
// unsent batch, and times the whole scrape.
func (r *runner) send(ctx context.Context, i int, batches [][]byte) turn {
	s := r.targets[i]
	t := turn{target: i}
	var next atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	cpu0 := pairbench.SampleCPU(s.Pid)
	t0 := time.Now()
	for range r.opt.conc {
		wg.Go(func() {
			for {
				b := int(next.Add(1)) - 1
				if b >= len(batches) || ctx.Err() != nil {
					return
				}
				if err := r.write(ctx, s.url, batches[b]); err != nil {
					mu.Lock()
					if t.errs++; t.firstErr == nil {
						t.firstErr = err
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	t.dur = time.Since(t0)
	t.cpu = pairbench.SampleCPU(s.Pid).Sub(cpu0)
	return t
}

// write is one remote-write 1.0 request, as Prometheus's own sender makes it.
func (r *runner) write(ctx context.Context, base string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/write", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	req.Header.Set("User-Agent", "photon-bench-nightlight")
	resp, err := r.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("remote write: HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	return nil
}

// headSeries is the target's in-memory series count (/api/v1/status/tsdb).
func (r *runner) headSeries(ctx context.Context, s *server) (int, error) {
	var v struct {
		Status string `json:"status"`
		Data   struct {
			HeadStats struct {
				NumSeries int `json:"numSeries"`
			} `json:"headStats"`
		} `json:"data"`
	}
	if err := r.getJSON(ctx, s.url+"/api/v1/status/tsdb", &v); err != nil {
		return 0, fmt.Errorf("%s: %w", s.name, err)
	}
	return v.Data.HeadStats.NumSeries, nil
}

func (r *runner) getJSON(ctx context.Context, u string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d: %.300s", u, resp.StatusCode, b)
	}
	return json.Unmarshal(b, v)
}

// queries are what dashboards ask of such a fleet: rates summed by a
// label, a quantile from classic histogram buckets, topk of a gauge, a
// count by label, and a filtered average of rates over every CPU series.
var queries = []string{
	`sum by (job) (rate(http_requests_total[1m]))`,
	`histogram_quantile(0.9, sum by (job, le) (rate(http_request_duration_seconds_bucket[1m])))`,
	`topk(5, node_memory_Active_bytes)`,
	`count by (job, region) (node_filesystem_avail_bytes)`,
	`avg by (region) (rate(node_cpu_seconds_total{mode!="idle"}[1m]))`,
	`sum by (device) (rate(node_network_receive_bytes_total[5m]))`,
}

// queryAll runs every query on both targets once untimed (their answers are
// compared), then --rounds timed rounds: in each round every query runs on
// both, the target order alternating by round.
func (r *runner) queryAll(ctx context.Context, res *results) error {
	// The range covers all the data but its first minute, at Grafana's step
	// for a 10-minute panel.
	res.qStart = time.UnixMilli(r.gen.start).Add(time.Minute).Truncate(time.Second)
	res.qEnd = time.UnixMilli(r.gen.end(r.opt.scrapes - 1)).Truncate(time.Second)
	form := func(expr string) url.Values {
		return url.Values{"query": {expr}, "start": {strconv.FormatInt(res.qStart.Unix(), 10)},
			"end": {strconv.FormatInt(res.qEnd.Unix(), 10)}, "step": {strconv.Itoa(int(r.opt.step.Seconds()))}}
	}
	for _, q := range queries {
		qc := queryCase{expr: q}
		var answers [2]matrix
		for i, s := range r.targets {
			m, _, err := r.queryRange(ctx, s.url, form(q))
			if err != nil {
				return fmt.Errorf("%s: %s: %w", s.name, q, err)
			}
			if len(m) == 0 {
				return fmt.Errorf("%s: %s: empty answer", s.name, q)
			}
			answers[i], qc.series[i] = m, len(m)
		}
		qc.same = compare(answers[0], answers[1])
		res.queries = append(res.queries, qc)
	}
	for round := range r.opt.rounds {
		for qi := range res.queries {
			qc := &res.queries[qi]
			for _, i := range pairbench.CycleOrder(2, round+qi) {
				_, d, err := r.queryRange(ctx, r.targets[i].url, form(qc.expr))
				if err != nil {
					return fmt.Errorf("%s: %s: %w", r.targets[i].name, qc.expr, err)
				}
				qc.lats[i] = append(qc.lats[i], d)
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		fmt.Fprintf(r.stderr, "query round %2d/%d done\n", round+1, r.opt.rounds)
	}
	for qi := range res.queries {
		qc := &res.queries[qi]
		var a, b []float64
		for k := range qc.lats[0] {
			a, b = append(a, qc.lats[0][k].Seconds()), append(b, qc.lats[1][k].Seconds())
		}
		qc.ratio, qc.ok = pairbench.Pair(a, b)
	}
	return nil
}

// matrix is a query_range answer: each series' metric (as a string) and its
// values, sorted by metric.
type matrix []rangeSeries

type rangeSeries struct {
	Metric map[string]string `json:"metric"`
	Values [][2]any          `json:"values"` // [unix seconds, "value"]
	key    string
}

// queryRange sends a form POST to /api/v1/query_range (as Grafana does) and
// returns the answer and the time to the last byte of the response.
func (r *runner) queryRange(ctx context.Context, base string, form url.Values) (matrix, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/query_range", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	t0 := time.Now()
	resp, err := r.hc.Do(req)
	if err != nil {
		return nil, 0, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	d := time.Since(t0)
	if err != nil {
		return nil, d, err
	}
	var v struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     matrix `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, d, fmt.Errorf("HTTP %d, body not JSON: %w: %.200s", resp.StatusCode, err, b)
	}
	if resp.StatusCode != http.StatusOK || v.Status != "success" || v.Data.ResultType != "matrix" {
		return nil, d, fmt.Errorf("HTTP %d, status %q, resultType %q: %s", resp.StatusCode, v.Status, v.Data.ResultType, v.Error)
	}
	m := v.Data.Result
	for i := range m {
		m[i].key = fmt.Sprint(m[i].Metric) // fmt sorts map keys
	}
	slices.SortFunc(m, func(a, b rangeSeries) int { return strings.Compare(a.key, b.key) })
	return m, d, nil
}

// compare says whether two answers are equal: same series, same points,
// and if not, how far apart the values are (the engines' float summation
// can differ in the last bits between Prometheus versions).
func compare(a, b matrix) string {
	if len(a) != len(b) {
		return fmt.Sprintf("differ: %d vs %d series", len(a), len(b))
	}
	points, diff, maxRel := 0, 0, 0.0
	for i := range a {
		if a[i].key != b[i].key {
			return "differ: series " + a[i].key + " vs " + b[i].key
		}
		if len(a[i].Values) != len(b[i].Values) {
			return fmt.Sprintf("differ: %s has %d vs %d points", a[i].key, len(a[i].Values), len(b[i].Values))
		}
		for j := range a[i].Values {
			points++
			pa, pb := a[i].Values[j], b[i].Values[j]
			if pa == pb {
				continue
			}
			diff++
			va, erra := strconv.ParseFloat(fmt.Sprint(pa[1]), 64)
			vb, errb := strconv.ParseFloat(fmt.Sprint(pb[1]), 64)
			if pa[0] != pb[0] || erra != nil || errb != nil {
				return fmt.Sprintf("differ: %s at %v: %v vs %v", a[i].key, pa[0], pa[1], pb[1])
			}
			if d := math.Abs(va-vb) / max(math.Abs(va), math.Abs(vb)); d > maxRel || math.IsNaN(d) {
				maxRel = d
			}
		}
	}
	switch {
	case diff == 0:
		return "equal"
	case maxRel <= 1e-9:
		return fmt.Sprintf("%d/%d points differ by ≤ %.0e (rel)", diff, points, maxRel)
	}
	return fmt.Sprintf("differ: %d/%d points, up to %.2g (rel)", diff, points, maxRel)
}
