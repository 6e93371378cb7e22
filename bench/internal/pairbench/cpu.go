package pairbench

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is the unit of /proc's CPU times (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// CPU is the CPU time used so far by a server process, by this process (the
// bench's clients, and the servers when they run in it) and by the whole
// machine. Fields are zero where /proc or getrusage cannot be read.
type CPU struct {
	Server  time.Duration // the process sampled by pid; zero without one
	Self    time.Duration // this process
	Machine time.Duration // all cores, busy time only
}

// SampleCPU samples the CPU used so far; serverPid is the server's process,
// or 0 when the server runs in this process.
func SampleCPU(serverPid int) CPU {
	var s CPU
	if serverPid > 0 {
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(serverPid) + "/stat"); err == nil {
			// Fields after the command name (which may hold spaces): state
			// is field 3, utime and stime are fields 14 and 15.
			if i := strings.LastIndexByte(string(b), ')'); i >= 0 {
				f := strings.Fields(string(b[i+1:]))
				if len(f) > 12 {
					s.Server = ticks(f[11]) + ticks(f[12])
				}
			}
		}
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.Self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		// cpu  user nice system idle iowait irq softirq steal …
		line, _, _ := strings.Cut(string(b), "\n")
		if f := strings.Fields(line); len(f) > 7 && f[0] == "cpu" {
			s.Machine = ticks(f[1]) + ticks(f[2]) + ticks(f[3]) + ticks(f[6]) + ticks(f[7])
		}
	}
	return s
}

func ticks(s string) time.Duration {
	n, _ := strconv.ParseInt(s, 10, 64)
	return time.Duration(n) * clockTick
}

// Sub is the CPU used between sample o and sample c.
func (c CPU) Sub(o CPU) CPU {
	return CPU{Server: c.Server - o.Server, Self: c.Self - o.Self, Machine: c.Machine - o.Machine}
}

// Add is the CPU of two disjoint spans together.
func (c CPU) Add(o CPU) CPU {
	return CPU{Server: c.Server + o.Server, Self: c.Self + o.Self, Machine: c.Machine + o.Machine}
}
