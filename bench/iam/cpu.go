package main

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is the unit of /proc's CPU times (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// cpuSample is the CPU time used so far by this process (the stack under
// test and the bench's clients, which share it) and by the whole machine.
// CPU per op does not move when other jobs take cores away, as throughput
// does. Fields are zero where they cannot be read.
type cpuSample struct {
	process, machine time.Duration
}

func sampleCPU() cpuSample {
	var s cpuSample
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.process = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		// cpu  user nice system idle iowait irq softirq steal …
		line, _, _ := strings.Cut(string(b), "\n")
		if f := strings.Fields(line); len(f) > 7 && f[0] == "cpu" {
			s.machine = ticks(f[1]) + ticks(f[2]) + ticks(f[3]) + ticks(f[6]) + ticks(f[7])
		}
	}
	return s
}

func ticks(s string) time.Duration {
	n, _ := strconv.ParseInt(s, 10, 64)
	return time.Duration(n) * clockTick
}

// sub is the CPU used between two samples.
func (s cpuSample) sub(o cpuSample) cpuSample {
	return cpuSample{process: s.process - o.process, machine: s.machine - o.machine}
}
