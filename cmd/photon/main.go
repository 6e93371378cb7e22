// Command photon is PhotonCloud: `photon up` runs every service in one
// process; `photon serve <service>` runs one; `photon version` says which
// build this is.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/photoncloud/photon/internal/buildinfo"
	"github.com/photoncloud/photon/internal/flagenv"
	"github.com/photoncloud/photon/internal/gctune"
	"github.com/photoncloud/photon/internal/platform"
	"github.com/photoncloud/photon/services/chainfire"
	"github.com/photoncloud/photon/services/flaredb"
	"github.com/photoncloud/photon/services/iam"
	"github.com/photoncloud/photon/services/plasmavmc/hypervisor"
	"github.com/photoncloud/photon/services/prismnet/agent"
)

const usage = `usage: photon <command> [flags]

commands:
  up                 run every PhotonCloud service in one process
  serve chainfire    run one ChainFire node (for clusters)
  serve iam          run one IAM replica over a ChainFire cluster
  serve flaredb      run one FlareDB node (bootstrap a group, or join one)
  serve prismnet-agent  run PrismNET's node agent (as root) over a ChainFire cluster
  serve plasmavmc-agent run PlasmaVMC's hypervisor agent (QEMU) over a ChainFire cluster
  version            print the version

Run "photon <command> --help" for its flags. Every flag --some-flag can also be
set with the environment variable PHOTON_SOME_FLAG.
`

func main() {
	// Request IDs are uuid v4s; drawing their randomness from a buffered
	// pool instead of one crypto/rand read each keeps them off the
	// per-request cost.
	uuid.EnableRandPool()
	// The control plane's live heap is small (tens of MiB), so collecting
	// at 4× it instead of 2× costs little memory and measurably less CPU
	// per request (bench/RESULTS.md); once NightLight's TSDB makes the
	// heap large, gctune brings GOGC down to Prometheus's 75 so the headroom
	// stays bounded. GOGC in the environment still wins.
	if _, set := os.LookupEnv("GOGC"); !set {
		go gctune.Run(context.Background(), 5*time.Second)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "up":
		err = up(args[1:], stdout, stderr)
	case "serve":
		switch {
		case len(args) >= 2 && args[1] == "chainfire":
			err = serveChainFire(args[2:], stdout, stderr)
		case len(args) >= 2 && args[1] == "iam":
			err = serveIAM(args[2:], stdout, stderr)
		case len(args) >= 2 && args[1] == "flaredb":
			err = serveFlareDB(args[2:], stdout, stderr)
		case len(args) >= 2 && args[1] == "prismnet-agent":
			err = servePrismNETAgent(args[2:], stdout, stderr)
		case len(args) >= 2 && args[1] == "plasmavmc-agent":
			err = servePlasmaVMCAgent(args[2:], stdout, stderr)
		default:
			fmt.Fprintln(stderr, "usage: photon serve <service> [flags]  (services that exist: chainfire, iam, flaredb, prismnet-agent, plasmavmc-agent)")
			return 2
		}
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "photon %s\n", buildinfo.Version)
		return 0
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "photon: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		fmt.Fprintf(stderr, "photon: %v\n", err)
		return 1
	}
}

var errUsage = errors.New("usage")

func setupLog(level string, w io.Writer) error {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return fmt.Errorf("--log-level %q: %w", level, err)
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})))
	return nil
}

func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = flagenv.Usage(fs, synopsis)
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := flagenv.Parse(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		fmt.Fprintln(fs.Output(), err)
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected arguments: %s\n", strings.Join(fs.Args(), " "))
		return errUsage
	}
	return nil
}

