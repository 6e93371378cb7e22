package chainfire

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"

	"github.com/photoncloud/photon/internal/auth"
	"github.com/photoncloud/photon/internal/auth/policy"
	"github.com/photoncloud/photon/internal/auth/token"
	"github.com/photoncloud/photon/internal/registry"
	"github.com/photoncloud/photon/internal/rest"
)

// Server is one ChainFire node: an embedded etcd member serving the etcd v3
// gRPC API, and the REST API on top of it. It is a lifecycle component.
type Server struct {
	cfg  Config
	etcd *embed.Etcd
	cli  *clientv3.Client
	svc  *Service
	http *rest.Server
	reg  *registry.Registration
	auth *auth.Authenticator

	closeOnce sync.Once
	stopping  atomic.Bool
	// errc reports that the member stopped without Stop being called (it
	// was removed from the cluster, or etcd failed).
	errc   chan error
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a node for cfg (Defaults applied).
func New(cfg Config) (*Server, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Server{cfg: cfg}, nil
}

// Name names the component.
func (s *Server) Name() string { return "chainfire" }

// Start launches etcd and the REST API, then waits until the member has
// joined its cluster (or ctx ends). REST answers (503 where quorum is
// needed) while it waits, so a node with no quorum is observable.
func (s *Server) Start(ctx context.Context) error {
	ec, err := s.embedConfig()
	if err != nil {
		return err
	}
	e, err := embed.StartEtcd(ec)
	if err != nil {
		return fmt.Errorf("start etcd: %w", err)
	}
	s.etcd = e
	s.cli = v3client.New(e.Server)
	s.svc = NewService(s.cli, e.Server, s.cfg)
	mode, err := auth.ResolveMode(s.cfg.AuthMode, s.cfg.HTTPAddr, s.cfg.GRPCAddr, s.cfg.PeerAddr)
	if err != nil {
		s.closeEtcd()
		return err
	}
	if m, _ := auth.ResolveMode("auto", s.cfg.GRPCAddr); m != auth.ModeLoopback {
		slog.Warn("chainfire: the etcd gRPC API does not check IAM tokens and holds every service's state; keep it on a trusted network",
			"grpc_addr", s.cfg.GRPCAddr)
	}
	keys := token.NewRemoteKeys(strings.TrimSuffix(s.cfg.IAMURL, "/")+"/api/v1/auth/jwks", nil)
	s.auth = auth.New(mode, token.NewVerifier(keys), policy.NewCache(s.cli, nil))
	s.http = rest.NewServer("chainfire", s.cfg.HTTPAddr, NewHandler(s.svc, s.cfg, s.auth))
	if err := s.http.Start(ctx); err != nil {
		s.closeEtcd()
		return err
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		_ = s.http.Stop(context.Background())
		s.closeEtcd()
		return fmt.Errorf("etcd: %w", err)
	case <-ctx.Done():
		_ = s.http.Stop(context.Background())
		s.closeEtcd()
		return ctx.Err()
	}
	// Authorization reads IAM's records from this store: load them before
	// the node counts as started.
	if err := s.auth.Cache().Start(ctx); err != nil {
		_ = s.http.Stop(context.Background())
		s.closeEtcd()
		return fmt.Errorf("iam cache: %w", err)
	}
	// Announce this node where NightLight and clients look for services.
	s.reg, err = registry.Register(ctx, s.cli, registry.Entry{Service: "chainfire", Node: MemberName(s.cfg.NodeID),
		HTTP: s.http.Addr(), GRPC: s.cfg.AdvertiseClientURL, Version: s.cfg.Version}, registry.DefaultTTL)
	if err != nil {
		_ = s.http.Stop(context.Background())
		s.closeEtcd()
		_ = s.auth.Cache().Stop(context.Background())
		return fmt.Errorf("register chainfire: %w", err)
	}
	bg, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.errc = make(chan error, 1)
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		s.svc.promoteLearners(bg, time.Second)
	}()
	go func() {
		defer s.wg.Done()
		s.watchMember(bg)
	}()
	return nil
}

