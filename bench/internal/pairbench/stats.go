package pairbench

import (
	"cmp"
	"math"
	"slices"
	"time"
)

// Percentile is the p-quantile of sorted xs by nearest rank (the smallest x
// with at least p of the values at or below it); zero for no values.
func Percentile[T cmp.Ordered](sorted []T, p float64) T {
	if len(sorted) == 0 {
		var zero T
		return zero
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// Median of xs (the mean of the middle two for an even count).
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// MedianCI is a distribution-free confidence interval of at least 95 % for
// the median of the population xs was drawn from: the k-th smallest and k-th
// largest values, with k the largest rank such that P(Binomial(n, ½) < k) ≤
// 2.5 %. ok is false when n is too small (below 6) for any such k.
func MedianCI(xs []float64) (lo, hi float64, ok bool) {
	n := len(xs)
	s := slices.Clone(xs)
	slices.Sort(s)
	// cdf accumulates P(B ≤ i) for B ~ Binomial(n, ½).
	k, cdf, pmf := 0, 0.0, math.Pow(0.5, float64(n))
	for i := 0; i < n; i++ {
		cdf += pmf
		if cdf > 0.025 {
			break
		}
		k = i + 1 // P(B ≤ i) = P(B < k) ≤ 2.5 %
		pmf = pmf * float64(n-i) / float64(i+1)
	}
	if k < 1 {
		return 0, 0, false
	}
	return s[k-1], s[n-k], true
}

// Summary is one target's slices, pooled.
type Summary struct {
	Ops       int
	Window    time.Duration
	OpsPerSec float64   // total ops over total recorded time
	PerCycle  []float64 // ops/s of each slice, in cycle order
	Errs      int
	FirstErr  error
	CPU       CPU     // total over the recorded windows
	Others    float64 // cores the rest of the machine used meanwhile
	P50, P99  time.Duration
}

// Summarize pools the slices of target in all: throughput over the total
// recorded time, percentiles over all the latencies together.
func Summarize(all []Slice, target string) Summary {
	var s Summary
	var lats []time.Duration
	for _, r := range all {
		if r.Target != target {
			continue
		}
		s.Ops += r.Ops
		s.Window += r.Window
		s.PerCycle = append(s.PerCycle, r.OpsPerSec())
		s.Errs += r.Errs
		if s.FirstErr == nil {
			s.FirstErr = r.FirstErr
		}
		s.CPU = s.CPU.Add(r.CPU)
		lats = append(lats, r.Lats...)
	}
	if s.Window > 0 {
		s.OpsPerSec = float64(s.Ops) / s.Window.Seconds()
		s.Others = max(0, (s.CPU.Machine-s.CPU.Server-s.CPU.Self).Seconds()/s.Window.Seconds())
	}
	slices.Sort(lats)
	s.P50, s.P99 = Percentile(lats, 0.50), Percentile(lats, 0.99)
	return s
}

// PerOp is d spread over the summary's ops (0 without ops), e.g.
// s.PerOp(s.CPU.Server) is the server's CPU per op.
func (s Summary) PerOp(d time.Duration) time.Duration {
	if s.Ops <= 0 {
		return 0
	}
	return d / time.Duration(s.Ops)
}

// Ratio is num/den from slices paired by cycle, which ran within seconds of
// each other on the same machine.
type Ratio struct {
	PerCycle []float64
	Median   float64
	Lo, Hi   float64 // 95 % CI of the median
	CIOK     bool    // false when there are too few cycles for a CI
}

// Pair divides num[i] by den[i] for every cycle both have (leaving out cycles
// where den[i] is 0) and takes the median of those ratios with its CI. ok is
// false when no cycle pairs.
func Pair(num, den []float64) (r Ratio, ok bool) {
	for i := range min(len(num), len(den)) {
		if den[i] > 0 {
			r.PerCycle = append(r.PerCycle, num[i]/den[i])
		}
	}
	if len(r.PerCycle) == 0 {
		return r, false
	}
	r.Median = Median(r.PerCycle)
	r.Lo, r.Hi, r.CIOK = MedianCI(r.PerCycle)
	return r, true
}
