package flaredb

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/auth"
	"github.com/photoncloud/photon/internal/auth/policy"
	"github.com/photoncloud/photon/internal/auth/token"
)

// Standalone is one FlareDB node on its own (`photon serve flaredb`).
// With ChainFire endpoints and IAM's URL it verifies tokens and decides
// from IAM's bindings as every service does; without them it trusts only
// tokenless loopback callers (loopback mode) and refuses every token,
// which it has no way to verify.
type Standalone struct {
	cfg       Config
	endpoints []string
	iamURL    string
	authMode  string

	cli    *clientv3.Client
	cache  *policy.Cache
	server *Server
}

// NewStandalone returns a node; endpoints and iamURL may both be empty.
func NewStandalone(cfg Config, endpoints []string, iamURL, authMode string) (*Standalone, error) {
	cfg.Defaults()
	if (len(endpoints) == 0) != (iamURL == "") {
		return nil, errors.New("give both --chainfire-endpoints and --iam-url (tokens verified by IAM), or neither (loopback callers only)")
	}
	mode, err := auth.ResolveMode(authMode, cfg.HTTPAddr)
	if err != nil {
		return nil, err
	}
	if len(endpoints) == 0 && mode != auth.ModeLoopback {
		return nil, errors.New("without IAM (--chainfire-endpoints, --iam-url) a node can only trust loopback callers: listen on loopback or give IAM")
	}
	return &Standalone{cfg: cfg, endpoints: endpoints, iamURL: iamURL, authMode: authMode}, nil
}

// Start connects to IAM's state (if given) and starts the node.
func (s *Standalone) Start(ctx context.Context) error {
	mode, _ := auth.ResolveMode(s.authMode, s.cfg.HTTPAddr)
	var authn *auth.Authenticator
	if len(s.endpoints) > 0 {
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
		keys := token.NewRemoteKeys(s.iamURL+"/api/v1/auth/jwks", nil)
		authn = auth.New(mode, token.NewVerifier(keys), s.cache)
	} else {
		authn = auth.New(mode, token.NewVerifier(noKeys{}), nil)
	}
	var err error
	s.server, err = New(s.cfg, func() Deps { return Deps{Auth: authn} })
	if err == nil {
		err = s.server.Start(ctx)
	}
	if err != nil {
		s.closeIAM(context.Background())
		return err
	}
	return nil
}

func (s *Standalone) closeIAM(ctx context.Context) {
	if s.cache != nil {
		_ = s.cache.Stop(ctx)
	}
	if s.cli != nil {
		s.cli.Close()
	}
}

// Stop stops the node, then the IAM cache.
func (s *Standalone) Stop(ctx context.Context) error {
	err := s.server.Stop(ctx)
	s.closeIAM(ctx)
	return err
}

// Err never reports.
func (s *Standalone) Err() <-chan error { return nil }

// Server is the node.
func (s *Standalone) Server() *Server { return s.server }

// Mode is the auth mode the node runs in.
func (s *Standalone) Mode() auth.Mode { m, _ := auth.ResolveMode(s.authMode, s.cfg.HTTPAddr); return m }

// noKeys is the key source of a node without IAM: every token is refused.
type noKeys struct{}

func (noKeys) PublicKey(context.Context, string) (ed25519.PublicKey, error) {
	return nil, apierr.New(apierr.CodeUnauthenticated, "this FlareDB node runs without IAM and verifies no tokens")
}
