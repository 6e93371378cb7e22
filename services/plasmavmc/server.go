package plasmavmc

import (
	"context"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/photoncloud/photon/internal/auth"
	"github.com/photoncloud/photon/internal/rest"
)

// Deps is what PlasmaVMC needs from the process it runs in: a client of
// ChainFire, the authenticator and, where a node runs in the same process,
// its console reader.
type Deps struct {
	Client  *clientv3.Client
	Auth    *auth.Authenticator
	Console ConsoleReader
	// Credential is the Authorization header metering charges with ("" in
	// loopback trust).
	Credential func() string
}

// Server runs PlasmaVMC's controller as a lifecycle component.
type Server struct {
	cfg  Config
	deps func() Deps
	svc  *Service
	http *rest.Server

	cancel   context.CancelFunc // the meter
	wg       sync.WaitGroup
	stopOnce sync.Once
	stopErr  error
}

// New returns a server; deps is called at Start, once ChainFire can
// provide them.
func New(cfg Config, deps func() Deps) (*Server, error) {
	cfg.Defaults()
	return &Server{cfg: cfg, deps: deps}, nil
}

// Name names the component.
func (s *Server) Name() string { return "plasmavmc" }

// Start serves the API.
func (s *Server) Start(ctx context.Context) error {
	d := s.deps()
	var err error
	if s.svc, err = NewService(s.cfg, d.Client, d.Console); err != nil {
		return err
	}
	s.http = rest.NewServer("plasmavmc", s.cfg.HTTPAddr, NewHandler(s.svc, d.Auth))
	if err := s.http.Start(ctx); err != nil {
		return err
	}
	if s.cfg.Prices.Period > 0 {
		bg, cancel := context.WithCancel(context.Background())
		s.cancel = cancel
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.svc.meter(bg, d.Credential) }()
	}
	return nil
}

// Stop stops serving. A second call does nothing.
func (s *Server) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() {
		if s.cancel != nil {
			s.cancel()
			s.wg.Wait()
		}
		if s.http != nil {
			s.stopErr = s.http.Stop(ctx)
		}
	})
	return s.stopErr
}

// HTTPAddr is where REST listens.
func (s *Server) HTTPAddr() string { return s.http.Addr() }

// Service is the domain logic, for in-process callers (and tests).
func (s *Server) Service() *Service { return s.svc }
