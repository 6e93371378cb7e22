// Command flaredb benchmarks FlareDB's SQL path, a three-node Raft cluster
// of replicated SQLite, against Debian's PostgreSQL on this machine, in one
// run:
//
//	go run ./bench/flaredb [--cycles 24] [--slice 800ms] [--conc 32]
//
// (from the repository root). It builds the photon binary once, then starts
//
//	f  FlareDB     three child processes `photon serve flaredb` (n1
//	               --bootstrap, n2 and n3 --join n1's REST address), each
//	               with its own data directory in the run's temporary
//	               directory, on free loopback ports; the bench waits until
//	               GET /api/v1/cluster on n1 shows three members and a leader,
//	               and sends every request to the leader over keep-alive
//	               HTTP (one connection per client), tokenless (loopback
//	               trust: the admin, the platform database)
//	p  PostgreSQL  Debian's PostgreSQL in a throwaway cluster
//	               (bench/internal/pgcluster: initdb in the temporary
//	               directory, as the postgres user when run as root; free
//	               port, fsync=on, synchronous_commit=on), driven with
//	               github.com/jackc/pgx/v5 over TCP 127.0.0.1: one connection
//	               per client, prepared statements, autocommit
//
// and creates the same table on both, bench_kv (k TEXT PRIMARY KEY, v TEXT
// NOT NULL). Two cases:
//
//	insert      one INSERT INTO bench_kv(k, v) VALUES (?, ?) per request,
//	            every key unique (no client-side batching): FlareDB POST
//	            /api/v1/sql {"query", "params"} to the leader, PostgreSQL one
//	            prepared statement in autocommit. Four targets take turns:
//	            f1, p1 with one client and f32, p32 with --conc clients.
//	point read  SELECT v FROM bench_kv WHERE k = ? on keys picked uniformly
//	            from --keys rows written before the first case (the same
//	            keys and values on both sides; each answer is checked to be
//	            exactly the row's value), --conc clients: fr FlareDB with the
//	            default consistency (linearizable), fl FlareDB with
//	            "consistency":"lease" (information), pr PostgreSQL.
//
// Keys are "r-" and a number for the rows the reads pick from, and
// "k-TARGET-" and a counter for the inserts; values are --value-size bytes
// (the key, "|", then padding), so a read can tell it got its own row.
//
// Method: pairbench's, as bench/chainfire — each case warms every target up
// for --warmup (untimed), then runs --cycles cycles; a cycle runs every
// target for one slice, --settle untimed and --slice recorded, in an order
// that rotates every cycle and reverses every len(targets) cycles, so two
// targets never run at once. An op counts when it completes inside the
// recorded window. Every ratio is taken per cycle from the slices of the
// same cycle and judged on the median of the per-cycle ratios, with its
// distribution-free 95 % CI and the ratio of total ops beside it. Because
// the four insert targets share each cycle, FlareDB's own c=32/c=1 ratio
// (the group-commit claim) is paired the same way.
//
// Targets judged: insert c=32 FlareDB/PostgreSQL ≥ 0.5, and FlareDB insert
// c=32 / FlareDB insert c=1 ≥ 15. Everything else (insert c=1 FlareDB/PG,
// PostgreSQL's own c=32/c=1, the read ratios) is printed as information.
//
// CPU/op: server is FlareDB's three processes together (the leader and both
// followers; per-node shares are printed too) or PostgreSQL's process tree,
// each sampled around the slice and scaled to the recorded window; clients
// is this process. "others" is what the rest of the machine used meanwhile.
//
// After the cases the bench checks correctness: it waits until every
// FlareDB node's local (consistency=stale) count equals the leader's
// linearizable count, then reads every row from every node with
// consistency=stale and from PostgreSQL, and checks that each insert the
// clients saw acknowledged is there with its value, that no other row is
// there except inserts whose request failed (their outcome is unknown), and
// that the three FlareDB replicas hold identical rows (count, the checksum
// query SELECT count(*), sum(length(k)), sum(length(v)), and a SHA-256 over
// all rows in key order).
//
// With the defaults (24 cycles of 7 slices of 1 s, plus warm-ups) the
// measured part takes about 3 minutes, the whole command about 4 with the
// build, the 10000 rows written first and the read-back.
//
// --sides f or p runs one side only (to test the harness), --cases insert or
// read one case (e.g. while profiling a node, whose pid the progress shows),
// --pg-unix connects to PostgreSQL through its unix socket, --photon uses a
// prebuilt binary and --keep keeps the data and the nodes' logs. The report
// goes to stdout, progress to stderr. The exit status is 0 when every
// request succeeded and every check passed, whether or not the targets were
// met, 1 otherwise (2 on bad flags).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/photoncloud/photon/bench/internal/pairbench"
	"github.com/photoncloud/photon/bench/internal/pgcluster"
	"github.com/photoncloud/photon/bench/internal/procs"
)

// The targets the issue sets.
const (
	targetVsPG        = 0.5 // FlareDB insert c=32 / PostgreSQL insert c=32
	targetGroupCommit = 15  // FlareDB insert c=32 / FlareDB insert c=1
)

// options are the command's flags.
type options struct {
	cycles                int
	warmup, settle, slice time.Duration
	conc                  int
	keys                  int
	valueSize             int
	lease                 bool
	sides                 string // which of "fp" run
	insert, read          bool   // which cases run
	pgUnix                bool
	photonBin             string
	keep                  bool
}

func (o options) flare() bool { return strings.Contains(o.sides, "f") }
func (o options) pg() bool    { return strings.Contains(o.sides, "p") }

