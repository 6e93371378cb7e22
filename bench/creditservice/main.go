// Command creditservice benchmarks CreditService's two-phase money path
// against the ledger an operator would otherwise write on PostgreSQL, in
// one run:
//
//	go run ./bench/creditservice [--cycles 20] [--conc 32]
//
// (from the repository root). One op is a reserve+commit pair: reserve
// --amount, then commit --actual of it.
//
//	o  ours      the `photon up` stack (ChainFire + IAM + CreditService) in
//	             this process (platform.New, free loopback ports, data in a
//	             temporary directory, fsync on); each pair is POST
//	             /api/v1/reservations then POST /api/v1/reservations/{id}/commit
//	             over keep-alive HTTP, tokenless (loopback trust: the bootstrap
//	             admin), so every request pays HTTP, JSON and authorization
//	p  postgres  Debian's PostgreSQL in a throwaway cluster (initdb in the
//	             temporary directory, as the postgres user when run as root;
//	             free port, unix socket in the directory, fsync and
//	             synchronous_commit on), driven directly with
//	             github.com/jackc/pgx/v5 (one connection per client, cached
//	             prepared statements, no HTTP in front): reserve = BEGIN;
//	             SELECT wallet FOR UPDATE; check available; INSERT reservation;
//	             UPDATE wallet reserved; COMMIT. commit = BEGIN; SELECT
//	             reservation FOR UPDATE; SELECT wallet FOR UPDATE; UPDATE
//	             reservation; UPDATE wallet reserved and balance; INSERT
//	             transaction; COMMIT.
//
// Two cases, each with --conc closed-loop clients: "wallets=conc", one
// wallet per client (the judged case, target o/p ≥ 1.0), and "wallets=1",
// every client on the same wallet (information: both sides serialize on it).
// A client is a slot holding its wallet (and, for PostgreSQL, its
// connection); an op takes a free slot, so no two ops use a slot at once.
//
// Method: pairbench's, as bench/iam — each case warms each target up for
// --warmup, then runs --cycles cycles of one slice per target (--settle
// untimed, --slice recorded) in an order that rotates every cycle and
// reverses every two; the ratio is taken per cycle from the paired slices
// and judged on the median of the per-cycle ratios with its 95 % CI.
//
// After the cycles, both sides are checked: for every wallet, balance ==
// sum of its transactions (the initial deposit included), reserved == sum
// of its active reservations, available == balance − reserved ≥ 0, and
// exactly one charge transaction per commit the clients saw succeed.
//
// Runtime: the stack runs in this process, so the bench sets GOGC=400 as
// cmd/photon does (unless GOGC is set). CPU/pair is the CPU
// of the side's server and clients: ours is this process; PostgreSQL is its
// process tree (sampled around each slice, scaled to the recorded window)
// plus this process. "others" is the CPU the rest of the machine used
// meanwhile (other jobs on a shared machine).
// --cpuprofile FILE profiles the measured cycles. The exit status is 0 when
// every op succeeded and no invariant broke, whether or not the target was
// met, 1 otherwise (2 on bad flags).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/photoncloud/photon/bench/internal/pairbench"
	"github.com/photoncloud/photon/bench/internal/pgcluster"
)

// targetRatio is what ours must reach against PostgreSQL, in reserve+commit
// pairs per second with one wallet per client.
const targetRatio = 1.0

type options struct {
	cycles                int
	warmup, settle, slice time.Duration
	conc                  int
	amount, actual        int64
	single                bool
	pgUnix                bool
	cpuProfile            string
	keep                  bool
	gogc                  string
}

func main() {
	os.Exit(pairbench.Main("creditservice", os.Args[1:], os.Stdout, os.Stderr, parseFlags, bench))
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var opt options
	fs := pairbench.FlagSet("creditservice", stderr)
	fs.IntVar(&opt.cycles, "cycles", 20, "cycles per case; each runs both targets for one slice")
	fs.DurationVar(&opt.warmup, "warmup", 2*time.Second, "untimed warm-up of each target before a case's cycles")
	fs.DurationVar(&opt.settle, "settle", 200*time.Millisecond, "untimed start of each slice")
	fs.DurationVar(&opt.slice, "slice", 600*time.Millisecond, "recorded time of each slice")
	fs.IntVar(&opt.conc, "conc", 32, "concurrent clients")
	fs.Int64Var(&opt.amount, "amount", 100, "amount each reservation holds")
	fs.Int64Var(&opt.actual, "actual", 70, "amount each commit charges (at most --amount)")
	fs.BoolVar(&opt.single, "single", true, "also run the single-wallet case (information)")
	fs.BoolVar(&opt.pgUnix, "pg-unix", false, "connect to PostgreSQL through its unix socket instead of TCP 127.0.0.1")
	fs.StringVar(&opt.cpuProfile, "cpuprofile", "", "write a CPU profile of the measured cycles to this file")
	fs.BoolVar(&opt.keep, "keep", false, "keep the temporary directory")
	if err := fs.Parse(args); err != nil {
		return opt, err
	}
	if opt.cycles < 1 || opt.conc < 1 || opt.slice <= 0 || opt.settle < 0 || opt.warmup < 0 ||
		opt.amount < 1 || opt.actual < 0 || opt.actual > opt.amount || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "need --cycles, --conc, --amount >= 1, 0 <= --actual <= --amount, --slice > 0, --settle and --warmup >= 0, and no arguments")
		return opt, pairbench.ErrBadFlag
	}
	return opt, nil
}

