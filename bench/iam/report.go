package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/photoncloud/photon/bench/internal/pairbench"
	"github.com/photoncloud/photon/internal/buildinfo"
)

// env is what the report says about the machine, the software and the token.
type env struct {
	pairbench.Env
	tokenLen, msgLen int // the admin token and its signing input
}

// summary is one target's slices, pooled.
type summary struct {
	pairbench.Summary
	cpu    time.Duration // process CPU per op
	perCPU []float64     // ops per process CPU-second of each slice, in cycle order
}

func summarize(all []pairbench.Slice, id string) summary {
	s := summary{Summary: pairbench.Summarize(all, id)}
	s.cpu = s.PerOp(s.CPU.Self)
	for _, r := range all {
		if r.Target == id {
			s.perCPU = append(s.perCPU, perCPU(r.Ops, r.CPU))
		}
	}
	return s
}

// perCPU is ops per second of process CPU (0 when none was measured).
func perCPU(ops int, cpu pairbench.CPU) float64 {
	if cpu.Self <= 0 {
		return 0
	}
	return float64(ops) / cpu.Self.Seconds()
}

// pair is the throughput ratio num/den or, with byCPU, the ratio of ops per
// process CPU-second (the inverse ratio of CPU/op), from the slices paired by
// cycle; total is the same ratio over all cycles.
func pair(num, den summary, byCPU bool) (r pairbench.Ratio, total float64, ok bool) {
	n, d := num.PerCycle, den.PerCycle
	if byCPU {
		n, d = num.perCPU, den.perCPU
	}
	r, ok = pairbench.Pair(n, d)
	if !ok || den.OpsPerSec == 0 || (byCPU && num.cpu == 0) {
		return r, 0, false
	}
	if byCPU {
		return r, float64(den.cpu) / float64(num.cpu), true
	}
	return r, num.OpsPerSec / den.OpsPerSec, true
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
func report(w io.Writer, opt options, e env, vcases []verifyCase, vres []pairbench.Slice, allocs map[string]allocStat, hcases []httpCase, hres []pairbench.Slice) int {
	fmt.Fprintf(w, "IAM authentication benchmark — %s\n\n", e.Date.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "command   %s\n", e.Command)
	fmt.Fprintf(w, "machine   %d CPUs (%s), %s, %s\n", e.CPUs, e.CPUModel, e.Memory, e.Kernel)
	fmt.Fprintf(w, "load avg  %s at start, %s at end (shared machine)\n", e.LoadStart, e.LoadEnd)
	fmt.Fprintf(w, "versions  photon %s at commit %s plus the working tree, built with %s\n", buildinfo.Version, e.Commit, e.GoVersion)
	fmt.Fprintf(w, "stack     ChainFire + IAM in this process (platform.New), loopback trust, data in %s (%s), fsync on\n", e.Dir, e.FSType)
	fmt.Fprintf(w, "runtime   %s; the clients share the process, so CPU/op is the whole process's\n", opt.gogc)
	fmt.Fprintf(w, "method    each part: %s untimed warm-up of each target, then cycles (verification: rounds) that run every target\n", opt.warmup)
	fmt.Fprintf(w, "          of the part for one slice (verification: one batch), in an order rotating every cycle and reversed\n")
	fmt.Fprintf(w, "          every len(targets) cycles; each ratio is taken per cycle from its paired slices; the verdict is on\n")
	fmt.Fprintf(w, "          their median [95%% CI of the median], with the ratio of total ops beside it\n")
	fmt.Fprintf(w, "          others: cores the rest of the machine used meanwhile (other jobs on this shared guest)\n")
	fmt.Fprintf(w, "run time  %s\n", e.Elapsed.Round(time.Second))

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
			s := summarize(vres, c.id)
			sums[c.id] = s
			failed += s.Errs
			ns := 0.0
			if s.Ops > 0 {
				ns = float64(s.Window.Nanoseconds()) / float64(s.Ops)
			}
			fmt.Fprintf(tw, "%s) %s\t%.0f\t%.0f\t%s\t%.1f\t%.0f\t%.1f\t%d\t%s\t\n", c.id, c.name, s.OpsPerSec, ns, fmtCPU(s.cpu),
				allocs[c.id].mallocs, allocs[c.id].bytes, s.Others, s.Errs, fmtPercentiles(s.PerCycle, 0.05, 0.5, 0.95))
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
			s := summarize(hres, c.id)
			sums[c.id] = s
			failed += s.Errs
			fmt.Fprintf(tw, "%s) %s\t%.0f\t%s\t%s\t%s\t%.1f\t%d\t%s\t\n", c.id, c.name, s.OpsPerSec, pairbench.Latency(s.P50), pairbench.Latency(s.P99),
				fmtCPU(s.cpu), s.Others, s.Errs, pairbench.Spread(s.PerCycle))
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
		r, total, ok := pair(rw.num, rw.den, rw.byCPU)
		if !ok {
			fmt.Fprintf(tw, "%s\tn/a\t\t\t\n", rw.name)
			continue
		}
		ci := "n/a"
		if r.CIOK {
			ci = fmt.Sprintf("%s–%s", fmtRatio(r.Lo), fmtRatio(r.Hi))
		}
		verdict := "info (no target)"
		if rw.target > 0 {
			mark := "PASS"
			if r.Median < rw.target {
				mark = "BELOW"
			}
			verdict = fmt.Sprintf("%-5s (target ≥ %g)", mark, rw.target)
		}
		fmt.Fprintf(tw, "%s\t%s [%s]\ttotal %s\t%s\t\n", rw.name, fmtRatio(r.Median), ci, fmtRatio(total), verdict)
		if rw.many {
			fmt.Fprintf(&per, "%-34s p5/p25/p50/p75/p95 of %d rounds: %s\n", rw.name, len(r.PerCycle),
				fmtPercentiles(r.PerCycle, 0.05, 0.25, 0.5, 0.75, 0.95))
		} else {
			fmt.Fprintf(&per, "%-34s %s\n", rw.name, fmtRatios(r.PerCycle))
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
		if x := pairbench.Percentile(s, p); x >= 1000 {
			out = append(out, fmt.Sprintf("%.0f", x))
		} else {
			out = append(out, fmtRatio(x))
		}
	}
	return strings.Join(out, " / ")
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
