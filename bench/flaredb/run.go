package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/photoncloud/photon/bench/internal/pairbench"
)

// target is one side doing one op with a number of clients.
type target struct {
	id, name string
	side     byte // 'f' FlareDB, 'p' PostgreSQL
	conc     int
	op       func(ctx context.Context) error
}

// benchCase is targets that take turns in the same cycles, and the ratios
// between them that the report prints.
type benchCase struct {
	name    string
	targets []target
	ratios  []ratioSpec
}

// ratioSpec is num/den over the paired slices; judged when target > 0.
type ratioSpec struct {
	name     string
	num, den string // target ids
	target   float64
}

// cases are the insert case (FlareDB and PostgreSQL with 1 and opt.conc
// clients, all four in each cycle) and the point-read case.
func cases(opt options, s *sides) []benchCase {
	c := opt.conc
	f1, p1, fN, pN := "f1", "p1", fmt.Sprintf("f%d", c), fmt.Sprintf("p%d", c)
	ins := benchCase{name: "insert", ratios: []ratioSpec{
		{name: fmt.Sprintf("insert c=%d    FlareDB / PostgreSQL", c), num: fN, den: pN, target: targetVsPG},
		{name: fmt.Sprintf("insert FlareDB c=%d / c=1", c), num: fN, den: f1, target: targetGroupCommit},
		{name: "insert c=1     FlareDB / PostgreSQL", num: f1, den: p1},
		{name: fmt.Sprintf("insert PostgreSQL c=%d / c=1", c), num: pN, den: p1},
	}}
	read := benchCase{name: fmt.Sprintf("point read c=%d", c), ratios: []ratioSpec{
		{name: fmt.Sprintf("point read c=%d  FlareDB linearizable / PostgreSQL", c), num: "fr", den: "pr"},
		{name: fmt.Sprintf("point read c=%d  FlareDB lease / PostgreSQL", c), num: "fl", den: "pr"},
		{name: fmt.Sprintf("point read c=%d  FlareDB lease / linearizable", c), num: "fl", den: "fr"},
	}}
	if s.fc != nil {
		for _, conc := range []int{1, c} {
			id := fmt.Sprintf("f%d", conc)
			cl := newFlareClient(s.fc.leader.base, conc, &s.fErrs)
			var n atomic.Int64
			ins.targets = append(ins.targets, target{id: id, name: "FlareDB", side: 'f', conc: conc, op: func(ctx context.Context) error {
				k := fmt.Sprintf("k-%s-%08d", id, n.Add(1))
				err := cl.insert(ctx, k, s.value(k))
				s.fLog.record(k, err)
				return err
			}})
		}
		cl := newFlareClient(s.fc.leader.base, c, &s.fErrs)
		read.targets = append(read.targets, target{id: "fr", name: "FlareDB linearizable", side: 'f', conc: c, op: func(ctx context.Context) error {
			k := s.readKeys[rand.IntN(len(s.readKeys))]
			return cl.read(ctx, "", k, s.value(k))
		}})
		if opt.lease {
			cl := newFlareClient(s.fc.leader.base, c, &s.fErrs)
			read.targets = append(read.targets, target{id: "fl", name: "FlareDB lease", side: 'f', conc: c, op: func(ctx context.Context) error {
				k := s.readKeys[rand.IntN(len(s.readKeys))]
				return cl.read(ctx, "lease", k, s.value(k))
			}})
		}
	}
	if s.pg != nil {
		for _, conc := range []int{1, c} {
			id := fmt.Sprintf("p%d", conc)
			var n atomic.Int64
			ins.targets = append(ins.targets, target{id: id, name: "PostgreSQL", side: 'p', conc: conc, op: func(ctx context.Context) error {
				k := fmt.Sprintf("k-%s-%08d", id, n.Add(1))
				err := s.pgInsert(ctx, k, s.value(k))
				s.pLog.record(k, err)
				return err
			}})
		}
		read.targets = append(read.targets, target{id: "pr", name: "PostgreSQL", side: 'p', conc: c, op: func(ctx context.Context) error {
			k := s.readKeys[rand.IntN(len(s.readKeys))]
			return s.pgRead(ctx, k, s.value(k))
		}})
	}
	// Interleave the sides, so that the order rotates f, p, f, p.
	ins.targets = interleave(ins.targets)
	var out []benchCase
	if opt.insert {
		out = append(out, ins)
	}
	if opt.read {
		out = append(out, read)
	}
	return out
}

// interleave orders f1, f32, p1, p32 as f1, p1, f32, p32: the two sides
// alternate in the base order.
func interleave(ts []target) []target {
	var f, p []target
	for _, t := range ts {
		if t.side == 'f' {
			f = append(f, t)
		} else {
			p = append(p, t)
		}
	}
	var out []target
	for i := range max(len(f), len(p)) {
		if i < len(f) {
			out = append(out, f[i])
		}
		if i < len(p) {
			out = append(out, p[i])
		}
	}
	return out
}

// caseResult is one case's recorded slices.
type caseResult struct {
	c      benchCase
	slices []pairbench.Slice
	// nodeCPU is, per FlareDB target, each node's CPU over the recorded
	// windows (scaled like Slice.CPU.Server).
	nodeCPU map[string][]time.Duration
}

// runCase runs a case's schedule. The servers' CPU is sampled around each
// whole slice (FlareDB's three processes, PostgreSQL's process tree) and
// the recorded window's share of it is counted: the load is steady.
func runCase(ctx context.Context, opt options, c benchCase, s *sides, stderr io.Writer) (caseResult, error) {
	res := caseResult{c: c, nodeCPU: map[string][]time.Duration{}}
	if len(c.targets) == 0 {
		return res, nil
	}
	sched := pairbench.Schedule{
		Targets: len(c.targets), Cycles: opt.cycles, Warmup: opt.warmup, Settle: opt.settle, Slice: opt.slice,
		Warned: func(i int, w pairbench.Slice) {
			fmt.Fprintf(stderr, "%s warm-up %s: %d errors, first: %v\n", c.name, c.targets[i].id, w.Errs, w.FirstErr)
		},
		Progress: func(cycle int, rates string) {
			fmt.Fprintf(stderr, "%s cycle %2d/%d  ops/s%s\n", c.name, cycle+1, opt.cycles, rates)
		},
	}
	sl, err := sched.Run(ctx, func(i int, settle, dur time.Duration) pairbench.Slice {
		t := c.targets[i]
		loop := pairbench.ClosedLoop{Target: t.id, Conc: t.conc, Op: t.op}
		var node0 []time.Duration
		var pg0 time.Duration
		t0 := time.Now()
		switch t.side {
		case 'f':
			node0 = s.fc.nodeCPU()
		case 'p':
			pg0 = s.pg.TreeCPU()
		}
		r := loop.Run(ctx, settle, dur)
		el := time.Since(t0)
		if dur <= 0 || el <= 0 || r.Window <= 0 { // a warm-up
			return r
		}
		share := func(d time.Duration) time.Duration {
			return time.Duration(float64(d) * float64(r.Window) / float64(el))
		}
		switch t.side {
		case 'f':
			node1 := s.fc.nodeCPU()
			if res.nodeCPU[t.id] == nil {
				res.nodeCPU[t.id] = make([]time.Duration, len(node1))
			}
			for j := range node1 {
				d := share(node1[j] - node0[j])
				res.nodeCPU[t.id][j] += d
				r.CPU.Server += d
			}
		case 'p':
			r.CPU.Server = share(s.pg.TreeCPU() - pg0)
		}
		return r
	})
	if err != nil {
		return res, err
	}
	res.slices = sl
	return res, nil
}
