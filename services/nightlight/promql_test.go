package nightlight

import (
	"context"
	"errors"
	"log/slog"
	"path"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// testStorage is the storage the PromQL tests query: a real TSDB in a temp
// dir. It is the one place to switch to NightLight's own opener.
func testStorage(t testing.TB) storage.Storage {
	t.Helper()
	return openTSDB(t, scriptTSDBOptions())
}

// scriptTSDBOptions are tsdb.DefaultOptions with the block range widened to
// 24h, as Prometheus's own script storage (util/teststorage) has it. Scripts
// load series one after another, each from t=0, and a head with 2h blocks
// refuses a sample older than half a block range behind its newest one ("out
// of bounds": at_modifier, selectors, aggregators, range_queries). That is
// ingestion order, not PromQL; queries read the same TSDB either way.
func scriptTSDBOptions() *tsdb.Options {
	opts := tsdb.DefaultOptions()
	opts.MinBlockDuration = (24 * time.Hour).Milliseconds()
	opts.MaxBlockDuration = opts.MinBlockDuration
	return opts
}

// openTSDB opens a TSDB with opts in a fresh temp dir, closed at cleanup.
func openTSDB(t testing.TB, opts *tsdb.Options) *tsdb.DB {
	t.Helper()
	db, err := tsdb.Open(t.TempDir(), nil, nil, opts, tsdb.NewDBStats())
	if err != nil {
		t.Fatalf("open tsdb: %v", err)
	}
	// promqltest closes the storage itself on clear; a second Close is harmless.
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// testEngine is NightLight's engine as NewEngine builds it, closed at cleanup.
func testEngine(t testing.TB, cfg EngineConfig) *promql.Engine {
	t.Helper()
	ng := NewEngine(cfg, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	t.Cleanup(func() { _ = ng.Close() })
	return ng
}

// feature is what one `prometheus --enable-feature=<flag>` changes in the
// parser, the engine and the TSDB (cmd/prometheus/main.go,
// setFeatureListOptions, v0.316.0).
type feature struct {
	parser func(*parser.Options)
	engine func(*promql.EngineOpts)
	tsdb   func(*tsdb.Options)
}

// prometheusFeatures are the --enable-feature flags some builtin scripts need,
// each set exactly as the Prometheus binary sets it.
var prometheusFeatures = map[string]feature{
	"promql-experimental-functions": {parser: func(o *parser.Options) { o.EnableExperimentalFunctions = true }},
	"promql-binop-fill-modifiers":   {parser: func(o *parser.Options) { o.EnableBinopFillModifiers = true }},
	"promql-unquoted-utf8-names":    {parser: func(o *parser.Options) { o.EnableUnquotedUTF8Names = true }},
	"promql-delayed-name-removal":   {engine: func(o *promql.EngineOpts) { o.EnableDelayedNameRemoval = true }},
	"use-start-timestamps":          {engine: func(o *promql.EngineOpts) { o.UseStartTimestamps = true }},
	"st-storage": {tsdb: func(o *tsdb.Options) {
		o.EnableSTStorage = true
		o.FloatChunkEncoding = chunkenc.EncXOR2
		o.EnableHistogramSTEncoding = true
	}},
}

// scriptFeatures names the builtin scripts that test features a stock
// `prometheus` (3.x without --enable-feature; 2.42 has none of them) refuses
// or computes differently, and so NightLight, a stock Prometheus, does too.
// Those scripts run on an engine and TSDB configured as
// `prometheus --enable-feature=<flags>` would be; every other script runs on
// NightLight's own engine. Each comment is the error NightLight's engine gave
// on that script. A script added by a new Prometheus release runs on
// NightLight's engine, so one needing a feature fails here, not silently.
var scriptFeatures = map[string][]string{
	// limitk, limit_ratio, mad_over_time, integral, sort_by_label, ts_of_*,
	// start/end/range/step, min_of/max_of, double_exponential_smoothing,
	// histogram_quantiles, info: parse errors ("function ... is not enabled").
	"aggregators.test":   {"promql-experimental-functions"},
	"at_modifier.test":   {"promql-experimental-functions"},
	"functions.test":     {"promql-experimental-functions"},
	"info.test":          {"promql-experimental-functions"},
	"limit.test":         {"promql-experimental-functions"},
	"range_queries.test": {"promql-experimental-functions"},
	// Also expect `for metric name "x"` in histogram annotations, which the
	// engine can name only while __name__ is still there.
	"histograms.test":        {"promql-experimental-functions", "promql-delayed-name-removal"},
	"native_histograms.test": {"promql-experimental-functions", "promql-delayed-name-removal"},
	// Without it: "vector cannot contain metrics with the same labelset".
	"name_label_dropping.test": {"promql-delayed-name-removal"},
	// `a + fill(0) b`: "binop fill modifiers are experimental and not enabled".
	"fill-modifier.test": {"promql-binop-fill-modifiers"},
	// `metric.name` unquoted: "unexpected character: '.'".
	"unquoted_utf8_names.test": {"promql-unquoted-utf8-names"},
	// Start timestamps must be stored (st-storage) and read by rate/increase
	// (use-start-timestamps); start_timestamp() is experimental.
	"start_timestamps.test": {"st-storage", "use-start-timestamps", "promql-experimental-functions"},
}

// scriptStorage is a script's storage, tagged with the engine that script
// runs on, so that one QueryEngine can serve all of RunBuiltinTestsWithStorage.
type scriptStorage struct {
	storage.Storage
	engine promql.QueryEngine
}

// scriptEngine sends each query to the engine of the script whose storage
// it reads.
type scriptEngine struct{}

func (scriptEngine) pick(q storage.Queryable) promql.QueryEngine {
	return q.(scriptStorage).engine
}

func (e scriptEngine) NewInstantQuery(ctx context.Context, q storage.Queryable, opts promql.QueryOpts, qs string, ts time.Time) (promql.Query, error) {
	return e.pick(q).NewInstantQuery(ctx, q, opts, qs, ts)
}

func (e scriptEngine) NewRangeQuery(ctx context.Context, q storage.Queryable, opts promql.QueryOpts, qs string, start, end time.Time, step time.Duration) (promql.Query, error) {
	return e.pick(q).NewRangeQuery(ctx, q, opts, qs, start, end, step)
}

// featureEngine is Prometheus's engine as cmd/prometheus builds it with
// --enable-feature=flags and its default query flags.
func featureEngine(t testing.TB, flags []string) *promql.Engine {
	t.Helper()
	var cfg EngineConfig // Prometheus's flag defaults
	cfg.Defaults()
	var popts parser.Options
	opts := promql.EngineOpts{
		Logger:                   slog.New(slog.DiscardHandler),
		Reg:                      prometheus.NewRegistry(),
		MaxSamples:               cfg.MaxSamples,
		Timeout:                  cfg.Timeout,
		LookbackDelta:            cfg.LookbackDelta,
		NoStepSubqueryIntervalFn: func(int64) int64 { return cfg.EvalInterval.Milliseconds() },
		EnableAtModifier:         true,
		EnableNegativeOffset:     true,
	}
	for _, f := range flags {
		ft, ok := prometheusFeatures[f]
		if !ok {
			t.Fatalf("unknown feature %q", f)
		}
		if ft.parser != nil {
			ft.parser(&popts)
		}
		if ft.engine != nil {
			ft.engine(&opts)
		}
	}
	opts.Parser = parser.NewParser(popts)
	ng := promql.NewEngine(opts)
	t.Cleanup(func() { _ = ng.Close() })
	return ng
}

// featureStorage is a TSDB as `prometheus --enable-feature=flags` opens it.
func featureStorage(t testing.TB, flags []string) storage.Storage {
	t.Helper()
	opts := scriptTSDBOptions()
	for _, f := range flags {
		if ft := prometheusFeatures[f]; ft.tsdb != nil {
			ft.tsdb(opts)
		}
	}
	return openTSDB(t, opts)
}

// TestPromQLBuiltinScripts runs every .test script of the Prometheus
// release in go.mod (promql/promqltest/testdata) — the suite Prometheus's own
// TestEvaluations runs — against NightLight's engine on a real TSDB. Scripts
// listed in scriptFeatures run on a stock-Prometheus-plus-flag engine instead.
func TestPromQLBuiltinScripts(t *testing.T) {
	stock := testEngine(t, EngineConfig{})
	seen := map[string]bool{}
	promqltest.RunBuiltinTestsWithStorage(t, scriptEngine{}, func(t testing.TB) storage.Storage {
		script := path.Base(t.Name())
		seen[script] = true
		flags, ok := scriptFeatures[script]
		if !ok {
			return scriptStorage{Storage: testStorage(t), engine: stock}
		}
		return scriptStorage{Storage: featureStorage(t, flags), engine: featureEngine(t, flags)}
	})
	t.Logf("ran %d builtin scripts", len(seen))
	for script := range scriptFeatures {
		if !seen[script] {
			t.Errorf("scriptFeatures names %s, which is not a builtin script of this Prometheus release", script)
		}
	}
}

// loadSeries appends one sample per second for n seconds to a series named
// name, starting at t=0.
func loadSeries(t testing.TB, st storage.Storage, name string, n int) {
	t.Helper()
	app := st.AppenderV2(context.Background())
	ls := labels.FromStrings(labels.MetricName, name)
	for i := range n {
		if _, err := app.Append(0, ls, 0, int64(i)*1000, float64(i), nil, nil, storage.AppendV2Options{}); err != nil {
			t.Fatalf("append: %v", err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatalf("commit: %v", err)
	}
}

// TestEngineMaxSamples checks that MaxSamples refuses a query that would hold
// more samples, with Prometheus's own error (which its API returns as
// errorType "execution"), and lets one under the limit through.
func TestEngineMaxSamples(t *testing.T) {
	st := testStorage(t)
	loadSeries(t, st, "m", 1200) // 20 minutes, 1 sample/s
	ng := testEngine(t, EngineConfig{MaxSamples: 1000})
	at := time.Unix(1199, 0)
	for _, tc := range []struct {
		query   string
		wantErr string // "" for success
	}{
		{`count_over_time(m[10m])`, ""}, // 600 samples
		{`count_over_time(m[20m])`, "query processing would load too many samples into memory in query execution"},  // 1200
		{`sum_over_time(m[15m:1s])`, "query processing would load too many samples into memory in query execution"}, // subquery, 900 steps + points
	} {
		t.Run(tc.query, func(t *testing.T) {
			q, err := ng.NewInstantQuery(context.Background(), st, nil, tc.query, at)
			if err != nil {
				t.Fatalf("NewInstantQuery: %v", err)
			}
			defer q.Close()
			res := q.Exec(context.Background())
			if tc.wantErr == "" {
				if res.Err != nil {
					t.Fatalf("query under the limit failed: %v", res.Err)
				}
				return
			}
			var tooMany promql.ErrTooManySamples
			if !errors.As(res.Err, &tooMany) {
				t.Fatalf("error = %v (%T), want promql.ErrTooManySamples", res.Err, res.Err)
			}
			if res.Err.Error() != tc.wantErr {
				t.Fatalf("error = %q, want %q", res.Err, tc.wantErr)
			}
		})
	}
}

// TestEngineTimeout checks that Timeout ends a slow query with Prometheus's
// timeout error (its API's errorType "timeout", HTTP 503). The query would
// run 86.4M subquery steps; were the timeout ignored it would stop at
// MaxSamples instead, with a different error, so the test cannot pass by luck.
// vector(time()), not vector(1): the engine evaluates a step-invariant
// expression once and copies it to every step without looking at the
// deadline, so only MaxSamples would end that one.
func TestEngineTimeout(t *testing.T) {
	st := testStorage(t)
	ng := testEngine(t, EngineConfig{Timeout: 20 * time.Millisecond, MaxSamples: 10_000_000})
	q, err := ng.NewInstantQuery(context.Background(), st, nil, `count_over_time(vector(time())[1000d:1s])`, time.Unix(1000*86400, 0))
	if err != nil {
		t.Fatalf("NewInstantQuery: %v", err)
	}
	defer q.Close()
	res := q.Exec(context.Background())
	var timeout promql.ErrQueryTimeout
	if !errors.As(res.Err, &timeout) {
		t.Fatalf("error = %v (%T), want promql.ErrQueryTimeout", res.Err, res.Err)
	}
	if want := "query timed out in expression evaluation"; res.Err.Error() != want {
		t.Fatalf("error = %q, want %q", res.Err, want)
	}
}
