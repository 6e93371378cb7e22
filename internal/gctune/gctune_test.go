package gctune

import (
	"context"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	for _, tc := range []struct {
		live      uint64
		cur, want int
	}{
		{0, Max, Max}, {10 << 20, Min, Max}, {47 << 20, Min, Max},
		{50 << 20, Min, Min}, {50 << 20, Max, Max}, // between the lines: unchanged
		{64 << 20, Max, Min}, {1 << 30, Max, Min},
	} {
		if got := Percent(tc.live, tc.cur); got != tc.want {
			t.Errorf("Percent(%d MiB, %d) = %d, want %d", tc.live>>20, tc.cur, got, tc.want)
		}
	}
}

// TestRunFollowsTheLiveHeap: with a large live heap the setting comes down
// to Min, and back up to Max once the heap is released.
func TestRunFollowsTheLiveHeap(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); Run(ctx, 10*time.Millisecond) }()
	defer func() { cancel(); <-done }()
	waitFor := func(want int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			runtime.GC() // the live-heap figure is updated by collections
			s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
			metrics.Read(s)
			p := int(s[0].Value.Uint64())
			if p == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("GOGC = %d, want %d", p, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor(Max)
	big := make([][]byte, 0, 96)
	for range 96 {
		big = append(big, make([]byte, 1<<20))
	}
	waitFor(Min)
	runtime.KeepAlive(big)
	big = nil
	waitFor(Max)
}
