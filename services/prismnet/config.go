package prismnet

import "time"

// Config is one PrismNET control-plane replica. Zero fields are filled by
// Defaults.
type Config struct {
	// HTTPAddr serves the REST API.
	HTTPAddr string
	// RequestTimeout bounds each request's store work; MaxBodyBytes its body.
	RequestTimeout time.Duration
	MaxBodyBytes   int64
	// Version is reported by /health.
	Version string
}

// Defaults fills unset fields.
func (c *Config) Defaults() {
	if c.HTTPAddr == "" {
		c.HTTPAddr = "127.0.0.1:8087"
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 5 * time.Second
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 1 << 20
	}
}