func up(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("up", "photon up [flags]", stderr)
	var cfg platform.Config
	fs.StringVar(&cfg.DataDir, "data-dir", "./data", "directory holding all state")
	fs.StringVar(&cfg.ChainFire.HTTPAddr, "chainfire-http-addr", "127.0.0.1:8081", "ChainFire REST listen address")
	fs.StringVar(&cfg.ChainFire.GRPCAddr, "chainfire-grpc-addr", "127.0.0.1:50051", "ChainFire etcd v3 gRPC listen address")
	fs.StringVar(&cfg.ChainFire.PeerAddr, "chainfire-peer-addr", "127.0.0.1:2380", "ChainFire Raft peer listen address")
	fs.DurationVar(&cfg.ChainFire.RequestTimeout, "request-timeout", 5*time.Second, "bound on requests that need quorum")
	fs.StringVar(&cfg.IAM.HTTPAddr, "iam-http-addr", "127.0.0.1:8083", "IAM REST listen address")
	fs.StringVar(&cfg.CreditService.HTTPAddr, "creditservice-http-addr", "127.0.0.1:8086", "CreditService REST listen address")
	fs.StringVar(&cfg.PrismNET.HTTPAddr, "prismnet-http-addr", "127.0.0.1:8087", "PrismNET REST listen address")
	fs.StringVar(&cfg.FlareDB.HTTPAddr, "flaredb-http-addr", "127.0.0.1:8082", "FlareDB REST listen address")
	fs.StringVar(&cfg.FlareDB.RaftAddr, "flaredb-raft-addr", "127.0.0.1:50052", "FlareDB Raft listen address (a group of one under photon up)")
	fs.StringVar(&cfg.LightningSTOR.HTTPAddr, "lightningstor-addr", "127.0.0.1:9000", "LightningSTOR's S3 API listen address")
	fs.StringVar(&cfg.LightningSTOR.Domain, "s3-domain", "localhost", "virtual-host-style addressing: <bucket>.<domain>")
	fs.StringVar(&cfg.NightLight.HTTPAddr, "nightlight-addr", "127.0.0.1:9090", "NightLight's Prometheus API listen address")
	fs.DurationVar(&cfg.NightLight.ScrapeInterval, "nightlight-scrape-interval", 15*time.Second, "how often NightLight scrapes (the config file's global section wins)")
	fs.StringVar(&cfg.NightLight.ConfigFile, "nightlight-config", "", "a Prometheus configuration file: its scrape_configs and rule_files are added")
	fs.DurationVar(&cfg.NightLight.RetentionTime, "nightlight-retention-time", 15*24*time.Hour, "how long NightLight keeps samples")
	fs.Int64Var(&cfg.NightLight.RetentionSize, "nightlight-retention-size", 0, "the most bytes NightLight's blocks may take (0: no limit)")
	fs.StringVar(&cfg.PlasmaVMC.HTTPAddr, "plasmavmc-http-addr", "127.0.0.1:8084", "PlasmaVMC REST listen address")
	fs.Int64Var(&cfg.PlasmaVMC.Prices.VCPUHour, "vcpu-hour-price", 10, "what a metered wallet pays per vCPU and hour of a running VM")
	fs.Int64Var(&cfg.PlasmaVMC.Prices.GiBHour, "gib-hour-price", 5, "what a metered wallet pays per GiB of memory and hour of a running VM")
	fs.DurationVar(&cfg.PlasmaVMC.Prices.Period, "metering-period", time.Hour, "what one metering charge covers (0: no metering)")
	fs.StringVar(&cfg.Hypervisor, "hypervisor", "auto", "run PlasmaVMC's node agent, which runs the VMs: auto (when QEMU is installed), on or off")
	hypervisorFlags(fs, &cfg.HypervisorConfig)
	fs.StringVar(&cfg.Dataplane, "prismnet-dataplane", "auto", "run PrismNET's node agent: auto (when root), on or off")
	agentFlags(fs, &cfg.Agent)
	fs.StringVar(&cfg.CreditService.Currency, "currency", "JPY", "the currency new wallets count in (ISO 4217)")
	fs.DurationVar(&cfg.IAM.MaxTokenTTL, "max-token-ttl", 24*time.Hour, "longest lifetime of any token")
	fs.DurationVar(&cfg.IAM.KeyRotation, "key-rotation", 24*time.Hour, "how long a token signing key signs before the next takes over")
	fs.StringVar(&cfg.AuthMode, "auth-mode", "auto", "auto (loopback while every listener is on loopback, else enforce), loopback or enforce")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := setupLog(*logLevel, stderr); err != nil {
		return err
	}
	cfg.IAM.RequestTimeout = cfg.ChainFire.RequestTimeout
	cfg.CreditService.RequestTimeout = cfg.ChainFire.RequestTimeout
	cfg.PrismNET.RequestTimeout = cfg.ChainFire.RequestTimeout
	cfg.PlasmaVMC.RequestTimeout = cfg.ChainFire.RequestTimeout
	cfg.HypervisorConfig.Node = cfg.Agent.Node
	stack, err := platform.New(cfg)
	if err != nil {
		return err
	}
	return runUntilSignal(stack, func() { stack.PrintEndpoints(stdout) })
}

