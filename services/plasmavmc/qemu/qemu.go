// Package qemu runs one QEMU process per virtual machine and drives it over
// QMP. The process is started in its own session so it outlives PlasmaVMC;
// after a restart PlasmaVMC finds it again through the VM's runtime dir.
package qemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Files QEMU keeps in a VM's runtime dir.
const (
	QMPSocket = "qmp.sock"
	SerialLog = "serial.log"
	PidFile   = "qemu.pid"
	LogFile   = "qemu.log"
)

// ErrNotRunning means the runtime dir has no live QEMU of its own.
var ErrNotRunning = errors.New("qemu: not running")

// Disk is a block device given to the guest as virtio-blk.
type Disk struct {
	Path     string
	Format   string // "qcow2" or "raw"
	ReadOnly bool
}

// NIC is a virtio-net device backed by a tap that already exists (see
// CreateTap); QEMU only opens it, so no helper scripts and no root-only setup
// run inside QEMU.
type NIC struct {
	Tap string
	MAC string
}

// Spec is everything needed to build a VM's QEMU command line.
type Spec struct {
	Name      string // VM id, for -name and process identification
	Dir       string // runtime dir: qmp.sock, serial.log, qemu.pid, qemu.log
	VCPUs     int
	MemoryMiB int
	Accel     string // "kvm" or "tcg" (see DetectAccel)

	// Direct kernel boot, optional.
	Kernel, Initrd, Append string

	Disks []Disk
	NICs  []NIC
}

