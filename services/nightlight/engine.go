package nightlight

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
)

// EngineConfig is the PromQL engine's settings, with Prometheus's defaults.
type EngineConfig struct {
	// MaxSamples is how many samples one query may hold in memory
	// (Prometheus's --query.max-samples).
	MaxSamples int
	// Timeout ends a query that runs longer (--query.timeout).
	Timeout time.Duration
	// LookbackDelta is how far back an instant selector looks
	// (--query.lookback-delta).
	LookbackDelta time.Duration
	// EvalInterval is the step of a subquery that names none: the rules'
	// evaluation interval, as in Prometheus.
	EvalInterval time.Duration
}

// Defaults fills unset fields with Prometheus's defaults.
func (c *EngineConfig) Defaults() {
	if c.MaxSamples == 0 {
		c.MaxSamples = 50_000_000
	}
	if c.Timeout == 0 {
		c.Timeout = 2 * time.Minute
	}
	if c.LookbackDelta == 0 {
		c.LookbackDelta = 5 * time.Minute
	}
	if c.EvalInterval == 0 {
		c.EvalInterval = time.Minute
	}
}

// NewParser is the PromQL parser NightLight uses everywhere (engine, API,
// rules): Prometheus's, with its default (stable) function set.
func NewParser() parser.Parser { return parser.NewParser(parser.Options{}) }

// NewEngine is Prometheus's PromQL engine set up as Prometheus sets it up
// (cmd/prometheus): the @ modifier and negative offsets on, the
// no-step subquery interval from the evaluation interval.
func NewEngine(cfg EngineConfig, logger *slog.Logger, reg prometheus.Registerer) *promql.Engine {
	cfg.Defaults()
	step := cfg.EvalInterval.Milliseconds()
	return promql.NewEngine(promql.EngineOpts{
		Logger:                   logger,
		Reg:                      reg,
		MaxSamples:               cfg.MaxSamples,
		Timeout:                  cfg.Timeout,
		LookbackDelta:            cfg.LookbackDelta,
		NoStepSubqueryIntervalFn: func(int64) int64 { return step },
		EnableAtModifier:         true,
		EnableNegativeOffset:     true,
		Parser:                   NewParser(),
	})
}
