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
		live uint64
		want int
	}{
		{0, 400}, {10 << 20, 400}, {64 << 20, 400}, {128 << 20, 200}, {256 << 20, 100}, {1 << 30, 100},
	} {
		if got := Percent(tc.live); got != tc.want {
			t.Errorf("Percent(%d MiB) = %d, want %d", tc.live>>20, got, tc.want)
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
	big := make([][]byte, 0, 320)
	for range 320 {
		big = append(big, make([]byte, 1<<20))
	}
	waitFor(Min)
	runtime.KeepAlive(big)
	big = nil
	waitFor(Max)
}
