package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/photoncloud/photon/bench/internal/procs"
)

// startTimeout bounds how long a server may take to become ready.
const startTimeout = 90 * time.Second

// server is one side of the comparison: a child process with an HTTP API
// that speaks Prometheus's (remote write, query_range, status/tsdb).
type server struct {
	*procs.Proc
	name string // its id in the report: "nightlight", "standin" or "prometheus"
	desc string // what it is, for the report
	url  string // http://host:port
}

// startProc runs bin with args (see procs.Start: its own process group,
// output in dir/name.log, the environment stripped of what would override
// the server's own defaults), plus extraEnv.
func startProc(name, dir, bin string, extraEnv []string, args ...string) (*server, error) {
	p, err := procs.Start(procs.Spec{Name: name, Dir: dir, Bin: bin, Args: args, Env: extraEnv})
	if err != nil {
		return nil, err
	}
	return &server{Proc: p, name: name}, nil
}

// waitReady polls the server's /-/ready until it answers 200.
func (s *server) waitReady(ctx context.Context) error {
	return s.WaitFor(ctx, startTimeout, "ready", procs.HTTPOK(s.url+"/-/ready"))
}

// stop sends SIGTERM to the process group, then SIGKILL after 20 s, and
// reaps the process.
func (s *server) stop() {
	_ = s.Stop(20 * time.Second)
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
	s.desc = fmt.Sprintf("%s (Debian), --web.enable-remote-write-receiver, empty scrape config, pid %d", promVersion(ctx, bin), s.Pid)
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
