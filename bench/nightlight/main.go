// Command nightlight benchmarks NightLight's ingestion, memory and queries
// against Debian's Prometheus 2.42 in one run:
//
//	go run ./bench/nightlight [--series 100000] [--conc 4] [--scrapes 41] [--rounds 20]
//
// (from the repository root, with Debian's prometheus installed; root is not
// needed). Both servers are child processes with their data under one temp
// dir: Prometheus with --web.enable-remote-write-receiver, and NightLight as
// `photon up` (all services, NightLight on a free port) — a child rather
// than the stack in this process, so that its RSS and CPU are its own and
// not mixed with the generator's garbage. Until cmd/photon has
// --nightlight-addr, --nightlight=auto runs a second Prometheus as a
// stand-in, and the report says so on every line that names it.
//
//	ingest  a deterministic remote-write 1.0 stream (snappy protobuf) of
//	        --series series, one sample per series per 15 s of simulated
//	        time, in batches of --batch series from --conc writers. Each
//	        scrape goes to both servers in turn (order alternating); the
//	        ratio is the median of the per-scrape samples/s ratios, the
//	        first scrape (which creates the series) left out. Target ≥ 1.0.
//	memory  each process's RSS growth from idle-and-ready to after the
//	        stream (/proc/PID/status), per series. Target ≤ 1.0.
//	query   query_range over the stream's span for a set of dashboard
//	        queries, --rounds rounds on both (order alternating); the ratio
//	        is the median of the per-round latency ratios. Target ≤ 1.0.
//
// The servers and the temp dir are removed on exit, on error and on SIGINT.
// The exit status is 0 when the run completed without errors, whether or
// not the targets were met; 1 otherwise (2 on bad flags).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/photoncloud/photon/bench/internal/pairbench"
	"github.com/photoncloud/photon/bench/internal/procs"
)

const (
	ingestTarget = 1.0 // NightLight/Prometheus samples/s, at least
	memTarget    = 1.0 // NightLight/Prometheus bytes per series, at most
	queryTarget  = 1.0 // NightLight/Prometheus query_range latency, at most
	interval     = 15 * time.Second
)

type options struct {
	series, conc, batch int
	scrapes, rounds     int
	step, settle, gap   time.Duration
	nightlight, gogc    string
	keep                bool
}

func main() {
	os.Exit(pairbench.Main("nightlight", os.Args[1:], os.Stdout, os.Stderr, parseFlags, bench))
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var opt options
	fs := pairbench.FlagSet("nightlight", stderr)
	fs.IntVar(&opt.series, "series", 100000, "active series in the stream")
	fs.IntVar(&opt.conc, "conc", 4, "concurrent remote-write writers")
	fs.IntVar(&opt.batch, "batch", 2000, "series per remote-write request")
	fs.IntVar(&opt.scrapes, "scrapes", 41, "samples per series, 15 s of simulated time apart (the first creates the series)")
	fs.IntVar(&opt.rounds, "rounds", 20, "timed rounds of the query set")
	fs.DurationVar(&opt.step, "step", 15*time.Second, "query_range step")
	fs.DurationVar(&opt.settle, "settle", 3*time.Second, "idle time before each memory reading")
	fs.DurationVar(&opt.gap, "gap", 100*time.Millisecond, "pause after each target's turn")
	fs.StringVar(&opt.nightlight, "nightlight", "auto", "photon (NightLight in `photon up`), standin (a second Prometheus) or auto (photon once cmd/photon has --nightlight-addr)")
	fs.StringVar(&opt.gogc, "nightlight-gogc", "", "GOGC for `photon up` (default: none, so photon tunes its own: 400 while the live heap is small, 75 from 64 MiB; internal/gctune)")
	fs.BoolVar(&opt.keep, "keep", false, "keep the temporary directory")
	if err := fs.Parse(args); err != nil {
		return opt, err
	}
	if opt.series < 1 || opt.conc < 1 || opt.batch < 1 || opt.scrapes < 7 || opt.rounds < 6 || opt.step < time.Second ||
		(opt.nightlight != "auto" && opt.nightlight != "photon" && opt.nightlight != "standin") || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "need --series, --conc, --batch >= 1, --scrapes >= 7, --rounds >= 6, --step >= 1s, --nightlight auto|photon|standin, and no arguments")
		return opt, pairbench.ErrBadFlag
	}
	return opt, nil
}

func bench(ctx context.Context, opt options, stdout, stderr io.Writer) (err error) {
	promBin, err := prometheusBinary()
	if err != nil {
		return err
	}
	if opt.nightlight == "auto" {
		root, err := procs.RepoRoot(ctx)
		if err != nil {
			return err
		}
		opt.nightlight = "standin"
		if hasNightLight(root) {
			opt.nightlight = "photon"
		}
	}
	dir, cleanup, err := pairbench.TempDir("nightlight-bench-", opt.keep, stderr)
	if err != nil {
		return err
	}
	defer cleanup()
	env := pairbench.DescribeEnv(ctx, "nightlight", dir)
	ports, err := pairbench.FreePorts(1 + nightLightPorts)
	if err != nil {
		return err
	}
	prom, err := startPrometheus(ctx, "prometheus", promBin, filepath.Join(dir, "prometheus"), ports[0])
	if err != nil {
		return err
	}
	defer prom.stop()
	nl, err := startNightLight(ctx, opt.nightlight, opt.gogc, promBin, filepath.Join(dir, "nightlight"), ports[1:], stderr)
	if err != nil {
		return err
	}
	defer nl.stop()

	// The stream ends about now: NightLight in `photon up` also scrapes the
	// platform at wall-clock time, and a TSDB head takes samples only
	// within an hour of its newest.
	start := time.Now().Truncate(interval).Add(-time.Duration(opt.scrapes) * interval)
	gen := newGenerator(opt.series, opt.batch, start, interval)
	r := &runner{opt: opt, gen: gen, targets: [2]*server{nl, prom}, hc: pairbench.HTTPClient(opt.conc), stderr: stderr}
	fmt.Fprintf(stderr, "%d series (%d targets × %d, %d metric names), %d scrapes, to %s and %s\n",
		opt.series, gen.targets, gen.perTgt, gen.names, opt.scrapes, nl.name, prom.name)
	t0 := time.Now()
	res, err := r.run(ctx)
	if err != nil {
		return err
	}
	env.Done(t0)
	report(stdout, opt, env, gen, r.targets, res)
	if res.errs > 0 {
		return fmt.Errorf("%d remote-write requests failed", res.errs)
	}
	return nil
}
