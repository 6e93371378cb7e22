// Command plasmavmc benchmarks PlasmaVMC's boot path against raw QEMU in
// one run:
//
//	go run ./bench/plasmavmc [--rounds 3] [--sizes 1,8] [--poll 50ms]
//
// (from the repository root, with QEMU installed; root is not needed).
//
// For each size N, N VMs are booted at once, --rounds times by each path,
// the paths taking turns (PlasmaVMC first in rounds 1, 3, 5, … counted
// across the sizes, raw QEMU first in the others), after one untimed boot of
// each:
//
//	PlasmaVMC  POST /api/v1/vms (the guest's kernel+initrd image, 1 vCPU,
//	           256 MiB), at once POST /api/v1/vms/{id}/start, then GET
//	           /api/v1/vms/{id}/console every --poll until the guest's marker
//	           shows: what a user of `photon up` waits for, node agent
//	           included (the `photon up` stack runs in this process, with its
//	           hypervisor agent's defaults: 2 s resync, 4 vCPUs per core).
//	raw QEMU   the command line PlasmaVMC ran (qemu.Args of the same spec; the
//	           bench checks each PlasmaVMC VM's /proc/PID/cmdline against it),
//	           exec'd directly, its serial.log read every --poll until the
//	           marker shows: the limit.
//
// A batch's time is from its start until the last of its N guests showed the
// marker; the verdict is on the median batch time of PlasmaVMC over that of
// raw QEMU, target ≤ 1.15, for every N. Both paths poll at the same interval,
// so each carries the same detection delay (half an interval on average).
//
// Every VM is deleted through the API and every raw QEMU killed after its
// batch, also on error or SIGINT/SIGTERM; at the end the bench kills (and
// reports) any QEMU whose command line still names the run's directory. The
// exit status is 0 when every boot succeeded and nothing was left behind,
// whether or not the target was met; 1 otherwise (2 on bad flags).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/photoncloud/photon/bench/internal/pairbench"
	"github.com/photoncloud/photon/internal/auth"
	"github.com/photoncloud/photon/internal/platform"
	"github.com/photoncloud/photon/internal/testutil/vmimage"
	"github.com/photoncloud/photon/services/chainfire"
	"github.com/photoncloud/photon/services/creditservice"
	"github.com/photoncloud/photon/services/iam"
	"github.com/photoncloud/photon/services/plasmavmc"
	"github.com/photoncloud/photon/services/plasmavmc/hypervisor"
	"github.com/photoncloud/photon/services/prismnet"
)

// targetRatio is the most PlasmaVMC's create+start-to-marker may take
// against raw QEMU's launch-to-marker.
const targetRatio = 1.15

// qemuBinary is what both paths run (the agent's default).
const qemuBinary = "qemu-system-x86_64"

type options struct {
	rounds    int
	sizes     []int
	poll      time.Duration
	memMiB    int
	timeout   time.Duration
	keep      bool
	gogc      string
	imageName string
}

func main() {
	os.Exit(pairbench.Main("plasmavmc", os.Args[1:], os.Stdout, os.Stderr, parseFlags, bench))
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	opt := options{imageName: "bench-guest"}
	fs := pairbench.FlagSet("plasmavmc", stderr)
	fs.IntVar(&opt.rounds, "rounds", 3, "timed batches per path and size")
	sizes := fs.String("sizes", "1,8", "comma-separated numbers of VMs booted at once")
	fs.DurationVar(&opt.poll, "poll", 50*time.Millisecond, "how often both paths look for the marker")
	fs.IntVar(&opt.memMiB, "memory-mib", 256, "memory of each VM")
	fs.DurationVar(&opt.timeout, "timeout", 5*time.Minute, "longest one batch may take")
	fs.BoolVar(&opt.keep, "keep", false, "keep the temporary directory")
	if err := fs.Parse(args); err != nil {
		return opt, err
	}
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 64 {
			opt.sizes = nil
			break
		}
		opt.sizes = append(opt.sizes, n)
	}
	if opt.rounds < 1 || len(opt.sizes) == 0 || opt.poll < time.Millisecond || opt.memMiB < 64 || opt.timeout < 10*time.Second || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "need --rounds >= 1, --sizes of numbers 1..64, --poll >= 1ms, --memory-mib >= 64, --timeout >= 10s, and no arguments")
		return opt, pairbench.ErrBadFlag
	}
	return opt, nil
}

