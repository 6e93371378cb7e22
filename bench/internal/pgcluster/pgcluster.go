// Package pgcluster runs the throwaway PostgreSQL cluster that benches under
// bench/ compare our services with: Debian's server binaries, initdb'd in the
// run's temporary directory, on a free loopback port with its unix socket
// beside the data, fsync and synchronous_commit on, stopped at the end.
package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/photoncloud/photon/bench/internal/pairbench"
)

// Cluster is a running throwaway PostgreSQL cluster.
type Cluster struct {
	Bin     string // the server binaries (initdb, pg_ctl, postgres)
	Dir     string // data directory, also holding the log and the unix socket
	Sock    string // the unix socket's directory
	Addr    string // 127.0.0.1:Port
	Port    int
	Version string // `postgres --version`
	runAs   string // "" to run as this user; else runuser -u runAs
}

// BinDir finds Debian's PostgreSQL server binaries (the newest version).
func BinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(dirs) == 0 {
		return "", errors.New("no /usr/lib/postgresql/*/bin/initdb: run ./scripts/install-deps.sh --bench (Debian's postgresql)")
	}
	sort.Slice(dirs, func(i, j int) bool { return verNum(dirs[i]) < verNum(dirs[j]) })
	return filepath.Dir(dirs[len(dirs)-1]), nil
}

func verNum(initdb string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return n
}

// Start initdb's a cluster under parent/pg and starts it on addr
// (127.0.0.1:port) with its unix socket in the same directory, fsync and
// synchronous_commit on. As root, the cluster belongs to and runs as the
// postgres user (initdb refuses root), and parent is opened to it (0711).
func Start(ctx context.Context, parent, addr string, stderr io.Writer) (*Cluster, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	_, portStr, _ := strings.Cut(addr, ":")
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("postgres address %q: %w", addr, err)
	}
	c := &Cluster{Bin: bin, Dir: filepath.Join(parent, "pg"), Addr: addr, Port: port}
	c.Sock = c.Dir
	if err := os.Mkdir(c.Dir, 0o700); err != nil {
		return nil, err
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs the postgres user (Debian's postgresql creates it): %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		// The postgres user must reach parent/pg: parent is 0700 root.
		if err := os.Chmod(parent, 0o711); err != nil {
			return nil, err
		}
		if err := os.Chown(c.Dir, uid, gid); err != nil {
			return nil, err
		}
		c.runAs = "postgres"
	}
	c.Version = pairbench.Output(ctx, filepath.Join(bin, "postgres"), "--version")
	fmt.Fprintf(stderr, "initdb %s (%s)\n", c.Dir, c.Version)
	if out, err := c.cmd(ctx, "initdb", "-D", c.Dir, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	conf := fmt.Sprintf(`listen_addresses = '127.0.0.1'
port = %d
unix_socket_directories = '%s'
fsync = on
synchronous_commit = on
full_page_writes = on
max_connections = 100
logging_collector = off
`, port, c.Sock)
	f, err := os.OpenFile(filepath.Join(c.Dir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	if _, err := f.WriteString(conf); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	// pg_ctl -l writes the log as the cluster's user: keep it in the dir.
	if out, err := c.cmd(ctx, "pg_ctl", "start", "-w", "-t", "60", "-D", c.Dir, "-l", filepath.Join(c.Dir, "server.log")).CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.Dir, "server.log"))
		return nil, fmt.Errorf("pg_ctl start: %w\n%s\n%s", err, out, log)
	}
	return c, nil
}

func (c *Cluster) cmd(ctx context.Context, prog string, args ...string) *exec.Cmd {
	path := filepath.Join(c.Bin, prog)
	if c.runAs != "" {
		return exec.CommandContext(ctx, "runuser", append([]string{"-u", c.runAs, "--", path}, args...)...)
	}
	return exec.CommandContext(ctx, path, args...)
}

// Stop stops the cluster (pg_ctl stop -m fast) and waits for it to exit.
func (c *Cluster) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, err := c.cmd(ctx, "pg_ctl", "stop", "-w", "-m", "fast", "-D", c.Dir).CombinedOutput(); err != nil {
		return fmt.Errorf("pg_ctl stop: %w\n%s", err, out)
	}
	return nil
}

// ConnString connects as postgres to the postgres database over TCP to
// 127.0.0.1, or through the unix socket.
func (c *Cluster) ConnString(unix bool) string {
	host := "127.0.0.1"
	if unix {
		host = c.Sock
	}
	return fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres sslmode=disable", host, c.Port)
}

// ConnDesc says how ConnString(unix) connects, for a report.
func (c *Cluster) ConnDesc(unix bool) string {
	if unix {
		return "unix socket in " + c.Sock
	}
	return "TCP " + c.Addr
}

// Connect opens one connection (see ConnString).
func (c *Cluster) Connect(ctx context.Context, unix bool) (*pgx.Conn, error) {
	conn, err := pgx.Connect(ctx, c.ConnString(unix))
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return conn, nil
}

// Settings reads server settings as "name=value …", for a report to say
// what the run used.
func (c *Cluster) Settings(ctx context.Context, conn *pgx.Conn, names ...string) (string, error) {
	var out []string
	for _, n := range names {
		var v string
		if err := conn.QueryRow(ctx, "SELECT current_setting($1)", n).Scan(&v); err != nil {
			return "", err
		}
		out = append(out, n+"="+v)
	}
	return strings.Join(out, " "), nil
}

// TreeCPU is the CPU used so far by the cluster's processes: the postmaster,
// its live children (one backend per client connection, which live for the
// whole run, plus the WAL writer, checkpointer …) and its reaped children.
func (c *Cluster) TreeCPU() time.Duration {
	b, err := os.ReadFile(filepath.Join(c.Dir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pm := strings.TrimSpace(first)
	procs, _ := filepath.Glob("/proc/[0-9]*/stat")
	var total time.Duration
	for _, p := range procs {
		st, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		i := strings.LastIndexByte(string(st), ')')
		if i < 0 {
			continue
		}
		// After the command name: state, ppid … utime (14), stime (15),
		// cutime (16), cstime (17), counting fields from 1 as proc(5) does.
		f := strings.Fields(string(st[i+1:]))
		if len(f) < 15 {
			continue
		}
		pid := filepath.Base(filepath.Dir(p))
		switch {
		case pid == pm:
			total += ticks(f[11]) + ticks(f[12]) + ticks(f[13]) + ticks(f[14])
		case f[1] == pm:
			total += ticks(f[11]) + ticks(f[12])
		}
	}
	return total
}

func ticks(s string) time.Duration {
	n, _ := strconv.ParseInt(s, 10, 64)
	return time.Duration(n) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}
