package main

import (
	"context"
	"path/filepath"
	"time"

	"github.com/photoncloud/photon/bench/internal/procs"
)

// startTimeout bounds how long a server may take to become ready.
const startTimeout = 60 * time.Second

// proc is a server subprocess.
type proc struct {
	*procs.Proc
	httpAddr   string // REST (ChainFire only)
	clientAddr string // etcd v3 gRPC
}

// stripEnv are the environment prefixes removed for both servers besides
// procs.ServerEnv's (GOGC and the runtime's tuning, PHOTON_*): etcd's own
// configuration variables, which embedded etcd might read too.
var stripEnv = []string{"ETCD_"}

// startChainFire starts `photon serve chainfire` and waits until it is ready.
func startChainFire(ctx context.Context, photon, dir, httpAddr, grpcAddr, peerAddr string) (*proc, error) {
	data := filepath.Join(dir, "chainfire")
	pp, err := procs.Start(procs.Spec{Name: "chainfire", Dir: dir, Bin: photon, StripPrefixes: stripEnv, ReadyLine: "ChainFire node 1:",
		Args: []string{"serve", "chainfire", "--data-dir", data, "--node-id", "1", "--http-addr", httpAddr, "--grpc-addr", grpcAddr, "--peer-addr", peerAddr}})
	if err != nil {
		return nil, err
	}
	p := &proc{Proc: pp, httpAddr: httpAddr, clientAddr: grpcAddr}
	if err := p.WaitLine(ctx, startTimeout); err != nil {
		return p, err
	}
	return p, p.WaitFor(ctx, startTimeout, "healthy", procs.HTTPOK("http://"+httpAddr+"/health"))
}

// startEtcd starts the stock etcd and waits until it is healthy.
func startEtcd(ctx context.Context, bin, dir, clientAddr, peerAddr string) (*proc, error) {
	client, peer := "http://"+clientAddr, "http://"+peerAddr
	pp, err := procs.Start(procs.Spec{Name: "etcd", Dir: dir, Bin: bin, StripPrefixes: stripEnv,
		Args: []string{"--name", "bench", "--data-dir", filepath.Join(dir, "etcd"),
			"--listen-client-urls", client, "--advertise-client-urls", client,
			"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
			"--initial-cluster", "bench=" + peer}})
	if err != nil {
		return nil, err
	}
	p := &proc{Proc: pp, clientAddr: clientAddr}
	return p, p.WaitFor(ctx, startTimeout, "healthy", procs.HTTPOK(client+"/health"))
}