func main() {
	os.Exit(pairbench.Main("flaredb", os.Args[1:], os.Stdout, os.Stderr, parseFlags, bench))
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var opt options
	fs := pairbench.FlagSet("flaredb", stderr)
	fs.IntVar(&opt.cycles, "cycles", 24, "cycles per case; each runs every target for one slice")
	fs.DurationVar(&opt.warmup, "warmup", time.Second, "untimed warm-up of each target before a case's cycles")
	fs.DurationVar(&opt.settle, "settle", 200*time.Millisecond, "untimed start of each slice")
	fs.DurationVar(&opt.slice, "slice", 800*time.Millisecond, "recorded time of each slice")
	fs.IntVar(&opt.conc, "conc", 32, "concurrent clients of the c=32 targets")
	fs.IntVar(&opt.keys, "keys", 10000, "rows written before the first case, which the point reads pick from")
	fs.IntVar(&opt.valueSize, "value-size", 100, "value size in bytes")
	fs.BoolVar(&opt.lease, "lease", true, "also run FlareDB's point reads with consistency=lease (information)")
	fs.StringVar(&opt.sides, "sides", "fp", "sides to run: f FlareDB, p PostgreSQL")
	caseList := fs.String("cases", "insert,read", "comma-separated cases to run: insert, read")
	fs.BoolVar(&opt.pgUnix, "pg-unix", false, "connect to PostgreSQL through its unix socket instead of TCP 127.0.0.1")
	fs.StringVar(&opt.photonBin, "photon", "", "prebuilt photon binary (default: go build ./cmd/photon)")
	fs.BoolVar(&opt.keep, "keep", false, "keep the temporary directory (data and server logs)")
	if err := fs.Parse(args); err != nil {
		return opt, err
	}
	for _, c := range strings.Split(*caseList, ",") {
		switch strings.TrimSpace(c) {
		case "insert":
			opt.insert = true
		case "read":
			opt.read = true
		default:
			fmt.Fprintf(stderr, "--cases: %q is neither insert nor read\n", c)
			return opt, pairbench.ErrBadFlag
		}
	}
	if opt.sides == "" || strings.Trim(opt.sides, "fp") != "" {
		fmt.Fprintf(stderr, "--sides: %q is not a set of f and p\n", opt.sides)
		return opt, pairbench.ErrBadFlag
	}
	if opt.cycles < 1 || opt.conc < 2 || opt.keys < 1 || opt.slice <= 0 || opt.settle < 0 || opt.warmup < 0 || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "need --cycles and --keys >= 1, --conc >= 2, --slice > 0, --settle and --warmup >= 0, and no arguments")
		return opt, pairbench.ErrBadFlag
	}
	if opt.valueSize < 40 {
		fmt.Fprintln(stderr, "need --value-size >= 40 (a value starts with its key)")
		return opt, pairbench.ErrBadFlag
	}
	return opt, nil
}

// bench sets both sides up, runs the cases, checks the data and prints the
// report.
func bench(ctx context.Context, opt options, stdout, stderr io.Writer) (err error) {
	dir, cleanup, err := pairbench.TempDir("flaredb-bench-", opt.keep, stderr)
	if err != nil {
		return err
	}
	defer cleanup()
	ports, err := pairbench.FreePorts(2*flareNodes + 1)
	if err != nil {
		return err
	}
	e := env{Env: pairbench.DescribeEnv(ctx, "flaredb", dir)}

	var fc *flareCluster
	if opt.flare() {
		photon := opt.photonBin
		if photon == "" {
			photon = filepath.Join(dir, "photon")
			if err := procs.BuildPhoton(ctx, photon, stderr); err != nil {
				return err
			}
		}
		e.photonVersion = pairbench.Output(ctx, photon, "version")
		fc, err = startFlare(ctx, photon, dir, ports[:2*flareNodes], stderr)
		defer func() {
			if fc == nil {
				return
			}
			if serr := fc.stop(); serr != nil {
				fmt.Fprintf(stderr, "stopping FlareDB: %v\n", serr)
				if err == nil {
					err = serr
				}
			}
		}()
		if err != nil {
			return err
		}
	}
	var pg *pgcluster.Cluster
	if opt.pg() {
		pg, err = pgcluster.Start(ctx, dir, ports[2*flareNodes], stderr)
		if err != nil {
			return err
		}
		defer func() {
			if serr := pg.Stop(); serr != nil && err == nil {
				err = serr
			}
		}()
	}

	sides, err := setUp(ctx, opt, fc, pg, &e, stderr)
	if err != nil {
		return err
	}
	defer sides.close()

	start := time.Now()
	var results []caseResult
	for _, c := range cases(opt, sides) {
		r, err := runCase(ctx, opt, c, sides, stderr)
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	e.Done(start)
	if fc != nil {
		e.leaderEnd = fc.leaderNow(ctx)
	}

	fmt.Fprintln(stderr, "checking the rows of every FlareDB node and of PostgreSQL")
	cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	checks, err := verify(cctx, opt, sides)
	if err != nil {
		return fmt.Errorf("reading the rows back: %w", err)
	}
	failed, bad := report(stdout, opt, e, sides, results, checks)
	switch {
	case failed > 0 && bad > 0:
		return fmt.Errorf("%d requests failed and %d checks failed", failed, bad)
	case failed > 0:
		return fmt.Errorf("%d requests failed (see the errs column)", failed)
	case bad > 0:
		return fmt.Errorf("%d checks failed", bad)
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return nil
}

// errNoServe is returned when photon has no `serve flaredb` yet.
var errNoServe = errors.New("photon has no `serve flaredb`")
