// Package platform assembles `photon up`: every service that exists, in one
// process, in dependency order (ChainFire first), on the seed's ports.
package platform

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/photoncloud/photon/internal/auth"
	"github.com/photoncloud/photon/internal/buildinfo"
	"github.com/photoncloud/photon/internal/lifecycle"
	"github.com/photoncloud/photon/internal/registry"
	"github.com/photoncloud/photon/internal/rest"
	"github.com/photoncloud/photon/services/chainfire"
	"github.com/photoncloud/photon/services/creditservice"
	"github.com/photoncloud/photon/services/flaredb"
	"github.com/photoncloud/photon/services/iam"
	"github.com/photoncloud/photon/services/lightningstor"
	"github.com/photoncloud/photon/services/nightlight"
	"github.com/photoncloud/photon/services/plasmavmc"
	"github.com/photoncloud/photon/services/plasmavmc/hypervisor"
	"github.com/photoncloud/photon/services/prismnet"
	"github.com/photoncloud/photon/services/prismnet/agent"
)

// Config is the all-in-one configuration.
type Config struct {
	DataDir string
	// AuthMode is auto, loopback or enforce for every service at once.
	AuthMode      string
	ChainFire     chainfire.Config
	IAM           iam.Config
	CreditService creditservice.Config
	PrismNET      prismnet.Config
	// Dataplane is on, off or auto (on when the process is root): whether
	// this process runs PrismNET's node agent, which programs the kernel.
	Dataplane string
	Agent     agent.Config
	PlasmaVMC plasmavmc.Config
	// Hypervisor is on, off or auto (on when QEMU is installed): whether
	// this process runs PlasmaVMC's node agent, which runs the VMs.
	Hypervisor       string
	HypervisorConfig hypervisor.Config
	LightningSTOR    lightningstor.Config
	NightLight       nightlight.Config
	FlareDB          flaredb.Config
}

// Stack is a running all-in-one PhotonCloud.
type Stack struct {
	cfg           Config
	group         lifecycle.Group
	ChainFire     *chainfire.Server
	IAM           *iam.Server
	CreditService *creditservice.Server
	PrismNET      *prismnet.Server
	Agent         *agent.Component // nil when the data plane is off
	PlasmaVMC     *plasmavmc.Server
	Hypervisor    *hypervisor.Component // nil when this process runs no VMs
	LightningSTOR *lightningstor.Server
	NightLight    *nightlight.Server
	FlareDB       *flaredb.Server
}

// AdminTokenFile is where, under the data dir, `photon up` keeps a current
// bootstrap admin token.
const AdminTokenFile = "admin.token"

