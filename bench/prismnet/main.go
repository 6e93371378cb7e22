// Command prismnet benchmarks PrismNET in one run:
//
//	go run ./bench/prismnet [--ports 3000] [--conc 32] [--runs 3] [--time 5]
//
// (from the repository root, as root: the data plane programs the kernel).
//
//	(a) port creations per second: --conc closed-loop clients create
//	    --ports ports (after --warm untimed ones) in one /16 subnet through
//	    POST /api/v1/ports on the `photon up` stack in this process (keep-
//	    alive HTTP, tokenless loopback trust), then delete them all. There is
//	    no peer in the run: the natural one, OpenStack Neutron, is not
//	    installable here (not in Debian 12, and it needs a database, a
//	    message queue and Keystone), so the figure stands alone, with no
//	    target.
//	(b) TCP throughput between two instances across VXLAN against the same
//	    two instance namespaces joined by a plain veth: two host namespaces
//	    joined by an underlay veth each run a PrismNET agent; instance a
//	    (on h1) and b (on h2) have ports of one subnet with the default
//	    security group, so a→b crosses the whole data plane (veth → bridge
//	    with br_netfilter and the nftables security-group rules → VXLAN over
//	    the underlay → bridge and rules → veth; --underlay-mtu less 50, at
//	    most 1500, default 1500: a 1550-byte underlay). The instances are
//	    also joined directly by a veth (MTU 1500). iperf3 (Debian) runs
//	    --runs pairs of --time s (plus 1 s omitted) over each path, the
//	    pair's order alternating; the verdict is on the ratio of the medians,
//	    vxlan/veth, target ≥ 0.8.
//
// --variants then measures the VXLAN path again with parts of it removed
// (nftables rules, br_netfilter) and a plain veth at MTU 1450, to find
// where throughput goes; diagnostics, not judged.
//
// Every namespace (and with it every link) the run makes is removed at the
// end, also on error or SIGINT/SIGTERM. The exit status is 0 when every
// call and run succeeded, whether or not the target was met; 1 otherwise
// (2 on bad flags).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/debug"
	"time"

	"github.com/photoncloud/photon/bench/internal/pairbench"
	"github.com/photoncloud/photon/internal/auth"
	"github.com/photoncloud/photon/internal/platform"
	"github.com/photoncloud/photon/services/chainfire"
	"github.com/photoncloud/photon/services/creditservice"
	"github.com/photoncloud/photon/services/iam"
	"github.com/photoncloud/photon/services/prismnet"
)

// targetRatio is what VXLAN must reach against a plain veth, in TCP
// throughput.
const targetRatio = 0.8

type options struct {
	ports, warm, conc int
	runs, secs        int
	keep, variants    bool
	gogc              string
	underlayMTU       int
}

func main() {
	os.Exit(pairbench.Main("prismnet", os.Args[1:], os.Stdout, os.Stderr, parseFlags, bench))
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var opt options
	fs := pairbench.FlagSet("prismnet", stderr)
	fs.IntVar(&opt.ports, "ports", 3000, "ports to create in (a), timed")
	fs.IntVar(&opt.warm, "warm", 100, "ports to create in (a) before timing")
	fs.IntVar(&opt.conc, "conc", 32, "concurrent clients in (a)")
	fs.IntVar(&opt.runs, "runs", 3, "iperf3 runs per path in (b)")
	fs.IntVar(&opt.secs, "time", 5, "seconds of each iperf3 run (after 1 s omitted)")
	fs.BoolVar(&opt.keep, "keep", false, "keep the temporary directory")
	fs.IntVar(&opt.underlayMTU, "underlay-mtu", 1550, "MTU of the underlay veth between the hosts; the VPC (and instances) get 50 less, at most 1500")
	fs.BoolVar(&opt.variants, "variants", false, "after (b), measure the VXLAN path with parts of it removed (diagnostics, not judged)")
	if err := fs.Parse(args); err != nil {
		return opt, err
	}
	if opt.ports < 3 || opt.warm < 1 || opt.conc < 1 || opt.runs < 1 || opt.secs < 1 || opt.ports+opt.warm > 65000 || opt.underlayMTU < 1000 || opt.underlayMTU > 9000 || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "need --ports >= 3, --warm, --conc, --runs, --time >= 1, --ports + --warm <= 65000, and no arguments")
		return opt, pairbench.ErrBadFlag
	}
	return opt, nil
}

