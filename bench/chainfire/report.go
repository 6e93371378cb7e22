package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/photoncloud/photon/bench/internal/pairbench"
)

// env is what the report says about the machine and the software.
type env struct {
	pairbench.Env
	photonVersion     string
	cfEtcd, stockEtcd string // server versions, as the Status RPC reports them
	stockGo           string
	gogcCheck         string // what /proc/PID/environ says about GOGC
}

func describeEnv(ctx context.Context, opt options, dir, photon string, cf, stock *clientv3.Client, cfPid, stockPid int) env {
	e := env{Env: pairbench.DescribeEnv(ctx, "chainfire", dir)}
	e.photonVersion = pairbench.Output(ctx, photon, "version")
	e.cfEtcd, e.stockEtcd = serverVersion(ctx, cf), serverVersion(ctx, stock)
	e.gogcCheck = checkGOGC(cfPid, stockPid)
	e.stockGo = "?"
	for _, l := range strings.Split(pairbench.Output(ctx, opt.etcdBin, "--version"), "\n") {
		if v, ok := strings.CutPrefix(l, "Go Version:"); ok {
			e.stockGo = strings.TrimSpace(v)
		}
	}
	return e
}

// checkGOGC reports whether GOGC is absent from the servers' environments.
func checkGOGC(pids ...int) string {
	var found []string
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
		if err != nil {
			return "could not read /proc/PID/environ: " + err.Error()
		}
		for _, kv := range strings.Split(string(b), "\x00") {
			if strings.HasPrefix(kv, "GOGC=") {
				found = append(found, fmt.Sprintf("pid %d has %s", pid, kv))
			}
		}
	}
	if len(found) > 0 {
		return "WARNING: " + strings.Join(found, ", ")
	}
	return "checked: no GOGC in either server's /proc/PID/environ"
}

// serverVersion asks an etcd server its version.
func serverVersion(ctx context.Context, c *clientv3.Client) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := c.Status(ctx, c.Endpoints()[0])
	if err != nil {
		return "?"
	}
	return st.Version
}

// summary is one target's slices of one case, pooled.
type summary struct {
	pairbench.Summary
	serverCPU, clientCPU time.Duration // per op
}

func summarize(results map[kvCase][]pairbench.Slice, id, op string, conc int) summary {
	s := summary{Summary: pairbench.Summarize(results[kvCase{op, conc}], id)}
	s.serverCPU, s.clientCPU = s.PerOp(s.CPU.Server), s.PerOp(s.CPU.Self)
	return s
}

// pair is the throughput ratio num/den from the slices paired by cycle, and
// the ratio of the total throughputs over all cycles.
func pair(num, den summary) (r pairbench.Ratio, total float64, ok bool) {
	r, ok = pairbench.Pair(num.PerCycle, den.PerCycle)
	if !ok || den.OpsPerSec == 0 {
		return r, 0, false
	}
	return r, num.OpsPerSec / den.OpsPerSec, true
}

