package pairbench

import (
	"fmt"
	"slices"
	"time"
)

// Latency prints a latency in ms with 2 decimals (µs below 0.1 ms).
func Latency(d time.Duration) string {
	if d < 100*time.Microsecond {
		return fmt.Sprintf("%dµs", d.Microseconds())
	}
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}

// Spread prints the smallest, median and largest of xs ("-" for none).
func Spread(xs []float64) string {
	if len(xs) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f / %.0f / %.0f", slices.Min(xs), Median(xs), slices.Max(xs))
}
