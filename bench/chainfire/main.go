// Command chainfire benchmarks ChainFire's key-value path against a stock
// etcd, on this machine, in one run:
//
//	go run ./bench/chainfire [--cycles 18] [--slice 500ms] [--value-size 256]
//
// (from the repository root). It builds the photon binary, starts one
// ChainFire node and one stock etcd (Debian's etcd-server package) as
// subprocesses with their data directories in the same temporary directory,
// both fsyncing normally, and measures put and get throughput and p50/p99
// latency with 1 and 64 concurrent clients through
//
//	a  ChainFire REST     HTTP/1.1 + JSON, POST /api/v1/kv/{key}/put, GET /api/v1/kv/{key}
//	b  ChainFire gRPC     ChainFire's etcd v3 API, go.etcd.io/etcd/client/v3
//	c  stock etcd gRPC    /usr/bin/etcd, the same client
//
// Workload. Every case writes or reads values of --value-size bytes over the
// same --keys keys, picked uniformly at random; all keys are written before
// the first case, so every get finds its key. Gets use the default
// (linearizable) consistency on all three targets. Workers are closed-loop:
// conc workers each issue one request at a time.
//
// Method: interleaved short slices, paired ratios. On a shared VM the
// throughput the guest gets drifts by tens of percent within seconds, from
// contention it cannot see (with 2 s per target run back to back, per-round
// ratios ranged from 0.6 to 1.2 for two targets of equal median throughput).
// So each (op, conc) case first warms every target up for --warmup (untimed)
// and then runs --cycles cycles. A cycle runs every target for one slice:
// --settle untimed (the workers already issue requests, so connections,
// caches and the server's pipeline fill, and whatever the previous slice
// left behind, such as a pending backend commit, drains), then --slice
// recorded. Between slices the workers stop and their last requests
// complete, so two targets never run at once. The order of the
// targets rotates from cycle to cycle and reverses every len(targets)
// cycles, so over 6 cycles each of three targets runs first, second and last
// equally often and follows each other target equally often. Before every
// cycle both stores compact away their history (ChainFire takes the puts of
// two targets), so the stores stay small and of equal size.
//
// An op counts in a slice when it completes inside the recorded window: in a
// closed loop the completion rate is the throughput (also requiring the start
// inside would drop about one op per worker per slice, 1–2 % at 64 clients).
// Per target, ops/s is its total ops over its total recorded time, p50/p99
// are over the latencies of all its slices pooled, and CPU/op is its total
// CPU over its total ops. Each ratio (REST/gRPC, ChainFire-gRPC/etcd) is
// computed from the paired slices of the same cycle, which ran within about
// two seconds of each other: the figure judged against the target is the
// median of the per-cycle ratios, shown with a distribution-free 95 %
// confidence interval for that median (order statistics), and the ratio of
// the targets' total ops over all cycles is shown as a second figure. With
// the defaults (4 cases × 18 cycles × 3 targets × 650 ms, plus warm-ups and
// compactions) a run takes about 2¾ minutes after the build.
//
// Environment. Each server runs with its own runtime defaults: the bench
// removes GOGC, GOMEMLIMIT, GOMAXPROCS and GODEBUG, and any PHOTON_* or
// ETCD_* configuration variables, from the environment it passes to both
// servers, and the report confirms from /proc/PID/environ that neither has
// GOGC. photon sets GOGC=400 itself unless GOGC is set (cmd/photon); stock
// etcd runs with Go's default, GOGC=100.
//
// Clients. REST workers share one http.Client whose Transport keeps up to
// conc idle connections per host, so each worker reuses its own keep-alive
// connection. gRPC workers share one clientv3.Client per server (one HTTP/2
// connection, one stream per request), which is how etcd's own benchmark tool
// runs by default (--conns=1 --clients=1). The same gRPC client code drives b
// and c. The clients run on the same cores as the servers, so the
// client-side cost of each protocol is part of what is measured.
//
// --targets and --ops run a subset (e.g. --targets a --ops put --conc 64
// while profiling the ChainFire process, whose pid the progress shows).
//
// The report goes to stdout, progress to stderr. The exit status is 0 when
// every request succeeded, whether or not the targets were met, and 1 on any
// error (2 on bad flags).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/photoncloud/photon/bench/internal/pairbench"
	"github.com/photoncloud/photon/bench/internal/procs"
)