// initialBalance is every wallet's starting balance: far more than a run
// can spend.
const initialBalance = 1_000_000_000_000

// benchCase is one wallet layout.
type benchCase struct {
	name     string
	projects []string // one per client slot (repeated when shared)
	wallets  []string // distinct
	judged   bool
}

func cases(opt options) []benchCase {
	var out []benchCase
	many := benchCase{name: fmt.Sprintf("wallets=%d", opt.conc), judged: true}
	for i := range opt.conc {
		p := fmt.Sprintf("bench-many-%02d", i)
		many.projects, many.wallets = append(many.projects, p), append(many.wallets, p)
	}
	out = append(out, many)
	if opt.single {
		one := benchCase{name: "wallets=1", wallets: []string{"bench-one"}}
		for range opt.conc {
			one.projects = append(one.projects, "bench-one")
		}
		out = append(out, one)
	}
	return out
}

// slot is one client: its wallet, its PostgreSQL connection, and the
// commits that succeeded through it, per side.
type slot struct {
	project                string
	conn                   *pgx.Conn
	oursCommits, pgCommits int64
}

func bench(ctx context.Context, opt options, stdout, stderr io.Writer) (err error) {
	if v, set := os.LookupEnv("GOGC"); set {
		opt.gogc = "GOGC=" + v + " from the environment"
	} else {
		debug.SetGCPercent(400)
		opt.gogc = "GOGC=400, as cmd/photon sets it"
	}
	dir, cleanup, err := pairbench.TempDir("creditservice-bench-", opt.keep, stderr)
	if err != nil {
		return err
	}
	defer cleanup()
	ports, err := pairbench.FreePorts(6)
	if err != nil {
		return err
	}
	photonDir := dir + "/photon"
	if err := os.Mkdir(photonDir, 0o700); err != nil {
		return err
	}
	st, err := startStack(ctx, photonDir, ports[:5], stderr)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if serr := st.Stop(sctx); serr != nil && err == nil {
			err = fmt.Errorf("stopping the stack: %w", serr)
		}
	}()
	pg, err := pgcluster.Start(ctx, dir, ports[5], stderr)
	if err != nil {
		return err
	}
	defer func() {
		if serr := pg.Stop(); serr != nil && err == nil {
			err = serr
		}
	}()

	admin, err := pg.Connect(ctx, opt.pgUnix)
	if err != nil {
		return err
	}
	defer admin.Close(context.Background())
	e := env{Env: pairbench.DescribeEnv(ctx, "creditservice", dir), pgVersion: pg.Version, pgDir: pg.Dir, pgConn: pg.ConnDesc(opt.pgUnix)}
	if e.pgSettings, err = pg.Settings(ctx, admin, "fsync", "synchronous_commit", "wal_sync_method", "full_page_writes", "shared_buffers"); err != nil {
		return err
	}

	cs := cases(opt)
	var allWallets []string
	for _, c := range cs {
		allWallets = append(allWallets, c.wallets...)
	}
	if err := pgSetup(ctx, admin, allWallets, initialBalance); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	api := rest{hc: pairbench.HTTPClient(opt.conc), base: "http://" + st.CreditService.HTTPAddr()}
	for _, p := range allWallets {
		if err := api.createWallet(ctx, p, initialBalance); err != nil {
			return fmt.Errorf("create wallet %s: %w", p, err)
		}
	}
	conns := make([]*pgx.Conn, opt.conc)
	for i := range conns {
		if conns[i], err = pg.Connect(ctx, opt.pgUnix); err != nil {
			return err
		}
		defer conns[i].Close(context.Background())
	}

	if opt.cpuProfile != "" {
		f, err := os.Create(opt.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	var results []caseResult
	for _, c := range cs {
		r, err := runCase(ctx, opt, c, api, pg, conns, stderr)
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	e.Done(start)

	// Both sides' invariants, over every wallet of every case.
	commits := map[string][2]int64{}
	for _, r := range results {
		for _, s := range r.slots {
			c := commits[s.project]
			c[0] += s.oursCommits
			c[1] += s.pgCommits
			commits[s.project] = c
		}
	}
	side := func(i int) map[string]int64 {
		m := map[string]int64{}
		for p, c := range commits {
			m[p] = c[i]
		}
		return m
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	oursCheck, err := checkOurs(cctx, api, allWallets, side(0))
	if err != nil {
		return fmt.Errorf("reading CreditService back: %w", err)
	}
	pgResult, err := pgCheck(cctx, admin, side(1))
	if err != nil {
		return fmt.Errorf("reading PostgreSQL back: %w", err)
	}
	failed, violations := report(stdout, opt, e, results, oursCheck, pgResult)
	switch {
	case failed > 0 && violations > 0:
		return fmt.Errorf("%d pairs failed and %d invariant violations", failed, violations)
	case failed > 0:
		return fmt.Errorf("%d pairs failed (see the errs column)", failed)
	case violations > 0:
		return fmt.Errorf("%d invariant violations", violations)
	}
	return nil
}

// caseResult is one case's recorded slices and its client slots.
type caseResult struct {
	c      benchCase
	slices []pairbench.Slice
	slots  []*slot
}

// runCase runs the schedule of one case: o (ours) and p (PostgreSQL).
func runCase(ctx context.Context, opt options, c benchCase, api rest, pg *pgcluster.Cluster, conns []*pgx.Conn, stderr io.Writer) (caseResult, error) {
	res := caseResult{c: c}
	free := make(chan *slot, opt.conc)
	for i, p := range c.projects {
		s := &slot{project: p, conn: conns[i]}
		res.slots = append(res.slots, s)
		free <- s
	}
	ours := func(ctx context.Context) error {
		s := <-free
		defer func() { free <- s }()
		if err := api.pair(ctx, s.project, opt.amount, opt.actual); err != nil {
			return err
		}
		s.oursCommits++
		return nil
	}
	postgres := func(ctx context.Context) error {
		s := <-free
		defer func() { free <- s }()
		id, err := pgReserve(ctx, s.conn, s.project, opt.amount)
		if err != nil {
			return fmt.Errorf("reserve: %w", err)
		}
		if err := pgCommit(ctx, s.conn, id, opt.actual); err != nil {
			// A failed commit leaves a pgx connection usable unless the
			// context ended mid-query; then the next op reports it.
			return fmt.Errorf("commit: %w", err)
		}
		s.pgCommits++
		return nil
	}
	ids := []string{"o", "p"}
	ops := []func(context.Context) error{ours, postgres}
	sched := pairbench.Schedule{
		Targets: 2, Cycles: opt.cycles, Warmup: opt.warmup, Settle: opt.settle, Slice: opt.slice,
		Warned: func(i int, w pairbench.Slice) {
			fmt.Fprintf(stderr, "%s warm-up %s: %d errors, first: %v\n", c.name, ids[i], w.Errs, w.FirstErr)
		},
		Progress: func(cycle int, rates string) {
			fmt.Fprintf(stderr, "%s cycle %2d/%d  pairs/s%s\n", c.name, cycle+1, opt.cycles, rates)
		},
	}
	sl, err := sched.Run(ctx, func(i int, settle, dur time.Duration) pairbench.Slice {
		loop := pairbench.ClosedLoop{Target: ids[i], Conc: opt.conc, Op: ops[i]}
		if ids[i] != "p" {
			return loop.Run(ctx, settle, dur)
		}
		// PostgreSQL is many processes, which ClosedLoop cannot sample:
		// sample the cluster's process tree around the whole slice and
		// count the recorded window's share of it (the load is steady).
		t0, cpu0 := time.Now(), pg.TreeCPU()
		s := loop.Run(ctx, settle, dur)
		if el := time.Since(t0); el > 0 {
			s.CPU.Server = time.Duration(float64(pg.TreeCPU()-cpu0) * float64(s.Window) / float64(el))
		}
		return s
	})
	if err != nil {
		return res, err
	}
	if len(free) != opt.conc {
		return res, errors.New("a client slot was not returned")
	}
	res.slices = sl
	return res, nil
}