// report prints the report and returns the number of failed requests.
func report(w io.Writer, opt options, e env, targets []target, results map[kvCase][]pairbench.Slice) int {
	fmt.Fprintf(w, "ChainFire KV benchmark — %s\n\n", e.Date.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "command   %s\n", e.Command)
	fmt.Fprintf(w, "machine   %d CPUs (%s), %s\n", e.CPUs, e.CPUModel, e.Kernel)
	fmt.Fprintf(w, "load avg  %s at start, %s at end (shared machine)\n", e.LoadStart, e.LoadEnd)
	fmt.Fprintf(w, "data      %s (%s), fsync on for both servers\n", e.Dir, e.FSType)
	fmt.Fprintf(w, "versions  %s at commit %s plus the working tree (embedded etcd %s, built with %s)\n",
		e.photonVersion, e.Commit, e.cfEtcd, e.GoVersion)
	fmt.Fprintf(w, "          stock etcd %s (%s, built with %s); client go.etcd.io/etcd/client/v3 (go.mod)\n",
		e.stockEtcd, opt.etcdBin, e.stockGo)
	fmt.Fprintf(w, "runtime   each server with its own defaults: photon sets GOGC=400 itself, stock etcd runs with Go's default GOGC=100;\n")
	fmt.Fprintf(w, "          the bench passes neither GOGC, GOMEMLIMIT, GOMAXPROCS, GODEBUG, PHOTON_* nor ETCD_* (%s)\n", e.gogcCheck)
	fmt.Fprintf(w, "workload  %d B values, %d keys picked uniformly, closed-loop workers; gets are linearizable\n", opt.valueSize, opt.keys)
	fmt.Fprintf(w, "          REST: one keep-alive conn per worker; gRPC (b and c, same code): one shared client\n")
	fmt.Fprintf(w, "method    per case: %s untimed warm-up of each target, then %d cycles; a cycle runs each target for one slice,\n",
		opt.warmup, opt.cycles)
	fmt.Fprintf(w, "          %s untimed settle + %s recorded, in an order rotating every cycle and reversed every %d cycles;\n",
		opt.settle, opt.slice, len(targets))
	fmt.Fprintf(w, "          both stores compacted before each cycle. An op counts when it completes in the recorded window.\n")
	fmt.Fprintf(w, "          ops/s, p50/p99 and CPU/op pool all slices of a target; ratios pair the slices of each cycle\n")
	fmt.Fprintf(w, "          CPU/op: server process and bench clients; others: cores the rest of the machine used meanwhile\n")
	fmt.Fprintf(w, "run time  %s\n\n", e.Elapsed.Round(time.Second))

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "target\top\tconc\tops/s\tp50\tp99\tsrv CPU/op\tcli CPU/op\tothers\terrs\tslice ops/s min/med/max\t")
	failed := 0
	for _, op := range opt.ops {
		for _, conc := range opt.concs {
			for _, t := range targets {
				s := summarize(results, t.id, op, conc)
				failed += s.Errs
				fmt.Fprintf(tw, "%s) %s\t%s\t%d\t%.0f\t%s\t%s\t%s\t%s\t%.1f\t%d\t%s\t\n", t.id, t.name, op, conc,
					s.OpsPerSec, pairbench.Latency(s.P50), pairbench.Latency(s.P99), fmtCPU(s.serverCPU), fmtCPU(s.clientCPU), s.Others,
					s.Errs, pairbench.Spread(s.PerCycle))
			}
		}
	}
	tw.Flush()

	type row struct {
		name   string
		num    string
		den    string
		target float64
	}
	rows := []row{{"REST/gRPC", "a", "b", targetRESTvsGRPC}, {"ChainFire-gRPC/etcd", "b", "c", targetCFvsEtcd}}
	fmt.Fprintf(w, "\nthroughput ratios from the paired slices: median of the %d per-cycle ratios [its 95%% CI], and total ops ratio\n", opt.cycles)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	var per strings.Builder
	for _, op := range opt.ops {
		for _, conc := range opt.concs {
			fmt.Fprintf(tw, "%s c=%d", op, conc)
			for _, rw := range rows {
				if !strings.Contains(opt.targets, rw.num) || !strings.Contains(opt.targets, rw.den) {
					continue
				}
				r, total, ok := pair(summarize(results, rw.num, op, conc), summarize(results, rw.den, op, conc))
				if !ok {
					fmt.Fprintf(tw, "\t%s n/a", rw.name)
					continue
				}
				mark := "PASS"
				if r.Median < rw.target {
					mark = "BELOW"
				}
				ci := "n/a"
				if r.CIOK {
					ci = fmt.Sprintf("%.2f–%.2f", r.Lo, r.Hi)
				}
				fmt.Fprintf(tw, "\t%s %.3f [%s] total %.3f  %-5s (target ≥ %.1f)", rw.name, r.Median, ci, total, mark, rw.target)
				fmt.Fprintf(&per, "%-9s %-20s %s\n", fmt.Sprintf("%s c=%d", op, conc), rw.name, fmtRatios(r.PerCycle))
			}
			fmt.Fprintln(tw, "\t")
		}
	}
	tw.Flush()
	if per.Len() > 0 {
		fmt.Fprintf(w, "\nper-cycle ratios, in cycle order\n%s", per.String())
	}
	return failed
}

// fmtCPU prints CPU time per op in µs.
func fmtCPU(d time.Duration) string { return fmt.Sprintf("%dµs", d.Microseconds()) }

func fmtRatios(xs []float64) string {
	var s []string
	for _, x := range xs {
		s = append(s, fmt.Sprintf("%.2f", x))
	}
	return strings.Join(s, " ")
}
