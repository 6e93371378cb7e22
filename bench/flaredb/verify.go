package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

const checksumSQL = "SELECT count(*), sum(length(k)), sum(length(v)) FROM bench_kv"

// rowCheck is one replica's rows against what its side's clients saw.
type rowCheck struct {
	name             string
	count, sumK, sum int64  // the checksum query: count(*), sum(length(k)), sum(length(v))
	rows             int64  // rows read back
	digest           string // SHA-256 over every row, key order
	missing          int    // acknowledged inserts absent
	wrong            int    // rows whose value is not the one inserted
	unknown          int    // rows of inserts whose request failed (allowed)
	unexpected       int    // rows no client inserted, or out of key order
	examples         []string
}

func (c rowCheck) ok() bool {
	return c.missing == 0 && c.wrong == 0 && c.unexpected == 0 && c.count == c.rows
}

// checks is the correctness check after the cases.
type checks struct {
	flare          []rowCheck
	leaderCount    int64
	catchUp        string // how long the followers took to hold the leader's count
	identical      bool   // the FlareDB replicas hold the same rows
	pg             *rowCheck
	fAcked, fFails int
	pAcked, pFails int
}

// failures counts the failed checks.
func (c checks) failures() int {
	n := 0
	for _, f := range c.flare {
		if !f.ok() {
			n++
		}
	}
	if len(c.flare) > 0 && !c.identical {
		n++
	}
	if c.pg != nil && !c.pg.ok() {
		n++
	}
	return n
}

