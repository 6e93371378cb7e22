// Command chainfire benchmarks ChainFire's key-value path against a stock
// etcd, on this machine, in one run:
//
//	go run ./bench/chainfire [--duration 4s] [--rounds 3] [--value-size 256]
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
// Method. Every case writes or reads values of --value-size bytes over the
// same --keys keys, picked uniformly at random; all keys are written before
// the first case, so every get finds its key. Gets use the default
// (linearizable) consistency on all three targets. A case is closed-loop:
// conc workers each issue one request at a time for --warmup (not recorded),
// then --duration (recorded); an op counts if it starts and ends inside the
// recorded window. The cases run in --rounds interleaved rounds: in each
// round every (op, conc) case runs on a, b and c back to back, the first
// target rotating from round to round, and every number in the table is the
// median over the rounds, so drift on a shared machine hits all three alike.
//
// Clients. REST workers share one http.Client whose Transport keeps up to
// conc idle connections per host, so each worker reuses its own keep-alive
// connection. gRPC workers share one clientv3.Client per server (one HTTP/2
// connection, one stream per request), which is how etcd's own benchmark tool
// runs by default (--conns=1 --clients=1). The clients run on the same cores
// as the servers, so the client-side cost of each protocol is part of what is
// measured.
//
// The report goes to stdout, progress to stderr. The exit status is 0 when
// every request succeeded, whether or not the targets were met, and 1 on any
// error (2 on bad flags).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// options are the command's flags.
type options struct {
	duration, warmup time.Duration
	rounds           int
	valueSize        int
	keys             int
	concs            []int
	etcdBin          string
	photonBin        string
	keep             bool
}

// Targets of the ratios printed under the table.
const (
	targetRESTvsGRPC = 0.7 // ChainFire REST / ChainFire gRPC throughput
	targetCFvsEtcd   = 1.0 // ChainFire gRPC / stock etcd throughput
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	opt, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	if err := bench(ctx, opt, stdout, stderr); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("interrupted (%w)", err)
		}
		fmt.Fprintf(stderr, "bench/chainfire: %v\n", err)
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var opt options
	fs := flag.NewFlagSet("chainfire", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&opt.duration, "duration", 4*time.Second, "recorded time per case and round")
	fs.DurationVar(&opt.warmup, "warmup", time.Second, "unrecorded warm-up before each case")
	fs.IntVar(&opt.rounds, "rounds", 3, "interleaved rounds; the report shows the median")
	fs.IntVar(&opt.valueSize, "value-size", 256, "value size in bytes")
	fs.IntVar(&opt.keys, "keys", 1000, "size of the key space (all written before the first case)")
	conc := fs.String("conc", "1,64", "comma-separated client concurrencies")
	fs.StringVar(&opt.etcdBin, "etcd", "/usr/bin/etcd", "stock etcd binary")
	fs.StringVar(&opt.photonBin, "photon", "", "prebuilt photon binary (default: go build ./cmd/photon)")
	fs.BoolVar(&opt.keep, "keep", false, "keep the temporary directory (data and server logs)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: go run ./bench/chainfire [flags]   (from the repository root)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return opt, err
	}
	for _, s := range strings.Split(*conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(stderr, "--conc: %q is not a positive integer\n", s)
			return opt, errors.New("bad flag")
		}
		opt.concs = append(opt.concs, n)
	}
	if opt.duration <= 0 || opt.warmup < 0 || opt.rounds < 1 || opt.valueSize < 1 || opt.keys < 1 || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "need --duration > 0, --warmup >= 0, --rounds, --value-size and --keys >= 1, and no arguments")
		return opt, errors.New("bad flag")
	}
	return opt, nil
}

// bench sets everything up, runs the rounds and prints the report.
func bench(ctx context.Context, opt options, stdout, stderr io.Writer) (err error) {
	if _, err := os.Stat(opt.etcdBin); err != nil {
		return fmt.Errorf("stock etcd not found at %s: install it with\n\n\tapt-get install -y etcd-server\n\n(or pass --etcd PATH)", opt.etcdBin)
	}
	dir, err := os.MkdirTemp("", "chainfire-bench-")
	if err != nil {
		return err
	}
	var procs []*proc
	defer func() {
		for _, p := range procs {
			if serr := p.stop(10 * time.Second); serr != nil {
				fmt.Fprintf(stderr, "stop %s: %v\n", p.name, serr)
			}
			if err != nil {
				p.dumpLog(stderr, 20)
			}
		}
		if opt.keep {
			fmt.Fprintf(stderr, "kept %s\n", dir)
		} else {
			_ = os.RemoveAll(dir)
		}
	}()

	photon := opt.photonBin
	if photon == "" {
		photon = filepath.Join(dir, "photon")
		if err := buildPhoton(ctx, photon, stderr); err != nil {
			return err
		}
	}
	ports, err := freePorts(5)
	if err != nil {
		return err
	}
	cf, err := startChainFire(ctx, photon, dir, ports[0], ports[1], ports[2])
	if cf != nil {
		procs = append(procs, cf)
	}
	if err != nil {
		return err
	}
	etcd, err := startEtcd(ctx, opt.etcdBin, dir, ports[3], ports[4])
	if etcd != nil {
		procs = append(procs, etcd)
	}
	if err != nil {
		return err
	}

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
	rest := newREST("http://"+cf.httpAddr, value, maxConc)
	targets := []target{
		{id: "a", name: "ChainFire REST", client: rest},
		{id: "b", name: "ChainFire gRPC", client: cfCli},
		{id: "c", name: "stock etcd gRPC", client: etcdCli},
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

	env := describeEnv(ctx, opt, dir, photon, []*clientv3.Client{cfCli.cli, etcdCli.cli})
	start := time.Now()
	results, err := runRounds(ctx, opt, targets, keys, stderr)
	if err != nil {
		return err
	}
	env.elapsed = time.Since(start)
	env.loadEnd = loadAvg()
	if n := report(stdout, opt, env, targets, results); n > 0 {
		return fmt.Errorf("%d requests failed (see the errs column)", n)
	}
	return nil
}

// runRounds runs every case opt.rounds times, interleaving the targets.
func runRounds(ctx context.Context, opt options, targets []target, keys []string, stderr io.Writer) ([]result, error) {
	var out []result
	for round := range opt.rounds {
		for _, op := range []string{"put", "get"} {
			for _, conc := range opt.concs {
				for i := range targets {
					t := targets[(i+round)%len(targets)]
					r := runCase(ctx, t, op, conc, round, keys, opt.warmup, opt.duration)
					if ctx.Err() != nil {
						return nil, ctx.Err()
					}
					fmt.Fprintf(stderr, "round %d/%d  %-16s %s c=%-3d %9.0f ops/s  p50 %-8s p99 %-8s errs %d\n",
						round+1, opt.rounds, t.name, op, conc, r.opsPerSec, fmtDur(r.p50), fmtDur(r.p99), r.errs)
					if r.firstErr != nil {
						fmt.Fprintf(stderr, "    first error: %v\n", r.firstErr)
					}
					out = append(out, r)
				}
			}
		}
	}
	return out, nil
}
