package main

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

// startTimeout bounds how long a server may take to become ready.
const startTimeout = 60 * time.Second

// proc is a server subprocess.
type proc struct {
	name       string
	cmd        *exec.Cmd
	logPath    string
	httpAddr   string // REST (ChainFire only)
	clientAddr string // etcd v3 gRPC
	done       chan struct{}
	waitErr    error
}

// buildPhoton builds ./cmd/photon of the module the current directory is in.
func buildPhoton(ctx context.Context, out string, stderr io.Writer) error {
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(gomod))
	if mod == "" || mod == os.DevNull {
		return errors.New("run this from inside the photon repository (no go.mod found)")
	}
	root := filepath.Dir(mod)
	fmt.Fprintf(stderr, "building %s/cmd/photon\n", root)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/photon")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build ./cmd/photon: %w", err)
	}
	return nil
}

// start runs bin with args in its own process group (so Ctrl-C reaches only
// the bench, which then stops it in order), logging to dir/name.log. When
// readyLine is not empty, the returned channel closes once a stdout line
// starts with it.
func start(name, dir, readyLine, bin string, args ...string) (*proc, <-chan struct{}, error) {
	p := &proc{name: name, logPath: filepath.Join(dir, name+".log"), done: make(chan struct{})}
	logf, err := os.Create(p.logPath)
	if err != nil {
		return nil, nil, err
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.cmd.Env = serverEnv(os.Environ())
	p.cmd.Stderr = logf
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, nil, err
	}
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		return nil, nil, fmt.Errorf("start %s: %w", name, err)
	}
	ready := make(chan struct{})
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			fmt.Fprintln(logf, sc.Text())
			if readyLine != "" && strings.HasPrefix(sc.Text(), readyLine) {
				close(ready)
				readyLine = ""
			}
		}
		_, _ = io.Copy(logf, stdout)
	}()
	go func() {
		<-copied
		p.waitErr = p.cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, ready, nil
}

// serverEnv is environ without what would override a server's own defaults:
// the Go runtime's tuning variables (photon sets GOGC=400 itself unless GOGC
// is set; stock etcd runs with Go's default) and photon's and etcd's
// configuration variables (PHOTON_*, ETCD_*). Both servers get only the flags
// the bench passes.
func serverEnv(environ []string) []string {
	out := []string{} // not nil: a nil Env would inherit ours
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case k == "GOGC", k == "GOMEMLIMIT", k == "GOMAXPROCS", k == "GODEBUG":
		case strings.HasPrefix(k, "PHOTON_"), strings.HasPrefix(k, "ETCD_"):
		default:
			out = append(out, kv)
		}
	}
	return out
}

// startChainFire starts `photon serve chainfire` and waits until it is ready.
func startChainFire(ctx context.Context, photon, dir, httpAddr, grpcAddr, peerAddr string) (*proc, error) {
	data := filepath.Join(dir, "chainfire")
	p, ready, err := start("chainfire", dir, "ChainFire node 1:", photon, "serve", "chainfire",
		"--data-dir", data, "--node-id", "1", "--http-addr", httpAddr, "--grpc-addr", grpcAddr, "--peer-addr", peerAddr)
	if err != nil {
		return nil, err
	}
	p.httpAddr, p.clientAddr = httpAddr, grpcAddr
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	select {
	case <-ready:
	case <-p.done:
		return p, fmt.Errorf("chainfire exited before it was ready: %v", p.waitErr)
	case <-ctx.Done():
		return p, fmt.Errorf("chainfire did not print its ready line: %w", ctx.Err())
	}
	return p, p.waitHealthy(ctx, "http://"+httpAddr+"/health")
}

// startEtcd starts the stock etcd and waits until it is healthy.
func startEtcd(ctx context.Context, bin, dir, clientAddr, peerAddr string) (*proc, error) {
	client, peer := "http://"+clientAddr, "http://"+peerAddr
	p, _, err := start("etcd", dir, "", bin, "--name", "bench", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "bench="+peer)
	if err != nil {
		return nil, err
	}
	p.clientAddr = clientAddr
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	return p, p.waitHealthy(ctx, client+"/health")
}

// waitHealthy polls url until it answers 200.
func (p *proc) waitHealthy(ctx context.Context, url string) error {
	hc := &http.Client{Timeout: time.Second}
	for {
		if resp, err := hc.Get(url); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it was healthy: %v", p.name, p.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("%s: %s did not answer 200: %w", p.name, url, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM, then SIGKILL if the process is still running after
// timeout, and waits for it to exit.
func (p *proc) stop(timeout time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	return fmt.Errorf("did not stop within %s of SIGTERM; killed", timeout)
}

// dumpLog prints the last n lines of the process's log.
func (p *proc) dumpLog(w io.Writer, n int) {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	fmt.Fprintf(w, "--- last lines of %s ---\n", p.logPath)
	for _, l := range lines[max(0, len(lines)-n):] {
		fmt.Fprintln(w, l)
	}
}
