package pairbench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// ErrBadFlag is what a command's flag parser returns after it has explained
// the problem on stderr; Main then exits with status 2.
var ErrBadFlag = errors.New("bad flag")

// Main runs the bench command `go run ./bench/NAME`: it parses args with
// parse, runs bench under a context that SIGINT, SIGTERM and SIGHUP cancel,
// and returns the exit status: 0 on success (and for -help), 1 when bench
// fails, 2 when parse does.
func Main[O any](name string, args []string, stdout, stderr io.Writer,
	parse func(args []string, stderr io.Writer) (O, error),
	bench func(ctx context.Context, opt O, stdout, stderr io.Writer) error) int {
	opt, err := parse(args, stderr)
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
		fmt.Fprintf(stderr, "bench/%s: %v\n", name, err)
		return 1
	}
	return 0
}

// FlagSet is the flag set of `go run ./bench/NAME`: it returns its errors
// rather than exiting, and writes them and the usage to stderr.
func FlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: go run ./bench/%s [flags]   (from the repository root)\n", name)
		fs.PrintDefaults()
	}
	return fs
}

// TempDir makes the run's temporary directory. cleanup removes it or, with
// keep, says on stderr where it was kept.
func TempDir(prefix string, keep bool, stderr io.Writer) (dir string, cleanup func(), err error) {
	dir, err = os.MkdirTemp("", prefix)
	if err != nil {
		return "", nil, err
	}
	return dir, func() {
		if keep {
			fmt.Fprintf(stderr, "kept %s\n", dir)
		} else {
			_ = os.RemoveAll(dir)
		}
	}, nil
}

// FreePorts returns n distinct loopback addresses that were free a moment
// ago (etcd cannot listen on port 0 and advertise the result).
func FreePorts(n int) ([]string, error) {
	var ports []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close() // held until all are chosen, so they differ
		ports = append(ports, ln.Addr().String())
	}
	return ports, nil
}

// HTTPClient is a client for conc closed-loop workers, each reusing its own
// keep-alive connection.
func HTTPClient(conc int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: conc, // the default (2) would close and re-dial connections under load
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}}
}
