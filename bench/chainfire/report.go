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
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// env is what the report says about the machine and the software.
type env struct {
	date               time.Time
	cpus               int
	cpuModel, kernel   string
	fsType, dir        string
	photonVersion      string
	commit             string
	cfEtcd, stockEtcd  string // server versions, as the Status RPC reports them
	stockGo            string
	loadStart, loadEnd string
	elapsed            time.Duration
	goVersion, command string
	gogcCheck          string // what /proc/PID/environ says about GOGC
}

func describeEnv(ctx context.Context, opt options, dir, photon string, cf, stock *clientv3.Client, cfPid, stockPid int) env {
	e := env{
		date:      time.Now(),
		cpus:      runtime.NumCPU(),
		cpuModel:  cpuModel(),
		kernel:    output(ctx, "uname", "-srm"),
		fsType:    mountOf(dir),
		dir:       dir,
		loadStart: loadAvg(),
		goVersion: runtime.Version(),
		command:   strings.Join(append([]string{"go run ./bench/chainfire"}, os.Args[1:]...), " "),
	}
	e.photonVersion = output(ctx, photon, "version")
	e.commit = output(ctx, "git", "rev-parse", "--short", "HEAD")
	e.cfEtcd, e.stockEtcd = serverVersion(ctx, cf), serverVersion(ctx, stock)
	e.gogcCheck = checkGOGC(cfPid, stockPid)
	e.stockGo = "?"
	for _, l := range strings.Split(output(ctx, opt.etcdBin, "--version"), "\n") {
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

// output runs a command and returns its trimmed stdout ("?" on failure).
func output(ctx context.Context, name string, args ...string) string {
	b, err := exec.CommandContext(ctx, name, args...).Output()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
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

// summary is one target's slices of one case, pooled.
type summary struct {
	ops                  int
	window               time.Duration
	opsPerSec            float64
	p50, p99             time.Duration
	serverCPU, clientCPU time.Duration // per op
	others               float64       // cores
	perCycle             []float64     // ops/s of each slice, in cycle order
	errs                 int
}

func summarize(all []slice, id, op string, conc int) summary {
	var s summary
	var lats []time.Duration
	var cpu cpuSample
	for _, r := range all {
		if r.target != id || r.op != op || r.conc != conc {
			continue
		}
		s.ops += r.ops
		s.window += r.window
		lats = append(lats, r.lats...)
		cpu.server += r.cpu.server
		cpu.client += r.cpu.client
		cpu.machine += r.cpu.machine
		s.perCycle = append(s.perCycle, r.opsPerSec())
		s.errs += r.errs
	}
	if s.window > 0 {
		s.opsPerSec = float64(s.ops) / s.window.Seconds()
		s.others = max(0, (cpu.machine-cpu.server-cpu.client).Seconds()/s.window.Seconds())
	}
	slices.Sort(lats)
	s.p50, s.p99 = percentile(lats, 0.50), percentile(lats, 0.99)
	if n := time.Duration(s.ops); n > 0 {
		s.serverCPU, s.clientCPU = cpu.server/n, cpu.client/n
	}
	return s
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

// pairedRatio is num/den from the slices paired by cycle.
type pairedRatio struct {
	perCycle []float64
	median   float64
	lo, hi   float64 // 95 % CI of the median
	ciOK     bool
	total    float64 // ratio of the total throughputs over all cycles
}

func pair(num, den summary) (pairedRatio, bool) {
	var r pairedRatio
	for i := range min(len(num.perCycle), len(den.perCycle)) {
		if den.perCycle[i] > 0 {
			r.perCycle = append(r.perCycle, num.perCycle[i]/den.perCycle[i])
		}
	}
	if len(r.perCycle) == 0 || den.opsPerSec == 0 {
		return r, false
	}
	r.median = median(r.perCycle)
	r.lo, r.hi, r.ciOK = medianCI(r.perCycle)
	r.total = num.opsPerSec / den.opsPerSec
	return r, true
}

// report prints the report and returns the number of failed requests.
func report(w io.Writer, opt options, e env, targets []target, results []slice) int {
	fmt.Fprintf(w, "ChainFire KV benchmark — %s\n\n", e.date.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "command   %s\n", e.command)
	fmt.Fprintf(w, "machine   %d CPUs (%s), %s\n", e.cpus, e.cpuModel, e.kernel)
	fmt.Fprintf(w, "load avg  %s at start, %s at end (shared machine)\n", e.loadStart, e.loadEnd)
	fmt.Fprintf(w, "data      %s (%s), fsync on for both servers\n", e.dir, e.fsType)
	fmt.Fprintf(w, "versions  %s at commit %s plus the working tree (embedded etcd %s, built with %s)\n",
		e.photonVersion, e.commit, e.cfEtcd, e.goVersion)
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
	fmt.Fprintf(w, "run time  %s\n\n", e.elapsed.Round(time.Second))

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "target\top\tconc\tops/s\tp50\tp99\tsrv CPU/op\tcli CPU/op\tothers\terrs\tslice ops/s min/med/max\t")
	failed := 0
	for _, op := range opt.ops {
		for _, conc := range opt.concs {
			for _, t := range targets {
				s := summarize(results, t.id, op, conc)
				failed += s.errs
				fmt.Fprintf(tw, "%s) %s\t%s\t%d\t%.0f\t%s\t%s\t%s\t%s\t%.1f\t%d\t%s\t\n", t.id, t.name, op, conc,
					s.opsPerSec, fmtDur(s.p50), fmtDur(s.p99), fmtCPU(s.serverCPU), fmtCPU(s.clientCPU), s.others,
					s.errs, fmtSpread(s.perCycle))
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
				r, ok := pair(summarize(results, rw.num, op, conc), summarize(results, rw.den, op, conc))
				if !ok {
					fmt.Fprintf(tw, "\t%s n/a", rw.name)
					continue
				}
				mark := "PASS"
				if r.median < rw.target {
					mark = "BELOW"
				}
				ci := "n/a"
				if r.ciOK {
					ci = fmt.Sprintf("%.2f–%.2f", r.lo, r.hi)
				}
				fmt.Fprintf(tw, "\t%s %.3f [%s] total %.3f  %-5s (target ≥ %.1f)", rw.name, r.median, ci, r.total, mark, rw.target)
				fmt.Fprintf(&per, "%-9s %-20s %s\n", fmt.Sprintf("%s c=%d", op, conc), rw.name, fmtRatios(r.perCycle))
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
		s = append(s, fmt.Sprintf("%.2f", x))
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
