// Package gctune sets the Go garbage collector's target from the live
// heap: a high GOGC while the heap is small (the control plane's requests
// are cheaper with fewer collections) and Go's default once it is large
// (NightLight's TSDB head, whose 4× headroom would be hundreds of MiB).
package gctune

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Budget is the heap growth above the live heap that the high setting may
// cost: with a live heap of Budget/4 or less GOGC is Max; above it, GOGC
// falls so that the growth stays at Budget, down to Min.
const (
	Budget = 256 << 20
	Max    = 400
	Min    = 100
)

// Percent is the GOGC for a live heap of live bytes.
func Percent(live uint64) int {
	if live == 0 {
		return Max
	}
	p := int(uint64(Budget) * 100 / live)
	return min(Max, max(Min, p))
}

// Run adjusts GOGC to Percent of the live heap every interval until ctx
// ends. It changes the setting only when it moves by a tenth or more.
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
		if p := Percent(sample[0].Value.Uint64()); p*10 < cur*9 || p*10 > cur*11 {
			debug.SetGCPercent(p)
			cur = p
		}
	}
}
