package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/photoncloud/photon/bench/internal/pairbench"
	"github.com/photoncloud/photon/internal/buildinfo"
)

// env is what the report says about the machine, the software and the run.
type env struct {
	pairbench.Env
	pgVersion, pgDir, pgSettings, pgConn string
}

var targetNames = map[string]string{"o": "ours (REST)", "p": "PostgreSQL"}

// report prints the report and returns the failed pairs and the invariant
// violations.
func report(w io.Writer, opt options, e env, results []caseResult, ours, pg check) (failed, violations int) {
	fmt.Fprintf(w, "CreditService reserve+commit benchmark — %s\n\n", e.Date.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "command   %s\n", e.Command)
	fmt.Fprintf(w, "machine   %d CPUs (%s), %s, %s\n", e.CPUs, e.CPUModel, e.Memory, e.Kernel)
	fmt.Fprintf(w, "load avg  %s at start, %s at end (shared machine)\n", e.LoadStart, e.LoadEnd)
	fmt.Fprintf(w, "data      %s (%s)\n", e.Dir, e.FSType)
	fmt.Fprintf(w, "ours      photon %s at commit %s plus the working tree, built with %s: ChainFire + IAM + CreditService in\n", buildinfo.Version, e.Commit, e.GoVersion)
	fmt.Fprintf(w, "          this process (platform.New), fsync on; %s; loopback trust, no token; clients share the process\n", opt.gogc)
	fmt.Fprintf(w, "peer      %s, cluster in %s, %s\n", e.pgVersion, e.pgDir, e.pgSettings)
	fmt.Fprintf(w, "          clients: github.com/jackc/pgx/v5 over %s, one connection each, no HTTP in front\n", e.pgConn)
	fmt.Fprintf(w, "workload  one op = reserve %d then commit %d of it; %d closed-loop clients; ours: one keep-alive HTTP connection each\n", opt.amount, opt.actual, opt.conc)
	fmt.Fprintf(w, "method    per case: %s untimed warm-up of each target, then %d cycles of one slice per target (%s settle + %s recorded),\n", opt.warmup, opt.cycles, opt.settle, opt.slice)
	fmt.Fprintf(w, "          order rotating every cycle and reversed every 2; ratio per cycle from the paired slices, verdict on the median\n")
	fmt.Fprintf(w, "          [95%% CI], total-ops ratio beside it. CPU/pair: the side's server and clients (ours: this process; PostgreSQL:\n")
	fmt.Fprintf(w, "          its process tree, scaled to the recorded window, + the pgx clients); others: cores the rest of the machine used\n")
	fmt.Fprintf(w, "run time  %s\n", e.Elapsed.Round(time.Second))

	type row struct {
		name   string
		r      pairbench.Ratio
		ok     bool
		total  float64
		judged bool
	}
	var rows []row
	for _, res := range results {
		fmt.Fprintf(w, "\ncase %s (%d clients on %d wallet(s))\n", res.c.name, opt.conc, len(res.c.wallets))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "target\tpairs/s\tp50\tp99\tCPU/pair\t  server\t  clients\tothers\terrs\tslice pairs/s min/med/max\t")
		sums := map[string]pairbench.Summary{}
		for _, id := range []string{"o", "p"} {
			s := pairbench.Summarize(res.slices, id)
			sums[id] = s
			failed += s.Errs
			server, clients := "(in-process)", "(in-process)"
			if id == "p" {
				server, clients = fmtCPU(s.PerOp(s.CPU.Server)), fmtCPU(s.PerOp(s.CPU.Self))
			}
			fmt.Fprintf(tw, "%s) %s\t%.0f\t%s\t%s\t%s\t  %s\t  %s\t%.1f\t%d\t%s\t\n", id, targetNames[id], s.OpsPerSec, pairbench.Latency(s.P50), pairbench.Latency(s.P99),
				fmtCPU(s.PerOp(s.CPU.Server+s.CPU.Self)), server, clients, s.Others, s.Errs, pairbench.Spread(s.PerCycle))
			if s.FirstErr != nil {
				fmt.Fprintf(tw, "   first error: %v\t\t\t\t\t\t\t\t\n", s.FirstErr)
			}
		}
		tw.Flush()
		r, ok := pairbench.Pair(sums["o"].PerCycle, sums["p"].PerCycle)
		total := 0.0
		if sums["p"].OpsPerSec > 0 {
			total = sums["o"].OpsPerSec / sums["p"].OpsPerSec
		}
		rows = append(rows, row{res.c.name, r, ok, total, res.c.judged})
	}

	fmt.Fprintf(w, "\nours / PostgreSQL, reserve+commit pairs per second: median of the per-cycle ratios [95%% CI], total-ops ratio\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, rw := range rows {
		if !rw.ok {
			fmt.Fprintf(tw, "%s\tn/a\t\t\t\n", rw.name)
			continue
		}
		ci := "n/a"
		if rw.r.CIOK {
			ci = fmt.Sprintf("%.3f–%.3f", rw.r.Lo, rw.r.Hi)
		}
		verdict := "info (no target)"
		if rw.judged {
			mark := "PASS"
			if rw.r.Median < targetRatio {
				mark = "BELOW"
			}
			verdict = fmt.Sprintf("%-5s (target ≥ %g)", mark, targetRatio)
		}
		fmt.Fprintf(tw, "%s\t%.3f [%s]\ttotal %.3f\t%s\t\n", rw.name, rw.r.Median, ci, rw.total, verdict)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nper-cycle ratios, in cycle order\n")
	for _, rw := range rows {
		var xs []string
		for _, x := range rw.r.PerCycle {
			xs = append(xs, fmt.Sprintf("%.2f", x))
		}
		fmt.Fprintf(w, "%-12s %s\n", rw.name, strings.Join(xs, " "))
	}

	fmt.Fprintf(w, "\ninvariants after the run (every wallet: balance == sum of transactions, reserved == sum of active reservations,\n")
	fmt.Fprintf(w, "available == balance − reserved ≥ 0, one charge transaction per commit the clients saw succeed)\n")
	for _, side := range []struct {
		name string
		c    check
	}{{"ours", ours}, {"PostgreSQL", pg}} {
		fmt.Fprintf(w, "%-10s %d wallets, %d charges, %d violations\n", side.name, side.c.wallets, side.c.charges, len(side.c.violations))
		for i, v := range side.c.violations {
			if i == 10 {
				fmt.Fprintf(w, "           … %d more\n", len(side.c.violations)-10)
				break
			}
			fmt.Fprintf(w, "           %s\n", v)
		}
		violations += len(side.c.violations)
	}
	return failed, violations
}

// fmtCPU prints CPU time per op in µs.
func fmtCPU(d time.Duration) string {
	return fmt.Sprintf("%dµs", d.Microseconds())
}
