package qemu

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const helperEnv = "PLASMAVMC_QEMU_TEST_HELPER_DIR"

// TestMain lets the test binary double as a stand-in for PlasmaVMC: started
// with helperEnv set, it starts a QEMU, prints its pid and waits to be killed.
func TestMain(m *testing.M) {
	if dir := os.Getenv(helperEnv); dir != "" {
		os.Exit(helperMain(dir))
	}
	os.Exit(m.Run())
}

func helperMain(dir string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bin, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	p, err := Start(ctx, bin, diskless("helper", dir))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(p.Pid())
	select {} // killed -9 by the test
}

func needQEMU(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	bin, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("qemu-system-x86_64 not installed (apt-get install qemu-system-x86)")
	}
	return bin
}

func diskless(name, dir string) Spec {
	return Spec{Name: name, Dir: dir, VCPUs: 1, MemoryMiB: 64, Accel: "tcg"}
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// killOnCleanup makes sure the QEMU behind pid is gone when the test ends,
// also when it fails half-way.
func killOnCleanup(t *testing.T, p *Process) {
	t.Helper()
	t.Cleanup(func() {
		if err := p.Kill(); err != nil {
			return // handle closed by the test; killDirOnCleanup covers its QEMU
		}
		select {
		case <-p.Exited():
		case <-time.After(10 * time.Second):
			t.Errorf("qemu %d still running after SIGKILL", p.Pid())
		}
		_ = p.Close()
	})
}

// killDirOnCleanup kills whatever QEMU still runs for dir when the test ends,
// for tests that drop their handle on purpose.
func killDirOnCleanup(t *testing.T, dir string) {
	t.Helper()
	t.Cleanup(func() {
		b, err := os.ReadFile(filepath.Join(dir, PidFile))
		if err != nil {
			return
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if pid <= 0 {
			return
		}
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			return
		}
		defer unix.Close(fd)
		if !ownsDir(pid, dir) {
			return
		}
		_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
		var info unix.Siginfo
		_ = unix.Waitid(unix.P_PIDFD, fd, &info, unix.WEXITED, nil) // ECHILD if not ours
	})
}

func startVM(t *testing.T, bin string, s Spec) *Process {
	t.Helper()
	killDirOnCleanup(t, s.Dir)
	p, err := Start(testCtx(t), bin, s)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	killOnCleanup(t, p)
	return p
}

func waitExited(t *testing.T, p *Process) {
	t.Helper()
	select {
	case <-p.Exited():
	case <-time.After(30 * time.Second):
		t.Fatalf("qemu %d did not exit", p.Pid())
	}
}

// assertGone checks the pid is neither running nor a zombie (<defunct> in ps).
func assertGone(t *testing.T, pid int) {
	t.Helper()
	out, err := exec.Command("ps", "-e", "-o", "pid=,stat=,comm=").Output()
	if err != nil {
		t.Fatalf("ps: %v", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == strconv.Itoa(pid) {
			t.Fatalf("pid %d still listed by ps: %q (Z = zombie nobody reaped)", pid, line)
		}
	}
}

// waitEvent reads events until one named name arrives.
func waitEvent(t *testing.T, ch <-chan Event, name string) Event {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("event stream ended before %s", name)
			}
			if ev.Name == name {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s event", name)
		}
	}
}

type shutdownData struct {
	Guest  bool   `json:"guest"`
	Reason string `json:"reason"`
}

// procStat returns ppid, process group and session of pid.
func procStat(t *testing.T, pid int) (ppid, pgrp, sid int) {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the ")" that ends comm: state ppid pgrp session ...
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	ppid, _ = strconv.Atoi(f[1])
	pgrp, _ = strconv.Atoi(f[2])
	sid, _ = strconv.Atoi(f[3])
	return
}

