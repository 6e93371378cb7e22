package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"

	"github.com/photoncloud/photon/bench/internal/pgcluster"
)

const createSQL = "CREATE TABLE bench_kv (k TEXT PRIMARY KEY, v TEXT NOT NULL)"

// Names of the statements prepared on every PostgreSQL connection.
const (
	pgInsert = "bench_insert"
	pgSelect = "bench_select"
)

// keyLog is what a side's clients saw of their inserts: the keys
// acknowledged, and the keys whose request failed (their row may or may not
// be there).
type keyLog struct {
	mu            sync.Mutex
	acked, failed []string
}

func (l *keyLog) record(k string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err == nil {
		l.acked = append(l.acked, k)
	} else {
		l.failed = append(l.failed, k)
	}
}

// sides holds both sides, set up: the table created and the read keys
// written on each.
type sides struct {
	opt      options
	fc       *flareCluster // nil without FlareDB
	fLog     keyLog
	fErrs    errTally
	pg       *pgcluster.Cluster // nil without PostgreSQL
	admin    *pgx.Conn
	free     chan *pgx.Conn // opt.conc client connections, statements prepared
	conns    []*pgx.Conn
	pLog     keyLog
	pErrs    errTally
	readKeys []string
}

// value is the value stored under k: k, then padding to the value size, so
// a read can tell it got its own row.
func (s *sides) value(k string) string {
	return k + "|" + strings.Repeat("v", s.opt.valueSize-len(k)-1)
}

// setUp creates the table on each side and writes the read keys, with
// opt.conc clients through the same insert path the cases measure.
func setUp(ctx context.Context, opt options, fc *flareCluster, pg *pgcluster.Cluster, e *env, stderr io.Writer) (s *sides, err error) {
	s = &sides{opt: opt, fc: fc, pg: pg}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	for i := range opt.keys {
		s.readKeys = append(s.readKeys, fmt.Sprintf("r-%08d", i))
	}
	if fc != nil {
		e.leaderStart = fc.leader.id
		if _, err := fc.admin.sql(ctx, sqlRequest{Query: createSQL}); err != nil {
			return s, fmt.Errorf("FlareDB: %s: %w", createSQL, err)
		}
		cl := newFlareClient(fc.leader.base, opt.conc, &s.fErrs)
		fmt.Fprintf(stderr, "writing %d rows to FlareDB\n", len(s.readKeys))
		if err := populate(ctx, opt.conc, s.readKeys, &s.fLog, func(ctx context.Context, k string) error {
			return cl.insert(ctx, k, s.value(k))
		}); err != nil {
			return s, fmt.Errorf("FlareDB: %w", err)
		}
	}
	if pg != nil {
		if s.admin, err = pg.Connect(ctx, opt.pgUnix); err != nil {
			return s, err
		}
		e.pgVersion, e.pgDir, e.pgConn = pg.Version, pg.Dir, pg.ConnDesc(opt.pgUnix)
		if e.pgSettings, err = pg.Settings(ctx, s.admin, "fsync", "synchronous_commit", "wal_sync_method", "full_page_writes", "shared_buffers"); err != nil {
			return s, err
		}
		if _, err := s.admin.Exec(ctx, createSQL); err != nil {
			return s, fmt.Errorf("PostgreSQL: %s: %w", createSQL, err)
		}
		s.free = make(chan *pgx.Conn, opt.conc)
		for range opt.conc {
			c, err := pg.Connect(ctx, opt.pgUnix)
			if err != nil {
				return s, err
			}
			s.conns = append(s.conns, c)
			if _, err := c.Prepare(ctx, pgInsert, "INSERT INTO bench_kv(k, v) VALUES ($1, $2)"); err != nil {
				return s, fmt.Errorf("PostgreSQL: prepare: %w", err)
			}
			if _, err := c.Prepare(ctx, pgSelect, "SELECT v FROM bench_kv WHERE k = $1"); err != nil {
				return s, fmt.Errorf("PostgreSQL: prepare: %w", err)
			}
			s.free <- c
		}
		fmt.Fprintf(stderr, "writing %d rows to PostgreSQL\n", len(s.readKeys))
		if err := populate(ctx, opt.conc, s.readKeys, &s.pLog, func(ctx context.Context, k string) error {
			return s.pgInsert(ctx, k, s.value(k))
		}); err != nil {
			return s, fmt.Errorf("PostgreSQL: %w", err)
		}
	}
	return s, nil
}

// populate inserts keys with conc workers, stopping at the first error.
func populate(ctx context.Context, conc int, keys []string, log *keyLog, insert func(ctx context.Context, k string) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, conc)
	for w := range conc {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(keys) || ctx.Err() != nil {
					return
				}
				err := insert(ctx, keys[i])
				log.record(keys[i], err)
				if err != nil {
					errs[w] = fmt.Errorf("insert %s: %w", keys[i], err)
					next.Store(int64(len(keys)))
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(append(errs, ctx.Err())...)
}

// pgInsert is one INSERT in autocommit, on a free connection.
func (s *sides) pgInsert(ctx context.Context, k, v string) error {
	c := <-s.free
	defer func() { s.free <- c }()
	tag, err := c.Exec(ctx, pgInsert, k, v)
	if err == nil && tag.RowsAffected() != 1 {
		err = fmt.Errorf("insert %s: %d rows affected, want 1", k, tag.RowsAffected())
	}
	if err != nil {
		s.pErrs.add(ctx, err)
	}
	return err
}

// pgRead is one point read, on a free connection; it must find want.
func (s *sides) pgRead(ctx context.Context, k, want string) error {
	c := <-s.free
	defer func() { s.free <- c }()
	var v string
	err := c.QueryRow(ctx, pgSelect, k).Scan(&v)
	if err == nil && v != want {
		err = fmt.Errorf("read %s: %q, want %q", k, truncate(v, 40), truncate(want, 40))
	}
	if err != nil {
		s.pErrs.add(ctx, err)
	}
	return err
}

func (s *sides) close() {
	for _, c := range s.conns {
		_ = c.Close(context.Background())
	}
	if s.admin != nil {
		_ = s.admin.Close(context.Background())
	}
}
