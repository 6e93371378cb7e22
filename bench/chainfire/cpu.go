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

// cpuSample is the CPU time used so far by the server under test, by this
// process (the clients) and by the whole machine. CPU per op is what a
// throughput number on a shared machine cannot show: it does not move when
// other jobs take cores away. Fields are zero where /proc is unreadable.
type cpuSample struct {
	server, client, machine time.Duration
}

func sampleCPU(serverPid int) cpuSample {
	var s cpuSample
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(serverPid) + "/stat"); err == nil {
		// Fields after the command name (which may hold spaces): state is
		// field 3, utime and stime are fields 14 and 15.
		if i := strings.LastIndexByte(string(b), ')'); i >= 0 {
			f := strings.Fields(string(b[i+1:]))
			if len(f) > 12 {
				s.server = ticks(f[11]) + ticks(f[12])
			}
		}
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.client = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
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
	return cpuSample{server: s.server - o.server, client: s.client - o.client, machine: s.machine - o.machine}
}