func TestLifecycle(t *testing.T) {
	bin := needQEMU(t)
	ctx := testCtx(t)
	p := startVM(t, bin, diskless("vm-life", t.TempDir()))

	// QEMU stays our child (no zombie unless we fail to reap) but is in its
	// own session, so a kill of PlasmaVMC's process group spares it.
	ppid, pgrp, sid := procStat(t, p.Pid())
	if ppid != os.Getpid() {
		t.Errorf("qemu parent = %d, want this test (%d)", ppid, os.Getpid())
	}
	if sid != p.Pid() || pgrp != p.Pid() {
		t.Errorf("qemu session/pgrp = %d/%d, want its own (%d): setsid missing", sid, pgrp, p.Pid())
	}
	if b, err := os.ReadFile(filepath.Join(p.Dir(), PidFile)); err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(p.Pid()) {
		t.Errorf("pidfile = %q, %v; want %d", b, err, p.Pid())
	}

	st, err := p.Status(ctx)
	if err != nil || st != "running" {
		t.Fatalf("Status = %q, %v; want running", st, err)
	}
	events, cancel := p.Events()
	defer cancel()

	if err := p.Reset(ctx); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	ev := waitEvent(t, events, "RESET")
	var rd shutdownData
	if err := json.Unmarshal(ev.Data, &rd); err != nil || rd.Reason != "host-qmp-system-reset" {
		t.Errorf("RESET data = %s (%v), want reason host-qmp-system-reset", ev.Data, err)
	}
	if st, err := p.Status(ctx); err != nil || st != "running" {
		t.Errorf("Status after reset = %q, %v; want running", st, err)
	}

	if err := p.Quit(ctx); err != nil {
		t.Fatalf("Quit: %v", err)
	}
	ev = waitEvent(t, events, "SHUTDOWN")
	if err := json.Unmarshal(ev.Data, &rd); err != nil || rd.Reason != "host-qmp-quit" {
		t.Errorf("SHUTDOWN data = %s (%v), want reason host-qmp-quit", ev.Data, err)
	}
	waitExited(t, p)
	assertGone(t, p.Pid())
	if _, err := p.Status(ctx); !errors.Is(err, ErrQMPClosed) {
		t.Errorf("Status after quit: %v, want ErrQMPClosed", err)
	}
	if err := p.Kill(); err != nil {
		t.Errorf("Kill of an exited process: %v, want nil", err)
	}
}

