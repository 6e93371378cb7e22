package pairbench

import (
	"slices"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ten := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	tests := []struct {
		name   string
		sorted []float64
		p      float64
		want   float64
	}{
		{"empty", nil, 0.5, 0},
		{"one value", []float64{7}, 0.99, 7},
		{"p0 is the smallest", ten, 0, 1},
		{"median of ten is the 5th (nearest rank)", ten, 0.5, 5},
		{"p5 of ten is the 1st", ten, 0.05, 1},
		{"p99 of ten is the 10th", ten, 0.99, 10},
		{"p100 is the largest", ten, 1, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("Percentile(%v, %v) = %v, want %v", tt.sorted, tt.p, got, tt.want)
			}
		})
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		xs   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
	}
	for _, tt := range tests {
		in := slices.Clone(tt.xs)
		if got := Median(tt.xs); got != tt.want {
			t.Errorf("Median(%v) = %v, want %v", tt.xs, got, tt.want)
		}
		if !slices.Equal(in, tt.xs) {
			t.Errorf("Median reordered its argument: %v, was %v", tt.xs, in)
		}
	}
}

// The ranks are those of the usual tables of the distribution-free 95 %
// confidence interval of a median.
func TestMedianCI(t *testing.T) {
	tests := []struct {
		n              int
		ok             bool
		loRank, hiRank int // 1-based, in sorted order
	}{
		{n: 5, ok: false},
		{n: 6, ok: true, loRank: 1, hiRank: 6},
		{n: 9, ok: true, loRank: 2, hiRank: 8},
		{n: 10, ok: true, loRank: 2, hiRank: 9},
		{n: 20, ok: true, loRank: 6, hiRank: 15},
	}
	for _, tt := range tests {
		xs := make([]float64, tt.n)
		for i := range xs {
			xs[i] = float64(tt.n - i) // descending: MedianCI must sort
		}
		lo, hi, ok := MedianCI(xs)
		if ok != tt.ok {
			t.Fatalf("n=%d: ok = %v, want %v", tt.n, ok, tt.ok)
		}
		if ok && (lo != float64(tt.loRank) || hi != float64(tt.hiRank)) {
			t.Errorf("n=%d: CI = [%v, %v], want ranks [%d, %d]", tt.n, lo, hi, tt.loRank, tt.hiRank)
		}
	}
}

func TestPair(t *testing.T) {
	tests := []struct {
		name     string
		num, den []float64
		ok       bool
		perCycle []float64
		median   float64
	}{
		{"paired by cycle", []float64{2, 3, 8}, []float64{1, 2, 4}, true, []float64{2, 1.5, 2}, 2},
		{"a cycle with no den is left out", []float64{2, 3}, []float64{1, 0}, true, []float64{2}, 2},
		{"unpaired cycles are left out", []float64{2, 3, 4}, []float64{1}, true, []float64{2}, 2},
		{"nothing pairs", []float64{2}, []float64{0}, false, nil, 0},
		{"no cycles", nil, nil, false, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, ok := Pair(tt.num, tt.den)
			if ok != tt.ok || !slices.Equal(r.PerCycle, tt.perCycle) || r.Median != tt.median {
				t.Errorf("Pair = %+v, %v; want per-cycle %v, median %v, %v", r, ok, tt.perCycle, tt.median, tt.ok)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	ms := time.Millisecond
	all := []Slice{
		{Target: "a", Ops: 100, Window: 100 * ms, Lats: []time.Duration{3 * ms, 1 * ms}, Errs: 1,
			CPU: CPU{Server: 40 * ms, Self: 20 * ms, Machine: 160 * ms}},
		{Target: "b", Ops: 999, Window: 100 * ms, Lats: []time.Duration{50 * ms}},
		{Target: "a", Ops: 300, Window: 100 * ms, Lats: []time.Duration{2 * ms}, Errs: 2,
			CPU: CPU{Server: 60 * ms, Self: 30 * ms, Machine: 150 * ms}},
	}
	s := Summarize(all, "a")
	if s.Ops != 400 || s.Window != 200*ms || s.OpsPerSec != 2000 || s.Errs != 3 {
		t.Errorf("ops %d, window %v, ops/s %v, errs %d; want 400, 200ms, 2000, 3", s.Ops, s.Window, s.OpsPerSec, s.Errs)
	}
	if !slices.Equal(s.PerCycle, []float64{1000, 3000}) {
		t.Errorf("per cycle %v, want [1000 3000]", s.PerCycle)
	}
	if s.P50 != 2*ms || s.P99 != 3*ms {
		t.Errorf("p50 %v, p99 %v; want 2ms, 3ms", s.P50, s.P99)
	}
	// 310 ms of machine CPU, 150 ms of it the server's and the bench's, over 200 ms.
	if s.Others < 0.799 || s.Others > 0.801 {
		t.Errorf("others %v cores, want 0.8", s.Others)
	}
	if got := s.PerOp(s.CPU.Server); got != 250*time.Microsecond {
		t.Errorf("server CPU/op %v, want 250µs", got)
	}
	if empty := Summarize(all, "z"); empty.Ops != 0 || empty.OpsPerSec != 0 || empty.PerOp(time.Second) != 0 {
		t.Errorf("summary of no slices = %+v, want zero", empty)
	}
}

// Over 2n cycles each of n targets runs in each position twice and, for up
// to three targets, right after each other target twice.
func TestCycleOrder(t *testing.T) {
	for _, n := range []int{2, 3, 4} {
		pos := map[[2]int]int{}     // {target, position}
		follows := map[[2]int]int{} // {before, after}
		for cycle := range 2 * n {
			order := CycleOrder(n, cycle)
			if sorted := slices.Sorted(slices.Values(order)); !slices.Equal(sorted, CycleOrder(n, 0)) {
				t.Fatalf("n=%d cycle %d: order %v is not a permutation", n, cycle, order)
			}
			for i, target := range order {
				pos[[2]int{target, i}]++
				if i > 0 {
					follows[[2]int{order[i-1], target}]++
				}
			}
		}
		for k, c := range pos {
			if c != 2 {
				t.Errorf("n=%d: target %d ran in position %d %d times, want 2", n, k[0], k[1], c)
			}
		}
		if n <= 3 {
			for k, c := range follows {
				if c != 2 {
					t.Errorf("n=%d: target %d ran right after %d %d times, want 2", n, k[1], k[0], c)
				}
			}
		}
	}
}
