package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/photoncloud/photon/bench/internal/pairbench"
)

type runner struct {
	opt      options
	s3       *s3Client
	nginxURL string
	www, raw string
	stderr   io.Writer
}

// getCase is one size's GET comparison.
type getCase struct {
	size   int
	slices []pairbench.Slice
	ratio  pairbench.Ratio
	ok     bool
}

// putRound is one timed round of one path.
type putRound struct {
	path string // "s3" or "raw"
	dur  time.Duration
	cpu  pairbench.CPU
}

type putCase struct {
	size, count int
	rounds      []putRound
	ratio       pairbench.Ratio
	ok          bool
}

type results struct {
	gets  []getCase
	puts  []putCase
	small []pairbench.Slice
	errs  int
}

func (r *runner) run(ctx context.Context) (*results, error) {
	res := &results{}
	for _, size := range []int{mib, 64 * mib} {
		g, err := r.getCase(ctx, size)
		if err != nil {
			return nil, err
		}
		res.gets = append(res.gets, g)
		for _, s := range g.slices {
			res.errs += s.Errs
		}
	}
	for _, c := range []struct{ size, count int }{{mib, r.opt.putCount1}, {64 * mib, r.opt.putCount64}} {
		p, err := r.putCase(ctx, c.size, c.count)
		if err != nil {
			return nil, err
		}
		res.puts = append(res.puts, p)
	}
	small, err := r.smallCase(ctx)
	if err != nil {
		return nil, err
	}
	res.small = small
	for _, s := range small {
		res.errs += s.Errs
	}
	return res, nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func sizeName(n int) string {
	if n >= mib {
		return fmt.Sprintf("%dMiB", n/mib)
	}
	return fmt.Sprintf("%dKiB", n/1024)
}

// getCase stores --objects objects of size through S3 and the same bytes as
// files in nginx's root (same disk), then interleaves the two GET loops.
func (r *runner) getCase(ctx context.Context, size int) (getCase, error) {
	g := getCase{size: size}
	name := sizeName(size)
	fmt.Fprintf(r.stderr, "GET %s: storing %d objects\n", name, r.opt.objects)
	keys := make([]string, r.opt.objects)
	for i := range keys {
		keys[i] = fmt.Sprintf("get-%s-%d", name, i)
		data := randomBytes(size)
		if err := r.s3.put(ctx, keys[i], data); err != nil {
			return g, err
		}
		if err := writeSynced(filepath.Join(r.www, keys[i]), data); err != nil {
			return g, err
		}
	}
	hc := pairbench.HTTPClient(r.opt.conc)
	var next atomic.Uint64
	loops := []pairbench.ClosedLoop{
		{Target: "lightningstor", Conc: r.opt.conc, Op: func(ctx context.Context) error {
			return r.s3.get(ctx, keys[next.Add(1)%uint64(len(keys))], int64(size))
		}},
		{Target: "nginx", Conc: r.opt.conc, Op: func(ctx context.Context) error {
			return plainGet(ctx, hc, r.nginxURL+"/"+keys[next.Add(1)%uint64(len(keys))], int64(size))
		}},
	}
	sch := pairbench.Schedule{Targets: 2, Cycles: r.opt.cycles, Warmup: r.opt.warm, Settle: r.opt.settle, Slice: r.opt.slice,
		Progress: func(c int, rates string) { fmt.Fprintf(r.stderr, "GET %s cycle %2d (objects/s)%s\n", name, c+1, rates) }}
	all, err := sch.Run(ctx, func(i int, settle, dur time.Duration) pairbench.Slice { return loops[i].Run(ctx, settle, dur) })
	if err != nil {
		return g, err
	}
	g.slices = all
	ls, ng := pairbench.Summarize(all, "lightningstor"), pairbench.Summarize(all, "nginx")
	g.ratio, g.ok = pairbench.Pair(ls.PerCycle, ng.PerCycle)
	return g, nil
}

func plainGet(ctx context.Context, hc *http.Client, url string, want int64) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil && (resp.StatusCode != http.StatusOK || n != want) {
		return fmt.Errorf("GET %s: HTTP %d, %d bytes, want %d", url, resp.StatusCode, n, want)
	}
	return err
}

