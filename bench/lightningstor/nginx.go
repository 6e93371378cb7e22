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
	"strings"
	"syscall"
	"time"
)

// nginxBinary finds Debian's nginx, which lives in /usr/sbin (not on a
// non-root PATH).
func nginxBinary() (string, error) {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx", nil
	}
	return "", errors.New("nginx not installed (scripts/install-deps.sh --bench installs it)")
}

// nginx is the peer for GETs: Debian's nginx with Debian's own http{}
// defaults (sendfile on, tcp_nopush on, keepalive), serving root as static
// files, with its config, pid, logs and temp paths under dir.
type nginx struct {
	bin, dir, addr string
	cmd            *exec.Cmd
	pid            int
}

func startNginx(ctx context.Context, bin, dir, root, addr string) (*nginx, error) {
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		return nil, err
	}
	// One worker per core, as Debian's "worker_processes auto"; access log
	// off so that neither side writes a log line per request.
	conf := fmt.Sprintf(`daemon off;
master_process on;
worker_processes auto;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 1024; }
http {
	sendfile on;
	tcp_nopush on;
	types_hash_max_size 2048;
	default_type application/octet-stream;
	access_log off;
	keepalive_requests 1000000;
	client_body_temp_path %[1]s/tmp/body;
	proxy_temp_path %[1]s/tmp/proxy;
	fastcgi_temp_path %[1]s/tmp/fastcgi;
	uwsgi_temp_path %[1]s/tmp/uwsgi;
	scgi_temp_path %[1]s/tmp/scgi;
	server {
		listen %[2]s;
		root %[3]s;
	}
}
`, dir, addr, root)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-c", confPath, "-p", dir, "-e", filepath.Join(dir, "error.log"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its workers go with it
	out, err := os.Create(filepath.Join(dir, "stdout.log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, err
	}
	out.Close()
	n := &nginx{bin: bin, dir: dir, addr: addr, cmd: cmd, pid: cmd.Process.Pid}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return n, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			n.stop()
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			return nil, fmt.Errorf("nginx did not answer on %s: %v; its log: %s", addr, err, strings.TrimSpace(string(log)))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// version is `nginx -v`'s line.
func (n *nginx) version() string {
	out, _ := exec.Command(n.bin, "-v").CombinedOutput()
	return strings.TrimSpace(string(out))
}

// stop ends the master's process group (SIGQUIT, then SIGKILL) and reaps it.
func (n *nginx) stop() {
	_ = syscall.Kill(-n.pid, syscall.SIGQUIT)
	done := make(chan struct{})
	go func() { _ = n.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-n.pid, syscall.SIGKILL)
		<-done
	}
}
