package iam

import (
	"context"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/photoncloud/photon/internal/auth"
	"github.com/photoncloud/photon/internal/auth/policy"
	"github.com/photoncloud/photon/internal/auth/token"
	"github.com/photoncloud/photon/internal/rest"
)

// Standalone is IAM on its own (`photon serve iam`): a replica over a
// ChainFire cluster reached through the etcd API, with its own IAM cache.
// Any number of replicas may run over the same cluster.
type Standalone struct {
	cfg       Config
	endpoints []string
	authMode  string

	cli    *clientv3.Client
	cache  *policy.Cache
	server *Server
}

// NewStandalone returns a replica of IAM over the ChainFire members at
// endpoints (host:port of their etcd gRPC API).
func NewStandalone(cfg Config, endpoints []string, authMode string) (*Standalone, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(endpoints) == 0 {
		return nil, errors.New("no ChainFire endpoints")
	}
	if _, err := auth.ResolveMode(authMode); err != nil {
		return nil, err
	}
	return &Standalone{cfg: cfg, endpoints: endpoints, authMode: authMode}, nil
}

// Start connects to ChainFire, loads the IAM cache and serves.
func (s *Standalone) Start(ctx context.Context) error {
	mode, err := auth.ResolveMode(s.authMode, s.cfg.HTTPAddr)
	if err != nil {
		return err
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: s.endpoints, DialTimeout: 5 * time.Second, Context: context.WithoutCancel(ctx)})
	if err != nil {
		return fmt.Errorf("chainfire client: %w", err)
	}
	s.cli = cli
	s.cache = policy.NewCache(cli, nil)
	if err := s.cache.Start(ctx); err != nil {
		cli.Close()
		return fmt.Errorf("iam cache: %w", err)
	}
	// Tokens are checked as every service checks them: against the JWKS,
	// here this replica's own.
	keys := token.NewRemoteKeys("http://"+rest.Reachable(s.cfg.HTTPAddr)+"/api/v1/auth/jwks", nil)
	authn := auth.New(mode, token.NewVerifier(keys), s.cache)
	s.server, err = New(s.cfg, func() Deps { return Deps{Client: cli, Auth: authn} })
	if err == nil {
		err = s.server.Start(ctx)
	}
	if err != nil {
		_ = s.cache.Stop(context.Background())
		cli.Close()
		return err
	}
	return nil
}

// Stop stops serving, then the cache and the client.
func (s *Standalone) Stop(ctx context.Context) error {
	err := s.server.Stop(ctx)
	_ = s.cache.Stop(ctx)
	return errors.Join(err, s.cli.Close())
}

// Err never reports: a replica that loses ChainFire answers 503 until it is back.
func (s *Standalone) Err() <-chan error { return nil }

// HTTPAddr is where REST listens.
func (s *Standalone) HTTPAddr() string { return s.server.HTTPAddr() }

// Mode is the auth mode the replica runs in.
func (s *Standalone) Mode() auth.Mode { m, _ := auth.ResolveMode(s.authMode, s.cfg.HTTPAddr); return m }