func serveChainFire(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve chainfire", "photon serve chainfire [flags]", stderr)
	var cfg chainfire.Config
	fs.StringVar(&cfg.DataDir, "data-dir", "./data", "directory holding this node's state")
	fs.Uint64Var(&cfg.NodeID, "node-id", 1, "this node's number; its member name is node-<id>")
	fs.StringVar(&cfg.HTTPAddr, "http-addr", "127.0.0.1:8081", "REST listen address")
	fs.StringVar(&cfg.GRPCAddr, "grpc-addr", "127.0.0.1:50051", "etcd v3 gRPC listen address")
	fs.StringVar(&cfg.PeerAddr, "peer-addr", "127.0.0.1:2380", "Raft peer listen address")
	fs.StringVar(&cfg.AdvertisePeerURL, "advertise-peer-url", "", "peer URL other members use (default http://<peer-addr>)")
	fs.StringVar(&cfg.AdvertiseClientURL, "advertise-client-url", "", "gRPC URL clients use (default http://<grpc-addr>)")
	fs.StringVar(&cfg.InitialCluster, "initial-cluster", "", "node-1=http://h1:2380,node-2=… (default: this node alone)")
	fs.StringVar(&cfg.ClusterState, "initial-cluster-state", "new", "new to bootstrap, existing to join")
	fs.StringVar(&cfg.ClusterToken, "cluster-token", "photon-chainfire", "token that keeps separate clusters apart")
	fs.DurationVar(&cfg.RequestTimeout, "request-timeout", 5*time.Second, "bound on requests that need quorum")
	fs.StringVar(&cfg.LogLevel, "etcd-log-level", "error", "etcd's log level")
	fs.StringVar(&cfg.AuthMode, "auth-mode", "auto", "auto (loopback while every listener is on loopback, else enforce), loopback or enforce")
	fs.StringVar(&cfg.IAMURL, "iam-url", "http://127.0.0.1:8083", "IAM's base URL, whose JWKS verifies tokens")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := setupLog(*logLevel, stderr); err != nil {
		return err
	}
	cfg.Version = buildinfo.Version
	node, err := chainfire.New(cfg)
	if err != nil {
		return err
	}
	return runUntilSignal(node, func() {
		fmt.Fprintf(stdout, "ChainFire node %d: REST http://%s  etcd gRPC %s  peer %s\n",
			cfg.NodeID, node.HTTPAddr(), node.GRPCAddr(), node.Config().AdvertisePeerURL)
	})
}

