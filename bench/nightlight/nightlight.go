package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/photoncloud/photon/bench/internal/procs"
)

// nightLightFlag is the flag of `photon up` that NightLight's listen address
// has; its presence in cmd/photon's source is how --nightlight=auto tells
// whether NightLight exists yet.
const nightLightFlag = "nightlight-addr"

// hasNightLight reports whether root's cmd/photon has NightLight's flag.
func hasNightLight(root string) bool {
	files, _ := filepath.Glob(filepath.Join(root, "cmd", "photon", "*.go"))
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		if b, err := os.ReadFile(f); err == nil && strings.Contains(string(b), `"`+nightLightFlag+`"`) {
			return true
		}
	}
	return false
}

// startNightLight starts the side being measured, in its own process so that
// its RSS and CPU are its own: `photon up` (every service, NightLight on
// ports[0]) when mode is "photon", or, until NightLight exists, a second
// Debian Prometheus as a stand-in ("standin"). gogc, when set, is photon's
// GOGC. This is the one function that knows how NightLight is run.
func startNightLight(ctx context.Context, mode, gogc, promBin, dir string, ports []string, stderr io.Writer) (*server, error) {
	if mode == "standin" {
		s, err := startPrometheus(ctx, "standin", promBin, dir, ports[0])
		if err != nil {
			return nil, err
		}
		s.desc = "STAND-IN, not NightLight: a second " + s.desc
		return s, nil
	}
	bin := filepath.Join(dir, "photon")
	if err := procs.BuildPhoton(ctx, bin, stderr); err != nil {
		return nil, err
	}
	// photon up with every listener on a free loopback port; no VMs and no
	// data plane, which the bench does not use (and which need root/QEMU).
	// Loopback auth mode: token-less requests from 127.0.0.1 are the
	// bootstrap admin, which sees and writes all series.
	args := []string{"up", "--data-dir", filepath.Join(dir, "data"), "--log-level", "warn",
		"--" + nightLightFlag, ports[0],
		"--chainfire-http-addr", ports[1], "--chainfire-grpc-addr", ports[2], "--chainfire-peer-addr", ports[3],
		"--iam-http-addr", ports[4], "--creditservice-http-addr", ports[5], "--prismnet-http-addr", ports[6],
		"--lightningstor-addr", ports[7], "--plasmavmc-http-addr", ports[8],
		"--hypervisor", "off", "--prismnet-dataplane", "off"}
	fmt.Fprintf(stderr, "starting photon up in %s\n", dir)
	var env []string
	gcDesc := "photon's own GOGC (internal/gctune: 400 with a small live heap, 75 from 64 MiB)"
	if gogc != "" {
		env, gcDesc = []string{"GOGC=" + gogc}, "GOGC="+gogc+" from --nightlight-gogc"
	}
	s, err := startProc("nightlight", dir, bin, env, args...)
	if err != nil {
		return nil, err
	}
	s.url = "http://" + ports[0]
	s.desc = fmt.Sprintf("NightLight in `photon up` (all services, %s; photon built from the working tree), pid %d", gcDesc, s.Pid)
	if err := s.waitReady(ctx); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// nightLightPorts is how many free ports startNightLight needs.
const nightLightPorts = 9