// New builds the stack's components without starting them.
func New(cfg Config) (*Stack, error) {
	abs, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	cfg.DataDir = abs
	cfg.ChainFire.DataDir = abs
	cfg.ChainFire.Version = buildinfo.Version
	cfg.IAM.Version = buildinfo.Version
	cfg.CreditService.Version = buildinfo.Version
	cfg.PrismNET.Version = buildinfo.Version
	cfg.ChainFire.Defaults()
	cfg.IAM.Defaults()
	cfg.CreditService.Defaults()
	cfg.PrismNET.Defaults()
	cfg.PlasmaVMC.Version = buildinfo.Version
	if cfg.PlasmaVMC.CreditServiceURL == "" {
		cfg.PlasmaVMC.CreditServiceURL = "http://" + rest.Reachable(cfg.CreditService.HTTPAddr)
	}
	if cfg.PlasmaVMC.PrismNETURL == "" {
		cfg.PlasmaVMC.PrismNETURL = "http://" + rest.Reachable(cfg.PrismNET.HTTPAddr)
	}
	if cfg.PlasmaVMC.ImageDir == "" {
		cfg.PlasmaVMC.ImageDir = filepath.Join(abs, "plasmavmc", "images")
	}
	cfg.PlasmaVMC.Defaults()
	cfg.LightningSTOR.Version = buildinfo.Version
	if cfg.LightningSTOR.DataDir == "" {
		cfg.LightningSTOR.DataDir = filepath.Join(abs, "lightningstor")
	}
	cfg.LightningSTOR.Defaults()
	cfg.FlareDB.Version = buildinfo.Version
	if cfg.FlareDB.DataDir == "" {
		cfg.FlareDB.DataDir = filepath.Join(abs, "flaredb")
	}
	// A group of one, started on first run; `photon serve flaredb` nodes
	// are how it grows.
	cfg.FlareDB.Bootstrap = true
	cfg.FlareDB.Defaults()
	cfg.NightLight.Version = buildinfo.Version
	if cfg.NightLight.DataDir == "" {
		cfg.NightLight.DataDir = filepath.Join(abs, "nightlight")
	}
	// It scrapes the services' /metrics (which need a caller) with the
	// bootstrap admin token IAM keeps current there.
	cfg.NightLight.TokenFile = filepath.Join(abs, AdminTokenFile)
	cfg.NightLight.Defaults()
	cfg.IAM.AdminTokenPath = filepath.Join(abs, AdminTokenFile)
	// One mode for the whole process, from every listener it opens: one
	// listener off loopback and no service trusts tokenless callers.
	mode, err := auth.ResolveMode(cfg.AuthMode, cfg.ChainFire.HTTPAddr, cfg.ChainFire.GRPCAddr, cfg.ChainFire.PeerAddr, cfg.IAM.HTTPAddr, cfg.CreditService.HTTPAddr, cfg.PrismNET.HTTPAddr, cfg.PlasmaVMC.HTTPAddr, cfg.LightningSTOR.HTTPAddr, cfg.NightLight.HTTPAddr, cfg.FlareDB.HTTPAddr, cfg.FlareDB.RaftAddr)
	if err != nil {
		return nil, err
	}
	cfg.ChainFire.AuthMode = string(mode)
	cfg.ChainFire.IAMURL = "http://" + rest.Reachable(cfg.IAM.HTTPAddr)
	cf, err := chainfire.New(cfg.ChainFire)
	if err != nil {
		return nil, fmt.Errorf("chainfire: %w", err)
	}
	// IAM keeps its state in ChainFire and shares its authenticator (one
	// IAM cache per process).
	im, err := iam.New(cfg.IAM, func() iam.Deps { return iam.Deps{Client: cf.Client(), Auth: cf.Auth()} })
	if err != nil {
		return nil, fmt.Errorf("iam: %w", err)
	}
	cs, err := creditservice.New(cfg.CreditService, func() creditservice.Deps {
		return creditservice.Deps{Client: cf.Client(), Auth: cf.Auth()}
	})
	if err != nil {
		return nil, fmt.Errorf("creditservice: %w", err)
	}
	pn, err := prismnet.New(cfg.PrismNET, func() prismnet.Deps {
		return prismnet.Deps{Client: cf.Client(), Auth: cf.Auth()}
	})
	if err != nil {
		return nil, fmt.Errorf("prismnet: %w", err)
	}
	s := &Stack{cfg: cfg, ChainFire: cf, IAM: im, CreditService: cs, PrismNET: pn}
	s.group.Add(cf)
	s.group.Add(im)
	s.group.Add(announce(cf, "iam", im.HTTPAddr))
	s.group.Add(cs)
	s.group.Add(announce(cf, "creditservice", cs.HTTPAddr))
	s.group.Add(pn)
	s.group.Add(announce(cf, "prismnet", pn.HTTPAddr))
	switch cfg.Dataplane {
	case "on", "auto":
		if !agent.Supported() {
			if cfg.Dataplane == "on" {
				return nil, errors.New("prismnet data plane: programming the kernel needs root")
			}
			break
		}
		cfg.Agent.Version = buildinfo.Version
		s.Agent = agent.NewComponent(cfg.Agent, cf.Client, func(a *agent.Agent) { pn.Service().SetDataplaneInfo(a.Info) })
		s.group.Add(s.Agent)
	case "off", "":
	default:
		return nil, fmt.Errorf("dataplane %q: want on, off or auto", cfg.Dataplane)
	}
	switch cfg.Hypervisor {
	case "on", "auto":
		hc := cfg.HypervisorConfig
		if hc.QEMU == "" {
			hc.QEMU = "qemu-system-x86_64"
		}
		if _, err := exec.LookPath(hc.QEMU); err != nil {
			if cfg.Hypervisor == "on" {
				return nil, fmt.Errorf("plasmavmc hypervisor: %w", err)
			}
			break
		}
		if hc.DataDir == "" {
			hc.DataDir = filepath.Join(abs, "plasmavmc", "vms")
		}
		hc.Version = buildinfo.Version
		s.Hypervisor = hypervisor.NewComponent(hc, cf.Client)
	case "off", "":
	default:
		return nil, fmt.Errorf("hypervisor %q: want on, off or auto", cfg.Hypervisor)
	}
	var console plasmavmc.ConsoleReader
	if s.Hypervisor != nil {
		console = s.Hypervisor.Console
	}
	// Metering charges as the bootstrap admin: in loopback trust no token
	// is needed, else the one IAM keeps current in the data dir.
	adminToken := cfg.IAM.AdminTokenPath
	credential := func() string {
		if b, err := os.ReadFile(adminToken); err == nil && len(b) > 0 {
			return "Bearer " + strings.TrimSpace(string(b))
		}
		return ""
	}
	vmc, err := plasmavmc.New(cfg.PlasmaVMC, func() plasmavmc.Deps {
		return plasmavmc.Deps{Client: cf.Client(), Auth: cf.Auth(), Console: console, Credential: credential}
	})
	if err != nil {
		return nil, fmt.Errorf("plasmavmc: %w", err)
	}
	s.PlasmaVMC = vmc
	s.group.Add(vmc)
	s.group.Add(announce(cf, "plasmavmc", vmc.HTTPAddr))
	ls, err := lightningstor.New(cfg.LightningSTOR, func() lightningstor.Deps {
		return lightningstor.Deps{Client: cf.Client(), Auth: cf.Auth()}
	})
	if err != nil {
		return nil, fmt.Errorf("lightningstor: %w", err)
	}
	s.LightningSTOR = ls
	s.group.Add(ls)
	s.group.Add(&s3Key{path: filepath.Join(abs, S3CredentialsFile), cf: cf, iam: im})
	fdb, err := flaredb.New(cfg.FlareDB, func() flaredb.Deps { return flaredb.Deps{Auth: cf.Auth()} })
	if err != nil {
		return nil, fmt.Errorf("flaredb: %w", err)
	}
	s.FlareDB = fdb
	s.group.Add(fdb)
	s.group.Add(announce(cf, "flaredb", fdb.HTTPAddr))
	// Last, so that the services it scrapes are registered when it starts.
	nl, err := nightlight.New(cfg.NightLight, func() nightlight.Deps {
		return nightlight.Deps{Client: cf.Client(), Auth: cf.Auth()}
	})
	if err != nil {
		return nil, fmt.Errorf("nightlight: %w", err)
	}
	s.NightLight = nl
	s.group.Add(nl)
	if s.Hypervisor != nil {
		s.group.Add(s.Hypervisor)
	}
	return s, nil
}

