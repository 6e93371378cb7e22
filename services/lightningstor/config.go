package lightningstor

import "time"

// Config is one LightningSTOR server. Zero fields are filled by Defaults.
type Config struct {
	// HTTPAddr serves the S3 API (and /-/health, /-/metrics).
	HTTPAddr string
	// DataDir holds the objects and their metadata.
	DataDir string
	// Region is the one region this S3 is (GetBucketLocation; any region
	// a client signs for is accepted).
	Region string
	// Domain, when set, enables virtual-host-style addressing:
	// "<bucket>.<Domain>".
	Domain string
	// UploadExpiry is how long a multipart upload may stay unfinished
	// before the sweep aborts it.
	UploadExpiry time.Duration
	// Version is reported by /-/health.
	Version string
}

// Defaults fills unset fields.
func (c *Config) Defaults() {
	if c.HTTPAddr == "" {
		c.HTTPAddr = "127.0.0.1:9000"
	}
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	if c.Domain == "" {
		c.Domain = "localhost"
	}
	if c.UploadExpiry == 0 {
		c.UploadExpiry = DefaultUploadExpiry
	}
}
