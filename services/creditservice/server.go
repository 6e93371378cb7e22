package creditservice

import (
	"context"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/photoncloud/photon/internal/auth"
	"github.com/photoncloud/photon/internal/rest"
	"github.com/photoncloud/photon/internal/state"
)

// Deps is what CreditService needs from the process it runs in: a client
// of ChainFire and the authenticator.
type Deps struct {
	Client *clientv3.Client
	Auth   *auth.Authenticator
}

// Server runs CreditService as a lifecycle component: the REST API and the
// reservation sweeper (elected among replicas).
type Server struct {
	cfg  Config
	deps func() Deps
	svc  *Service
	http *rest.Server

	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once
	stopErr  error
}

// New returns a server; deps is called at Start, once ChainFire can
// provide them.
func New(cfg Config, deps func() Deps) (*Server, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Server{cfg: cfg, deps: deps}, nil
}

// Name names the component.
func (s *Server) Name() string { return "creditservice" }

// Start serves the API and starts campaigning for the sweeper.
func (s *Server) Start(ctx context.Context) error {
	d := s.deps()
	s.svc = NewService(s.cfg, d.Client)
	s.http = rest.NewServer("creditservice", s.cfg.HTTPAddr, NewHandler(s.svc, d.Auth))
	if err := s.http.Start(ctx); err != nil {
		return err
	}
	bg, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.svc.runSweeper(bg)
	}()
	return nil
}

// Stop stops serving and sweeping (resigning the sweeper's seat). A second
// call does nothing.
func (s *Server) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() {
		s.stopErr = s.http.Stop(ctx)
		if s.cancel != nil {
			s.cancel()
		}
		s.wg.Wait()
	})
	return s.stopErr
}

// HTTPAddr is where REST listens.
func (s *Server) HTTPAddr() string { return s.http.Addr() }

// Service is the domain logic, for in-process callers (and tests).
func (s *Server) Service() *Service { return s.svc }

// Healthy reports whether the store answers.
func (s *Service) Healthy(ctx context.Context) error {
	return state.Ping(ctx, s.st.cli)
}