func TestQMPConcurrentAndErrors(t *testing.T) {
	bin := needQEMU(t)
	ctx := testCtx(t)
	p := startVM(t, bin, diskless("vm-qmp", t.TempDir()))

	var qe *QMPError
	if err := p.Execute(ctx, "no-such-command", nil, nil); !errors.As(err, &qe) || qe.Class != "CommandNotFound" {
		t.Errorf("unknown command: %v, want QMPError CommandNotFound", err)
	}
	// Replies must reach the right caller while events interleave.
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := 0; i < 20; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if st, err := p.Status(ctx); err != nil || st != "running" {
				errs <- fmt.Errorf("status %q, %v", st, err)
			}
		}()
		go func() {
			defer wg.Done()
			var name struct {
				Name string `json:"name"`
			}
			if err := p.Execute(ctx, "query-name", nil, &name); err != nil || name.Name != "vm-qmp" {
				errs <- fmt.Errorf("query-name %q, %v", name.Name, err)
			}
			if err := p.Reset(ctx); err != nil {
				errs <- fmt.Errorf("reset: %v", err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestAttachAfterCloseAndStopEscalates(t *testing.T) {
	bin := needQEMU(t)
	ctx := testCtx(t)
	dir := t.TempDir()
	first := startVM(t, bin, diskless("vm-attach", dir))
	pid := first.Pid()
	// As if PlasmaVMC went away: drop the handle, QEMU must keep running.
	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("qemu gone after Close: %v", err)
	}

	p, err := Attach(ctx, dir)
	if err != nil {
		t.Fatalf("Attach: %v", err)
	}
	killOnCleanup(t, p)
	if p.Pid() != pid {
		t.Fatalf("attached pid %d, want %d", p.Pid(), pid)
	}
	if st, err := p.Status(ctx); err != nil || st != "running" {
		t.Fatalf("Status = %q, %v; want running", st, err)
	}

	// No OS answers the ACPI button, so Stop must escalate to quit.
	events, cancel := p.Events()
	defer cancel()
	const grace = 2 * time.Second
	start := time.Now()
	if err := p.Stop(ctx, false, grace); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if el := time.Since(start); el < grace {
		t.Errorf("Stop returned after %v, before the grace of %v", el, grace)
	}
	waitEvent(t, events, "POWERDOWN")
	ev := waitEvent(t, events, "SHUTDOWN")
	var sd shutdownData
	if err := json.Unmarshal(ev.Data, &sd); err != nil || sd.Reason != "host-qmp-quit" {
		t.Errorf("SHUTDOWN data = %s (%v), want escalation to host-qmp-quit", ev.Data, err)
	}
	waitExited(t, p)
	assertGone(t, pid)

	if _, err := Attach(ctx, dir); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Attach after stop: %v, want ErrNotRunning", err)
	}
}

func TestStopForce(t *testing.T) {
	bin := needQEMU(t)
	ctx := testCtx(t)
	p := startVM(t, bin, diskless("vm-force", t.TempDir()))
	events, cancel := p.Events()
	defer cancel()
	if err := p.Stop(ctx, true, time.Hour); err != nil {
		t.Fatalf("Stop(force): %v", err)
	}
	waitExited(t, p)
	assertGone(t, p.Pid())
	for ev := range events { // closed when QEMU drops the connection
		if ev.Name == "POWERDOWN" {
			t.Errorf("force stop pressed the power button")
		}
	}
}

func TestAttachKilled(t *testing.T) {
	bin := needQEMU(t)
	ctx := testCtx(t)
	dir := t.TempDir()
	p := startVM(t, bin, diskless("vm-killed", dir))
	pid := p.Pid()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	// kill -9 from outside: the pidfile stays behind, and with the handle
	// closed nobody has reaped the zombie yet.
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if len(b) == 0 || strings.Contains(string(b), ") Z ") {
			break
		}
		if i > 500 {
			t.Fatalf("qemu %d survived SIGKILL", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(dir, PidFile)); err != nil {
		t.Fatalf("expected a stale pidfile: %v", err)
	}
	if _, err := Attach(ctx, dir); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Attach to killed qemu: %v, want ErrNotRunning", err)
	}
	assertGone(t, pid) // Attach reaped our own zombie
}

func TestAttachStalePidfile(t *testing.T) {
	ctx := testCtx(t)
	for _, tc := range []struct {
		name, pidfile string
	}{
		{"no pidfile", ""},
		{"own pid", strconv.Itoa(os.Getpid())}, // alive, but not this dir's QEMU
		{"init", "1"},                          // alive, unrelated
		{"unused pid", strconv.Itoa(1 << 22)},  // above pid_max: nobody
		{"garbage", "not-a-pid"},               //
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.pidfile != "" {
				if err := os.WriteFile(filepath.Join(dir, PidFile), []byte(tc.pidfile+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if p, err := Attach(ctx, dir); !errors.Is(err, ErrNotRunning) {
				if p != nil {
					p.Close()
				}
				t.Fatalf("Attach = %v, want ErrNotRunning", err)
			}
		})
	}
}

// TestOutlivesKilledParent runs Start in a separate process standing in for
// PlasmaVMC, kills that process with SIGKILL and re-attaches from here.
func TestOutlivesKilledParent(t *testing.T) {
	needQEMU(t)
	ctx := testCtx(t)
	dir := t.TempDir()
	// Become the subreaper so the orphaned QEMU is re-parented to this test
	// and its exit can be reaped here, not left to whatever pid 1 is.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatalf("PR_SET_CHILD_SUBREAPER: %v", err)
	}
	t.Cleanup(func() { _ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) })

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	helper := exec.Command(exe)
	helper.Env = append(os.Environ(), helperEnv+"="+dir)
	helper.Stderr = os.Stderr
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = helper.Process.Kill(); _ = helper.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("helper did not report a pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("helper said %q", line)
	}
	t.Cleanup(func() {
		// Only if the test failed before attaching: the pid is still ours to kill
		// as long as /proc says it runs this dir.
		if ownsDir(pid, dir) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})

	if err := helper.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()

	p, err := Attach(ctx, dir)
	if err != nil {
		t.Fatalf("Attach after the parent was killed: %v", err)
	}
	killOnCleanup(t, p)
	if p.Pid() != pid {
		t.Fatalf("attached pid %d, want %d", p.Pid(), pid)
	}
	if ppid, _, _ := procStat(t, pid); ppid != os.Getpid() {
		t.Errorf("orphaned qemu parent = %d, want the subreaper %d", ppid, os.Getpid())
	}
	if st, err := p.Status(ctx); err != nil || st != "running" {
		t.Fatalf("Status = %q, %v; want running", st, err)
	}
	if err := p.Quit(ctx); err != nil {
		t.Fatalf("Quit: %v", err)
	}
	waitExited(t, p)
	assertGone(t, pid)
}