func serveFlareDB(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve flaredb", "photon serve flaredb [flags]", stderr)
	var cfg flaredb.Config
	fs.StringVar(&cfg.NodeID, "node-id", "flaredb-1", "this node's Raft id (unique in the group)")
	fs.StringVar(&cfg.DataDir, "data-dir", "./data/flaredb", "directory holding the node's Raft log, snapshots and databases")
	fs.StringVar(&cfg.HTTPAddr, "http-addr", "127.0.0.1:8082", "REST listen address")
	fs.StringVar(&cfg.HTTPAdvertise, "http-advertise", "", "REST address other nodes forward to when this one leads (default: --http-addr)")
	fs.StringVar(&cfg.RaftAddr, "raft-addr", "127.0.0.1:50052", "Raft listen address")
	fs.StringVar(&cfg.RaftAdvertise, "raft-advertise", "", "Raft address peers dial (default: --raft-addr)")
	fs.BoolVar(&cfg.Bootstrap, "bootstrap", false, "start a new group with this node alone (ignored once the data dir has state)")
	fs.StringVar(&cfg.Join, "join", "", "REST URL of a member to ask for this node to be added (e.g. http://10.0.0.1:8082)")
	joinToken := fs.String("join-token-file", "", "file holding a system token for --join when the group enforces auth")
	endpoints := fs.String("chainfire-endpoints", "", "etcd gRPC addresses of ChainFire, for IAM's bindings (empty: no IAM, loopback callers only)")
	iamURL := fs.String("iam-url", "", "IAM's REST URL, whose JWKS verifies tokens (with --chainfire-endpoints)")
	authMode := fs.String("auth-mode", "auto", "auto (loopback while the listener is on loopback, else enforce), loopback or enforce")
	fs.DurationVar(&cfg.RequestTimeout, "request-timeout", 10*time.Second, "bound on each request")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := setupLog(*logLevel, stderr); err != nil {
		return err
	}
	if !cfg.Bootstrap && cfg.Join == "" {
		if _, err := os.Stat(filepath.Join(cfg.DataDir, "raft.db")); err != nil {
			fmt.Fprintln(stderr, "a new node needs --bootstrap (first node of a group) or --join URL")
			return errUsage
		}
	}
	if *joinToken != "" {
		b, err := os.ReadFile(*joinToken)
		if err != nil {
			return err
		}
		cfg.JoinToken = strings.TrimSpace(string(b))
	}
	cfg.Version = buildinfo.Version
	var eps []string
	if *endpoints != "" {
		eps = splitEndpoints(*endpoints)
	}
	node, err := flaredb.NewStandalone(cfg, eps, strings.TrimSuffix(*iamURL, "/"), *authMode)
	if err != nil {
		return err
	}
	return runUntilSignal(node, func() {
		fmt.Fprintf(stdout, "FlareDB node %s: REST http://%s  raft %s  auth %s mode\n",
			cfg.NodeID, node.Server().HTTPAddr(), node.Server().RaftAddr(), node.Mode())
	})
}

func serveIAM(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve iam", "photon serve iam [flags]", stderr)
	var cfg iam.Config
	fs.StringVar(&cfg.HTTPAddr, "http-addr", "127.0.0.1:8083", "REST listen address")
	endpoints := fs.String("chainfire-endpoints", "127.0.0.1:50051", "comma-separated etcd gRPC addresses of the ChainFire members")
	authMode := fs.String("auth-mode", "auto", "auto (loopback while the listener is on loopback, else enforce), loopback or enforce")
	fs.StringVar(&cfg.AdminTokenPath, "admin-token-file", "", "keep a current bootstrap admin token in this file (mode 0600)")
	fs.DurationVar(&cfg.MaxTokenTTL, "max-token-ttl", 24*time.Hour, "longest lifetime of any token")
	fs.DurationVar(&cfg.KeyRotation, "key-rotation", 24*time.Hour, "how long a token signing key signs before the next takes over")
	fs.DurationVar(&cfg.RequestTimeout, "request-timeout", 5*time.Second, "bound on each request's store work")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := setupLog(*logLevel, stderr); err != nil {
		return err
	}
	cfg.Version = buildinfo.Version
	eps := splitEndpoints(*endpoints)
	replica, err := iam.NewStandalone(cfg, eps, *authMode)
	if err != nil {
		return err
	}
	return runUntilSignal(replica, func() {
		fmt.Fprintf(stdout, "IAM: REST http://%s  ChainFire %s  auth %s mode\n", replica.HTTPAddr(), strings.Join(eps, ","), replica.Mode())
	})
}

// hypervisorFlags are PlasmaVMC's node agent's flags.
func hypervisorFlags(fs *flag.FlagSet, cfg *hypervisor.Config) {
	fs.StringVar(&cfg.QEMU, "qemu", "qemu-system-x86_64", "the QEMU binary")
	fs.StringVar(&cfg.Accel, "accel", "auto", "auto (KVM where it can run guests, else TCG), kvm or tcg")
	// One machine runs everything under photon up: the seed's 4-vCPU VM
	// must fit a 2-core developer machine.
	fs.Float64Var(&cfg.CPUAllocationRatio, "cpu-allocation-ratio", 4, "vCPUs this node offers per CPU (1: no overcommit)")
	fs.Float64Var(&cfg.RAMAllocationRatio, "ram-allocation-ratio", 1, "guest memory this node offers per byte of RAM")
	fs.DurationVar(&cfg.StopGrace, "stop-grace", 30*time.Second, "how long a graceful VM stop (ACPI power-down) may take before it is forced")
}