func bench(ctx context.Context, opt options, stdout, stderr io.Writer) (err error) {
	if _, err := exec.LookPath(qemuBinary); err != nil {
		return fmt.Errorf("%s not installed (scripts/install-deps.sh installs it)", qemuBinary)
	}
	if v, set := os.LookupEnv("GOGC"); set {
		opt.gogc = "GOGC=" + v + " from the environment"
	} else {
		debug.SetGCPercent(400)
		opt.gogc = "GOGC=400, as cmd/photon sets it"
	}
	fmt.Fprintln(stderr, "building (or finding in the cache) the guest image")
	guest, err := vmimage.Build("")
	if err != nil {
		return err
	}
	dir, cleanup, err := pairbench.TempDir("plasmavmc-bench-", opt.keep, stderr)
	if err != nil {
		return err
	}
	defer cleanup()
	// Whatever QEMU still names the run's directory goes, last of all (the
	// stack's agent leaves its VMs running when it stops, by design).
	defer func() {
		if n := killLeftovers(dir, stderr); n > 0 && err == nil {
			err = fmt.Errorf("%d QEMU processes of the run were left running (killed)", n)
		}
	}()
	ports, err := pairbench.FreePorts(7)
	if err != nil {
		return err
	}
	hvDir := filepath.Join(dir, "vms")
	st, err := startStack(ctx, dir, hvDir, ports, stderr)
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
	api := &rest{hc: pairbench.HTTPClient(64), base: "http://" + st.PlasmaVMC.HTTPAddr(), live: map[string]bool{}}
	// Before the stack stops: every VM this run made is deleted through the
	// API, also after an error or an interrupt.
	defer func() {
		if derr := api.deleteAll(stderr); derr != nil && err == nil {
			err = derr
		}
	}()
	raw := &rawQEMU{dir: filepath.Join(dir, "direct"), procs: map[int]*exec.Cmd{}}
	defer raw.killAll()

	e := pairbench.DescribeEnv(ctx, "plasmavmc", dir)
	img, err := api.upload(ctx, opt.imageName, guest, vmimage.Append(nil))
	if err != nil {
		return fmt.Errorf("image upload: %w", err)
	}
	r := &runner{opt: opt, api: api, raw: raw, hvDir: hvDir, stderr: stderr, image: img.ID}
	node := st.Hypervisor.Agent().Node()
	start := time.Now()

	fmt.Fprintln(stderr, "warm-up: one untimed boot per path")
	if _, err := r.batch(ctx, pathPlasmaVMC, 1, -1); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	if _, err := r.batch(ctx, pathRaw, 1, -1); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	var all []batch
	round := 0
	for _, n := range opt.sizes {
		for i := range opt.rounds {
			order := []string{pathPlasmaVMC, pathRaw}
			if round%2 == 1 {
				order = []string{pathRaw, pathPlasmaVMC}
			}
			round++
			for _, p := range order {
				b, err := r.batch(ctx, p, n, i)
				if err != nil {
					return fmt.Errorf("%s, %d VM(s), round %d: %w", p, n, i+1, err)
				}
				all = append(all, b)
			}
		}
	}
	e.Done(start)
	report(stdout, opt, e, img, node, r, all)
	return nil
}

// startStack starts the `photon up` stack in this process on free loopback
// ports, data in dir, with PlasmaVMC's hypervisor agent running VMs in
// hvDir; no PrismNET data plane (the VMs have no NICs).
func startStack(ctx context.Context, dir, hvDir string, ports []string, stderr io.Writer) (*platform.Stack, error) {
	cfg := platform.Config{
		DataDir:       dir,
		ChainFire:     chainfire.Config{NodeID: 1, HTTPAddr: ports[0], GRPCAddr: ports[1], PeerAddr: ports[2]},
		IAM:           iam.Config{HTTPAddr: ports[3]},
		CreditService: creditservice.Config{HTTPAddr: ports[4]},
		PrismNET:      prismnet.Config{HTTPAddr: ports[5]},
		PlasmaVMC:     plasmavmc.Config{HTTPAddr: ports[6]},
		Dataplane:     "off",
		Hypervisor:    "on",
		// As `photon up` runs it (cmd/photon's flags): auto accel (TCG
		// here), 4 vCPUs offered per core, so 8 one-vCPU VMs fit 2 cores;
		// resync left at its default.
		HypervisorConfig: hypervisor.Config{Node: fmt.Sprintf("bench-%d", os.Getpid()), DataDir: hvDir, QEMU: qemuBinary,
			Accel: "auto", CPUAllocationRatio: 4, StopGrace: 5 * time.Second},
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
	if p.Hypervisor == nil || p.Hypervisor.Agent() == nil {
		_ = p.Stop(context.Background())
		return nil, errors.New("the stack runs no hypervisor agent")
	}
	return p, nil
}

// killLeftovers SIGKILLs every process whose command line names dir and
// says how many there were.
func killLeftovers(dir string, stderr io.Writer) int {
	n := 0
	for _, pid := range processesNaming(dir) {
		fmt.Fprintf(stderr, "cleanup: killing leftover pid %d (%s)\n", pid, cmdline(pid))
		if p, err := os.FindProcess(pid); err == nil && p.Kill() == nil {
			n++
		}
	}
	return n
}
