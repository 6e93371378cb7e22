// Package platform assembles `photon up`: every service that exists, in one
// process, in dependency order (ChainFire first), on the seed's ports.
package platform

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"text/tabwriter"

	"github.com/photoncloud/photon/internal/buildinfo"
	"github.com/photoncloud/photon/internal/lifecycle"
	"github.com/photoncloud/photon/services/chainfire"
)

// Config is the all-in-one configuration.
type Config struct {
	DataDir   string
	ChainFire chainfire.Config
}

// Stack is a running all-in-one PhotonCloud.
type Stack struct {
	cfg       Config
	group     lifecycle.Group
	ChainFire *chainfire.Server
}

// New builds the stack's components without starting them.
func New(cfg Config) (*Stack, error) {
	abs, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	cfg.DataDir = abs
	cfg.ChainFire.DataDir = abs
	cfg.ChainFire.Version = buildinfo.Version
	cf, err := chainfire.New(cfg.ChainFire)
	if err != nil {
		return nil, fmt.Errorf("chainfire: %w", err)
	}
	s := &Stack{cfg: cfg, ChainFire: cf}
	s.group.Add(cf)
	return s, nil
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
	}
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
}
