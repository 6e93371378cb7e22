// Command iam benchmarks what authentication costs, on this machine, in one
// run:
//
//	go run ./bench/iam [--verify-rounds 1000] [--cycles 30] [--conc 16]
//
// (from the repository root). It starts the `photon up` stack (ChainFire and
// IAM) in this process with platform.New, on free loopback ports, with its
// data in a temporary directory that it removes afterwards, and measures two
// things against their limits.
//
// Token verification, in process, in one goroutine, on IAM's own bootstrap
// admin token (read from DATA/admin.token; its key comes from IAM's JWKS):
//
//	e  ed25519.Verify        the limit: one raw signature check of the token's signing input and signature
//	u  Verify, uncached      token.NewVerifier(keys, token.WithoutCache()); keys is the JWKS KeySource
//	                         ChainFire itself uses (token.RemoteKeys), already fetched
//	f  Verify, fresh tokens  a caching Verifier meeting each token for the first time (info)
//	c  Verify, cached        a caching Verifier and the same token every time
//	a  Authenticator.Verify  ChainFire's own authenticator: cached Verify plus the revocation check
//	                         against its loaded IAM cache (info)
//
// Targets: u/e ≥ 0.8 and c/e ≥ 10. The fresh tokens (f) are pre-signed with a
// bench key and carry the admin token's claims, each with its own jti of the
// same length; when the pool runs out a new Verifier (with an empty cache)
// takes over, so no token is ever a cache hit.
//
// HTTP, a protected ChainFire GET through the real REST stack: --conc
// closed-loop clients, each on its own keep-alive connection, send
//
//	t  GET /api/v1/kv/<key> with Authorization: Bearer <admin token>
//	l  the same GET without a token, which loopback trust (the stack's mode:
//	   every listener is on 127.0.0.1) lets through as the bootstrap admin
//
// Target: t/l ≥ 0.9. The two differ only in the header: same client,
// transport and connections. With a token the request is verified (cached
// after the first), checked for revocation, and its permission decided from
// the IAM cache; without one, loopback trust short-cuts all three. Before
// measuring, the bench checks that a forged token gets 401, so the token
// target is known to go through verification.
//
// Method: as bench/chainfire, interleaved short slices and paired ratios. On
// a shared VM the throughput the guest gets drifts by tens of percent within
// seconds, so each target is first warmed up for --warmup (untimed), and then
// the targets take turns, in an order that rotates every cycle and reverses
// every len(targets) cycles. For HTTP a cycle runs each target for one slice
// (--http-settle untimed, then --http-slice recorded; a request counts when it
// completes inside the recorded window), --cycles times. Verification ops take
// 0.1–60 µs, so there a cycle (a round) times one batch of each target, each
// batch sized from the target's warm-up rate to take about --verify-batch:
// a few milliseconds apart, both sides of a ratio see the same machine. Each
// ratio is computed per cycle from the paired slices; the verdict uses the
// median of the per-cycle ratios, shown with a distribution-free 95 %
// confidence interval and the ratio of total ops over all cycles. For HTTP
// the ratio of requests per process CPU-second is shown too (information):
// it does not move when other jobs take cores away. With the defaults a run
// takes about a minute after the build.
//
// Runtime. The stack runs in this process, so the bench sets GOGC=400 as
// cmd/photon does (unless GOGC is set in the environment). The clients share
// the process and its cores with the servers, so CPU/op is the whole
// process's, clients included.
//
// --parts and --targets run a subset; --cpuprofile FILE writes a CPU profile
// of the measured part of the run. Otherwise the bench writes nothing but its
// temporary directory. The report goes to stdout, progress to stderr. The
// exit status is 0 when every operation succeeded, whether or not the targets
// were met, and 1 on any error (2 on bad flags).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/photoncloud/photon/bench/internal/pairbench"
)

// Targets of the ratios.
const (
	targetUncached = 0.8  // uncached Verify / raw ed25519.Verify
	targetCached   = 10.0 // cached Verify / raw ed25519.Verify
	targetHTTP     = 0.9  // GET with a bearer token / the same GET in loopback trust
)

// options are the command's flags.
type options struct {
	cycles                int
	warmup                time.Duration
	verifyBatch           time.Duration
	verifyRounds          int
	httpSettle, httpSlice time.Duration
	conc                  int
	valueSize             int
	parts                 []string // "verify", "http"
	targets               string   // ids of the targets to run
	cpuProfile            string
	keep                  bool
	gogc                  string // what the run used, for the report
}

