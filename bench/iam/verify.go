package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/photoncloud/photon/bench/internal/pairbench"
	"github.com/photoncloud/photon/internal/auth/token"
)

// freshPool is how many distinct tokens the fresh-token target cycles
// through before it starts a new Verifier, whose cache is empty (a batch
// verifies about a hundred).
const freshPool = 8192

// verifyCase is one in-process verification target.
type verifyCase struct {
	id, name string
	op       func() error
}

// newVerifyCases builds the targets over IAM's admin token and the key it was
// signed with, as published in IAM's JWKS, and checks that each accepts the
// token.
func newVerifyCases(ctx context.Context, st *stack) ([]verifyCase, error) {
	raw := st.adminToken
	kid, err := tokenKid(raw)
	if err != nil {
		return nil, err
	}
	// The KeySource ChainFire itself verifies with.
	keys := token.NewRemoteKeys("http://"+st.IAM.HTTPAddr()+"/api/v1/auth/jwks", nil)
	pub, err := keys.PublicKey(ctx, kid)
	if err != nil {
		return nil, fmt.Errorf("IAM's key %q: %w", kid, err)
	}
	dot := strings.LastIndexByte(raw, '.')
	msg := []byte(raw[:dot])
	sig, err := base64.RawURLEncoding.DecodeString(raw[dot+1:])
	if err != nil {
		return nil, fmt.Errorf("admin token signature: %w", err)
	}

	uncached := token.NewVerifier(keys, token.WithoutCache())
	claims, err := uncached.Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("admin token: %w", err)
	}
	cached := token.NewVerifier(keys)
	authn := st.ChainFire.Auth()

	// Fresh tokens: the admin token's claims, each with its own jti of the
	// same length, signed by a bench key.
	bk, err := token.GenerateKey("bench")
	if err != nil {
		return nil, err
	}
	fresh := make([]string, freshPool)
	for i := range fresh {
		c := *claims
		c.ID = fmt.Sprintf("b%0*d", max(len(claims.ID)-1, 6), i)
		if fresh[i], err = token.Sign(bk, c); err != nil {
			return nil, fmt.Errorf("signing a fresh token: %w", err)
		}
	}
	benchKeys := token.StaticKeys{bk.ID: bk.Public()}
	var fv *token.Verifier
	next := 0
	newFresh := func() { fv, next = token.NewVerifier(benchKeys), 0 }
	newFresh()

	cases := []verifyCase{
		{id: "e", name: "ed25519.Verify (limit)", op: func() error {
			if !ed25519.Verify(pub, msg, sig) {
				return errors.New("ed25519.Verify: signature does not verify")
			}
			return nil
		}},
		{id: "u", name: "Verify, uncached", op: func() error {
			_, err := uncached.Verify(ctx, raw)
			return err
		}},
		{id: "f", name: "Verify, fresh tokens", op: func() error {
			if next == len(fresh) {
				newFresh()
			}
			_, err := fv.Verify(ctx, fresh[next])
			next++
			return err
		}},
		{id: "c", name: "Verify, cached", op: func() error {
			_, err := cached.Verify(ctx, raw)
			return err
		}},
		{id: "a", name: "Authenticator.Verify", op: func() error {
			_, err := authn.Verify(ctx, raw)
			return err
		}},
	}
	for _, c := range cases {
		if err := c.op(); err != nil {
			return nil, fmt.Errorf("%s: %w", c.name, err)
		}
	}
	return cases, nil
}

// tokenKid reads the kid from a token's header.
func tokenKid(raw string) (string, error) {
	h, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return "", fmt.Errorf("admin token header: %w", err)
	}
	var hdr struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(b, &hdr); err != nil || hdr.Kid == "" {
		return "", fmt.Errorf("admin token header has no kid (%v)", err)
	}
	return hdr.Kid, nil
}

// allocStat is what one op of a target allocates.
type allocStat struct{ mallocs, bytes float64 }

// runVerify measures each target's rate in a warm-up, sizes its batch to
// last about opt.verifyBatch, then runs opt.verifyRounds rounds of one batch
// per target. It also returns what one op of each target allocates, measured
// apart from the timed batches.
func runVerify(ctx context.Context, opt options, cases []verifyCase, stderr io.Writer) ([]pairbench.Slice, map[string]allocStat, error) {
	batch := make([]int, len(cases))
	allocs := map[string]allocStat{}
	for i, c := range cases {
		ops, errs, d, first := runFor(c, opt.warmup)
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		if errs > 0 {
			return nil, nil, fmt.Errorf("warm-up %s: %d errors, first: %w", c.name, errs, first)
		}
		batch[i] = max(1, int(float64(ops)/d.Seconds()*opt.verifyBatch.Seconds()))
		allocs[c.id] = measureAllocs(c, min(batch[i], 10000))
	}
	var b strings.Builder
	for i, c := range cases {
		fmt.Fprintf(&b, "  %s %d", c.id, batch[i])
	}
	fmt.Fprintf(stderr, "verify: ops per batch%s\n", b.String())
	var out []pairbench.Slice
	every := max(1, opt.verifyRounds/10)
	for round := range opt.verifyRounds {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		var line strings.Builder
		for _, i := range pairbench.CycleOrder(len(cases), round) {
			s := runBatch(cases[i], batch[i])
			s.Cycle = round
			fmt.Fprintf(&line, "  %s %8.0f", s.Target, s.OpsPerSec())
			if s.Errs > 0 {
				fmt.Fprintf(&line, " (%d errs, first: %v)", s.Errs, s.FirstErr)
			}
			out = append(out, s)
		}
		if (round+1)%every == 0 {
			fmt.Fprintf(stderr, "verify round %4d/%d  ops/s%s\n", round+1, opt.verifyRounds, line.String())
		}
	}
	return out, allocs, nil
}

// runFor runs c's op back to back for d and returns how many succeeded, the
// failures and the time taken. The loop reads no clock: a timer sets a flag
// it checks.
func runFor(c verifyCase, d time.Duration) (ops, errs int, took time.Duration, first error) {
	var stop atomic.Bool
	t := time.AfterFunc(d, func() { stop.Store(true) })
	defer t.Stop()
	t0 := time.Now()
	for !stop.Load() {
		if err := c.op(); err != nil {
			if errs++; first == nil {
				first = err
			}
			continue
		}
		ops++
	}
	return ops, errs, time.Since(t0), first
}

// runBatch runs c's op n times back to back, timed as a whole (a batch of a
// few milliseconds, so the clock costs nothing per op).
func runBatch(c verifyCase, n int) pairbench.Slice {
	r := pairbench.Slice{Target: c.id}
	cpu0 := pairbench.SampleCPU(0)
	t0 := time.Now()
	for range n {
		if err := c.op(); err != nil {
			if r.Errs++; r.FirstErr == nil {
				r.FirstErr = err
			}
			continue
		}
		r.Ops++
	}
	r.Window = time.Since(t0)
	r.CPU = pairbench.SampleCPU(0).Sub(cpu0)
	return r
}

// measureAllocs is the mean allocation of n ops (as testing.AllocsPerRun:
// other goroutines of the process add a little).
func measureAllocs(c verifyCase, n int) allocStat {
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	for range n {
		_ = c.op()
	}
	runtime.ReadMemStats(&m1)
	return allocStat{mallocs: float64(m1.Mallocs-m0.Mallocs) / float64(n), bytes: float64(m1.TotalAlloc-m0.TotalAlloc) / float64(n)}
}
