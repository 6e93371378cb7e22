package flaredb

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/auth"
	"github.com/photoncloud/photon/internal/rest"
	"github.com/photoncloud/photon/services/flaredb/engine"
	"github.com/photoncloud/photon/services/flaredb/sqlcheck"
)

// Deps is what FlareDB needs from the process it runs in.
type Deps struct {
	Auth *auth.Authenticator
}

// Server runs one FlareDB node as a lifecycle component.
type Server struct {
	cfg  Config
	deps func() Deps
	log  *slog.Logger

	http    *rest.Server
	handler atomic.Pointer[http.Handler]
	node    *engine.Node
	svc     *Service

	stop     chan struct{}
	wg       sync.WaitGroup
	stopOnce sync.Once
	stopErr  error
}

// New returns a server; deps is called at Start.
func New(cfg Config, deps func() Deps) (*Server, error) {
	cfg.Defaults()
	if cfg.DataDir == "" {
		return nil, errors.New("flaredb: no data dir")
	}
	if cfg.Bootstrap && cfg.Join != "" {
		return nil, errors.New("flaredb: bootstrap a new cluster or join one, not both")
	}
	return &Server{cfg: cfg, deps: deps, stop: make(chan struct{}), log: slog.Default().With("service", "flaredb")}, nil
}

// Name names the component.
func (s *Server) Name() string { return "flaredb" }

// HTTPAddr is where the REST API listens.
func (s *Server) HTTPAddr() string { return s.http.Addr() }

// RaftAddr is where the Raft transport listens.
func (s *Server) RaftAddr() string { return s.node.RaftAddr() }

// Service is the domain logic, for in-process callers and tests.
func (s *Server) Service() *Service { return s.svc }

// Start listens, opens the engine (which publishes the address it listens
// on, for followers to forward to), and joins or bootstraps the group.
func (s *Server) Start(ctx context.Context) (err error) {
	d := s.deps()
	s.http = rest.NewServer("flaredb", s.cfg.HTTPAddr, http.HandlerFunc(s.serveHTTP))
	if err := s.http.Start(ctx); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = s.Stop(context.Background())
		}
	}()
	advertise := s.advertised()
	s.node, err = engine.Open(engine.Config{
		DataDir: s.cfg.DataDir, NodeID: s.cfg.NodeID,
		RaftBind: s.cfg.RaftAddr, RaftAdvertise: s.cfg.RaftAdvertise,
		HTTPAddr:   advertise,
		Bootstrap:  s.cfg.Bootstrap,
		Rewrite:    rewrite,
		LeaderWait: s.cfg.LeaderWait, HeartbeatTimeout: s.cfg.HeartbeatTimeout,
		ElectionTimeout: s.cfg.ElectionTimeout, LeaderLeaseTimeout: s.cfg.LeaderLeaseTimeout,
		SnapshotThreshold: s.cfg.SnapshotThreshold, TrailingLogs: s.cfg.TrailingLogs,
		SnapshotInterval: s.cfg.SnapshotInterval,
		Logger:           s.log,
	})
	if err != nil {
		return fmt.Errorf("flaredb: %w", err)
	}
	s.svc = NewService(s.node)
	h := NewHandler(s.svc, d.Auth, s.cfg)
	s.handler.Store(&h)
	if s.cfg.Join != "" {
		s.wg.Add(1)
		go s.joinLoop()
	}
	if s.cfg.Bootstrap {
		// A group this node started alone elects it at once; wait, so
		// the first request after Start finds a leader.
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if _, err := s.node.WaitLeader(wctx); err != nil && servers(s.node) <= 1 {
			return fmt.Errorf("flaredb: %w", err)
		}
	}
	return nil
}

func servers(n *engine.Node) int {
	ss, _ := n.Servers()
	return len(ss)
}

// advertised is the REST address other nodes (and the registry) use.
func (s *Server) advertised() string {
	if s.cfg.HTTPAdvertise != "" {
		return s.cfg.HTTPAdvertise
	}
	return rest.Reachable(s.http.Addr())
}

// serveHTTP answers 503 until the engine is open.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if h := s.handler.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	rest.WriteError(w, r, apierr.New(apierr.CodeUnavailable, "FlareDB is starting"))
}

// Stop finishes in-flight requests, then closes the engine. A second call
// does nothing.
func (s *Server) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() {
		close(s.stop)
		var errs []error
		if s.http != nil {
			errs = append(errs, s.http.Stop(ctx))
		}
		s.wg.Wait()
		if s.node != nil {
			errs = append(errs, s.node.Close())
		}
		s.stopErr = errors.Join(errs...)
	})
	return s.stopErr
}

// rewrite is the engine's Rewrite hook: sqlcheck fixes, on the leader and
// once, what SQLite would compute differently on each replica.
func rewrite(st engine.Statement) (engine.Statement, error) {
	out, err := sqlcheck.Rewrite(st.SQL, time.Now(), rand.Reader)
	st.SQL = out
	return st, err
}

// joinLoop asks the member at cfg.Join to add this node, until it has or
// the node finds itself in the group (a restart of a member).
func (s *Server) joinLoop() {
	defer s.wg.Done()
	body, _ := json.Marshal(AddMemberRequest{ID: s.cfg.NodeID, RaftAddr: s.node.RaftAddr()})
	url := strings.TrimSuffix(s.cfg.Join, "/") + "/api/v1/cluster/members"
	client := &http.Client{Timeout: 10 * time.Second}
	for attempt := 0; ; attempt++ {
		if ss, err := s.node.Servers(); err == nil {
			for _, sv := range ss {
				if sv.ID == s.cfg.NodeID {
					return
				}
			}
		}
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if s.cfg.JoinToken != "" {
			req.Header.Set("Authorization", "Bearer "+s.cfg.JoinToken)
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				s.log.Info("joined the group", "via", s.cfg.Join)
				return
			}
			err = fmt.Errorf("%s", resp.Status)
		}
		if attempt%20 == 0 {
			s.log.Warn("join: retrying", "via", s.cfg.Join, "err", err)
		}
		select {
		case <-s.stop:
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}