// options are the command's flags.
type options struct {
	warmup, settle, slice time.Duration
	cycles                int
	valueSize             int
	keys                  int
	concs                 []int
	ops                   []string // "put", "get"
	targets               string   // which of "abc" to run
	etcdBin               string
	photonBin             string
	keep                  bool
}

// Targets of the ratios printed under the table.
const (
	targetRESTvsGRPC = 0.7 // ChainFire REST / ChainFire gRPC throughput
	targetCFvsEtcd   = 1.0 // ChainFire gRPC / stock etcd throughput
)

func main() {
	os.Exit(pairbench.Main("chainfire", os.Args[1:], os.Stdout, os.Stderr, parseFlags, bench))
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var opt options
	fs := pairbench.FlagSet("chainfire", stderr)
	fs.DurationVar(&opt.warmup, "warmup", time.Second, "untimed warm-up of each target before each case's cycles")
	fs.IntVar(&opt.cycles, "cycles", 18, "cycles per case; each runs every target for one slice")
	fs.DurationVar(&opt.settle, "settle", 150*time.Millisecond, "untimed settle at the start of each slice")
	fs.DurationVar(&opt.slice, "slice", 500*time.Millisecond, "recorded time of each slice")
	fs.IntVar(&opt.valueSize, "value-size", 256, "value size in bytes")
	fs.IntVar(&opt.keys, "keys", 1000, "size of the key space (all written before the first case)")
	conc := fs.String("conc", "1,64", "comma-separated client concurrencies")
	ops := fs.String("ops", "put,get", "comma-separated operations (put, get)")
	fs.StringVar(&opt.targets, "targets", "abc", "targets to run: a ChainFire REST, b ChainFire gRPC, c stock etcd")
	fs.StringVar(&opt.etcdBin, "etcd", "/usr/bin/etcd", "stock etcd binary")
	fs.StringVar(&opt.photonBin, "photon", "", "prebuilt photon binary (default: go build ./cmd/photon)")
	fs.BoolVar(&opt.keep, "keep", false, "keep the temporary directory (data and server logs)")
	if err := fs.Parse(args); err != nil {
		return opt, err
	}
	for _, op := range strings.Split(*ops, ",") {
		if op = strings.TrimSpace(op); op != "put" && op != "get" {
			fmt.Fprintf(stderr, "--ops: %q is neither put nor get\n", op)
			return opt, pairbench.ErrBadFlag
		}
		opt.ops = append(opt.ops, op)
	}
	if strings.Trim(opt.targets, "abc") != "" || opt.targets == "" {
		fmt.Fprintf(stderr, "--targets: %q is not a set of a, b and c\n", opt.targets)
		return opt, pairbench.ErrBadFlag
	}
	for _, s := range strings.Split(*conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(stderr, "--conc: %q is not a positive integer\n", s)
			return opt, pairbench.ErrBadFlag
		}
		opt.concs = append(opt.concs, n)
	}
	if opt.slice <= 0 || opt.settle < 0 || opt.warmup < 0 || opt.cycles < 1 || opt.valueSize < 1 || opt.keys < 1 || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "need --slice > 0, --settle and --warmup >= 0, --cycles, --value-size and --keys >= 1, and no arguments")
		return opt, pairbench.ErrBadFlag
	}
	return opt, nil
}

