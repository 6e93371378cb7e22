package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/photoncloud/photon/bench/internal/pairbench"
	"github.com/photoncloud/photon/internal/testutil/vmimage"
	"github.com/photoncloud/photon/services/plasmavmc"
	"github.com/photoncloud/photon/services/plasmavmc/qemu"
)

const (
	pathPlasmaVMC = "plasmavmc"
	pathRaw       = "raw qemu"
)

// boot is one guest's timeline, each point from its batch's start.
type boot struct {
	created, started time.Duration // POST /vms and POST /start answered (PlasmaVMC)
	exec             time.Duration // QEMU's process began (/proc/PID/stat, 10 ms resolution)
	running          time.Duration // the agent recorded it Running, QMP up (PlasmaVMC)
	marker           time.Duration // the marker was seen
	polls            []time.Duration
	argvSame         bool // PlasmaVMC: its QEMU ran exactly qemu.Args of the spec
	pid              int
	qemuCPU          time.Duration // the QEMU's CPU time when the marker was seen
}

// batch is N guests booted at once by one path.
type batch struct {
	path  string
	n     int
	round int // -1: the untimed warm-up
	wall  time.Duration
	boots []boot
	cpu   pairbench.CPU // this process (stack and bench) and the machine, during the batch
	// qemuCPU is the batch's QEMU processes' CPU time, all of it in the
	// batch; with cpu it tells what the rest of the machine used.
	qemuCPU time.Duration
}

type runner struct {
	opt    options
	api    *rest
	raw    *rawQEMU
	hvDir  string
	stderr io.Writer
	image  string

	// proto is a VM PlasmaVMC booted: its boot files, command line and
	// accelerator are what the raw path runs.
	mu    sync.Mutex
	proto plasmavmc.VM
}

func (r *runner) prototype() plasmavmc.VM {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.proto
}

