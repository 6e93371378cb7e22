package main

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

// pgCluster is a throwaway PostgreSQL cluster in the run's temp dir.
type pgCluster struct {
	bin, dir, sock, addr string
	port                 int
	version              string
	runAs                string // "" to run as this user; else runuser -u runAs
}

// pgBinDir finds Debian's PostgreSQL server binaries (the newest version).
func pgBinDir() (string, error) {
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

// startPG initdb's a cluster under parent/pg and starts it on addr
// (127.0.0.1:port) with its unix socket in the same directory, fsync and
// synchronous_commit on. As root, the cluster belongs to and runs as the
// postgres user (initdb refuses root).
func startPG(ctx context.Context, parent, addr string, stderr io.Writer) (*pgCluster, error) {
	bin, err := pgBinDir()
	if err != nil {
		return nil, err
	}
	_, portStr, _ := strings.Cut(addr, ":")
	port, _ := strconv.Atoi(portStr)
	c := &pgCluster{bin: bin, dir: filepath.Join(parent, "pg"), addr: addr, port: port}
	c.sock = c.dir
	if err := os.Mkdir(c.dir, 0o700); err != nil {
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
		if err := os.Chown(c.dir, uid, gid); err != nil {
			return nil, err
		}
		c.runAs = "postgres"
	}
	c.version = pairbench.Output(ctx, filepath.Join(bin, "postgres"), "--version")
	fmt.Fprintf(stderr, "initdb %s (%s)\n", c.dir, c.version)
	if out, err := c.cmd(ctx, "initdb", "-D", c.dir, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C").CombinedOutput(); err != nil {
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
`, port, c.sock)
	f, err := os.OpenFile(filepath.Join(c.dir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
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
	if out, err := c.cmd(ctx, "pg_ctl", "start", "-w", "-t", "60", "-D", c.dir, "-l", filepath.Join(c.dir, "server.log")).CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "server.log"))
		return nil, fmt.Errorf("pg_ctl start: %w\n%s\n%s", err, out, log)
	}
	return c, nil
}

func (c *pgCluster) cmd(ctx context.Context, prog string, args ...string) *exec.Cmd {
	path := filepath.Join(c.bin, prog)
	if c.runAs != "" {
		return exec.CommandContext(ctx, "runuser", append([]string{"-u", c.runAs, "--", path}, args...)...)
	}
	return exec.CommandContext(ctx, path, args...)
}

func (c *pgCluster) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, err := c.cmd(ctx, "pg_ctl", "stop", "-w", "-m", "fast", "-D", c.dir).CombinedOutput(); err != nil {
		return fmt.Errorf("pg_ctl stop: %w\n%s", err, out)
	}
	return nil
}

// connString connects over TCP to 127.0.0.1, or through the unix socket.
func (c *pgCluster) connString(unix bool) string {
	host := "127.0.0.1"
	if unix {
		host = c.sock
	}
	return fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres sslmode=disable", host, c.port)
}

// setting reads one server setting (for the report: what the run used).
func (c *pgCluster) settings(ctx context.Context, conn *pgx.Conn, names ...string) (string, error) {
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

const pgSchema = `
CREATE TABLE wallets (
	project_id text PRIMARY KEY,
	balance    bigint NOT NULL,
	reserved   bigint NOT NULL DEFAULT 0
);
CREATE TABLE reservations (
	id         bigserial PRIMARY KEY,
	project_id text NOT NULL REFERENCES wallets,
	amount     bigint NOT NULL,
	actual     bigint,
	status     text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE transactions (
	id             bigserial PRIMARY KEY,
	project_id     text NOT NULL REFERENCES wallets,
	amount         bigint NOT NULL,
	type           text NOT NULL,
	reservation_id bigint REFERENCES reservations,
	balance_after  bigint NOT NULL,
	created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reservations_active ON reservations (project_id) WHERE status = 'active';
CREATE INDEX transactions_project ON transactions (project_id, id);
`

// pgSetup creates the schema and the wallets, each with its initial balance
// recorded as a deposit, as CreditService records it.
func pgSetup(ctx context.Context, conn *pgx.Conn, projects []string, initial int64) error {
	if _, err := conn.Exec(ctx, pgSchema); err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	for _, p := range projects {
		if _, err := conn.Exec(ctx, "INSERT INTO wallets (project_id, balance) VALUES ($1, $2)", p, initial); err != nil {
			return err
		}
		if _, err := conn.Exec(ctx, "INSERT INTO transactions (project_id, amount, type, balance_after) VALUES ($1, $2, 'deposit', $2)", p, initial); err != nil {
			return err
		}
	}
	return nil
}

var errInsufficient = errors.New("insufficient available credit")

// pgReserve is the operator's reserve: lock the wallet row, check, insert
// the reservation, raise reserved.
func pgReserve(ctx context.Context, conn *pgx.Conn, project string, amount int64) (id int64, err error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	var balance, reserved int64
	if err = tx.QueryRow(ctx, "SELECT balance, reserved FROM wallets WHERE project_id = $1 FOR UPDATE", project).Scan(&balance, &reserved); err != nil {
		return 0, err
	}
	if balance-reserved < amount {
		return 0, errInsufficient
	}
	if err = tx.QueryRow(ctx, "INSERT INTO reservations (project_id, amount, status) VALUES ($1, $2, 'active') RETURNING id", project, amount).Scan(&id); err != nil {
		return 0, err
	}
	if _, err = tx.Exec(ctx, "UPDATE wallets SET reserved = reserved + $2 WHERE project_id = $1", project, amount); err != nil {
		return 0, err
	}
	return id, tx.Commit(ctx)
}

// pgCommit is the operator's commit: lock the reservation, then its wallet;
// end the reservation, move reserved to spent, record the charge.
func pgCommit(ctx context.Context, conn *pgx.Conn, id, actual int64) (err error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	var project, status string
	var amount int64
	if err = tx.QueryRow(ctx, "SELECT project_id, amount, status FROM reservations WHERE id = $1 FOR UPDATE", id).Scan(&project, &amount, &status); err != nil {
		return err
	}
	if status != "active" {
		return fmt.Errorf("reservation %d is %s", id, status)
	}
	if actual > amount {
		return fmt.Errorf("actual %d exceeds reserved %d", actual, amount)
	}
	var balance int64
	if err = tx.QueryRow(ctx, "SELECT balance FROM wallets WHERE project_id = $1 FOR UPDATE", project).Scan(&balance); err != nil {
		return err
	}
	if _, err = tx.Exec(ctx, "UPDATE reservations SET status = 'committed', actual = $2 WHERE id = $1", id, actual); err != nil {
		return err
	}
	if _, err = tx.Exec(ctx, "UPDATE wallets SET reserved = reserved - $2, balance = balance - $3 WHERE project_id = $1", project, amount, actual); err != nil {
		return err
	}
	if _, err = tx.Exec(ctx, "INSERT INTO transactions (project_id, amount, type, reservation_id, balance_after) VALUES ($1, $2, 'charge', $3, $4)",
		project, -actual, id, balance-actual); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// pgCheck checks the ledger invariants of every wallet and that each wallet
// holds exactly the commits the clients saw succeed.
func pgCheck(ctx context.Context, conn *pgx.Conn, commits map[string]int64) (check, error) {
	rows, err := conn.Query(ctx, `
SELECT w.project_id, w.balance, w.reserved,
       (SELECT coalesce(sum(amount), 0) FROM transactions t WHERE t.project_id = w.project_id),
       (SELECT count(*) FROM transactions t WHERE t.project_id = w.project_id AND t.type = 'charge'),
       (SELECT coalesce(sum(amount), 0) FROM reservations r WHERE r.project_id = w.project_id AND r.status = 'active')
FROM wallets w ORDER BY w.project_id`)
	if err != nil {
		return check{}, err
	}
	var c check
	for rows.Next() {
		var w walletState
		if err := rows.Scan(&w.project, &w.balance, &w.reserved, &w.txSum, &w.charges, &w.activeSum); err != nil {
			rows.Close()
			return check{}, err
		}
		w.available = w.balance - w.reserved
		c.add(w, commits)
	}
	rows.Close()
	return c, rows.Err()
}

// treeCPU is the CPU used so far by the cluster's processes: the postmaster,
// its live children (one backend per client connection, which live for the
// whole run, plus the WAL writer, checkpointer …) and its reaped children.
func (c *pgCluster) treeCPU() time.Duration {
	b, err := os.ReadFile(filepath.Join(c.dir, "postmaster.pid"))
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
