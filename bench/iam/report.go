package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/photoncloud/photon/internal/buildinfo"
)

// env is what the report says about the machine and the software.
type env struct {
	date               time.Time
	cpus               int
	cpuModel, kernel   string
	memory             string
	fsType, dir        string
	commit             string
	loadStart, loadEnd string
	elapsed            time.Duration
	goVersion, command string
	tokenLen, msgLen   int // the admin token and its signing input
}

func describeEnv(ctx context.Context, opt options, dir string) env {
	return env{
		date:      time.Now(),
		cpus:      runtime.NumCPU(),
		cpuModel:  cpuModel(),
		kernel:    output(ctx, "uname", "-srm"),
		memory:    memTotal(),
		fsType:    mountOf(dir),
		dir:       dir,
		commit:    output(ctx, "git", "rev-parse", "--short", "HEAD"),
		loadStart: loadAvg(),
		goVersion: runtime.Version(),
		command:   strings.Join(append([]string{"go run ./bench/iam"}, os.Args[1:]...), " "),
	}
}

// output runs a command and returns its trimmed stdout ("?" on failure).
func output(ctx context.Context, name string, args ...string) string {
	b, err := exec.CommandContext(ctx, name, args...).Output()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

func cpuModel() string { return procField("/proc/cpuinfo", "model name") }

func memTotal() string {
	v := procField("/proc/meminfo", "MemTotal")
	var kib int64
	if _, err := fmt.Sscanf(v, "%d kB", &kib); err != nil {
		return "?"
	}
	return fmt.Sprintf("%.0f GiB RAM", float64(kib)/(1<<20))
}

// procField is the value of the first "key: value" line of a /proc file.
func procField(path, key string) string {
	b, _ := os.ReadFile(path)
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// mountOf describes the filesystem holding dir, from /proc/mounts.
func mountOf(dir string) string {
	b, _ := os.ReadFile("/proc/mounts")
	best, desc := "", "?"
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 3 {
			continue
		}
		if mnt := f[1]; len(mnt) > len(best) && (dir == mnt || strings.HasPrefix(dir, strings.TrimSuffix(mnt, "/")+"/")) {
			best, desc = mnt, fmt.Sprintf("%s on %s, mounted at %s", f[2], f[0], mnt)
		}
	}
	return desc
}

// loadAvg is the 1/5/15-minute load average.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "?"
}

// summary is one target's slices, pooled.
type summary struct {
	ops       int
	window    time.Duration
	opsPerSec float64
	perCycle  []float64 // ops/s of each slice, in cycle order
	perCPU    []float64 // ops per process CPU-second of each slice, in cycle order
	errs      int
	firstErr  error
	cpu       time.Duration // process CPU per op
	others    float64       // cores the rest of the machine used meanwhile
	// HTTP only
	p50, p99 time.Duration
}

func (s *summary) finish(cpu cpuSample) {
	if s.window > 0 {
		s.opsPerSec = float64(s.ops) / s.window.Seconds()
		s.others = max(0, (cpu.machine-cpu.process).Seconds()/s.window.Seconds())
	}
	if s.ops > 0 {
		s.cpu = cpu.process / time.Duration(s.ops)
	}
}

func summarizeVerify(all []vslice, id string) summary {
	var s summary
	var cpu cpuSample
	for _, r := range all {
		if r.target != id {
			continue
		}
		s.ops += r.ops
		s.window += r.window
		s.perCycle = append(s.perCycle, r.opsPerSec())
		s.errs += r.errs
		if s.firstErr == nil {
			s.firstErr = r.firstErr
		}
		cpu.process += r.cpu.process
		cpu.machine += r.cpu.machine
	}
	s.finish(cpu)
	return s
}

