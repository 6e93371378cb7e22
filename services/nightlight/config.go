package nightlight

import "time"

// Config is one NightLight server. Zero fields are filled by Defaults.
type Config struct {
	// HTTPAddr serves the Prometheus HTTP API, /health and /metrics.
	HTTPAddr string
	// DataDir holds the TSDB (blocks and WAL).
	DataDir string
	// ScrapeInterval and ScrapeTimeout are the global scrape settings
	// (the config file's global section, when it has one, wins).
	ScrapeInterval, ScrapeTimeout time.Duration
	// EvalInterval is how often rule groups are evaluated by default.
	EvalInterval time.Duration
	// ConfigFile, when set, is a Prometheus configuration file: its
	// global section, scrape_configs and rule_files are used.
	ConfigFile string
	// RetentionTime and RetentionSize bound what the TSDB keeps
	// (Prometheus's --storage.tsdb.retention.time and .size; a size of 0
	// means no size limit).
	RetentionTime time.Duration
	RetentionSize int64
	// TokenFile, when set, holds the bearer token NightLight presents
	// when it scrapes PhotonCloud's services (their /metrics need a
	// caller); `photon up` points it at DATA/admin.token.
	TokenFile string
	// Engine is the PromQL engine's settings.
	Engine EngineConfig
	// Version is reported by /health and /api/v1/status/buildinfo.
	Version string
}

// Defaults fills unset fields with Prometheus's defaults.
func (c *Config) Defaults() {
	if c.HTTPAddr == "" {
		c.HTTPAddr = "127.0.0.1:9090"
	}
	if c.ScrapeInterval == 0 {
		c.ScrapeInterval = 15 * time.Second
	}
	if c.ScrapeTimeout == 0 || c.ScrapeTimeout > c.ScrapeInterval {
		c.ScrapeTimeout = min(10*time.Second, c.ScrapeInterval)
	}
	if c.EvalInterval == 0 {
		c.EvalInterval = time.Minute
	}
	if c.RetentionTime == 0 {
		c.RetentionTime = 15 * 24 * time.Hour
	}
	if c.Engine.EvalInterval == 0 {
		c.Engine.EvalInterval = c.EvalInterval
	}
	c.Engine.Defaults()
}
