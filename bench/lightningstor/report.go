package main

import (
	"fmt"
	"io"
	"time"

	"github.com/photoncloud/photon/bench/internal/pairbench"
)

func verdict(ok bool, v, target float64) string {
	if ok && v >= target {
		return "PASS"
	}
	return "BELOW"
}

func report(w io.Writer, opt options, e pairbench.Env, nginxVersion string, res *results) {
	fmt.Fprintf(w, "LightningSTOR benchmark — %s\n\n", e.Date.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "command   %s\n", e.Command)
	fmt.Fprintf(w, "machine   %d CPUs (%s), %s, %s\n", e.CPUs, e.CPUModel, e.Memory, e.Kernel)
	fmt.Fprintf(w, "load avg  %s at start, %s at end (shared machine)\n", e.LoadStart, e.LoadEnd)
	fmt.Fprintf(w, "versions  photon at commit %s plus the working tree, %s, %s; %s (Debian)\n", e.Commit, e.GoVersion, opt.gogc, nginxVersion)
	fmt.Fprintf(w, "data      %s (%s): stack data, nginx root and raw files all under it; fsync on\n", e.Dir, e.FSType)
	fmt.Fprintf(w, "clients   %d concurrent, one keep-alive connection each, same Go HTTP client code for both sides;\n", opt.conc)
	fmt.Fprintf(w, "          S3 requests SigV4-signed (minio-go signer), UNSIGNED-PAYLOAD; bodies read to io.Discard\n")
	fmt.Fprintf(w, "method    GET: per size %d objects (S3) and the same bytes as files (nginx, sendfile on, access log off);\n", opt.objects)
	fmt.Fprintf(w, "          %v untimed warm-up each, then %d cycles of one slice per target (%v settle + %v recorded), order alternating\n",
		opt.warm, opt.cycles, opt.settle, opt.slice)
	fmt.Fprintf(w, "          PUT: a round = %d writers each storing N objects (distinct keys; deleted untimed after the round);\n", opt.conc)
	fmt.Fprintf(w, "          S3 PUT vs open+write+fsync+close of the same bytes; one untimed round each, then %d rounds per path, alternating first\n", opt.rounds)
	fmt.Fprintf(w, "          4KiB: PUT then GET of the same key, %d keys, %d cycles of %v\n", 256*opt.conc, opt.cycles, opt.slice)
	fmt.Fprintf(w, "run time  %s\n\n", e.Elapsed.Round(time.Second))

	fmt.Fprintf(w, "GET, whole objects\n")
	fmt.Fprintf(w, "  size    target         MB/s     obj/s   p50       p99       errs  CPU/obj: this process  rest of machine  slice MB/s min/med/max\n")
	for _, g := range res.gets {
		for _, t := range []string{"lightningstor", "nginx"} {
			s := pairbench.Summarize(g.slices, t)
			mbs := make([]float64, len(s.PerCycle))
			for i, v := range s.PerCycle {
				mbs[i] = v * float64(g.size) / 1e6
			}
			rest := s.CPU.Machine - s.CPU.Self
			fmt.Fprintf(w, "  %-6s  %-13s  %7.1f  %7.1f   %-8s  %-8s  %4d  %19s  %15s  %s\n", sizeName(g.size), t,
				s.OpsPerSec*float64(g.size)/1e6, s.OpsPerSec, pairbench.Latency(s.P50), pairbench.Latency(s.P99), s.Errs,
				pairbench.Latency(s.PerOp(s.CPU.Self)), pairbench.Latency(s.PerOp(max(0, rest))), pairbench.Spread(mbs))
		}
	}
	fmt.Fprintf(w, "\nPUT, %d writers\n", opt.conc)
	fmt.Fprintf(w, "  size    N/writer  path  MB/s per round                          median   CPU/MB: this process  rest of machine\n")
	for _, p := range res.puts {
		for _, path := range []string{"s3", "raw"} {
			var mbs []float64
			var cpu pairbench.CPU
			var bytes float64
			for _, r := range p.rounds {
				if r.path == path {
					b := float64(opt.conc * p.count * p.size)
					mbs = append(mbs, b/1e6/r.dur.Seconds())
					cpu = cpu.Add(r.cpu)
					bytes += b
				}
			}
			line := ""
			for _, v := range mbs {
				line += fmt.Sprintf(" %7.1f", v)
			}
			perMB := func(d time.Duration) string { return pairbench.Latency(time.Duration(float64(d) / (bytes / 1e6))) }
			fmt.Fprintf(w, "  %-6s  %8d  %-4s %-40s %7.1f   %20s  %15s\n", sizeName(p.size), p.count, path, line,
				pairbench.Median(mbs), perMB(cpu.Self), perMB(max(0, cpu.Machine-cpu.Self)))
		}
	}
	s := pairbench.Summarize(res.small, "lightningstor")
	fmt.Fprintf(w, "\n4KiB PUT+GET, %d clients: %.0f pairs/s = %.0f requests/s; pair p50 %s p99 %s; errs %d; CPU/pair this process %s, rest %s; slice pairs/s %s\n",
		opt.conc, s.OpsPerSec, 2*s.OpsPerSec, pairbench.Latency(s.P50), pairbench.Latency(s.P99), s.Errs,
		pairbench.Latency(s.PerOp(s.CPU.Self)), pairbench.Latency(s.PerOp(max(0, s.CPU.Machine-s.CPU.Self))), pairbench.Spread(s.PerCycle))

	fmt.Fprintf(w, "\nratios: median of the paired per-cycle (GET) or per-round (PUT) ratios [95%% CI], and the ratio of totals\n")
	for _, g := range res.gets {
		ls, ng := pairbench.Summarize(g.slices, "lightningstor"), pairbench.Summarize(g.slices, "nginx")
		fmt.Fprintf(w, "  GET %-6s lightningstor/nginx %.3f %s total %.3f  %s  (target ≥ %.1f)\n", sizeName(g.size), g.ratio.Median,
			ci(g.ratio), ls.OpsPerSec/ng.OpsPerSec, verdict(g.ok, g.ratio.Median, getTarget), getTarget)
	}
	for _, p := range res.puts {
		fmt.Fprintf(w, "  PUT %-6s lightningstor/raw   %.3f %s  %s  (target ≥ %.1f)\n", sizeName(p.size), p.ratio.Median,
			ci(p.ratio), verdict(p.ok, p.ratio.Median, putTarget), putTarget)
	}
	fmt.Fprintf(w, "\nper-cycle GET ratios, in cycle order\n")
	for _, g := range res.gets {
		fmt.Fprintf(w, "  %-6s", sizeName(g.size))
		for _, v := range g.ratio.PerCycle {
			fmt.Fprintf(w, " %.2f", v)
		}
		fmt.Fprintln(w)
	}
}

func ci(r pairbench.Ratio) string {
	if !r.CIOK {
		return "[CI n/a]"
	}
	return fmt.Sprintf("[%.2f–%.2f]", r.Lo, r.Hi)
}