func main() {
	os.Exit(pairbench.Main("iam", os.Args[1:], os.Stdout, os.Stderr, parseFlags, bench))
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var opt options
	fs := pairbench.FlagSet("iam", stderr)
	fs.IntVar(&opt.cycles, "cycles", 30, "cycles per part; each runs every target of the part for one slice")
	fs.DurationVar(&opt.warmup, "warmup", time.Second, "untimed warm-up of each target before a part's cycles")
	fs.DurationVar(&opt.verifyBatch, "verify-batch", 5*time.Millisecond, "about how long one batch of one verification target runs")
	fs.IntVar(&opt.verifyRounds, "verify-rounds", 1000, "verification rounds; each runs one batch of every verification target")
	fs.DurationVar(&opt.httpSettle, "http-settle", 100*time.Millisecond, "untimed start of each HTTP slice")
	fs.DurationVar(&opt.httpSlice, "http-slice", 300*time.Millisecond, "recorded time of each HTTP slice")
	fs.IntVar(&opt.conc, "conc", 16, "concurrent HTTP clients (keep-alive, one connection each)")
	fs.IntVar(&opt.valueSize, "value-size", 256, "size in bytes of the value the GETs read")
	parts := fs.String("parts", "verify,http", "comma-separated parts to run (verify, http)")
	fs.StringVar(&opt.targets, "targets", "eufcatl", "targets to run, by id (see the package doc); ratios need both sides")
	fs.StringVar(&opt.cpuProfile, "cpuprofile", "", "write a CPU profile of the measured cycles to this file")
	fs.BoolVar(&opt.keep, "keep", false, "keep the temporary directory (the stack's data)")
	if err := fs.Parse(args); err != nil {
		return opt, err
	}
	for _, p := range strings.Split(*parts, ",") {
		if p = strings.TrimSpace(p); p != "verify" && p != "http" {
			fmt.Fprintf(stderr, "--parts: %q is neither verify nor http\n", p)
			return opt, pairbench.ErrBadFlag
		}
		if !slices.Contains(opt.parts, p) {
			opt.parts = append(opt.parts, p)
		}
	}
	if strings.Trim(opt.targets, "eufcatl") != "" || opt.targets == "" {
		fmt.Fprintf(stderr, "--targets: %q is not a set of e, u, f, c, a, t and l\n", opt.targets)
		return opt, pairbench.ErrBadFlag
	}
	if opt.cycles < 1 || opt.conc < 1 || opt.valueSize < 1 || opt.verifyBatch <= 0 || opt.verifyRounds < 1 || opt.httpSlice <= 0 ||
		opt.httpSettle < 0 || opt.warmup < 0 || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "need --cycles, --conc and --value-size >= 1, slices > 0, settles and --warmup >= 0, and no arguments")
		return opt, pairbench.ErrBadFlag
	}
	return opt, nil
}

func (o options) runs(part string) bool { return slices.Contains(o.parts, part) }

// bench starts the stack, runs the parts and prints the report.
func bench(ctx context.Context, opt options, stdout, stderr io.Writer) (err error) {
	// As cmd/photon: the stack under test runs in this process.
	if v, set := os.LookupEnv("GOGC"); set {
		opt.gogc = "GOGC=" + v + " from the environment"
	} else {
		debug.SetGCPercent(400)
		opt.gogc = "GOGC=400, as cmd/photon sets it"
	}
	dir, cleanup, err := pairbench.TempDir("iam-bench-", opt.keep, stderr)
	if err != nil {
		return err
	}
	defer cleanup()
	st, err := startStack(ctx, dir, stderr)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if serr := st.stop(sctx); serr != nil && err == nil {
			err = fmt.Errorf("stopping the stack: %w", serr)
		}
	}()

	e := env{Env: pairbench.DescribeEnv(ctx, "iam", dir)}
	e.tokenLen, e.msgLen = len(st.adminToken), strings.LastIndexByte(st.adminToken, '.')
	var vcases []verifyCase
	if opt.runs("verify") {
		if vcases, err = newVerifyCases(ctx, st); err != nil {
			return err
		}
		vcases = slices.DeleteFunc(vcases, func(c verifyCase) bool { return !strings.Contains(opt.targets, c.id) })
	}
	var hcases []httpCase
	if opt.runs("http") {
		if hcases, err = newHTTPCases(ctx, st, opt); err != nil {
			return err
		}
		hcases = slices.DeleteFunc(hcases, func(c httpCase) bool { return !strings.Contains(opt.targets, c.id) })
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
	var vres []pairbench.Slice
	var allocs map[string]allocStat
	if len(vcases) > 0 {
		if vres, allocs, err = runVerify(ctx, opt, vcases, stderr); err != nil {
			return err
		}
	}
	var hres []pairbench.Slice
	if len(hcases) > 0 {
		if hres, err = runHTTP(ctx, opt, hcases, stderr); err != nil {
			return err
		}
	}
	e.Done(start)
	if n := report(stdout, opt, e, vcases, vres, allocs, hcases, hres); n > 0 {
		return fmt.Errorf("%d operations failed (see the errs columns)", n)
	}
	return nil
}