// escape doubles commas, QEMU's quoting inside option values, so paths and
// names cannot inject extra options.
func escape(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// Args returns the QEMU command line (without the binary) for s. It is
// deterministic so tests and the benchmark's raw-QEMU baseline run exactly
// what PlasmaVMC runs. vhost is never requested: hosts may lack
// /dev/vhost-net.
func Args(s Spec) []string {
	dir := s.Dir
	a := []string{
		"-name", escape(s.Name),
		"-nodefaults",
		"-no-user-config",
		"-display", "none",
		"-machine", "q35",
		"-accel", s.Accel,
	}
	if s.Accel == "kvm" {
		a = append(a, "-cpu", "host")
	}
	a = append(a,
		"-m", strconv.Itoa(s.MemoryMiB)+"M",
		"-smp", strconv.Itoa(s.VCPUs),
		"-pidfile", filepath.Join(dir, PidFile),
		"-chardev", "socket,id=qmp,path="+escape(filepath.Join(dir, QMPSocket))+",server=on,wait=off",
		"-mon", "chardev=qmp,mode=control",
		"-chardev", "file,id=serial0,path="+escape(filepath.Join(dir, SerialLog)),
		"-serial", "chardev:serial0",
	)
	if s.Kernel != "" {
		a = append(a, "-kernel", s.Kernel)
		if s.Initrd != "" {
			a = append(a, "-initrd", s.Initrd)
		}
		if s.Append != "" {
			a = append(a, "-append", s.Append)
		}
	}
	for i, d := range s.Disks {
		id := "disk" + strconv.Itoa(i)
		drive := "if=none,id=" + id + ",file=" + escape(d.Path) + ",format=" + d.Format
		if d.ReadOnly {
			drive += ",readonly=on"
		}
		dev := "virtio-blk-pci,drive=" + id
		if s.Kernel == "" {
			// The firmware boots from the disks in order; a direct kernel
			// boot takes boot index 0 itself.
			dev += ",bootindex=" + strconv.Itoa(i)
		}
		a = append(a, "-drive", drive, "-device", dev)
	}
	for i, n := range s.NICs {
		id := "net" + strconv.Itoa(i)
		a = append(a,
			"-netdev", "tap,id="+id+",ifname="+escape(n.Tap)+",script=no,downscript=no",
			"-device", "virtio-net-pci,netdev="+id+",mac="+n.MAC,
		)
	}
	return a
}

func validate(s Spec) error {
	switch {
	case s.Name == "":
		return errors.New("qemu: spec needs a name")
	case s.Dir == "":
		return errors.New("qemu: spec needs a runtime dir")
	case s.VCPUs < 1:
		return fmt.Errorf("qemu: vcpus %d: must be at least 1", s.VCPUs)
	case s.MemoryMiB < 1:
		return fmt.Errorf("qemu: memory %d MiB: must be at least 1", s.MemoryMiB)
	case s.Accel != "kvm" && s.Accel != "tcg":
		return fmt.Errorf("qemu: accel %q: must be kvm or tcg (resolve auto with DetectAccel)", s.Accel)
	}
	// sun_path holds 108 bytes including the NUL.
	if p := filepath.Join(s.Dir, QMPSocket); len(p) > 107 {
		return fmt.Errorf("qemu: QMP socket path %s is %d bytes, unix sockets allow 107", p, len(p))
	}
	for _, d := range s.Disks {
		if d.Format != "qcow2" && d.Format != "raw" {
			return fmt.Errorf("qemu: disk %s: format %q must be qcow2 or raw", d.Path, d.Format)
		}
	}
	for _, n := range s.NICs {
		if n.Tap == "" || n.MAC == "" {
			return errors.New("qemu: a NIC needs a tap and a MAC")
		}
	}
	return nil
}

// Process is a handle on one running QEMU. Several goroutines may use it at
// once.
type Process struct {
	pid   int
	dir   string
	qmp   *qmpClient
	pidfd *os.File // refers to exactly this process, immune to pid reuse

	exited    chan struct{}
	closeOnce sync.Once
	watchDone chan struct{}
}

// Start launches QEMU for s in its own session (setsid), so a kill -9 of
// PlasmaVMC or its process group does not take the VMs down, and returns once
// QMP answers. The guest runs at once.
func Start(ctx context.Context, binary string, s Spec) (*Process, error) {
	if err := validate(s); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(s.Dir)
	if err != nil {
		return nil, err
	}
	s.Dir = dir
	// QEMU running as root creates a missing tap itself (down, on no
	// bridge), which would boot a VM with a dead NIC: insist it exists.
	for _, n := range s.NICs {
		if _, err := os.Stat(filepath.Join("/sys/class/net", n.Tap)); err != nil {
			return nil, fmt.Errorf("qemu: tap %s: %w", n.Tap, err)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	// Leftovers of a QEMU that died hard would confuse Attach and the wait
	// for QMP below.
	for _, f := range []string{QMPSocket, PidFile} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	logf, err := os.OpenFile(filepath.Join(dir, LogFile), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()

	cmd := exec.Command(binary, Args(s)...)
	cmd.Dir = dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start qemu: %w", err)
	}
	pid := cmd.Process.Pid
	// Our own pidfd: until we reap the child its pid cannot be reused, so
	// this refers to QEMU. We reap through it (waitid P_PIDFD) instead of
	// cmd.Wait so the same code watches attached processes.
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
		return nil, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	_ = cmd.Process.Release()
	p := newProcess(pid, dir, os.NewFile(uintptr(fd), "pidfd"))

	if err := p.connect(ctx); err != nil {
		_ = p.Kill()
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
		}
		p.stopWatch()
		return nil, fmt.Errorf("%w; qemu.log: %s", err, tailString(filepath.Join(dir, LogFile), 2048))
	}
	return p, nil
}

// connect waits until QEMU's QMP socket accepts and answers, giving up early
// if QEMU exits (bad arguments, missing tap, ...).
func (p *Process) connect(ctx context.Context) error {
	sock := filepath.Join(p.dir, QMPSocket)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := dialQMP(ctx, sock)
		if err == nil {
			p.qmp = c
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("qemu: waiting for QMP: %w (last error: %v)", ctx.Err(), err)
		case <-p.exited:
			return errors.New("qemu: exited during start-up")
		case <-tick.C:
		}
	}
}

// Attach finds the QEMU of a runtime dir after a PlasmaVMC restart. The pid
// from the pidfile must be alive and its command line must name this dir's
// pidfile, so a recycled pid is never mistaken for the VM.
func Attach(ctx context.Context, dir string) (*Process, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(dir, PidFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotRunning
	}
	if err != nil {
		return nil, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return nil, fmt.Errorf("%w: bad pidfile %q", ErrNotRunning, b)
	}
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if errors.Is(err, unix.ESRCH) {
		return nil, ErrNotRunning
	}
	if err != nil {
		return nil, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	pidfd := os.NewFile(uintptr(fd), "pidfd")
	// Check the command line after opening the pidfd, then check the pidfd
	// is still alive: the process we checked is the one the pidfd refers to.
	if !ownsDir(pid, dir) {
		// A dead QEMU has an empty cmdline. If it is our own child that
		// nobody reaped, reap it now; right after a kill -9 the leader is a
		// zombie while its other threads still exit, so wait for that.
		if isQEMUComm(pid) && waitPidfd(ctx, pidfd, 2*time.Second) {
			reap(pidfd)
		}
		pidfd.Close()
		return nil, ErrNotRunning
	}
	if pidfdExited(pidfd) {
		reap(pidfd)
		pidfd.Close()
		return nil, ErrNotRunning
	}
	p := newProcess(pid, dir, pidfd)
	c, err := dialQMP(ctx, filepath.Join(dir, QMPSocket))
	if err != nil {
		p.stopWatch()
		return nil, fmt.Errorf("qemu: attach pid %d: %w", pid, err)
	}
	p.qmp = c
	return p, nil
}

// ownsDir reports whether /proc/<pid>/cmdline carries "-pidfile <dir>/qemu.pid".
func ownsDir(pid int, dir string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	args := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
	want := filepath.Join(dir, PidFile)
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "-pidfile" && args[i+1] == want {
			return true
		}
	}
	return false
}

func isQEMUComm(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	return err == nil && strings.HasPrefix(string(b), "qemu-system")
}

func newProcess(pid int, dir string, pidfd *os.File) *Process {
	p := &Process{
		pid:       pid,
		dir:       dir,
		pidfd:     pidfd,
		exited:    make(chan struct{}),
		watchDone: make(chan struct{}),
	}
	go p.watch()
	return p
}

// watch closes exited when the process is gone. A pidfd becomes readable when
// the process exits, whether or not it is our child; the runtime poller waits
// for that, and closing the pidfd (Close) ends the wait.
func (p *Process) watch() {
	defer close(p.watchDone)
	rc, err := p.pidfd.SyscallConn()
	if err != nil {
		return
	}
	gone := false
	err = rc.Read(func(fd uintptr) bool {
		gone = pollExited(int(fd))
		return gone
	})
	if err != nil || !gone {
		return // handle closed
	}
	reap(p.pidfd)
	close(p.exited)
}

func pollExited(fd int) bool {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 0)
	return err == nil && n > 0
}

