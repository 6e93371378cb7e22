package creditservice

import (
	"fmt"
	"time"
)

// Config is one CreditService replica. Zero optional fields are filled by
// Defaults.
type Config struct {
	// HTTPAddr serves the REST API.
	HTTPAddr string
	// Currency is what new wallets count in unless they name one.
	Currency string
	// DefaultReservationTTL applies when a reservation names no
	// ttl_seconds; MaxReservationTTL bounds any.
	DefaultReservationTTL, MaxReservationTTL time.Duration
	// SweepInterval is how often the elected sweeper expires reservations
	// past their TTL and forgets old idempotency keys.
	SweepInterval time.Duration
	// IdempotencyTTL is how long an Idempotency-Key is remembered.
	IdempotencyTTL time.Duration
	// Node names this replica in the sweeper election.
	Node string
	// RequestTimeout bounds each request's store work; MaxBodyBytes its body.
	RequestTimeout time.Duration
	MaxBodyBytes   int64
	// Version is reported by /health.
	Version string
}

// Defaults fills unset fields.
func (c *Config) Defaults() {
	if c.HTTPAddr == "" {
		c.HTTPAddr = "127.0.0.1:8086"
	}
	if c.Currency == "" {
		c.Currency = "JPY"
	}
	if c.DefaultReservationTTL == 0 {
		c.DefaultReservationTTL = time.Hour
	}
	if c.MaxReservationTTL == 0 {
		c.MaxReservationTTL = 7 * 24 * time.Hour
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = time.Second
	}
	if c.IdempotencyTTL == 0 {
		c.IdempotencyTTL = 24 * time.Hour
	}
	if c.Node == "" {
		c.Node = "creditservice-1"
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 5 * time.Second
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 1 << 20
	}
}

// Validate reports a configuration CreditService cannot run with.
func (c *Config) Validate() error {
	switch {
	case c.DefaultReservationTTL > c.MaxReservationTTL:
		return fmt.Errorf("default reservation TTL %s exceeds the maximum %s", c.DefaultReservationTTL, c.MaxReservationTTL)
	case c.MaxReservationTTL < time.Second:
		return fmt.Errorf("max reservation TTL %s is under a second", c.MaxReservationTTL)
	case len(c.Currency) != 3:
		return fmt.Errorf("currency %q is not a three-letter ISO 4217 code", c.Currency)
	}
	return nil
}
