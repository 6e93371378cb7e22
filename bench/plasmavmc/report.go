package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/photoncloud/photon/bench/internal/pairbench"
	"github.com/photoncloud/photon/services/plasmavmc"
	"github.com/photoncloud/photon/services/plasmavmc/qemu"
)

func secs(d time.Duration) float64 { return d.Seconds() }

// medianOf is the median of f over xs, as a duration.
func medianOf[T any](xs []T, f func(T) time.Duration) time.Duration {
	v := make([]float64, 0, len(xs))
	for _, x := range xs {
		v = append(v, float64(f(x)))
	}
	return time.Duration(pairbench.Median(v))
}

func fmtS(d time.Duration) string { return fmt.Sprintf("%.2fs", secs(d)) }

func fileSize(p string) string {
	st, err := os.Stat(p)
	if err != nil {
		return "?"
	}
	return fmt.Sprintf("%.1f MiB", float64(st.Size())/(1<<20))
}

func report(w io.Writer, opt options, e pairbench.Env, img plasmavmc.Image, node plasmavmc.Node, r *runner, all []batch) {
	proto := r.prototype()
	spec := r.specOf(proto)
	fmt.Fprintf(w, "PlasmaVMC benchmark — %s\n\n", e.Date.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "command   %s\n", e.Command)
	fmt.Fprintf(w, "machine   %d CPUs (%s), %s, %s\n", e.CPUs, e.CPUModel, e.Memory, e.Kernel)
	fmt.Fprintf(w, "load avg  %s at start, %s at end (shared machine)\n", e.LoadStart, e.LoadEnd)
	fmt.Fprintf(w, "versions  photon at commit %s plus the working tree, %s, %s; %s\n", e.Commit, e.GoVersion, opt.gogc,
		firstLine(pairbench.Output(context.Background(), qemuBinary, "--version")))
	fmt.Fprintf(w, "data      %s (%s), fsync on\n", e.Dir, e.FSType)
	fmt.Fprintf(w, "guest     image %s (%s): kernel %s, initrd %s, cmdline %q; %d vCPU, %d MiB, no disk, no NIC\n",
		img.ID, img.Format, fileSize(spec.Kernel), fileSize(spec.Initrd), spec.Append, spec.VCPUs, spec.MemoryMiB)
	fmt.Fprintf(w, "node      %s: accel %s, %d vCPUs offered (4 per core), %d MiB; agent resync 2s (default), in this process\n",
		node.Name, node.Accel, node.VCPUs, node.MemoryMiB)
	fmt.Fprintf(w, "qemu      %s %s\n", qemuBinary, strings.Join(qemu.Args(spec), " "))
	fmt.Fprintf(w, "method    per size N: one untimed boot per path first, then %d rounds; a round boots N guests at once by each\n", opt.rounds)
	fmt.Fprintf(w, "          path, PlasmaVMC first in odd rounds (counting all sizes), raw QEMU first in even ones, 1 s apart\n")
	fmt.Fprintf(w, "          plasmavmc: POST /api/v1/vms, at once POST …/start, then GET …/console every %s until the marker\n", opt.poll)
	fmt.Fprintf(w, "          raw qemu:  exec of the command line above (its own -name and runtime dir), serial.log read every %s\n", opt.poll)
	fmt.Fprintf(w, "          batch time: from the batch's start until the last of its N guests showed %q\n", "PHOTON-GUEST-UP")
	fmt.Fprintf(w, "run time  %s\n\n", e.Elapsed.Round(time.Second))

	argvSame, argvAll := 0, 0
	var verdicts []string
	fmt.Fprintf(w, "time to the guest's marker, seconds\n")
	fmt.Fprintf(w, "  N  path       batch time per round        median  per-VM median\n")
	for _, n := range opt.sizes {
		byPath := map[string][]batch{}
		for _, b := range all {
			if b.n == n && b.round >= 0 {
				byPath[b.path] = append(byPath[b.path], b)
			}
		}
		med := map[string]time.Duration{}
		for _, p := range []string{pathPlasmaVMC, pathRaw} {
			bs := byPath[p]
			var walls []string
			var boots []boot
			for _, b := range bs {
				walls = append(walls, fmt.Sprintf("%6.2f", secs(b.wall)))
				boots = append(boots, b.boots...)
			}
			med[p] = medianOf(bs, func(b batch) time.Duration { return b.wall })
			fmt.Fprintf(w, "  %d  %-9s  %-26s  %6.2f  %6.2f\n", n, p, strings.Join(walls, " "), secs(med[p]),
				secs(medianOf(boots, func(b boot) time.Duration { return b.marker })))
		}
		var per []string
		for i := range min(len(byPath[pathPlasmaVMC]), len(byPath[pathRaw])) {
			per = append(per, fmt.Sprintf("%.3f", secs(byPath[pathPlasmaVMC][i].wall)/secs(byPath[pathRaw][i].wall)))
		}
		ratio := secs(med[pathPlasmaVMC]) / secs(med[pathRaw])
		verdict := "PASS"
		if ratio > targetRatio {
			verdict = "BELOW"
		}
		verdicts = append(verdicts, fmt.Sprintf("N=%d %s", n, verdict))
		fmt.Fprintf(w, "     plasmavmc / raw qemu = %.3f (median over median; per round %s)  %s  (target ≤ %.2f)\n",
			ratio, strings.Join(per, " "), verdict, targetRatio)
	}

	fmt.Fprintf(w, "\nwhere the time goes: median over the timed VMs of each point, from its batch's start, seconds\n")
	fmt.Fprintf(w, "  N  path       created  started  qemu exec*  running**  marker  exec→marker  exec spread***  QEMU CPU****  polls: n  p50       p99\n")
	for _, n := range opt.sizes {
		for _, p := range []string{pathPlasmaVMC, pathRaw} {
			var boots []boot
			var spreads []batch
			for _, b := range all {
				if b.n != n || b.path != p || b.round < 0 {
					continue
				}
				boots = append(boots, b.boots...)
				spreads = append(spreads, b)
			}
			var polls []time.Duration
			for _, bt := range boots {
				polls = append(polls, bt.polls...)
				if p == pathPlasmaVMC {
					argvAll++
					if bt.argvSame {
						argvSame++
					}
				}
			}
			slices.Sort(polls)
			dash := func(f func(boot) time.Duration) string {
				if p == pathRaw {
					return "-"
				}
				return fmt.Sprintf("%.2f", secs(medianOf(boots, f)))
			}
			spread := medianOf(spreads, func(b batch) time.Duration {
				lo, hi := b.boots[0].exec, b.boots[0].exec
				for _, bt := range b.boots {
					lo, hi = min(lo, bt.exec), max(hi, bt.exec)
				}
				return hi - lo
			})
			fmt.Fprintf(w, "  %d  %-9s  %7s  %7s  %10.2f  %9s  %6.2f  %11.2f  %14.2f  %12.2f  %8d  %-8s  %s\n", n, p,
				dash(func(b boot) time.Duration { return b.created }), dash(func(b boot) time.Duration { return b.started }),
				secs(medianOf(boots, func(b boot) time.Duration { return b.exec })),
				dash(func(b boot) time.Duration { return b.running }),
				secs(medianOf(boots, func(b boot) time.Duration { return b.marker })),
				secs(medianOf(boots, func(b boot) time.Duration { return b.marker - b.exec })),
				secs(spread), secs(medianOf(boots, func(b boot) time.Duration { return b.qemuCPU })), len(polls), pairbench.Latency(pairbench.Percentile(polls, 0.5)), pairbench.Latency(pairbench.Percentile(polls, 0.99)))
		}
	}
	fmt.Fprintf(w, "  * the QEMU process's start, from /proc/PID/stat (10 ms resolution)\n")
	fmt.Fprintf(w, "  ** the agent's started_at: QEMU's QMP answered and the agent is about to record Running\n")
	fmt.Fprintf(w, "  *** first to last QEMU exec within a batch, median over the rounds\n")
	fmt.Fprintf(w, "  **** CPU the guest's QEMU had used when its marker was seen; polls: console GETs (plasmavmc), serial.log reads (raw)\n")

	fmt.Fprintf(w, "\nCPU during a batch, median over the rounds, seconds: this process (the stack, its agent and the bench's pollers) /\n")
	fmt.Fprintf(w, "its QEMU processes / everything else on the machine; and the batch's wall time\n")
	for _, n := range opt.sizes {
		var parts []string
		for _, p := range []string{pathPlasmaVMC, pathRaw} {
			var bs []batch
			for _, b := range all {
				if b.n == n && b.path == p && b.round >= 0 {
					bs = append(bs, b)
				}
			}
			parts = append(parts, fmt.Sprintf("%-9s %.2f / %5.2f / %.2f in %5.2f", p, secs(medianOf(bs, func(b batch) time.Duration { return b.cpu.Self })),
				secs(medianOf(bs, func(b batch) time.Duration { return b.qemuCPU })),
				secs(medianOf(bs, func(b batch) time.Duration { return max(0, b.cpu.Machine-b.cpu.Self-b.qemuCPU) })),
				secs(medianOf(bs, func(b batch) time.Duration { return b.wall }))))
		}
		fmt.Fprintf(w, "  N=%d  %s\n", n, strings.Join(parts, "   "))
	}
	fmt.Fprintf(w, "\nargv      %d of %d PlasmaVMC QEMU command lines (/proc/PID/cmdline) equal qemu.Args of the spec the raw path runs (but -name and dir)\n", argvSame, argvAll)
	fmt.Fprintf(w, "cleanup   after every batch: VMs deleted through the API until 404, raw QEMUs killed and reaped, 0 QEMU processes naming the run's dir\n")
	fmt.Fprintf(w, "verdict   %s\n", strings.Join(verdicts, ", "))
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