// bench sets everything up, runs the cases and prints the report.
func bench(ctx context.Context, opt options, stdout, stderr io.Writer) (err error) {
	if _, err := os.Stat(opt.etcdBin); err != nil {
		return fmt.Errorf("stock etcd not found at %s: install it with\n\n\tapt-get install -y etcd-server\n\n(or pass --etcd PATH)", opt.etcdBin)
	}
	dir, cleanup, err := pairbench.TempDir("chainfire-bench-", opt.keep, stderr)
	if err != nil {
		return err
	}
	defer cleanup()
	var started []*proc
	defer func() {
		for _, p := range started {
			if serr := p.Stop(10 * time.Second); serr != nil {
				fmt.Fprintf(stderr, "stop %s: %v\n", p.Name, serr)
			}
			if err != nil {
				fmt.Fprintln(stderr, p.LogTail(20))
			}
		}
	}()

	photon := opt.photonBin
	if photon == "" {
		photon = filepath.Join(dir, "photon")
		if err := procs.BuildPhoton(ctx, photon, stderr); err != nil {
			return err
		}
	}
	ports, err := pairbench.FreePorts(5)
	if err != nil {
		return err
	}
	cf, err := startChainFire(ctx, photon, dir, ports[0], ports[1], ports[2])
	if cf != nil {
		started = append(started, cf)
	}
	if err != nil {
		return err
	}
	etcd, err := startEtcd(ctx, opt.etcdBin, dir, ports[3], ports[4])
	if etcd != nil {
		started = append(started, etcd)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "ChainFire pid %d: REST %s, gRPC %s; stock etcd pid %d: gRPC %s\n",
		cf.Pid, cf.httpAddr, cf.clientAddr, etcd.Pid, etcd.clientAddr)

	maxConc := 1
	for _, c := range opt.concs {
		maxConc = max(maxConc, c)
	}
	value := makeValue(opt.valueSize)
	keys := makeKeys(opt.keys)
	cfCli, err := newGRPC(cf.clientAddr, value)
	if err != nil {
		return err
	}
	defer cfCli.close()
	etcdCli, err := newGRPC(etcd.clientAddr, value)
	if err != nil {
		return err
	}
	defer etcdCli.close()
	targets := []target{
		{id: "a", name: "ChainFire REST", client: newREST("http://"+cf.httpAddr, value, maxConc), pid: cf.Pid},
		{id: "b", name: "ChainFire gRPC", client: cfCli, pid: cf.Pid},
		{id: "c", name: "stock etcd gRPC", client: etcdCli, pid: etcd.Pid},
	}

	fmt.Fprintf(stderr, "writing %d keys of %d B to ChainFire and stock etcd\n", len(keys), len(value))
	for _, c := range []*grpcClient{cfCli, etcdCli} {
		if err := populate(ctx, c, keys, maxConc); err != nil {
			return err
		}
	}
	for _, t := range targets {
		if err := t.client.check(ctx, keys[0]); err != nil {
			return fmt.Errorf("%s: reading back %s: %w", t.name, keys[0], err)
		}
	}

	// Both stores compact their history before every cycle.
	compact := func() error {
		for _, c := range []*grpcClient{cfCli, etcdCli} {
			if err := c.compact(ctx); err != nil {
				return fmt.Errorf("compact: %w", err)
			}
		}
		return nil
	}
	var selected []target
	for _, t := range targets {
		if strings.Contains(opt.targets, t.id) {
			selected = append(selected, t)
		}
	}
	env := describeEnv(ctx, opt, dir, photon, cfCli.cli, etcdCli.cli, cf.Pid, etcd.Pid)
	start := time.Now()
	results, err := runCases(ctx, opt, selected, keys, compact, stderr)
	if err != nil {
		return err
	}
	env.Done(start)
	if n := report(stdout, opt, env, selected, results); n > 0 {
		return fmt.Errorf("%d requests failed (see the errs column)", n)
	}
	return nil
}

// kvCase is one (op, conc) case.
type kvCase struct {
	op   string
	conc int
}

// runCases runs every (op, conc) case: a warm-up of each target, then
// opt.cycles cycles of one slice per target, calling prepare before each
// cycle. It returns the recorded slices of each case.
func runCases(ctx context.Context, opt options, targets []target, keys []string, prepare func() error, stderr io.Writer) (map[kvCase][]pairbench.Slice, error) {
	out := map[kvCase][]pairbench.Slice{}
	for _, op := range opt.ops {
		for _, conc := range opt.concs {
			sched := pairbench.Schedule{
				Targets: len(targets), Cycles: opt.cycles,
				Warmup: opt.warmup, Settle: opt.settle, Slice: opt.slice,
				Prepare: prepare,
				Warned: func(i int, w pairbench.Slice) {
					fmt.Fprintf(stderr, "warm-up %s %s c=%d: %d errors, first: %v\n", targets[i].name, op, conc, w.Errs, w.FirstErr)
				},
				Progress: func(cycle int, rates string) {
					fmt.Fprintf(stderr, "%s c=%-3d cycle %2d/%d  ops/s%s\n", op, conc, cycle+1, opt.cycles, rates)
				},
			}
			recorded, err := sched.Run(ctx, func(i int, settle, dur time.Duration) pairbench.Slice {
				return targets[i].loop(op, conc, keys).Run(ctx, settle, dur)
			})
			if err != nil {
				return nil, err
			}
			out[kvCase{op, conc}] = append(out[kvCase{op, conc}], recorded...) // a case listed twice pools both runs
		}
	}
	return out, nil
}