func TestStartFailsFast(t *testing.T) {
	bin := needQEMU(t)
	for _, tc := range []struct {
		name, want string
		mod        func(*Spec)
	}{
		// QEMU reports this one itself: Start must notice its exit, not wait
		// for the context, and pass on qemu.log.
		{"missing disk", "missing.qcow2", func(s *Spec) {
			s.Disks = []Disk{{Path: filepath.Join(s.Dir, "missing.qcow2"), Format: "qcow2"}}
		}},
		// QEMU as root would create this tap itself, unconnected.
		{"missing tap", "pvnosuchtap0", func(s *Spec) {
			s.NICs = []NIC{{Tap: "pvnosuchtap0", MAC: "52:54:00:00:00:01"}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			s := diskless("vm-bad", t.TempDir())
			tc.mod(&s)
			killDirOnCleanup(t, s.Dir)
			p, err := Start(ctx, bin, s)
			if err == nil {
				p.Kill()
				p.Close()
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name %s", err, tc.want)
			}
			if ctx.Err() != nil {
				t.Errorf("Start waited for the context instead of noticing QEMU exit")
			}
			if _, err := os.Stat("/sys/class/net/pvnosuchtap0"); err == nil {
				t.Errorf("a tap pvnosuchtap0 appeared")
			}
		})
	}
}

func TestStartValidates(t *testing.T) {
	ok := diskless("vm", "/run/vm")
	for _, tc := range []struct {
		name string
		mod  func(*Spec)
	}{
		{"no name", func(s *Spec) { s.Name = "" }},
		{"no dir", func(s *Spec) { s.Dir = "" }},
		{"zero vcpus", func(s *Spec) { s.VCPUs = 0 }},
		{"zero memory", func(s *Spec) { s.MemoryMiB = 0 }},
		{"auto accel", func(s *Spec) { s.Accel = "auto" }},
		{"bad format", func(s *Spec) { s.Disks = []Disk{{Path: "/x", Format: "vmdk"}} }},
		{"nic without mac", func(s *Spec) { s.NICs = []NIC{{Tap: "t0"}} }},
		{"socket path too long", func(s *Spec) { s.Dir = "/" + strings.Repeat("d", 120) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := ok
			tc.mod(&s)
			if _, err := Start(context.Background(), "/nonexistent/qemu", s); err == nil || strings.Contains(err.Error(), "nonexistent") {
				t.Errorf("Start = %v, want a validation error before exec", err)
			}
		})
	}
}

func TestArgs(t *testing.T) {
	s := Spec{
		Name: "vm,1", Dir: "/run/vm1", VCPUs: 2, MemoryMiB: 512, Accel: "tcg",
		Kernel: "/img/vmlinuz", Initrd: "/img/initrd", Append: "console=ttyS0 quiet",
		Disks: []Disk{{Path: "/d/root,x.qcow2", Format: "qcow2"}, {Path: "/d/seed.raw", Format: "raw", ReadOnly: true}},
		NICs:  []NIC{{Tap: "tap0", MAC: "52:54:00:12:34:56"}},
	}
	want := []string{
		"-name", "vm,,1",
		"-nodefaults", "-no-user-config", "-display", "none", "-machine", "q35", "-accel", "tcg",
		"-m", "512M", "-smp", "2",
		"-pidfile", "/run/vm1/qemu.pid",
		"-chardev", "socket,id=qmp,path=/run/vm1/qmp.sock,server=on,wait=off",
		"-mon", "chardev=qmp,mode=control",
		"-chardev", "file,id=serial0,path=/run/vm1/serial.log",
		"-serial", "chardev:serial0",
		"-kernel", "/img/vmlinuz", "-initrd", "/img/initrd", "-append", "console=ttyS0 quiet",
		"-drive", "if=none,id=disk0,file=/d/root,,x.qcow2,format=qcow2",
		// A direct kernel boot takes boot index 0: QEMU refuses a disk
		// that asks for it too.
		"-device", "virtio-blk-pci,drive=disk0",
		"-drive", "if=none,id=disk1,file=/d/seed.raw,format=raw,readonly=on",
		"-device", "virtio-blk-pci,drive=disk1",
		"-netdev", "tap,id=net0,ifname=tap0,script=no,downscript=no",
		"-device", "virtio-net-pci,netdev=net0,mac=52:54:00:12:34:56",
	}
	got := Args(s)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Args =\n%q\nwant\n%q", got, want)
	}
	if again := Args(s); !reflect.DeepEqual(got, again) {
		t.Errorf("Args not deterministic:\n%q\n%q", got, again)
	}
	if j := strings.Join(got, " "); strings.Contains(j, "vhost") {
		t.Errorf("Args asks for vhost: %s", j)
	}
	// Without a kernel the firmware boots the disks in order.
	noKernel := s
	noKernel.Kernel, noKernel.Initrd, noKernel.Append = "", "", ""
	if j := strings.Join(Args(noKernel), " "); !strings.Contains(j, "drive=disk0,bootindex=0") || !strings.Contains(j, "drive=disk1,bootindex=1") {
		t.Errorf("disks without a kernel: %s", j)
	}
	s.Accel = "kvm"
	if j := strings.Join(Args(s), " "); !strings.Contains(j, "-accel kvm -cpu host") {
		t.Errorf("kvm Args = %s, want -accel kvm -cpu host", j)
	}
}

