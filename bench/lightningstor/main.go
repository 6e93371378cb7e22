// Command lightningstor benchmarks LightningSTOR's S3 API in one run:
//
//	go run ./bench/lightningstor [--conc 8] [--cycles 10] [--rounds 6]
//
// (from the repository root, with Debian's nginx installed; root is not
// needed). The `photon up` stack runs in this process with its data dir,
// nginx's root and the raw-disk files all under one temp dir, so on one disk.
//
//	GET  1 MiB and 64 MiB objects, --conc keep-alive clients reading whole
//	     objects back to back, against nginx serving files of the same bytes:
//	     the two take turns in interleaved slices (bench/internal/pairbench);
//	     the ratio is the median of the per-cycle ratios. Target ≥ 0.8.
//	PUT  the same sizes: a round is --conc writers each storing
//	     --put-count objects through S3, or writing the same bytes to files
//	     with os.WriteFile-style writes plus fsync (the limit); the paths
//	     alternate by round and the ratio is the median of the per-round
//	     ratios. Target ≥ 0.7.
//	4 KiB PUT then GET of the same key by --conc clients: ops/s, no peer.
//
// Both sides use the same HTTP client code; S3 requests are SigV4-signed
// (minio-go's signer) with an unsigned payload, as clients do over TLS.
// nginx and the temp dir are removed on exit, on error and on SIGINT. The exit
// status is 0 when the run completed without errors, whether or not the
// targets were met; 1 otherwise (2 on bad flags).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/photoncloud/photon/bench/internal/pairbench"
	"github.com/photoncloud/photon/internal/gctune"
)

const (
	getTarget = 0.8
	putTarget = 0.7
	mib       = 1 << 20
	bucket    = "bench"
)

type options struct {
	conc                  int
	cycles, rounds        int
	slice, settle, warm   time.Duration
	putCount1, putCount64 int
	objects               int
	keep                  bool
	gogc                  string
}

func main() {
	os.Exit(pairbench.Main("lightningstor", os.Args[1:], os.Stdout, os.Stderr, parseFlags, bench))
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var opt options
	fs := pairbench.FlagSet("lightningstor", stderr)
	fs.IntVar(&opt.conc, "conc", 8, "concurrent clients")
	fs.IntVar(&opt.cycles, "cycles", 10, "interleaved GET and 4 KiB cycles")
	fs.IntVar(&opt.rounds, "rounds", 6, "PUT rounds per path and size")
	fs.DurationVar(&opt.slice, "slice", time.Second, "recorded part of a GET slice")
	fs.DurationVar(&opt.settle, "settle", 200*time.Millisecond, "untimed start of a GET slice")
	fs.DurationVar(&opt.warm, "warmup", time.Second, "untimed warm-up per GET target")
	fs.IntVar(&opt.putCount1, "put-count-1m", 32, "1 MiB objects each writer stores per PUT round")
	fs.IntVar(&opt.putCount64, "put-count-64m", 2, "64 MiB objects each writer stores per PUT round")
	fs.IntVar(&opt.objects, "objects", 4, "distinct objects per size that the GET clients read")
	fs.BoolVar(&opt.keep, "keep", false, "keep the temporary directory")
	if err := fs.Parse(args); err != nil {
		return opt, err
	}
	if opt.conc < 1 || opt.cycles < 6 || opt.rounds < 1 || opt.slice < 100*time.Millisecond || opt.putCount1 < 1 ||
		opt.putCount64 < 1 || opt.objects < 1 || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "need --conc, --rounds, --put-count-*, --objects >= 1, --cycles >= 6, --slice >= 100ms, and no arguments")
		return opt, pairbench.ErrBadFlag
	}
	return opt, nil
}

func bench(ctx context.Context, opt options, stdout, stderr io.Writer) (err error) {
	ngxBin, err := nginxBinary()
	if err != nil {
		return err
	}
	if v, set := os.LookupEnv("GOGC"); set {
		opt.gogc = "GOGC=" + v + " from the environment"
	} else {
		go gctune.Run(ctx, 5*time.Second)
		opt.gogc = "GOGC tuned as cmd/photon tunes it (internal/gctune: 400 while the live heap is small)"
	}
	dir, cleanup, err := pairbench.TempDir("lightningstor-bench-", opt.keep, stderr)
	if err != nil {
		return err
	}
	defer cleanup()
	// nginx's workers drop to an unprivileged user when the bench runs as
	// root; they must be able to traverse to their root.
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	env := pairbench.DescribeEnv(ctx, "lightningstor", dir)

	ports, err := pairbench.FreePorts(9)
	if err != nil {
		return err
	}
	st, err := startStack(ctx, filepath.Join(dir, "stack"), ports[:8], stderr)
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
	www := filepath.Join(dir, "www")
	if err := os.MkdirAll(www, 0o755); err != nil {
		return err
	}
	ngx, err := startNginx(ctx, ngxBin, filepath.Join(dir, "nginx"), www, ports[8])
	if err != nil {
		return err
	}
	defer ngx.stop()

	r := &runner{opt: opt, s3: st.client, nginxURL: "http://" + ngx.addr, www: www,
		raw: filepath.Join(dir, "raw"), stderr: stderr}
	if err := os.MkdirAll(r.raw, 0o755); err != nil {
		return err
	}
	if err := r.s3.makeBucket(ctx, bucket); err != nil {
		return err
	}
	start := time.Now()
	res, err := r.run(ctx)
	if err != nil {
		return err
	}
	env.Done(start)
	report(stdout, opt, env, ngx.version(), res)
	if res.errs > 0 {
		return fmt.Errorf("%d requests failed", res.errs)
	}
	return nil
}