// waitPidfd waits up to d for the process behind a pidfd to exit.
func waitPidfd(ctx context.Context, f *os.File, d time.Duration) bool {
	dl := time.Now().Add(d)
	if cd, ok := ctx.Deadline(); ok && cd.Before(dl) {
		dl = cd
	}
	if err := f.SetReadDeadline(dl); err != nil {
		return pidfdExited(f)
	}
	defer f.SetReadDeadline(time.Time{})
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	gone := false
	_ = rc.Read(func(fd uintptr) bool {
		gone = pollExited(int(fd))
		return gone
	})
	return gone
}

func pidfdExited(f *os.File) bool {
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	var gone bool
	_ = rc.Control(func(fd uintptr) { gone = pollExited(int(fd)) })
	return gone
}

// reap collects the exit status if the process is our child (QEMU started by
// this PlasmaVMC stays our child despite setsid), so it leaves no zombie;
// for anyone else's child waitid fails with ECHILD, which is fine.
func reap(f *os.File) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		var info unix.Siginfo
		_ = unix.Waitid(unix.P_PIDFD, int(fd), &info, unix.WEXITED|unix.WNOHANG, nil)
	})
}

// Pid is QEMU's process id.
func (p *Process) Pid() int { return p.pid }

// Dir is the VM's runtime dir, absolute.
func (p *Process) Dir() string { return p.dir }

// Exited is closed when the QEMU process has exited (and, if it was our
// child, has been reaped). After Close it is no longer watched.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Events returns the QMP events (SHUTDOWN, POWERDOWN, RESET, ...) that arrive
// from now on, until cancel is called or the connection ends; a reader that
// falls more than 64 events behind misses some.
func (p *Process) Events() (<-chan Event, func()) { return p.qmp.subscribe() }

// Execute runs a QMP command, decoding its return value into out if not nil.
func (p *Process) Execute(ctx context.Context, cmd string, args, out any) error {
	return p.qmp.execute(ctx, cmd, args, out)
}