// announce registers a service that does not register itself (its REST
// API at addr, on /health and /metrics) for as long as it runs, so that
// NightLight scrapes it and clients can find it.
func announce(cf *chainfire.Server, service string, addr func() string) *registry.Announcer {
	node, _ := os.Hostname()
	return registry.Announce(service, cf.Client, func() registry.Entry {
		return registry.Entry{Service: service, Node: node, HTTP: addr(), Version: buildinfo.Version}
	})
}

// Start starts every service in dependency order.
func (s *Stack) Start(ctx context.Context) error { return s.group.Start(ctx) }

// Stop stops every service in reverse order.
func (s *Stack) Stop(ctx context.Context) error { return s.group.Stop(ctx) }

// Err reports a service that died after starting.
func (s *Stack) Err() <-chan error { return s.ChainFire.Err() }

// Endpoint is one row of the table `photon up` prints.
type Endpoint struct {
	Service, HTTP, GRPC, Notes string
}

// Endpoints lists where each service listens.
func (s *Stack) Endpoints() []Endpoint {
	return []Endpoint{
		{"ChainFire", "http://" + s.ChainFire.HTTPAddr(), s.ChainFire.GRPCAddr(), "Raft KV; gRPC is the etcd v3 API (etcdctl, clientv3)"},
		{"FlareDB", "http://" + s.FlareDB.HTTPAddr(), s.FlareDB.RaftAddr() + " (raft)", "SQL and KV, one SQLite database per project, replicated by Raft"},
		{"IAM", "http://" + s.IAM.HTTPAddr(), "-", "identity, tokens (JWKS at /.well-known/jwks.json)"},
		{"CreditService", "http://" + s.CreditService.HTTPAddr(), "-", "wallets, reservations, quotas"},
		{"LightningSTOR", "http://" + s.LightningSTOR.HTTPAddr(), "-", "S3 API; health at /-/health; bootstrap key in " + filepath.Join(s.cfg.DataDir, S3CredentialsFile)},
		{"NightLight", "http://" + s.NightLight.HTTPAddr(), "-", "Prometheus API (query, remote write/read, targets, rules); scrapes every registered service"},
		{"PlasmaVMC", "http://" + s.PlasmaVMC.HTTPAddr(), "-", "virtual machines on QEMU; " + s.hypervisor()},
		{"PrismNET", "http://" + s.PrismNET.HTTPAddr(), "-", "VPCs, subnets, ports, security groups; data plane " + s.dataplane()},
	}
}

// hypervisor says whether this process runs VMs, and as which node.
func (s *Stack) hypervisor() string {
	if s.Hypervisor == nil || s.Hypervisor.Agent() == nil {
		return "no hypervisor in this process"
	}
	n := s.Hypervisor.Agent().Node()
	return fmt.Sprintf("node %s (%s, %d vCPUs, %d MiB)", n.Name, n.Accel, n.VCPUs, n.MemoryMiB)
}

// dataplane says whether this process programs the kernel, and as which
// node.
func (s *Stack) dataplane() string {
	if s.Agent == nil || s.Agent.Agent() == nil {
		return "disabled"
	}
	return "on node " + s.Agent.Agent().Node()
}

// PrintEndpoints writes the endpoint table.
func (s *Stack) PrintEndpoints(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "SERVICE\tREST\tGRPC\tNOTES\n")
	for _, e := range s.Endpoints() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.Service, e.HTTP, e.GRPC, e.Notes)
	}
	tw.Flush()
	fmt.Fprintf(w, "data dir: %s\n", s.cfg.DataDir)
	fmt.Fprintf(w, "auth: %s mode; admin token in %s\n", s.ChainFire.Auth().Mode(), s.cfg.IAM.AdminTokenPath)
}
