// Package gctune sets the Go garbage collector's target from the live
// heap: a high GOGC while the heap is small (the control plane's requests
// are cheaper with fewer collections) and Prometheus's own default once it
// is large (NightLight's TSDB head, whose 4× headroom would be hundreds of
// MiB; Prometheus 3 runs with GOGC 75, config.DefaultGoGCPercentage).
package gctune

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// The two settings and where the heap switches between them: down at
// Large, back up only below Small, so a heap near the line does not flap.
const (
	Max   = 400
	Min   = 75
	Large = 64 << 20
	Small = 48 << 20
)

// Percent is the GOGC for a live heap of live bytes, given the current one.
func Percent(live uint64, cur int) int {
	switch {
	case live >= Large:
		return Min
	case live < Small:
		return Max
	}
	return cur
}

// Run adjusts GOGC to the live heap every interval until ctx ends.
func Run(ctx context.Context, interval time.Duration) {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	debug.SetGCPercent(Max)
	cur := Max
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			continue
		}
		if p := Percent(sample[0].Value.Uint64(), cur); p != cur {
			debug.SetGCPercent(p)
			cur = p
		}
	}
}
