package pairbench

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// OpTimeout bounds one op of a closed-loop worker.
const OpTimeout = 10 * time.Second

// Slice is one target's recorded slice of one cycle.
type Slice struct {
	Target   string // the target's id
	Cycle    int
	Ops      int           // completed inside the recorded window
	Window   time.Duration // length of the recorded window
	Lats     []time.Duration
	CPU      CPU // used during the window
	Errs     int
	FirstErr error
}

// OpsPerSec is the slice's throughput (0 for an empty window).
func (s Slice) OpsPerSec() float64 {
	if s.Window <= 0 {
		return 0
	}
	return float64(s.Ops) / s.Window.Seconds()
}

// ClosedLoop is Conc workers that each issue Op one at a time, back to back:
// in a closed loop the completion rate is the throughput.
type ClosedLoop struct {
	Target    string // the id its slices carry
	Conc      int
	ServerPid int // the server whose CPU is sampled; 0 when it runs in this process
	Op        func(ctx context.Context) error
}

// Run runs the workers for settle (untimed), then for dur (recorded). An op
// counts when it completes inside the recorded window (also requiring the
// start inside would drop about one op per worker per slice), whose ends are
// taken next to the CPU samples; the workers keep issuing ops until the
// window has closed.
func (l ClosedLoop) Run(ctx context.Context, settle, dur time.Duration) Slice {
	type sample struct{ end, lat time.Duration } // end: since origin
	origin := time.Now()
	var stop atomic.Bool
	samples := make([][]sample, l.Conc)
	errs := make([]int, l.Conc)
	firstErrs := make([]error, l.Conc)
	var wg sync.WaitGroup
	for w := range l.Conc {
		wg.Go(func() {
			s := make([]sample, 0, 1024)
			for !stop.Load() && ctx.Err() == nil {
				t0 := time.Since(origin)
				octx, cancel := context.WithTimeout(ctx, OpTimeout)
				err := l.Op(octx)
				cancel()
				t1 := time.Since(origin)
				if err != nil {
					if ctx.Err() == nil {
						if errs[w]++; firstErrs[w] == nil {
							firstErrs[w] = err
						}
					}
					continue
				}
				s = append(s, sample{end: t1, lat: t1 - t0})
			}
			samples[w] = s
		})
	}
	sleepUntil(ctx, origin.Add(settle))
	w0 := time.Since(origin)
	cpu0 := SampleCPU(l.ServerPid)
	sleepUntil(ctx, origin.Add(settle+dur))
	cpu1 := SampleCPU(l.ServerPid)
	w1 := time.Since(origin)
	stop.Store(true)
	wg.Wait()

	r := Slice{Target: l.Target, Window: w1 - w0, CPU: cpu1.Sub(cpu0)}
	for w := range l.Conc {
		for _, s := range samples[w] {
			if s.end > w0 && s.end <= w1 {
				r.Lats = append(r.Lats, s.lat)
			}
		}
		r.Errs += errs[w]
		if r.FirstErr == nil {
			r.FirstErr = firstErrs[w]
		}
	}
	r.Ops = len(r.Lats)
	return r
}

func sleepUntil(ctx context.Context, t time.Time) {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-ctx.Done():
	case <-timer.C:
	}
}

// CycleOrder is the order of n targets in a cycle: rotated by one per cycle
// and reversed every n cycles, so that over 2n cycles each runs in each
// position twice and, for up to three targets, right after each other target
// twice.
func CycleOrder(n, cycle int) []int {
	base := make([]int, n)
	for i := range base {
		base[i] = i
	}
	if (cycle/n)%2 == 1 {
		slices.Reverse(base)
	}
	out := make([]int, n)
	for i := range n {
		out[i] = base[(i+cycle)%n]
	}
	return out
}

// Schedule is how one case interleaves its targets: each is warmed up once,
// then Cycles cycles run every target for one slice, in CycleOrder, so two
// targets never run at once and the two sides of a ratio run seconds apart.
type Schedule struct {
	Targets               int // how many targets take turns
	Cycles                int
	Warmup, Settle, Slice time.Duration
	// Prepare, when set, runs before every cycle.
	Prepare func() error
	// Warned, when set, hears of a target's warm-up that had errors.
	Warned func(target int, warm Slice)
	// Progress, when set, gets each cycle's ops/s per target, in the order
	// they ran ("  a   1234 (2 errs, first: …)  b …").
	Progress func(cycle int, rates string)
}

// Run runs the schedule; run(i, settle, dur) runs target i for settle untimed
// and then dur recorded (dur is 0 for the warm-up). Warm-up errors count: they
// are added to the target's first recorded slice. Run returns the recorded
// slices, in the order they ran.
func (s Schedule) Run(ctx context.Context, run func(target int, settle, dur time.Duration) Slice) ([]Slice, error) {
	warmErrs := make([]int, s.Targets)
	for i := range s.Targets {
		w := run(i, s.Warmup, 0)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		warmErrs[i] = w.Errs
		if w.FirstErr != nil && s.Warned != nil {
			s.Warned(i, w)
		}
	}
	var out []Slice
	for cycle := range s.Cycles {
		if s.Prepare != nil {
			if err := s.Prepare(); err != nil {
				return nil, err
			}
		}
		var line strings.Builder
		for _, i := range CycleOrder(s.Targets, cycle) {
			r := run(i, s.Settle, s.Slice)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			r.Cycle = cycle
			r.Errs += warmErrs[i]
			warmErrs[i] = 0
			fmt.Fprintf(&line, "  %s %6.0f", r.Target, r.OpsPerSec())
			if r.Errs > 0 {
				fmt.Fprintf(&line, " (%d errs, first: %v)", r.Errs, r.FirstErr)
			}
			out = append(out, r)
		}
		if s.Progress != nil {
			s.Progress(cycle, line.String())
		}
	}
	return out, nil
}
