package pairbench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// Env is what a report says about the machine, the software and the run, so
// a result in bench/RESULTS.md carries its context.
type Env struct {
	Date               time.Time
	CPUs               int
	CPUModel, Kernel   string
	Memory             string
	FSType, Dir        string // the filesystem holding the run's data, and where
	Commit             string
	GoVersion, Command string
	LoadStart, LoadEnd string
	Elapsed            time.Duration
}

// DescribeEnv describes this machine and run of `go run ./bench/NAME`, whose
// data is in dir. Call Done when the measured part ends.
func DescribeEnv(ctx context.Context, name, dir string) Env {
	return Env{
		Date:      time.Now(),
		CPUs:      runtime.NumCPU(),
		CPUModel:  procField("/proc/cpuinfo", "model name"),
		Kernel:    Output(ctx, "uname", "-srm"),
		Memory:    memTotal(),
		FSType:    mountOf(dir),
		Dir:       dir,
		Commit:    Output(ctx, "git", "rev-parse", "--short", "HEAD"),
		LoadStart: loadAvg(),
		GoVersion: runtime.Version(),
		Command:   strings.Join(append([]string{"go run ./bench/" + name}, os.Args[1:]...), " "),
	}
}

// Done records the end of the measured part of the run, begun at start.
func (e *Env) Done(start time.Time) {
	e.Elapsed = time.Since(start)
	e.LoadEnd = loadAvg()
}

// Output runs a command and returns its trimmed stdout ("?" on failure).
func Output(ctx context.Context, name string, args ...string) string {
	b, err := exec.CommandContext(ctx, name, args...).Output()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

func memTotal() string {
	v := procField("/proc/meminfo", "MemTotal")
	var kib int64
	if _, err := fmt.Sscanf(v, "%d kB", &kib); err != nil {
		return "?"
	}
	return fmt.Sprintf("%.0f GiB RAM", float64(kib)/(1<<20))
}

// procField is the value of the first "key: value" line of a /proc file.
func procField(path, key string) string {
	b, _ := os.ReadFile(path)
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// mountOf describes the filesystem holding dir, from /proc/mounts.
func mountOf(dir string) string {
	b, _ := os.ReadFile("/proc/mounts")
	best, desc := "", "?"
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 3 {
			continue
		}
		if mnt := f[1]; len(mnt) > len(best) && (dir == mnt || strings.HasPrefix(dir, strings.TrimSuffix(mnt, "/")+"/")) {
			best, desc = mnt, fmt.Sprintf("%s on %s, mounted at %s", f[2], f[0], mnt)
		}
	}
	return desc
}

// loadAvg is the 1/5/15-minute load average.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "?"
}