// agentFlags are the node agent's flags, shared by `up` and `serve
// prismnet-agent`.
func agentFlags(fs *flag.FlagSet, cfg *agent.Config) {
	fs.StringVar(&cfg.Node, "node-name", "", "this host's name in port bindings (default: the hostname)")
	fs.StringVar(&cfg.VTEP, "vtep-ip", "", "underlay IPv4 address other nodes reach this one's VXLAN at (default: the first global address)")
	fs.StringVar(&cfg.NetNS, "node-netns", "", "network namespace path to program instead of this process's (several nodes on one machine)")
	fs.IntVar(&cfg.MTU, "vpc-mtu", 0, "MTU of every VPC's devices and instances (default: the underlay device's MTU less 50, at most 1500)")
	fs.DurationVar(&cfg.Resync, "resync", 5*time.Second, "how often the agent reconciles without a change to react to")
}

func servePrismNETAgent(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve prismnet-agent", "photon serve prismnet-agent [flags]", stderr)
	var cfg agent.Config
	agentFlags(fs, &cfg)
	endpoints := fs.String("chainfire-endpoints", "127.0.0.1:50051", "comma-separated etcd gRPC addresses of the ChainFire members")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := setupLog(*logLevel, stderr); err != nil {
		return err
	}
	if !agent.Supported() {
		return errors.New("prismnet-agent programs the kernel and must run as root")
	}
	cfg.Version = buildinfo.Version
	c, err := agent.NewStandalone(cfg, splitEndpoints(*endpoints))
	if err != nil {
		return err
	}
	return runUntilSignal(c, func() {
		fmt.Fprintf(stdout, "PrismNET agent: node %s  ChainFire %s\n", c.Agent().Node(), *endpoints)
	})
}

func servePlasmaVMCAgent(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve plasmavmc-agent", "photon serve plasmavmc-agent [flags]", stderr)
	var cfg hypervisor.Config
	hypervisorFlags(fs, &cfg)
	fs.StringVar(&cfg.Node, "node-name", "", "this host's name (default: the hostname); the same as its PrismNET agent's")
	fs.StringVar(&cfg.DataDir, "data-dir", "./data/plasmavmc/vms", "directory of the VMs' runtime dirs and disks")
	endpoints := fs.String("chainfire-endpoints", "127.0.0.1:50051", "comma-separated etcd gRPC addresses of the ChainFire members")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := setupLog(*logLevel, stderr); err != nil {
		return err
	}
	abs, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return err
	}
	cfg.DataDir, cfg.Version = abs, buildinfo.Version
	c, err := hypervisor.NewStandalone(cfg, splitEndpoints(*endpoints))
	if err != nil {
		return err
	}
	return runUntilSignal(c, func() {
		n := c.Agent().Node()
		fmt.Fprintf(stdout, "PlasmaVMC agent: node %s (%s, %d vCPUs, %d MiB)  ChainFire %s\n", n.Name, n.Accel, n.VCPUs, n.MemoryMiB, *endpoints)
	})
}

func splitEndpoints(s string) []string {
	var eps []string
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			eps = append(eps, e)
		}
	}
	return eps
}

// component is what runUntilSignal runs; Err reports a fatal failure after
// a successful Start.
type component interface {
	Start(context.Context) error
	Stop(context.Context) error
	Err() <-chan error
}

// runUntilSignal starts c, then stops it cleanly on SIGINT/SIGTERM, which is
// a clean exit (0); a component that dies on its own is an error.
func runUntilSignal(c component, started func()) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := c.Start(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // interrupted while starting
		}
		return err
	}
	started()
	var runErr error
	select {
	case <-ctx.Done():
		slog.Info("shutting down")
	case err := <-c.Err():
		runErr = fmt.Errorf("service failed: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Stop(sctx); err != nil {
		return errors.Join(runErr, err)
	}
	return runErr
}