func TestDetectAccelHost(t *testing.T) {
	ok, err := hasVirtFlag("/proc/cpuinfo")
	if err != nil {
		t.Skipf("no /proc/cpuinfo: %v", err)
	}
	if ok {
		t.Skip("this host has vmx/svm; the TCG fallback is covered by TestDetectAccel")
	}
	if got, err := DetectAccel("auto"); err != nil || got != "tcg" {
		t.Errorf(`DetectAccel("auto") = %q, %v; want tcg`, got, err)
	}
	if got, err := DetectAccel("kvm"); !errors.Is(err, ErrKVMUnavailable) {
		t.Errorf(`DetectAccel("kvm") = %q, %v; want ErrKVMUnavailable`, got, err)
	}
	if got, err := DetectAccel("tcg"); err != nil || got != "tcg" {
		t.Errorf(`DetectAccel("tcg") = %q, %v`, got, err)
	}
}

func TestDetectAccel(t *testing.T) {
	dir := t.TempDir()
	cpu := func(name, flags string) string {
		p := filepath.Join(dir, name)
		body := "processor\t: 0\nmodel name\t: x\nflags\t\t: " + flags + "\n\nprocessor\t: 1\nflags\t\t: " + flags + "\n"
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	vmx := cpu("vmx", "fpu vme vmx sse2")
	svm := cpu("svm", "fpu svm lm")
	none := cpu("none", "fpu vme hypervisor lm svm_lock") // svm_lock is not svm
	dev := filepath.Join(dir, "kvm")                      // a file that opens read-write
	if err := os.WriteFile(dev, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "no-kvm")
	for _, tc := range []struct {
		want, dev, cpuinfo string
		got                string
		err                bool
	}{
		{"auto", dev, vmx, "kvm", false},
		{"auto", dev, svm, "kvm", false},
		{"kvm", dev, vmx, "kvm", false},
		{"", dev, vmx, "kvm", false},
		{"auto", dev, none, "tcg", false},
		{"auto", missing, vmx, "tcg", false},
		{"kvm", dev, none, "", true},
		{"kvm", missing, vmx, "", true},
		{"tcg", dev, vmx, "tcg", false},
		{"hvf", dev, vmx, "", true},
	} {
		got, err := detectAccel(tc.want, tc.dev, tc.cpuinfo)
		if got != tc.got || (err != nil) != tc.err {
			t.Errorf("detectAccel(%q, %s, %s) = %q, %v; want %q, err %v", tc.want, filepath.Base(tc.dev), filepath.Base(tc.cpuinfo), got, err, tc.got, tc.err)
		}
		if tc.want == "kvm" && err != nil && !errors.Is(err, ErrKVMUnavailable) {
			t.Errorf("kvm error %v does not wrap ErrKVMUnavailable", err)
		}
	}
}

func TestConsoleTail(t *testing.T) {
	dir := t.TempDir()
	if b, err := ConsoleTail(dir, 10); err != nil || len(b) != 0 {
		t.Errorf("no log: %q, %v; want empty", b, err)
	}
	if err := os.WriteFile(filepath.Join(dir, SerialLog), []byte("0123456789abcdef"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		n    int
		want string
	}{{4, "cdef"}, {16, "0123456789abcdef"}, {100, "0123456789abcdef"}, {0, ""}} {
		if b, err := ConsoleTail(dir, tc.n); err != nil || string(b) != tc.want {
			t.Errorf("ConsoleTail(%d) = %q, %v; want %q", tc.n, b, err, tc.want)
		}
	}
}

func ipLink(t *testing.T, name string) string {
	t.Helper()
	out, err := exec.Command("ip", "link", "show", name).CombinedOutput()
	if err != nil {
		t.Fatalf("ip link show %s: %v: %s", name, err, out)
	}
	return string(out)
}

func TestTapNIC(t *testing.T) {
	bin := needQEMU(t)
	ctx := testCtx(t)
	tap := fmt.Sprintf("pvt%d", os.Getpid()%100000)
	_ = DeleteTap(tap)
	if err := CreateTap(tap); err != nil {
		t.Fatalf("CreateTap: %v", err)
	}
	t.Cleanup(func() {
		if err := DeleteTap(tap); err != nil {
			t.Errorf("DeleteTap: %v", err)
		}
	})
	if err := CreateTap(tap); err == nil {
		t.Errorf("CreateTap of an existing tap succeeded")
	}
	// Up but nobody attached: no carrier.
	if l := ipLink(t, tap); !strings.Contains(l, "NO-CARRIER") || !strings.Contains(l, ",UP") {
		t.Fatalf("fresh tap: %s; want UP with NO-CARRIER", l)
	}

	s := diskless("vm-nic", t.TempDir())
	s.NICs = []NIC{{Tap: tap, MAC: "52:54:00:ab:cd:ef"}}
	p := startVM(t, bin, s)
	if l := ipLink(t, tap); strings.Contains(l, "NO-CARRIER") || !strings.Contains(l, "LOWER_UP") || !strings.Contains(l, "state UP") {
		t.Errorf("tap with qemu attached: %s; want carrier (LOWER_UP, state UP)", l)
	}
	var nics []struct {
		Name string `json:"name"`
		Mac  string `json:"main-mac"`
	}
	if err := p.Execute(ctx, "query-rx-filter", nil, &nics); err != nil || len(nics) != 1 || nics[0].Mac != "52:54:00:ab:cd:ef" {
		t.Errorf("query-rx-filter = %+v, %v; want one NIC with the MAC", nics, err)
	}
	if err := p.Quit(ctx); err != nil {
		t.Fatalf("Quit: %v", err)
	}
	waitExited(t, p)
	// The persistent tap outlives QEMU, carrier gone again.
	if l := ipLink(t, tap); !strings.Contains(l, "NO-CARRIER") {
		t.Errorf("tap after quit: %s; want NO-CARRIER", l)
	}
	if err := DeleteTap(tap); err != nil {
		t.Fatalf("DeleteTap: %v", err)
	}
	if out, err := exec.Command("ip", "link", "show", tap).CombinedOutput(); err == nil {
		t.Errorf("tap still there after DeleteTap: %s", out)
	}
	if err := DeleteTap(tap); err != nil {
		t.Errorf("DeleteTap of a missing tap: %v, want nil", err)
	}
}
