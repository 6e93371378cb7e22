package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// startTimeout bounds how long a server may take to become ready.
const startTimeout = 90 * time.Second

// server is one side of the comparison: a child process with an HTTP API
// that speaks Prometheus's (remote write, query_range, status/tsdb).
type server struct {
	name    string // its id in the report: "nightlight", "standin" or "prometheus"
	desc    string // what it is, for the report
	url     string // http://host:port
	cmd     *exec.Cmd
	pid     int
	logPath string
	done    chan struct{}
	waitErr error
}

// startProc runs bin with args in its own process group (so Ctrl-C reaches
// only the bench, which then stops it), with stdout and stderr in
// dir/name.log, and the environment stripped of what would override the
// server's own defaults, plus extraEnv.
func startProc(name, dir, bin string, extraEnv []string, args ...string) (*server, error) {
	s := &server{name: name, logPath: filepath.Join(dir, name+".log"), done: make(chan struct{})}
	logf, err := os.Create(s.logPath)
	if err != nil {
		return nil, err
	}
	s.cmd = exec.Command(bin, args...)
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	s.cmd.Env = append(serverEnv(os.Environ()), extraEnv...)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	s.pid = s.cmd.Process.Pid
	go func() {
		s.waitErr = s.cmd.Wait()
		logf.Close()
		close(s.done)
	}()
	return s, nil
}

// serverEnv is environ without the Go runtime's tuning variables and
// photon's configuration variables, so that each server runs with its own
// defaults (photon tunes its GOGC itself, internal/gctune; Prometheus 2.42 runs with Go's
// default) and only the flags the bench passes.
func serverEnv(environ []string) []string {
	out := []string{} // not nil: a nil Env would inherit ours
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case k == "GOGC", k == "GOMEMLIMIT", k == "GOMAXPROCS", k == "GODEBUG":
		case strings.HasPrefix(k, "PHOTON_"):
		default:
			out = append(out, kv)
		}
	}
	return out
}

// waitReady polls the server's /-/ready until it answers 200.
func (s *server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	hc := &http.Client{Timeout: time.Second}
	for {
		if resp, err := hc.Get(s.url + "/-/ready"); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.done:
			return fmt.Errorf("%s exited before it was ready: %v; %s", s.name, s.waitErr, s.logTail(10))
		case <-ctx.Done():
			return fmt.Errorf("%s: %s/-/ready did not answer 200: %w; %s", s.name, s.url, ctx.Err(), s.logTail(10))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM to the process group, then SIGKILL after 20 s, and
// reaps the process.
func (s *server) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = syscall.Kill(-s.pid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-s.pid, syscall.SIGKILL)
		<-s.done
	}
}

// logTail is the last n lines of the server's log, for error messages.
func (s *server) logTail(n int) string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return "no log"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return "last lines of " + s.logPath + ":\n" + strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// mem is a process's memory from /proc/PID/status, in bytes.
type mem struct {
	RSS, Anon, HWM int64 // VmRSS, RssAnon (heap and stacks, not mapped files), VmHWM (peak RSS)
}

func readMem(pid int) (mem, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return mem{}, err
	}
	var m mem
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		var dst *int64
		switch k {
		case "VmRSS":
			dst = &m.RSS
		case "RssAnon":
			dst = &m.Anon
		case "VmHWM":
			dst = &m.HWM
		default:
			continue
		}
		var kib int64
		if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kib); err != nil {
			return m, fmt.Errorf("/proc/%d/status %s: %w", pid, k, err)
		}
		*dst = kib << 10
	}
	if m.RSS == 0 {
		return m, errors.New("no VmRSS in /proc/" + strconv.Itoa(pid) + "/status")
	}
	return m, nil
}

// prometheusBinary finds Debian's prometheus.
func prometheusBinary() (string, error) {
	if p, err := exec.LookPath("prometheus"); err == nil {
		return p, nil
	}
	return "", errors.New("prometheus not installed (scripts/install-deps.sh installs it)")
}

// startPrometheus runs Debian's Prometheus as a remote-write receiver with
// its own storage under dir and no scrape targets, so that the generated
// stream is all it stores.
func startPrometheus(ctx context.Context, name, bin, dir, addr string) (*server, error) {
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(conf, []byte("global:\n  scrape_interval: 15s\n"), 0o644); err != nil {
		return nil, err
	}
	s, err := startProc(name, dir, bin, nil, "--config.file="+conf, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--web.enable-remote-write-receiver", "--log.level=warn")
	if err != nil {
		return nil, err
	}
	s.url = "http://" + addr
	s.desc = fmt.Sprintf("%s (Debian), --web.enable-remote-write-receiver, empty scrape config, pid %d", promVersion(ctx, bin), s.pid)
	if err := s.waitReady(ctx); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// promVersion is the first line of `prometheus --version`.
func promVersion(ctx context.Context, bin string) string {
	out, _ := exec.CommandContext(ctx, bin, "--version").CombinedOutput()
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line)
}

// repoRoot is the directory of the go.mod the current directory is in.
func repoRoot(ctx context.Context) (string, error) {
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

// buildPhoton builds root's ./cmd/photon into out.
func buildPhoton(ctx context.Context, root, out string, stderr io.Writer) error {
	fmt.Fprintf(stderr, "building %s/cmd/photon\n", root)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/photon")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build ./cmd/photon: %w", err)
	}
	return nil
}