func summarizeHTTP(all []hslice, id string) summary {
	var s summary
	var cpu cpuSample
	var lats []time.Duration
	for _, r := range all {
		if r.target != id {
			continue
		}
		s.ops += r.ops
		s.window += r.window
		s.perCycle = append(s.perCycle, r.opsPerSec())
		s.perCPU = append(s.perCPU, perCPU(r.ops, r.cpu))
		s.errs += r.errs
		if s.firstErr == nil {
			s.firstErr = r.firstErr
		}
		cpu.process += r.cpu.process
		cpu.machine += r.cpu.machine
		lats = append(lats, r.lats...)
	}
	s.finish(cpu)
	slices.Sort(lats)
	s.p50, s.p99 = percentile(lats, 0.50), percentile(lats, 0.99)
	return s
}

// perCPU is ops per second of process CPU (0 when none was measured).
func perCPU(ops int, cpu cpuSample) float64 {
	if cpu.process <= 0 {
		return 0
	}
	return float64(ops) / cpu.process.Seconds()
}

// percentile of sorted xs (nearest rank).
func percentile(xs []time.Duration, p float64) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(xs)))) - 1
	return xs[min(max(i, 0), len(xs)-1)]
}

// median of xs (the mean of the middle two for an even count).
func median(xs []float64) float64 {
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

// medianCI is a distribution-free confidence interval of at least 95 % for
// the median of the population xs was drawn from: the k-th smallest and k-th
// largest values, with k the largest rank such that P(Binomial(n, ½) < k) ≤
// 2.5 %. ok is false when n is too small (below 6) for any such k.
func medianCI(xs []float64) (lo, hi float64, ok bool) {
	n := len(xs)
	s := slices.Clone(xs)
	slices.Sort(s)
	k, cdf, pmf := 0, 0.0, math.Pow(0.5, float64(n))
	for i := 0; i < n; i++ {
		cdf += pmf
		if cdf > 0.025 {
			break
		}
		k = i + 1
		pmf = pmf * float64(n-i) / float64(i+1)
	}
	if k < 1 {
		return 0, 0, false
	}
	return s[k-1], s[n-k], true
}

// pairedRatio is num/den from the slices paired by cycle.
type pairedRatio struct {
	perCycle []float64
	median   float64
	lo, hi   float64 // 95 % CI of the median
	ciOK     bool
	total    float64 // ratio of the total throughputs over all cycles
}

// pair is the throughput ratio num/den or, with byCPU, the ratio of ops per
// process CPU-second (the inverse ratio of CPU/op).
func pair(num, den summary, byCPU bool) (pairedRatio, bool) {
	var r pairedRatio
	n, d := num.perCycle, den.perCycle
	if byCPU {
		n, d = num.perCPU, den.perCPU
	}
	for i := range min(len(n), len(d)) {
		if d[i] > 0 {
			r.perCycle = append(r.perCycle, n[i]/d[i])
		}
	}
	if len(r.perCycle) == 0 || den.opsPerSec == 0 || (byCPU && num.cpu == 0) {
		return r, false
	}
	r.median = median(r.perCycle)
	r.lo, r.hi, r.ciOK = medianCI(r.perCycle)
	r.total = num.opsPerSec / den.opsPerSec
	if byCPU {
		r.total = float64(den.cpu) / float64(num.cpu)
	}
	return r, true
}

// ratioRow is one line of the ratio table; target 0 is for information.
type ratioRow struct {
	name     string
	num, den summary
	target   float64
	byCPU    bool // ops per CPU-second rather than per second
	many     bool // too many cycles to list: print percentiles
}

// report prints the report and returns the number of failed operations.
func report(w io.Writer, opt options, e env, vcases []verifyCase, vres []vslice, allocs map[string]allocStat, hcases []httpCase, hres []hslice) int {
	fmt.Fprintf(w, "IAM authentication benchmark — %s\n\n", e.date.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "command   %s\n", e.command)
	fmt.Fprintf(w, "machine   %d CPUs (%s), %s, %s\n", e.cpus, e.cpuModel, e.memory, e.kernel)
	fmt.Fprintf(w, "load avg  %s at start, %s at end (shared machine)\n", e.loadStart, e.loadEnd)
	fmt.Fprintf(w, "versions  photon %s at commit %s plus the working tree, built with %s\n", buildinfo.Version, e.commit, e.goVersion)
	fmt.Fprintf(w, "stack     ChainFire + IAM in this process (platform.New), loopback trust, data in %s (%s), fsync on\n", e.dir, e.fsType)
	fmt.Fprintf(w, "runtime   %s; the clients share the process, so CPU/op is the whole process's\n", opt.gogc)
	fmt.Fprintf(w, "method    each part: %s untimed warm-up of each target, then cycles (verification: rounds) that run every target\n", opt.warmup)
	fmt.Fprintf(w, "          of the part for one slice (verification: one batch), in an order rotating every cycle and reversed\n")
	fmt.Fprintf(w, "          every len(targets) cycles; each ratio is taken per cycle from its paired slices; the verdict is on\n")
	fmt.Fprintf(w, "          their median [95%% CI of the median], with the ratio of total ops beside it\n")
	fmt.Fprintf(w, "          others: cores the rest of the machine used meanwhile (other jobs on this shared guest)\n")
	fmt.Fprintf(w, "run time  %s\n", e.elapsed.Round(time.Second))

	failed := 0
	var rows []ratioRow
	if len(vcases) > 0 {
		fmt.Fprintf(w, "\ntoken verification in process, one goroutine, back to back, on the admin token (%d bytes, signing input %d bytes);\n",
			e.tokenLen, e.msgLen)
		fmt.Fprintf(w, "%d rounds; a round times one batch of each target, sized from its warm-up to take about %s\n", opt.verifyRounds, opt.verifyBatch)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "target\tops/s\tns/op\tCPU/op\tallocs/op\tB/op\tothers\terrs\tbatch ops/s p5/med/p95\t")
		sums := map[string]summary{}
		for _, c := range vcases {
			s := summarizeVerify(vres, c.id)
			sums[c.id] = s
			failed += s.errs
			ns := 0.0
			if s.ops > 0 {
				ns = float64(s.window.Nanoseconds()) / float64(s.ops)
			}
			fmt.Fprintf(tw, "%s) %s\t%.0f\t%.0f\t%s\t%.1f\t%.0f\t%.1f\t%d\t%s\t\n", c.id, c.name, s.opsPerSec, ns, fmtCPU(s.cpu),
				allocs[c.id].mallocs, allocs[c.id].bytes, s.others, s.errs, fmtPercentiles(s.perCycle, 0.05, 0.5, 0.95))
		}
		tw.Flush()
		rows = append(rows,
			ratioRow{"Verify uncached / ed25519", sums["u"], sums["e"], targetUncached, false, true},
			ratioRow{"Verify cached / ed25519", sums["c"], sums["e"], targetCached, false, true},
			ratioRow{"Verify fresh tokens / ed25519", sums["f"], sums["e"], 0, false, true},
			ratioRow{"Authenticator.Verify / ed25519", sums["a"], sums["e"], 0, false, true},
			ratioRow{"Authenticator.Verify / cached", sums["a"], sums["c"], 0, false, true},
		)
	}
	if len(hcases) > 0 {
		fmt.Fprintf(w, "\nHTTP: GET /api/v1/kv/%s (%d B value, linearizable) on ChainFire's REST API, %d closed-loop clients,\n",
			benchKey, opt.valueSize, opt.conc)
		fmt.Fprintf(w, "one keep-alive connection each, one shared transport; slices %s settle + %s recorded\n", opt.httpSettle, opt.httpSlice)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "target\treq/s\tp50\tp99\tCPU/op\tothers\terrs\tslice req/s min/med/max\t")
		sums := map[string]summary{}
		for _, c := range hcases {
			s := summarizeHTTP(hres, c.id)
			sums[c.id] = s
			failed += s.errs
			fmt.Fprintf(tw, "%s) %s\t%.0f\t%s\t%s\t%s\t%.1f\t%d\t%s\t\n", c.id, c.name, s.opsPerSec, fmtDur(s.p50), fmtDur(s.p99),
				fmtCPU(s.cpu), s.others, s.errs, fmtSpread(s.perCycle))
		}
		tw.Flush()
		rows = append(rows,
			ratioRow{"GET with token / loopback trust", sums["t"], sums["l"], targetHTTP, false, false},
			ratioRow{"  the same, per process CPU-second", sums["t"], sums["l"], 0, true, false},
		)
	}

	fmt.Fprintf(w, "\nthroughput ratios from the paired slices: median of the per-cycle ratios [its 95%% CI], and total ops ratio\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	var per strings.Builder
	for _, rw := range rows {
		r, ok := pair(rw.num, rw.den, rw.byCPU)
		if !ok {
			fmt.Fprintf(tw, "%s\tn/a\t\t\t\n", rw.name)
			continue
		}
		ci := "n/a"
		if r.ciOK {
			ci = fmt.Sprintf("%s–%s", fmtRatio(r.lo), fmtRatio(r.hi))
		}
		verdict := "info (no target)"
		if rw.target > 0 {
			mark := "PASS"
			if r.median < rw.target {
				mark = "BELOW"
			}
			verdict = fmt.Sprintf("%-5s (target ≥ %g)", mark, rw.target)
		}
		fmt.Fprintf(tw, "%s\t%s [%s]\ttotal %s\t%s\t\n", rw.name, fmtRatio(r.median), ci, fmtRatio(r.total), verdict)
		if rw.many {
			fmt.Fprintf(&per, "%-34s p5/p25/p50/p75/p95 of %d rounds: %s\n", rw.name, len(r.perCycle),
				fmtPercentiles(r.perCycle, 0.05, 0.25, 0.5, 0.75, 0.95))
		} else {
			fmt.Fprintf(&per, "%-34s %s\n", rw.name, fmtRatios(r.perCycle))
		}
	}
	tw.Flush()
	if per.Len() > 0 {
		fmt.Fprintf(w, "\nper-cycle ratios (verification: percentiles over the rounds; HTTP: every cycle, in order)\n%s", per.String())
	}
	return failed
}

