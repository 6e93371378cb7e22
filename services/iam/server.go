package iam

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/photoncloud/photon/internal/auth"
	"github.com/photoncloud/photon/internal/rest"
	"github.com/photoncloud/photon/internal/state"
)

// Deps is what IAM needs from the process it runs in: a client of
// ChainFire and the authenticator (whose cache follows the same store).
type Deps struct {
	Client *clientv3.Client
	Auth   *auth.Authenticator
}

// Server runs IAM as a lifecycle component.
type Server struct {
	cfg  Config
	deps func() Deps
	svc  *Service
	http *rest.Server

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns an IAM server; deps is called at Start, once ChainFire (which
// starts first) can provide them.
func New(cfg Config, deps func() Deps) (*Server, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Server{cfg: cfg, deps: deps}, nil
}

// Name names the component.
func (s *Server) Name() string { return "iam" }

// Start bootstraps IAM's records and keys, then serves.
func (s *Server) Start(ctx context.Context) error {
	d := s.deps()
	s.svc = NewService(s.cfg, d.Client, d.Auth.Cache())
	if err := s.svc.Bootstrap(ctx); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	s.http = rest.NewServer("iam", s.cfg.HTTPAddr, NewHandler(s.svc, d.Auth))
	if err := s.http.Start(ctx); err != nil {
		return err
	}
	bg, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.svc.keys.run(bg)
	}()
	if s.cfg.AdminTokenPath != "" {
		next, err := s.writeAdminToken(ctx)
		if err != nil {
			cancel()
			s.wg.Wait()
			_ = s.http.Stop(context.Background())
			return fmt.Errorf("admin token: %w", err)
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.refreshAdminToken(bg, next)
		}()
	}
	return nil
}

// writeAdminToken writes a fresh bootstrap admin token and returns when to
// write the next (at half its life).
func (s *Server) writeAdminToken(ctx context.Context) (time.Duration, error) {
	t, err := s.svc.AdminToken(ctx)
	if err != nil {
		return 0, err
	}
	if err := writeFileAtomic(s.cfg.AdminTokenPath, []byte(t.Token+"\n"), 0o600); err != nil {
		return 0, err
	}
	return time.Until(t.ExpiresAt) / 2, nil
}

func (s *Server) refreshAdminToken(ctx context.Context, next time.Duration) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(next):
		}
		wctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
		n, err := s.writeAdminToken(wctx)
		cancel()
		if err != nil {
			s.svc.log.Warn("iam: refreshing the admin token", "err", err)
			n = 10 * time.Second
		}
		next = n
	}
}

// writeFileAtomic replaces path with data, never leaving a partial file or
// one readable by others for an instant.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".admin-token-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Stop stops serving and the background work.
func (s *Server) Stop(ctx context.Context) error {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	return s.http.Stop(ctx)
}

// HTTPAddr is where REST listens.
func (s *Server) HTTPAddr() string { return s.http.Addr() }

// Service is the domain logic, for tests in the same process.
func (s *Server) Service() *Service { return s.svc }

// Healthy reports whether the store answers.
func (s *Service) Healthy(ctx context.Context) error {
	return state.Ping(ctx, s.st.cli)
}