// watchMember reports on Err when etcd stops or fails on its own.
func (s *Server) watchMember(ctx context.Context) {
	var err error
	select {
	case <-ctx.Done():
		return
	case <-s.etcd.Server.StopNotify():
		err = errors.New("the etcd member stopped (removed from the cluster?)")
	case e := <-s.etcd.Err():
		err = fmt.Errorf("etcd: %w", e)
	}
	if !s.stopping.Load() {
		s.errc <- err
	}
}

// Stop drains the REST API, then stops etcd, which hands leadership to
// another member first when there is one.
func (s *Server) Stop(ctx context.Context) error {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	// Requests in flight are bounded by the request timeout; do not let a
	// stuck one hold the shutdown beyond that.
	hctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout+2*time.Second)
	defer cancel()
	err := s.http.Stop(hctx)
	_ = s.auth.Cache().Stop(ctx)
	if s.reg != nil {
		// Best effort: if the cluster cannot take the revoke, the entry
		// expires with its lease.
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
		_ = s.reg.Close(rctx)
		rcancel()
	}
	s.closeEtcd()
	return err
}

// closeEtcd closes etcd once: embed.Etcd.Close panics on a second call.
func (s *Server) closeEtcd() {
	s.closeOnce.Do(func() {
		s.stopping.Store(true)
		if s.cli != nil {
			_ = s.cli.Close()
		}
		s.etcd.Close()
	})
}

// Auth is the node's authenticator; the other services of `photon up`
// share it (and its IAM cache).
func (s *Server) Auth() *auth.Authenticator { return s.auth }

// Client is an in-process etcd client of this node, for the services that
// keep their state in ChainFire.
func (s *Server) Client() *clientv3.Client { return s.cli }

// HTTPAddr is where REST listens.
func (s *Server) HTTPAddr() string { return s.http.Addr() }

// GRPCAddr is where the etcd v3 API listens.
func (s *Server) GRPCAddr() string { return s.cfg.GRPCAddr }

// Config is the node's effective configuration.
func (s *Server) Config() Config { return s.cfg }

// Err reports a fatal etcd error (e.g. this member was removed).
func (s *Server) Err() <-chan error { return s.errc }

func (s *Server) embedConfig() (*embed.Config, error) {
	c := s.cfg
	ec := embed.NewConfig()
	ec.Name = MemberName(c.NodeID)
	ec.Dir = filepath.Join(c.DataDir, "chainfire")
	urls := func(raw string) ([]url.URL, error) {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, err
		}
		return []url.URL{*u}, nil
	}
	var err error
	if ec.ListenClientUrls, err = urls("http://" + c.GRPCAddr); err != nil {
		return nil, err
	}
	if ec.AdvertiseClientUrls, err = urls(c.AdvertiseClientURL); err != nil {
		return nil, err
	}
	if ec.ListenPeerUrls, err = urls("http://" + c.PeerAddr); err != nil {
		return nil, err
	}
	if ec.AdvertisePeerUrls, err = urls(c.AdvertisePeerURL); err != nil {
		return nil, err
	}
	ec.InitialCluster = c.InitialCluster
	ec.ClusterState = c.ClusterState
	ec.InitialClusterToken = c.ClusterToken
	ec.LogLevel = c.LogLevel
	lg, err := etcdLogger(c.LogLevel, &s.stopping)
	if err != nil {
		return nil, fmt.Errorf("--etcd-log-level %q: %w", c.LogLevel, err)
	}
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(lg)
	// Bodies up to MaxBodyBytes must fit in one Raft proposal.
	if need := uint(c.MaxBodyBytes) + 64*1024; ec.MaxRequestBytes < need {
		ec.MaxRequestBytes = need
	}
	// Keep history bounded: compact revisions older than an hour.
	ec.AutoCompactionMode = "periodic"
	ec.AutoCompactionRetention = "1h"
	if err := ec.Validate(); err != nil {
		return nil, fmt.Errorf("etcd config: %w", err)
	}
	return ec, nil
}
