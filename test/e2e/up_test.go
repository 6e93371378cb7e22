package e2e

import (
	"bytes"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lockedBuffer collects a child's output while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// upProcess is a running `photon up`.
type upProcess struct {
	cmd            *exec.Cmd
	stdout, stderr *lockedBuffer
	done           chan error
}

// startUp runs cmd, a `photon up` command, and waits up to a minute until
// ready says it serves. The process is killed when the test ends if it is
// still running.
func startUp(t *testing.T, cmd *exec.Cmd, ready func(*upProcess) bool) *upProcess {
	t.Helper()
	p := &upProcess{cmd: cmd, stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		p.done <- cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for !ready(p) {
		select {
		case err := <-p.done:
			t.Fatalf("photon up exited: %v\n%s", err, p.stderr)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("photon up not ready in 60s\n%s", p.stderr)
		}
	}
	return p
}

// stop sends SIGTERM and requires a clean exit 0 within 40 s.
func (p *upProcess) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("photon up did not exit cleanly on SIGTERM: %v\n%s", err, p.stderr)
		}
	case <-time.After(40 * time.Second):
		t.Fatalf("photon up did not stop within 40s of SIGTERM\n%s", p.stderr)
	}
}