// writeSynced is os.WriteFile plus fsync: the raw disk path of the PUT case.
func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// putCase runs --rounds rounds per path, alternating which goes first; in a
// round --conc writers each store count objects of size (distinct names),
// which are removed, untimed, after the round.
func (r *runner) putCase(ctx context.Context, size, count int) (putCase, error) {
	p := putCase{size: size, count: count}
	name := sizeName(size)
	data := randomBytes(size)
	paths := []string{"s3", "raw"}
	do := func(path string, w, i int) error {
		key := fmt.Sprintf("put-%s-%d-%d", name, w, i)
		if path == "s3" {
			return r.s3.put(ctx, key, data)
		}
		return writeSynced(filepath.Join(r.raw, key), data)
	}
	undo := func(path string, w, i int) error {
		key := fmt.Sprintf("put-%s-%d-%d", name, w, i)
		if path == "s3" {
			return r.s3.del(ctx, key)
		}
		return os.Remove(filepath.Join(r.raw, key))
	}
	round := func(path string) (putRound, error) {
		var wg sync.WaitGroup
		errs := make([]error, r.opt.conc)
		cpu0 := pairbench.SampleCPU(0)
		t0 := time.Now()
		for w := range r.opt.conc {
			wg.Go(func() {
				for i := range count {
					if errs[w] = do(path, w, i); errs[w] != nil {
						return
					}
				}
			})
		}
		wg.Wait()
		pr := putRound{path: path, dur: time.Since(t0), cpu: pairbench.SampleCPU(0).Sub(cpu0)}
		for _, err := range errs {
			if err != nil {
				return pr, err
			}
		}
		for w := range r.opt.conc {
			for i := range count {
				if err := undo(path, w, i); err != nil {
					return pr, err
				}
			}
		}
		// Let the unlinks' journal and block freeing finish before the next
		// round, whichever path it is, so no round pays for the last.
		syscall.Sync()
		time.Sleep(time.Second)
		return pr, nil
	}
	// Untimed warm-up of both paths.
	for _, path := range paths {
		if _, err := round(path); err != nil {
			return p, err
		}
	}
	var s3r, rawr []float64
	for k := range r.opt.rounds {
		order := paths
		if k%2 == 1 {
			order = []string{"raw", "s3"}
		}
		for _, path := range order {
			if ctx.Err() != nil {
				return p, ctx.Err()
			}
			pr, err := round(path)
			if err != nil {
				return p, err
			}
			p.rounds = append(p.rounds, pr)
			mbs := float64(r.opt.conc*count*size) / 1e6 / pr.dur.Seconds()
			if path == "s3" {
				s3r = append(s3r, mbs)
			} else {
				rawr = append(rawr, mbs)
			}
			fmt.Fprintf(r.stderr, "PUT %s round %d %-3s %7.1f MB/s\n", name, k+1, path, mbs)
		}
	}
	p.ratio, p.ok = pairbench.Pair(s3r, rawr)
	return p, nil
}

// smallCase is the 4 KiB PUT-then-GET loop over 256 keys per client.
func (r *runner) smallCase(ctx context.Context) ([]pairbench.Slice, error) {
	data := randomBytes(4096)
	var next atomic.Uint64
	loop := pairbench.ClosedLoop{Target: "lightningstor", Conc: r.opt.conc, Op: func(ctx context.Context) error {
		key := fmt.Sprintf("small-%d", next.Add(1)%(256*uint64(r.opt.conc)))
		if err := r.s3.put(ctx, key, data); err != nil {
			return err
		}
		return r.s3.get(ctx, key, int64(len(data)))
	}}
	sch := pairbench.Schedule{Targets: 1, Cycles: r.opt.cycles, Warmup: r.opt.warm, Settle: r.opt.settle, Slice: r.opt.slice,
		Progress: func(c int, rates string) { fmt.Fprintf(r.stderr, "4KiB PUT+GET cycle %2d (pairs/s)%s\n", c+1, rates) }}
	return sch.Run(ctx, func(_ int, settle, dur time.Duration) pairbench.Slice { return loop.Run(ctx, settle, dur) })
}
