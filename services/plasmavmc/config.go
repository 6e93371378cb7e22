package plasmavmc

import "time"

// Config is one PlasmaVMC controller replica. Zero fields are filled by
// Defaults.
type Config struct {
	// HTTPAddr serves the REST API.
	HTTPAddr string
	// MaxVCPUs and MaxMemoryMiB bound one VM whatever the nodes hold;
	// MinMemoryMiB is the least a guest gets.
	MaxVCPUs     int
	MaxMemoryMiB int
	MinMemoryMiB int
	// ImageDir holds uploaded images ("" keeps none); nodes read them
	// there, so it must be on their disk (one machine, or a shared path).
	ImageDir string
	// PrismNETURL is PrismNET's REST API, which makes VMs' NICs ("": VMs
	// have none).
	PrismNETURL string
	// CreditServiceURL is CreditService's REST API, whose quotas bound a
	// project's VMs ("": no quotas).
	CreditServiceURL string
	// Prices meter running VMs for wallets that opt in (Period 0: no
	// metering).
	Prices Prices
	// MaxImageBytes bounds one image upload.
	MaxImageBytes int64
	// RequestTimeout bounds each request's store work; MaxBodyBytes its body.
	RequestTimeout time.Duration
	MaxBodyBytes   int64
	// Version is reported by /health.
	Version string
}

// Defaults fills unset fields.
func (c *Config) Defaults() {
	if c.HTTPAddr == "" {
		c.HTTPAddr = "127.0.0.1:8084"
	}
	if c.MaxVCPUs == 0 {
		c.MaxVCPUs = 64
	}
	if c.MaxMemoryMiB == 0 {
		c.MaxMemoryMiB = 1 << 20 // 1 TiB
	}
	if c.MinMemoryMiB == 0 {
		c.MinMemoryMiB = 64
	}
	if c.MaxImageBytes == 0 {
		c.MaxImageBytes = 64 << 30
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 5 * time.Second
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 1 << 20
	}
}
