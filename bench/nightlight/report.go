package main

import (
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/photoncloud/photon/bench/internal/pairbench"
)

// verdict is PASS when the ratio is known and on the target's side.
func verdict(ok bool, v, target float64, atMost bool) string {
	if ok && ((atMost && v <= target) || (!atMost && v >= target)) {
		return "PASS"
	}
	return "BELOW"
}

func ci(r pairbench.Ratio) string {
	if !r.CIOK {
		return "[CI n/a]"
	}
	return fmt.Sprintf("[%.2f–%.2f]", r.Lo, r.Hi)
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func durPct(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return pairbench.Percentile(s, p)
}

func report(w io.Writer, opt options, e pairbench.Env, g *generator, t [2]*server, res *results) {
	nl, pr := t[0].name, t[1].name
	pair := nl + "/" + pr
	fmt.Fprintf(w, "NightLight benchmark — %s\n\n", e.Date.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "command   %s\n", e.Command)
	fmt.Fprintf(w, "machine   %d CPUs (%s), %s, %s\n", e.CPUs, e.CPUModel, e.Memory, e.Kernel)
	fmt.Fprintf(w, "load avg  %s at start, %s at end (shared machine)\n", e.LoadStart, e.LoadEnd)
	fmt.Fprintf(w, "versions  bench at commit %s plus the working tree, %s\n", e.Commit, e.GoVersion)
	fmt.Fprintf(w, "%-9s %s\n", nl, t[0].desc)
	fmt.Fprintf(w, "%-9s %s\n", pr, t[1].desc)
	fmt.Fprintf(w, "runtime   both child processes with their own defaults (GOGC, GOMEMLIMIT, GOMAXPROCS, GODEBUG, PHOTON_* stripped;\n")
	fmt.Fprintf(w, "          only --nightlight-gogc sets one), so Prometheus runs with Go's GOGC=100\n")
	fmt.Fprintf(w, "data      %s (%s): both servers' storage under it\n", e.Dir, e.FSType)
	fmt.Fprintf(w, "stream    %d series = %d targets (job × 5, region × 3, instance) × %d series from %d metric names\n",
		opt.series, g.targets, g.perTgt, g.names)
	fmt.Fprintf(w, "          (counters, gauges, 3 classic histograms × 12 buckets); %d scrapes 15s apart in simulated time (%s of data),\n",
		opt.scrapes, time.Duration(opt.scrapes)*interval)
	fmt.Fprintf(w, "          remote-write 1.0 (snappy protobuf), %d series per request, %d writers, one keep-alive connection each\n", opt.batch, opt.conc)
	fmt.Fprintf(w, "method    ingest: each scrape encoded once (untimed), then sent to both in turn, order alternating, %v pause after a turn;\n", opt.gap)
	fmt.Fprintf(w, "          ratio = median of the per-scrape samples/s ratios of scrapes 2..%d; scrape 1 (series creation) shown apart\n", opt.scrapes)
	fmt.Fprintf(w, "          memory: RSS growth from idle-and-ready (after %v) to after the stream (after %v), per series\n", opt.settle, opt.settle)
	fmt.Fprintf(w, "          queries: query_range (form POST) %s to %s, step %v; once untimed (answers compared), then %d rounds,\n",
		res.qStart.UTC().Format("15:04:05"), res.qEnd.UTC().Format("15:04:05"), opt.step, opt.rounds)
	fmt.Fprintf(w, "          order alternating; latency = request to last byte; ratio = median of the per-round latency ratios\n")
	fmt.Fprintf(w, "run time  %s\n\n", e.Elapsed.Round(time.Second))

	fmt.Fprintf(w, "ingestion (samples/s)\n")
	fmt.Fprintf(w, "  target       scrape 1   scrapes 2..: median   min / med / max         server CPU/1k samples  errs\n")
	for i, s := range t {
		var rates []float64
		var cpu time.Duration
		var samples, errs int
		first := 0.0
		for _, tu := range res.turns {
			if tu.target != i {
				continue
			}
			errs += tu.errs
			if tu.scrape == 0 {
				first = tu.rate()
				continue
			}
			rates = append(rates, tu.rate())
			cpu += tu.cpu.Server
			samples += tu.samples
		}
		perK := time.Duration(0)
		if samples > 0 {
			perK = time.Duration(float64(cpu) / (float64(samples) / 1000))
		}
		fmt.Fprintf(w, "  %-11s  %8.0f   %19.0f   %-22s  %21s  %4d\n", s.name, first, pairbench.Median(rates),
			pairbench.Spread(rates), pairbench.Latency(perK), errs)
	}

	fmt.Fprintf(w, "\nmemory (/proc/PID/status)\n")
	fmt.Fprintf(w, "  target       head series  RSS idle     RSS after    growth       B/series  RssAnon growth  B/series  peak RSS\n")
	for i, s := range t {
		b, p := res.base[i], res.post[i]
		fmt.Fprintf(w, "  %-11s  %11d  %-11s  %-11s  %-11s  %8.0f  %-14s  %8.0f  %s\n", s.name, res.headSeries[i], mib(b.RSS), mib(p.RSS),
			mib(p.RSS-b.RSS), float64(p.RSS-b.RSS)/float64(opt.series), mib(p.Anon-b.Anon),
			float64(p.Anon-b.Anon)/float64(opt.series), mib(p.HWM))
	}

	fmt.Fprintf(w, "\nquery_range latency over %d rounds\n", opt.rounds)
	fmt.Fprintf(w, "  %-20s  %-20s  series  query  [the two answers]\n", nl+" p50 / p90", pr+" p50 / p90")
	for _, q := range res.queries {
		fmt.Fprintf(w, "  %-20s  %-20s  %6d  %s  [%s]\n",
			pairbench.Latency(durPct(q.lats[0], 0.5))+" / "+pairbench.Latency(durPct(q.lats[0], 0.9)),
			pairbench.Latency(durPct(q.lats[1], 0.5))+" / "+pairbench.Latency(durPct(q.lats[1], 0.9)), q.series[1], q.expr, q.same)
	}

	fmt.Fprintf(w, "\nratios %s: median of paired per-scrape / per-round ratios [95%% CI]\n", pair)
	fmt.Fprintf(w, "  ingestion samples/s        %.3f %s  %s  (target ≥ %.1f); scrape 1 alone %.3f\n", res.ingest.Median, ci(res.ingest),
		verdict(res.ingestOK, res.ingest.Median, ingestTarget, false), ingestTarget, res.first.Median)
	memRatio := float64(res.post[0].RSS-res.base[0].RSS) / float64(res.post[1].RSS-res.base[1].RSS)
	anonRatio := float64(res.post[0].Anon-res.base[0].Anon) / float64(res.post[1].Anon-res.base[1].Anon)
	totRatio := float64(res.post[0].RSS) / float64(res.post[1].RSS)
	fmt.Fprintf(w, "  memory per series (RSS)    %.3f  %s  (target ≤ %.1f); RssAnon growth %.3f, whole RSS after %.3f\n", memRatio,
		verdict(res.post[1].RSS > res.base[1].RSS, memRatio, memTarget, true), memTarget, anonRatio, totRatio)
	pass := 0
	for _, q := range res.queries {
		v := verdict(q.ok, q.ratio.Median, queryTarget, true)
		if v == "PASS" {
			pass++
		}
		p50 := durPct(q.lats[0], 0.5).Seconds() / durPct(q.lats[1], 0.5).Seconds()
		p90 := durPct(q.lats[0], 0.9).Seconds() / durPct(q.lats[1], 0.9).Seconds()
		fmt.Fprintf(w, "  query latency              %.3f %s  %s  (target ≤ %.1f); p50 %.3f p90 %.3f  %s\n", q.ratio.Median, ci(q.ratio),
			v, queryTarget, p50, p90, q.expr)
	}
	fmt.Fprintf(w, "  queries at target: %d of %d\n", pass, len(res.queries))

	fmt.Fprintf(w, "\nper-scrape ingestion ratios, in scrape order (2..%d)\n ", opt.scrapes)
	for _, v := range res.ingest.PerCycle {
		fmt.Fprintf(w, " %.2f", v)
	}
	fmt.Fprintln(w)
}