// fmtRatio prints a ratio with 3 significant digits.
func fmtRatio(x float64) string {
	switch {
	case x >= 100:
		return fmt.Sprintf("%.0f", x)
	case x >= 10:
		return fmt.Sprintf("%.1f", x)
	default:
		return fmt.Sprintf("%.3f", x)
	}
}

// fmtCPU prints CPU time per op: ns below 10 µs, else µs.
func fmtCPU(d time.Duration) string {
	if d < 10*time.Microsecond {
		return fmt.Sprintf("%dns", d.Nanoseconds())
	}
	return fmt.Sprintf("%dµs", d.Microseconds())
}

// fmtPercentiles prints the ps-quantiles of xs (nearest rank), with ratio
// precision.
func fmtPercentiles(xs []float64, ps ...float64) string {
	if len(xs) == 0 {
		return "-"
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	var out []string
	for _, p := range ps {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		x := s[min(max(i, 0), len(s)-1)]
		if x >= 1000 {
			out = append(out, fmt.Sprintf("%.0f", x))
		} else {
			out = append(out, fmtRatio(x))
		}
	}
	return strings.Join(out, " / ")
}

// fmtSpread prints the smallest, median and largest of xs.
func fmtSpread(xs []float64) string {
	if len(xs) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f / %.0f / %.0f", slices.Min(xs), median(xs), slices.Max(xs))
}

func fmtRatios(xs []float64) string {
	var s []string
	for _, x := range xs {
		if x >= 10 {
			s = append(s, fmt.Sprintf("%.1f", x))
		} else {
			s = append(s, fmt.Sprintf("%.2f", x))
		}
	}
	return strings.Join(s, " ")
}

// fmtDur prints a latency in ms with 2 decimals (µs below 0.1 ms).
func fmtDur(d time.Duration) string {
	if d < 100*time.Microsecond {
		return fmt.Sprintf("%dµs", d.Microseconds())
	}
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}