// Status is QMP query-status: "running", "paused", "shutdown", ...
func (p *Process) Status(ctx context.Context) (string, error) {
	var st struct {
		Status string `json:"status"`
	}
	if err := p.qmp.execute(ctx, "query-status", nil, &st); err != nil {
		return "", err
	}
	return st.Status, nil
}

// Powerdown presses the ACPI power button; the guest OS decides whether and
// when to shut down, so this returns before it does.
func (p *Process) Powerdown(ctx context.Context) error {
	return p.qmp.execute(ctx, "system_powerdown", nil, nil)
}

// Reset reboots the guest at once, like the reset button.
func (p *Process) Reset(ctx context.Context) error {
	return p.qmp.execute(ctx, "system_reset", nil, nil)
}

// Quit stops QEMU at once (the guest gets no say) with a clean process exit,
// and waits until the process is gone.
func (p *Process) Quit(ctx context.Context) error {
	// QEMU answers quit and then drops the connection, sometimes before the
	// answer is read: a closed connection here means it is quitting.
	if err := p.qmp.execute(ctx, "quit", nil, nil); err != nil && !errors.Is(err, ErrQMPClosed) {
		return err
	}
	select {
	case <-p.exited:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Kill sends SIGKILL through the pidfd, so a recycled pid is never hit. A
// process that is already gone is not an error.
func (p *Process) Kill() error {
	rc, err := p.pidfd.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.PidfdSendSignal(int(fd), unix.SIGKILL, nil, 0)
	}); err != nil {
		return err
	}
	if errors.Is(serr, unix.ESRCH) {
		return nil
	}
	return serr
}

// quitTimeout bounds how long Stop trusts QMP quit before SIGKILL.
const quitTimeout = 5 * time.Second

// repress is how often a graceful stop presses the power button again.
const repress = time.Second

// Stop shuts the VM down: force=false presses the ACPI power button and gives
// the guest grace to exit on its own before quitting it; force=true quits at
// once. If QEMU does not honour quit it is killed. Stop returns when the
// process is gone or ctx ends.
func (p *Process) Stop(ctx context.Context, force bool, grace time.Duration) error {
	select {
	case <-p.exited:
		return nil
	default:
	}
	if !force {
		if err := p.Powerdown(ctx); err == nil {
			// The button is pressed again every few seconds: a guest that
			// was not yet listening (still booting) misses a press, and a
			// real one would be pressed again too.
			t := time.NewTimer(grace)
			defer t.Stop()
			again := time.NewTicker(repress)
			defer again.Stop()
		wait:
			for {
				select {
				case <-p.exited:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				case <-again.C:
					_ = p.Powerdown(ctx)
				case <-t.C:
					break wait
				}
			}
		} else if ctx.Err() != nil {
			return ctx.Err()
		}
		// A failed powerdown (QMP gone) falls through to the hard stop.
	}
	qctx, cancel := context.WithTimeout(ctx, quitTimeout)
	defer cancel()
	err := p.Quit(qctx)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if kerr := p.Kill(); kerr != nil {
		return fmt.Errorf("qemu: quit failed (%v), kill failed: %w", err, kerr)
	}
	select {
	case <-p.exited:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close drops the QMP connection and stops watching the process; QEMU keeps
// running, as it must when PlasmaVMC shuts down.
func (p *Process) Close() error {
	var err error
	p.closeOnce.Do(func() {
		if p.qmp != nil {
			err = p.qmp.close()
		}
		p.stopWatch()
	})
	return err
}

func (p *Process) stopWatch() {
	_ = p.pidfd.Close()
	<-p.watchDone
}

// ConsoleTail returns up to n last bytes of the VM's serial log. A VM that
// never ran has no log, which reads as an empty console.
func ConsoleTail(dir string, n int) ([]byte, error) {
	f, err := os.Open(filepath.Join(dir, SerialLog))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return tail(f, n)
}

func tail(f *os.File, n int) ([]byte, error) {
	if n <= 0 {
		return nil, nil
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	off := fi.Size() - int64(n)
	if off < 0 {
		off = 0
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return nil, err
	}
	return io.ReadAll(io.LimitReader(f, int64(n)))
}

func tailString(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	b, err := tail(f, n)
	if err != nil {
		return err.Error()
	}
	return strings.TrimSpace(string(b))
}
