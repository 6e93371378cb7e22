package iam

import (
	"fmt"
	"time"
)

// Config is one IAM replica. Zero optional fields are filled by Defaults.
type Config struct {
	// HTTPAddr serves the REST API.
	HTTPAddr string
	// AdminTokenPath, if set, is where IAM keeps a current bootstrap admin
	// token (mode 0600), re-issued before it expires.
	AdminTokenPath string
	// DefaultTokenTTL applies when a request names no ttl_seconds;
	// MaxTokenTTL bounds any token.
	DefaultTokenTTL, MaxTokenTTL time.Duration
	// KeyRotation is how long a signing key signs before a new one takes
	// over; an old key stays published until its last token has expired.
	KeyRotation time.Duration
	// PasswordMemoryKiB and PasswordTime are the argon2id cost.
	PasswordMemoryKiB uint32
	PasswordTime      uint32
	// LoginFailures failed logins for one principal from one source within
	// LoginWindow lock that pair out for LoginWindow (429); 4× as many from
	// any source lock the principal.
	LoginFailures int
	LoginWindow   time.Duration
	// RequestTimeout bounds every request's store work; MaxBodyBytes its body.
	RequestTimeout time.Duration
	MaxBodyBytes   int64
	// Version is reported by /health.
	Version string
}

// Defaults fills unset fields.
func (c *Config) Defaults() {
	if c.HTTPAddr == "" {
		c.HTTPAddr = "127.0.0.1:8083"
	}
	if c.DefaultTokenTTL == 0 {
		c.DefaultTokenTTL = time.Hour
	}
	if c.MaxTokenTTL == 0 {
		c.MaxTokenTTL = 24 * time.Hour
	}
	if c.KeyRotation == 0 {
		c.KeyRotation = 24 * time.Hour
	}
	if c.PasswordMemoryKiB == 0 {
		c.PasswordMemoryKiB = 19 * 1024 // OWASP's argon2id floor
	}
	if c.PasswordTime == 0 {
		c.PasswordTime = 2
	}
	if c.LoginFailures == 0 {
		c.LoginFailures = 5
	}
	if c.LoginWindow == 0 {
		c.LoginWindow = time.Minute
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 5 * time.Second
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 1 << 20
	}
}

// Validate reports a configuration IAM cannot run with.
func (c *Config) Validate() error {
	switch {
	case c.DefaultTokenTTL > c.MaxTokenTTL:
		return fmt.Errorf("default token TTL %s exceeds the maximum %s", c.DefaultTokenTTL, c.MaxTokenTTL)
	case c.MaxTokenTTL < time.Second:
		return fmt.Errorf("max token TTL %s is under a second", c.MaxTokenTTL)
	case c.KeyRotation < time.Second:
		return fmt.Errorf("key rotation %s is under a second", c.KeyRotation)
	case c.LoginFailures < 1:
		return fmt.Errorf("login failures %d must be at least 1", c.LoginFailures)
	}
	return nil
}
