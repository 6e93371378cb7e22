// Package lightningstor is LightningSTOR: S3-compatible object storage.
// The S3 API (path- and virtual-host-style, SigV4 with IAM's access keys)
// runs over the object store in package objstore; health and metrics are
// under /-/, which no bucket name can shadow.
package lightningstor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/auth"
	"github.com/photoncloud/photon/internal/registry"
	"github.com/photoncloud/photon/internal/rest"
	"github.com/photoncloud/photon/internal/state"
	"github.com/photoncloud/photon/services/lightningstor/objstore"
	"github.com/photoncloud/photon/services/lightningstor/sigv4"
)

// Deps is what LightningSTOR needs from the process it runs in.
type Deps struct {
	Client *clientv3.Client
	Auth   *auth.Authenticator
}

// Server runs LightningSTOR as a lifecycle component.
type Server struct {
	cfg   Config
	deps  func() Deps
	store *objstore.Store
	http  *rest.Server
	reg   *registry.Registration

	sweepStop context.CancelFunc // the stale-upload sweep
	sweepDone chan struct{}

	stopOnce sync.Once
	stopErr  error
}

// New returns a server; deps is called at Start.
func New(cfg Config, deps func() Deps) (*Server, error) {
	cfg.Defaults()
	if cfg.DataDir == "" {
		return nil, errors.New("lightningstor: no data dir")
	}
	return &Server{cfg: cfg, deps: deps}, nil
}

// Name names the component.
func (s *Server) Name() string { return "lightningstor" }

// Start opens the object store and serves S3.
func (s *Server) Start(ctx context.Context) error {
	d := s.deps()
	st, err := objstore.Open(filepath.Clean(s.cfg.DataDir))
	if err != nil {
		return err
	}
	s.store = st
	sctx, cancel := context.WithCancel(context.Background())
	s.sweepStop, s.sweepDone = cancel, make(chan struct{})
	go func() { defer close(s.sweepDone); SweepUploadsEvery(sctx, st, s.cfg.UploadExpiry, time.Hour) }()
	h := NewHandler(s.cfg, st, d.Client, d.Auth)
	s.http = rest.NewServer("lightningstor", s.cfg.HTTPAddr, h)
	if err := s.http.Start(ctx); err != nil {
		s.stopSweep()
		st.Close()
		return err
	}
	// Registered with its /-/ paths, so that whatever scrapes the
	// registry (NightLight) finds its health and metrics.
	node, _ := os.Hostname()
	s.reg, err = registry.Register(ctx, d.Client, registry.Entry{Service: "lightningstor", Node: node, HTTP: s.http.Addr(),
		Version: s.cfg.Version, HealthPath: "/-/health", MetricsPath: "/-/metrics"}, registry.DefaultTTL)
	if err != nil {
		_ = s.http.Stop(ctx)
		s.stopSweep()
		st.Close()
		return err
	}
	return nil
}

// NewHandler is the S3 API over st, with IAM's access keys read from cli.
func NewHandler(cfg Config, st *objstore.Store, cli *clientv3.Client, authn *auth.Authenticator) *handler {
	cfg.Defaults()
	rt := rest.NewRouter("lightningstor", nil)
	rt.SetAuthn(authn)
	rt.MountHealth("/-", "lightningstor", cfg.Version, map[string]rest.Check{
		"store": func(ctx context.Context) error { return state.Ping(ctx, cli) },
	})
	keyOf := func(ctx context.Context, id string) (auth.AccessKey, error) {
		return auth.LookupAccessKey(ctx, cli, id)
	}
	return &handler{cfg: cfg, store: st, authn: authn, now: time.Now, rt: rt, keyOf: keyOf,
		keys: func(ctx context.Context, id string) (string, error) {
			k, err := keyOf(ctx, id)
			if apierr.CodeOf(err) == apierr.CodeNotFound {
				return "", sigv4.ErrUnknownKey
			}
			return k.Secret, err
		}}
}

// Stop stops serving and closes the store. A second call does nothing.
func (s *Server) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() {
		if s.reg != nil {
			s.stopErr = s.reg.Close(ctx)
		}
		if s.http != nil {
			s.stopErr = errors.Join(s.stopErr, s.http.Stop(ctx))
		}
		s.stopSweep()
		if s.store != nil {
			s.stopErr = errors.Join(s.stopErr, s.store.Close())
		}
	})
	return s.stopErr
}

// stopSweep ends the stale-upload sweep (before the store closes).
func (s *Server) stopSweep() {
	if s.sweepStop != nil {
		s.sweepStop()
		<-s.sweepDone
		s.sweepStop = nil
	}
}

// HTTPAddr is where S3 listens.
func (s *Server) HTTPAddr() string { return s.http.Addr() }