func bench(ctx context.Context, opt options, stdout, stderr io.Writer) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("needs root: the data plane programs network namespaces")
	}
	for _, tool := range []string{"ip", "iperf3"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not installed (scripts/install-deps.sh --bench installs it)", tool)
		}
	}
	if v, set := os.LookupEnv("GOGC"); set {
		opt.gogc = "GOGC=" + v + " from the environment"
	} else {
		debug.SetGCPercent(400)
		opt.gogc = "GOGC=400, as cmd/photon sets it"
	}
	dir, cleanup, err := pairbench.TempDir("prismnet-bench-", opt.keep, stderr)
	if err != nil {
		return err
	}
	defer cleanup()
	ports, err := pairbench.FreePorts(6)
	if err != nil {
		return err
	}
	st, err := startStack(ctx, dir, ports, stderr)
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
	api := rest{hc: pairbench.HTTPClient(opt.conc), base: "http://" + st.PrismNET.HTTPAddr()}
	e := pairbench.DescribeEnv(ctx, "prismnet", dir)
	start := time.Now()

	fmt.Fprintf(stderr, "(a) creating %d+%d ports with %d clients\n", opt.warm, opt.ports, opt.conc)
	pr, err := benchPorts(ctx, opt, api)
	if err != nil {
		return fmt.Errorf("(a): %w", err)
	}

	fmt.Fprintln(stderr, "(b) building two hosts with agents and two instances")
	l := &lab{prefix: fmt.Sprintf("pb%d", os.Getpid()%100000), stderr: stderr, underlayMTU: opt.underlayMTU}
	if opt.variants {
		l.resync = time.Hour // so that no resync undoes a variant's change
	}
	defer func() {
		if cerr := l.Close(); cerr != nil {
			fmt.Fprintf(stderr, "cleanup: %v\n", cerr)
			if err == nil {
				err = cerr
			}
		}
	}()
	_, b, err := l.build(ctx, st, api)
	if err != nil {
		return fmt.Errorf("(b): %w", err)
	}
	paths := describePaths(ctx, l)
	runs, err := throughput(ctx, opt, l, b, stderr)
	if err != nil {
		return fmt.Errorf("(b): %w", err)
	}
	e.Done(start)
	report(stdout, opt, e, pr, runs, paths)
	if opt.variants {
		if err := runVariants(ctx, opt, l, b, stdout, stderr); err != nil {
			return err
		}
	}
	if pr.create.errs > 0 || pr.delete.errs > 0 {
		return fmt.Errorf("(a): %d creates and %d deletes failed", pr.create.errs, pr.delete.errs)
	}
	if pr.distinctIPs != opt.ports+opt.warm || pr.distinctMACs != opt.ports+opt.warm {
		return fmt.Errorf("(a): %d distinct IPs and %d distinct MACs for %d ports", pr.distinctIPs, pr.distinctMACs, opt.ports+opt.warm)
	}
	return nil
}

// startStack starts the `photon up` stack in this process on free loopback
// ports, data in dir, without its own agent: the bench runs one per host
// namespace instead.
func startStack(ctx context.Context, dir string, ports []string, stderr io.Writer) (*platform.Stack, error) {
	cfg := platform.Config{
		DataDir:       dir,
		ChainFire:     chainfire.Config{NodeID: 1, HTTPAddr: ports[0], GRPCAddr: ports[1], PeerAddr: ports[2]},
		IAM:           iam.Config{HTTPAddr: ports[3]},
		CreditService: creditservice.Config{HTTPAddr: ports[4]},
		PrismNET:      prismnet.Config{HTTPAddr: ports[5]},
		Dataplane:     "off",
	}
	p, err := platform.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("stack: %w", err)
	}
	fmt.Fprintf(stderr, "starting the stack in %s\n", dir)
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := p.Start(sctx); err != nil {
		return nil, fmt.Errorf("start stack: %w", err)
	}
	if mode := p.ChainFire.Auth().Mode(); mode != auth.ModeLoopback {
		_ = p.Stop(context.Background())
		return nil, fmt.Errorf("the stack runs in %s mode; the tokenless clients need loopback trust", mode)
	}
	return p, nil
}
