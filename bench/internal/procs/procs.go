// Package procs runs the servers a bench compares as child processes: each
// in its own process group (so Ctrl-C reaches only the bench, which then
// stops them in order), with its output in a log file in the run's
// directory, and with an environment stripped of what would override the
// server's own defaults.
package procs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Spec is what to run.
type Spec struct {
	Name string   // for messages; the log is Dir/Name.log
	Dir  string   // where the log goes
	Bin  string   // the program
	Args []string // its arguments
	// Env is added to the stripped environment (see ServerEnv).
	Env []string
	// StripPrefixes are further environment prefixes to remove, e.g.
	// "ETCD_" for a stock etcd.
	StripPrefixes []string
	// ReadyLine, when set, is the start of the stdout line that WaitLine
	// waits for.
	ReadyLine string
}

// Proc is a running (or exited) child process.
type Proc struct {
	Name    string
	Pid     int
	LogPath string
	cmd     *exec.Cmd
	ready   chan struct{} // closed when the ready line was printed
	done    chan struct{} // closed when the process has exited and been reaped
	waitErr error         // valid once done is closed
}

// Start starts s.Bin. Its stdout and stderr go to Dir/Name.log.
func Start(s Spec) (*Proc, error) {
	p := &Proc{Name: s.Name, LogPath: filepath.Join(s.Dir, s.Name+".log"), ready: make(chan struct{}), done: make(chan struct{})}
	logf, err := os.Create(p.LogPath)
	if err != nil {
		return nil, err
	}
	p.cmd = exec.Command(s.Bin, s.Args...)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.cmd.Env = append(ServerEnv(os.Environ(), s.StripPrefixes...), s.Env...)
	p.cmd.Stderr = logf
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", s.Name, err)
	}
	p.Pid = p.cmd.Process.Pid
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		readyLine := s.ReadyLine
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			fmt.Fprintln(logf, sc.Text())
			if readyLine != "" && strings.HasPrefix(sc.Text(), readyLine) {
				close(p.ready)
				readyLine = ""
			}
		}
		_, _ = io.Copy(logf, stdout) // after an over-long line
	}()
	go func() {
		<-copied
		p.waitErr = p.cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// Done is closed once the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// exited describes how the process ended, with the end of its log.
func (p *Proc) exited(what string) error {
	return fmt.Errorf("%s exited before %s: %v; %s", p.Name, what, p.waitErr, p.LogTail(15))
}

// WaitLine waits until the process prints its Spec.ReadyLine, exits, or
// timeout passes.
func (p *Proc) WaitLine(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	select {
	case <-p.ready:
		return nil
	case <-p.done:
		return p.exited("it printed its ready line")
	case <-ctx.Done():
		return fmt.Errorf("%s did not print its ready line: %w; %s", p.Name, ctx.Err(), p.LogTail(15))
	}
}

// WaitFor polls cond every 100 ms until it returns nil, the process exits,
// or timeout passes; then the error is cond's last one.
func (p *Proc) WaitFor(ctx context.Context, timeout time.Duration, what string, cond func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		err := cond(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-p.done:
			return p.exited(what)
		case <-ctx.Done():
			return fmt.Errorf("%s: not %s after %s: %w; %s", p.Name, what, timeout, err, p.LogTail(15))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// HTTPOK is a WaitFor condition: url answers 200.
func HTTPOK(url string) func(ctx context.Context) error {
	hc := &http.Client{Timeout: time.Second}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
		}
		return nil
	}
}

// Stop sends SIGTERM to the process group, then SIGKILL if the process is
// still running after timeout, and waits for it to exit. It is an error
// when the process needed SIGKILL.
func (p *Proc) Stop(timeout time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = syscall.Kill(-p.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
	}
	_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
	<-p.done
	return fmt.Errorf("%s did not stop within %s of SIGTERM; killed", p.Name, timeout)
}

// LogTail is the last n lines of the process's log, for error messages.
func (p *Proc) LogTail(n int) string {
	b, err := os.ReadFile(p.LogPath)
	if err != nil {
		return "no log"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return "last lines of " + p.LogPath + ":\n" + strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// ServerEnv is environ without what would override a server's own
// defaults: the Go runtime's tuning variables (photon sets its GOGC itself)
// and photon's configuration variables (PHOTON_*), nor any variable that
// starts with one of stripPrefixes. A server gets only the flags the bench
// passes.
func ServerEnv(environ []string, stripPrefixes ...string) []string {
	out := []string{} // not nil: a nil Env would inherit ours
next:
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case k == "GOGC", k == "GOMEMLIMIT", k == "GOMAXPROCS", k == "GODEBUG":
			continue
		case strings.HasPrefix(k, "PHOTON_"):
			continue
		}
		for _, p := range stripPrefixes {
			if strings.HasPrefix(k, p) {
				continue next
			}
		}
		out = append(out, kv)
	}
	return out
}

// RepoRoot is the directory of the go.mod the current directory is in.
func RepoRoot(ctx context.Context) (string, error) {
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(gomod))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run this from inside the photon repository (no go.mod found)")
	}
	return filepath.Dir(mod), nil
}

// BuildPhoton builds ./cmd/photon of the repository the current directory
// is in into out.
func BuildPhoton(ctx context.Context, out string, stderr io.Writer) error {
	root, err := RepoRoot(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "building %s/cmd/photon\n", root)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/photon")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build ./cmd/photon: %w", err)
	}
	return nil
}