// batch boots n guests at once by path, then tears them down and checks
// that no QEMU of the run is left.
func (r *runner) batch(ctx context.Context, path string, n, round int) (batch, error) {
	bctx, cancel := context.WithTimeout(ctx, r.opt.timeout)
	defer cancel()
	b := batch{path: path, n: n, round: round, boots: make([]boot, n)}
	errs := make([]error, n)
	var ids []string
	var mu sync.Mutex
	cpu0 := pairbench.SampleCPU(0)
	t0 := time.Now()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var id string
			if path == pathPlasmaVMC {
				b.boots[i], id, errs[i] = r.viaPlasmaVMC(bctx, t0, fmt.Sprintf("r%d-%d", round+1, i))
			} else {
				b.boots[i], errs[i] = r.viaRaw(bctx, t0, fmt.Sprintf("r%d-n%d-%d", round+1, n, i))
			}
			if id != "" {
				mu.Lock()
				ids = append(ids, id)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	b.cpu = pairbench.SampleCPU(0).Sub(cpu0)
	for _, bt := range b.boots {
		b.wall = max(b.wall, bt.marker)
		if bt.pid > 0 {
			b.qemuCPU += procCPU(bt.pid)
		}
	}
	// Tear down with a fresh deadline: a batch that timed out still cleans up.
	tctx, tcancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer tcancel()
	var terr error
	if path == pathPlasmaVMC {
		terr = r.api.remove(tctx, ids)
	} else {
		r.raw.killAll()
	}
	if err := errors.Join(append(errs, terr)...); err != nil {
		return b, err
	}
	if left := processesNaming(r.hvDir, r.raw.dir); len(left) > 0 {
		return b, fmt.Errorf("QEMU processes left after the batch's teardown: %v", left)
	}
	label := fmt.Sprintf("round %d", round+1)
	if round < 0 {
		label = "warm-up"
	}
	fmt.Fprintf(r.stderr, "  %-9s %d VM(s) %-9s last marker at %s\n", path, n, label, b.wall.Round(time.Millisecond))
	// Let the teardown's work settle before the next batch.
	select {
	case <-ctx.Done():
		return b, ctx.Err()
	case <-time.After(time.Second):
	}
	return b, nil
}

// viaPlasmaVMC is the user's path: create, start, poll the console.
func (r *runner) viaPlasmaVMC(ctx context.Context, t0 time.Time, name string) (boot, string, error) {
	var bt boot
	vm, err := r.api.create(ctx, "bench-"+name, r.image, r.opt.memMiB)
	if err != nil {
		return bt, "", fmt.Errorf("create: %w", err)
	}
	bt.created = time.Since(t0)
	if err := r.api.start(ctx, vm.ID); err != nil {
		return bt, vm.ID, fmt.Errorf("start %s: %w", vm.ID, err)
	}
	bt.started = time.Since(t0)
	tick := time.NewTicker(r.opt.poll)
	defer tick.Stop()
	var lastErr error
	for {
		p0 := time.Now()
		out, err := r.api.console(ctx, vm.ID)
		bt.polls = append(bt.polls, time.Since(p0))
		if err == nil && strings.Contains(out, vmimage.Marker) {
			bt.marker = time.Since(t0)
			break
		}
		if err != nil {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			got, _ := r.api.get(context.Background(), vm.ID)
			return bt, vm.ID, fmt.Errorf("vm %s (state %s, last error %q) never showed the marker: %w (last console error: %v)",
				vm.ID, got.State, got.LastError, ctx.Err(), lastErr)
		case <-tick.C:
		}
	}
	got, err := r.api.get(ctx, vm.ID)
	if err != nil {
		return bt, vm.ID, err
	}
	bt.pid = got.PID
	bt.qemuCPU = procCPU(got.PID)
	if got.StartedAt != nil {
		bt.running = got.StartedAt.Sub(t0)
	}
	if got.PID > 0 {
		if at, ok := procStart(got.PID); ok {
			bt.exec = at.Sub(t0)
		}
		bt.argvSame = slices.Equal(argv(got.PID), qemu.Args(r.specOf(got)))
	}
	if got.Boot == nil || got.Boot.Format != plasmavmc.FormatKernel {
		return bt, vm.ID, fmt.Errorf("vm %s has no kernel boot: %+v", vm.ID, got.Boot)
	}
	r.mu.Lock()
	if r.proto.ID == "" {
		r.proto = got
	}
	r.mu.Unlock()
	return bt, vm.ID, nil
}

// specOf is the spec the node agent builds for vm (hypervisor's start): a
// direct kernel boot, a root disk only if the node made one, no NICs here.
func (r *runner) specOf(vm plasmavmc.VM) qemu.Spec {
	dir := filepath.Join(r.hvDir, vm.ID)
	s := qemu.Spec{Name: vm.ID, Dir: dir, VCPUs: vm.VCPUs, MemoryMiB: vm.MemoryMiB, Accel: vm.Accel}
	if b := vm.Boot; b != nil && b.Format == plasmavmc.FormatKernel {
		s.Kernel, s.Initrd, s.Append = b.Kernel, b.Initrd, b.Cmdline
	}
	if root := filepath.Join(dir, "root.qcow2"); fileExists(root) {
		s.Disks = []qemu.Disk{{Path: root, Format: "qcow2"}}
	}
	return s
}

// viaRaw is the limit: the same command line, exec'd directly, its serial
// log polled for the marker.
func (r *runner) viaRaw(ctx context.Context, t0 time.Time, name string) (boot, error) {
	var bt boot
	proto := r.prototype()
	if proto.ID == "" {
		return bt, errors.New("no PlasmaVMC VM booted yet to copy the command line from")
	}
	spec := r.specOf(proto)
	if len(spec.Disks) > 0 {
		return bt, errors.New("PlasmaVMC's VM has a root disk; the raw path would need its own copy")
	}
	spec.Name, spec.Dir = "raw-"+name, filepath.Join(r.raw.dir, name)
	cmd, err := r.raw.start(spec)
	if err != nil {
		return bt, err
	}
	if at, ok := procStart(cmd.Process.Pid); ok {
		bt.exec = at.Sub(t0)
	}
	serial := filepath.Join(spec.Dir, qemu.SerialLog)
	tick := time.NewTicker(r.opt.poll)
	defer tick.Stop()
	for {
		p0 := time.Now()
		out, _ := os.ReadFile(serial)
		bt.polls = append(bt.polls, time.Since(p0))
		if bytes.Contains(out, []byte(vmimage.Marker)) {
			bt.marker = time.Since(t0)
			bt.pid = cmd.Process.Pid
			bt.qemuCPU = procCPU(bt.pid)
			return bt, nil
		}
		select {
		case <-ctx.Done():
			return bt, fmt.Errorf("raw QEMU %s never showed the marker: %w; qemu.log: %s", spec.Name, ctx.Err(),
				readTail(filepath.Join(spec.Dir, qemu.LogFile)))
		case <-tick.C:
		}
	}
}

// rawQEMU runs the raw path's QEMU processes and kills them all at the end
// of each batch (and of the run).
type rawQEMU struct {
	dir   string
	mu    sync.Mutex
	procs map[int]*exec.Cmd
}

// start launches QEMU as the agent does (qemu.Start): in its own session,
// its output in the runtime dir's qemu.log, but without waiting for QMP.
func (q *rawQEMU) start(spec qemu.Spec) (*exec.Cmd, error) {
	if err := os.MkdirAll(spec.Dir, 0o700); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(filepath.Join(spec.Dir, qemu.LogFile), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(qemuBinary, qemu.Args(spec)...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = spec.Dir, logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start qemu: %w", err)
	}
	q.mu.Lock()
	q.procs[cmd.Process.Pid] = cmd
	q.mu.Unlock()
	return cmd, nil
}

// killAll kills and reaps every raw QEMU still running.
func (q *rawQEMU) killAll() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for pid, cmd := range q.procs {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		delete(q.procs, pid)
	}
}

// procStart is when process pid began, from /proc/PID/stat's starttime
// (clock ticks since boot, CLOCK_BOOTTIME).
func procStart(pid int) (time.Time, bool) {
	f := procStat(pid)
	if len(f) < 20 {
		return time.Time{}, false
	}
	ticks, err := strconv.ParseInt(f[19], 10, 64) // field 22: starttime
	if err != nil {
		return time.Time{}, false
	}
	var ts unix.Timespec
	now := time.Now()
	if unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts) != nil {
		return time.Time{}, false
	}
	sinceStart := time.Duration(ts.Nano()) - time.Duration(ticks)*10*time.Millisecond
	return now.Add(-sinceStart), true
}

// procCPU is the CPU time process pid has used (all its threads), from
// /proc/PID/stat; 0 if it cannot be read.
func procCPU(pid int) time.Duration {
	f := procStat(pid)
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64) // field 14: utime
	s, _ := strconv.ParseInt(f[12], 10, 64) // field 15: stime
	return time.Duration(u+s) * 10 * time.Millisecond
}

// procStat is /proc/PID/stat's fields after the command name (which may
// hold spaces): f[0] is field 3, the state.
func procStat(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

// argv is process pid's arguments after the program name.
func argv(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || len(b) == 0 {
		return nil
	}
	a := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
	return a[1:]
}

func cmdline(pid int) string {
	return strings.Join(argv(pid), " ")
}

// processesNaming lists the pids whose command line names any of dirs.
func processesNaming(dirs ...string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		for _, d := range dirs {
			if bytes.Contains(b, []byte(d+"/")) {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func readTail(p string) string {
	b, _ := os.ReadFile(p)
	if len(b) > 1024 {
		b = b[len(b)-1024:]
	}
	return string(b)
}