// verify reads every row back from every FlareDB node (consistency=stale,
// each node's own copy) and from PostgreSQL.
func verify(ctx context.Context, opt options, s *sides) (checks, error) {
	var ck checks
	if s.fc != nil {
		ck.fAcked, ck.fFails = len(s.fLog.acked), len(s.fLog.failed)
		var err error
		if ck.leaderCount, err = flareCount(ctx, s.fc.admin, ""); err != nil {
			return ck, fmt.Errorf("FlareDB leader: %w", err)
		}
		// Followers apply what the leader committed a little later: wait
		// until each holds as many rows as the leader, for up to 30 s.
		t0 := time.Now()
		var late []string
		for _, n := range s.fc.nodes {
			cl := newFlareClient(n.base, 1, nil)
			for {
				c, err := flareCount(ctx, cl, "stale")
				if err == nil && c == ck.leaderCount {
					break
				}
				if time.Since(t0) > 30*time.Second {
					late = append(late, fmt.Sprintf("%s holds %d rows (err %v)", n.id, c, err))
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		ck.catchUp = fmt.Sprintf("all nodes held the leader's %d rows within %s", ck.leaderCount, time.Since(t0).Round(time.Millisecond))
		if late != nil {
			ck.catchUp = "NOT CAUGHT UP after 30s: " + strings.Join(late, "; ")
		}
		expect := newExpectation(&s.fLog)
		ck.identical = true
		for _, n := range s.fc.nodes {
			cl := newFlareClient(n.base, 1, nil)
			rc := rowCheck{name: "FlareDB " + n.id}
			if n == s.fc.leader {
				rc.name += " (leader)"
			}
			if err := flareChecksum(ctx, cl, &rc); err != nil {
				return ck, fmt.Errorf("%s: %w", rc.name, err)
			}
			if err := expect.check(&rc, s.value, func(yield func(k, v string)) error { return flareRows(ctx, cl, yield) }); err != nil {
				return ck, fmt.Errorf("%s: %w", rc.name, err)
			}
			if len(ck.flare) > 0 {
				f := ck.flare[0]
				if rc.digest != f.digest || rc.rows != f.rows || rc.count != f.count || rc.sumK != f.sumK || rc.sum != f.sum {
					ck.identical = false
				}
			}
			ck.flare = append(ck.flare, rc)
		}
	}
	if s.pg != nil {
		ck.pAcked, ck.pFails = len(s.pLog.acked), len(s.pLog.failed)
		rc := rowCheck{name: "PostgreSQL"}
		if err := s.admin.QueryRow(ctx, "SELECT count(*), coalesce(sum(length(k)), 0), coalesce(sum(length(v)), 0) FROM bench_kv").Scan(&rc.count, &rc.sumK, &rc.sum); err != nil {
			return ck, fmt.Errorf("PostgreSQL: %w", err)
		}
		expect := newExpectation(&s.pLog)
		if err := expect.check(&rc, s.value, func(yield func(k, v string)) error { return pgRows(ctx, s.admin, yield) }); err != nil {
			return ck, fmt.Errorf("PostgreSQL: %w", err)
		}
		ck.pg = &rc
	}
	return ck, nil
}

// expectation is what a side's clients saw of their inserts.
type expectation struct {
	acked, failed map[string]bool
}

func newExpectation(l *keyLog) expectation {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := expectation{acked: make(map[string]bool, len(l.acked)), failed: make(map[string]bool, len(l.failed))}
	for _, k := range l.acked {
		e.acked[k] = true
	}
	for _, k := range l.failed {
		e.failed[k] = true
	}
	return e
}

// check reads a replica's rows (in key order) into rc.
func (e expectation) check(rc *rowCheck, value func(string) string, rows func(yield func(k, v string)) error) error {
	h := sha256.New()
	found := 0
	prev := ""
	example := func(format string, args ...any) {
		if len(rc.examples) < 5 {
			rc.examples = append(rc.examples, fmt.Sprintf(format, args...))
		}
	}
	err := rows(func(k, v string) {
		rc.rows++
		hashRow(h, k, v)
		switch {
		case rc.rows > 1 && k <= prev:
			rc.unexpected++
			example("row %q after %q: not in key order, or twice", k, prev)
		case e.acked[k]:
			found++
			if v != value(k) {
				rc.wrong++
				example("row %q holds %q", k, truncate(v, 40))
			}
		case e.failed[k]:
			rc.unknown++
		default:
			rc.unexpected++
			example("row %q: no client inserted it", k)
		}
		prev = k
	})
	if err != nil {
		return err
	}
	rc.digest = hex.EncodeToString(h.Sum(nil))[:16]
	if rc.missing = len(e.acked) - found; rc.missing > 0 {
		// Name a few, from a second pass over the rows.
		present := map[string]bool{}
		if err := rows(func(k, _ string) { present[k] = true }); err != nil {
			return err
		}
		named := 0
		for k := range e.acked {
			if !present[k] {
				example("acknowledged insert %q is missing", k)
				if named++; named == 5 {
					break
				}
			}
		}
	}
	return nil
}

func hashRow(h hash.Hash, k, v string) {
	h.Write([]byte(k))
	h.Write([]byte{0})
	h.Write([]byte(v))
	h.Write([]byte{'\n'})
}

// flareCount is SELECT count(*) with the given consistency ("" for the
// default, linearizable).
func flareCount(ctx context.Context, cl flareClient, consistency string) (int64, error) {
	res, err := cl.sql(ctx, sqlRequest{Query: "SELECT count(*) FROM bench_kv", Consistency: consistency})
	if err != nil {
		return 0, err
	}
	if len(res.Rows) != 1 || len(res.Rows[0]) != 1 {
		return 0, fmt.Errorf("count: rows %v", res.Rows)
	}
	return toInt(res.Rows[0][0])
}

// flareChecksum runs the checksum query on the node's own copy.
func flareChecksum(ctx context.Context, cl flareClient, rc *rowCheck) error {
	res, err := cl.sql(ctx, sqlRequest{Query: checksumSQL, Consistency: "stale"})
	if err != nil {
		return err
	}
	if len(res.Rows) != 1 || len(res.Rows[0]) != 3 {
		return fmt.Errorf("%s: rows %v", checksumSQL, res.Rows)
	}
	for i, dst := range []*int64{&rc.count, &rc.sumK, &rc.sum} {
		if *dst, err = toInt(res.Rows[0][i]); err != nil {
			return fmt.Errorf("%s: %w", checksumSQL, err)
		}
	}
	return nil
}

func toInt(x any) (int64, error) {
	switch v := x.(type) {
	case nil:
		return 0, nil // sum() of no rows
	case json.Number:
		return v.Int64()
	default:
		return 0, fmt.Errorf("%v (%T) is not a number", x, x)
	}
}

// flareRows reads the node's own copy of every row, in key order, a page
// at a time.
func flareRows(ctx context.Context, cl flareClient, yield func(k, v string)) error {
	const page = 5000
	last := ""
	for {
		res, err := cl.sql(ctx, sqlRequest{Query: fmt.Sprintf("SELECT k, v FROM bench_kv WHERE k > ? ORDER BY k LIMIT %d", page),
			Params: []any{last}, Consistency: "stale"})
		if err != nil {
			return err
		}
		for _, row := range res.Rows {
			if len(row) != 2 {
				return fmt.Errorf("row %v: want 2 columns", row)
			}
			k, ok1 := row[0].(string)
			v, ok2 := row[1].(string)
			if !ok1 || !ok2 {
				return fmt.Errorf("row %v: want two strings", row)
			}
			yield(k, v)
			last = k
		}
		if len(res.Rows) < page {
			return nil
		}
	}
}

// pgRows reads every row from PostgreSQL, in key order.
func pgRows(ctx context.Context, conn *pgx.Conn, yield func(k, v string)) error {
	rows, err := conn.Query(ctx, "SELECT k, v FROM bench_kv ORDER BY k")
	if err != nil {
		return err
	}
	defer rows.Close()
	var k, v string
	for rows.Next() {
		if err := rows.Scan(&k, &v); err != nil {
			return err
		}
		yield(k, v)
	}
	return rows.Err()
}
