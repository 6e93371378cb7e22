package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/photoncloud/photon/bench/internal/pairbench"
)

// env is what the report says about the machine, the software and the run.
type env struct {
	pairbench.Env
	photonVersion                        string
	leaderStart, leaderEnd               string
	pgVersion, pgDir, pgSettings, pgConn string
}

// report prints the report and returns the failed requests and the failed
// checks.
func report(w io.Writer, opt options, e env, s *sides, results []caseResult, ck checks) (failed, bad int) {
	fmt.Fprintf(w, "FlareDB SQL benchmark — %s\n\n", e.Date.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "command   %s\n", e.Command)
	fmt.Fprintf(w, "machine   %d CPUs (%s), %s, %s\n", e.CPUs, e.CPUModel, e.Memory, e.Kernel)
	fmt.Fprintf(w, "load avg  %s at start, %s at end (shared machine)\n", e.LoadStart, e.LoadEnd)
	fmt.Fprintf(w, "data      %s (%s), fsync on for both sides\n", e.Dir, e.FSType)
	if s.fc != nil {
		built := "built by the bench with " + e.GoVersion
		if opt.photonBin != "" {
			built = "prebuilt: " + opt.photonBin
		}
		fmt.Fprintf(w, "flaredb   %s (`photon version`) from commit %s plus the working tree, %s:\n", e.photonVersion, e.Commit, built)
		fmt.Fprintf(w, "          3 × `photon serve flaredb` (n1 --bootstrap, n2 and n3 --join n1), a process and data directory each, no GOGC,\n")
		fmt.Fprintf(w, "          GOMEMLIMIT, GOMAXPROCS, GODEBUG or PHOTON_* passed; leader %s at the start, %s at the end;\n", e.leaderStart, e.leaderEnd)
		fmt.Fprintf(w, "          clients: POST /api/v1/sql to the leader over keep-alive HTTP, one connection each, tokenless (loopback trust)\n")
	}
	if s.pg != nil {
		fmt.Fprintf(w, "peer      %s, cluster in %s,\n", e.pgVersion, e.pgDir)
		fmt.Fprintf(w, "          %s\n", e.pgSettings)
		fmt.Fprintf(w, "          clients: github.com/jackc/pgx/v5 over %s, one connection each, prepared statements, autocommit\n", e.pgConn)
	}
	fmt.Fprintf(w, "workload  table bench_kv (k TEXT PRIMARY KEY, v TEXT NOT NULL), %d B values; insert: one row per request, every key\n", opt.valueSize)
	fmt.Fprintf(w, "          unique, no batching; point read: %d rows written first, keys picked uniformly, each answer checked\n", opt.keys)
	fmt.Fprintf(w, "method    per case: %s untimed warm-up of each target, then %d cycles of one slice per target (%s settle + %s recorded),\n", opt.warmup, opt.cycles, opt.settle, opt.slice)
	fmt.Fprintf(w, "          order rotating every cycle and reversed every len(targets) cycles; ratios per cycle from the paired slices,\n")
	fmt.Fprintf(w, "          verdict on the median [95%% CI], total-ops ratio beside it. CPU/op: server = FlareDB's three processes or\n")
	fmt.Fprintf(w, "          PostgreSQL's process tree, scaled to the recorded window; clients = this process; others = the rest of the machine\n")
	fmt.Fprintf(w, "run time  %s\n", e.Elapsed.Round(time.Second))

	type row struct {
		spec  ratioSpec
		r     pairbench.Ratio
		ok    bool
		total float64
	}
	var rows []row
	for _, res := range results {
		if len(res.c.targets) == 0 {
			continue
		}
		fmt.Fprintf(w, "\ncase %s\n", res.c.name)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "target\tclients\tops/s\tp50\tp99\tserver CPU/op\tper node n1 / n2 / n3\tclient CPU/op\tothers\terrs\tslice ops/s min/med/max\t")
		sums := map[string]pairbench.Summary{}
		var firstErrs []string
		for _, t := range res.c.targets {
			sm := pairbench.Summarize(res.slices, t.id)
			sums[t.id] = sm
			failed += sm.Errs
			nodes := "-"
			if cpu := res.nodeCPU[t.id]; cpu != nil {
				var xs []string
				for _, d := range cpu {
					xs = append(xs, fmtCPU(sm.PerOp(d)))
				}
				nodes = strings.Join(xs, " / ")
			}
			fmt.Fprintf(tw, "%s) %s\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t%.1f\t%d\t%s\t\n", t.id, t.name, t.conc, sm.OpsPerSec,
				pairbench.Latency(sm.P50), pairbench.Latency(sm.P99), fmtCPU(sm.PerOp(sm.CPU.Server)), nodes,
				fmtCPU(sm.PerOp(sm.CPU.Self)), sm.Others, sm.Errs, pairbench.Spread(sm.PerCycle))
			if sm.FirstErr != nil {
				firstErrs = append(firstErrs, fmt.Sprintf("   %s first error: %v", t.id, sm.FirstErr))
			}
		}
		tw.Flush()
		for _, l := range firstErrs {
			fmt.Fprintln(w, l)
		}
		for _, spec := range res.c.ratios {
			num, den := sums[spec.num], sums[spec.den]
			r, ok := pairbench.Pair(num.PerCycle, den.PerCycle)
			total := 0.0
			if den.OpsPerSec > 0 {
				total = num.OpsPerSec / den.OpsPerSec
			}
			rows = append(rows, row{spec, r, ok, total})
		}
	}

	fmt.Fprintf(w, "\nthroughput ratios from the paired slices: median of the per-cycle ratios [95%% CI], and total-ops ratio\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, rw := range rows {
		if !rw.ok {
			fmt.Fprintf(tw, "%s\tn/a (a side did not run)\t\t\t\n", rw.spec.name)
			continue
		}
		ci := "n/a"
		if rw.r.CIOK {
			ci = fmt.Sprintf("%.3f–%.3f", rw.r.Lo, rw.r.Hi)
		}
		verdict := "info (no target)"
		if rw.spec.target > 0 {
			mark := "PASS"
			if rw.r.Median < rw.spec.target {
				mark = "BELOW"
			}
			verdict = fmt.Sprintf("%-5s (target ≥ %g)", mark, rw.spec.target)
		}
		fmt.Fprintf(tw, "%s\t%.3f [%s]\ttotal %.3f\t%s\t\n", rw.spec.name, rw.r.Median, ci, rw.total, verdict)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nper-cycle ratios, in cycle order\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, rw := range rows {
		if !rw.ok {
			continue
		}
		var xs []string
		for _, x := range rw.r.PerCycle {
			xs = append(xs, fmtRatio(x))
		}
		fmt.Fprintf(tw, "%s\t%s\n", rw.spec.name, strings.Join(xs, " "))
	}
	tw.Flush()

	for _, side := range []struct {
		name  string
		run   bool
		tally *errTally
	}{{"FlareDB", s.fc != nil, &s.fErrs}, {"PostgreSQL", s.pg != nil, &s.pErrs}} {
		if !side.run {
			continue
		}
		kinds := side.tally.kinds()
		slices.Sort(kinds)
		if len(kinds) == 0 {
			kinds = []string{"none"}
		}
		fmt.Fprintf(w, "\n%s failed requests by kind (set-up and cases): %s\n", side.name, strings.Join(kinds, "; "))
	}

	fmt.Fprintf(w, "\ncorrectness after the run: every acknowledged insert present with its value, no row that no client inserted\n")
	fmt.Fprintf(w, "(rows of failed inserts are allowed: their outcome is unknown), FlareDB replicas identical\n")
	if s.fc != nil {
		fmt.Fprintf(w, "FlareDB     %d inserts acknowledged (the %d read rows included), %d failed; leader's linearizable count %d;\n",
			ck.fAcked, opt.keys, ck.fFails, ck.leaderCount)
		fmt.Fprintf(w, "            %s; each node then read with consistency=stale\n", ck.catchUp)
	}
	if ck.pg != nil {
		fmt.Fprintf(w, "PostgreSQL  %d inserts acknowledged (the %d read rows included), %d failed\n", ck.pAcked, opt.keys, ck.pFails)
	}
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "replica\tcount(*)\tsum(length(k))\tsum(length(v))\trows read\tsha256 of rows\tmissing\twrong value\tfailed-insert rows\tunexpected\tverdict\t")
	all := slices.Clone(ck.flare)
	if ck.pg != nil {
		all = append(all, *ck.pg)
	}
	for _, rc := range all {
		verdict := "ok"
		if !rc.ok() {
			verdict = "FAIL"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%d\t%d\t%d\t%d\t%s\t\n", rc.name, rc.count, rc.sumK, rc.sum, rc.rows, rc.digest,
			rc.missing, rc.wrong, rc.unknown, rc.unexpected, verdict)
	}
	tw.Flush()
	for _, rc := range all {
		for _, ex := range rc.examples {
			fmt.Fprintf(w, "  %s: %s\n", rc.name, ex)
		}
	}
	if len(ck.flare) > 0 {
		if ck.identical {
			fmt.Fprintf(w, "FlareDB replicas identical: yes (count, both sums and the SHA-256 of all rows agree)\n")
		} else {
			fmt.Fprintf(w, "FlareDB replicas identical: NO\n")
		}
	}
	return failed, ck.failures()
}

// fmtCPU prints CPU time per op in µs.
func fmtCPU(d time.Duration) string {
	return fmt.Sprintf("%dµs", d.Microseconds())
}

// fmtRatio prints a per-cycle ratio with 2 decimals, or 3 significant
// digits when it is large (c=32/c=1).
func fmtRatio(x float64) string {
	if x >= 10 {
		return fmt.Sprintf("%.1f", x)
	}
	return fmt.Sprintf("%.2f", x)
}
