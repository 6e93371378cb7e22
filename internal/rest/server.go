package rest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Server is an HTTP listener as a lifecycle component.
type Server struct {
	name    string
	addr    string
	handler http.Handler
	srv     *http.Server
	ln      net.Listener
	done    chan error
	// stopping closes when Stop begins, so long-lived streams end and let
	// Shutdown finish.
	stopping chan struct{}
}

type stoppingKey struct{}

// ShuttingDown is closed when the server serving ctx's request begins to
// stop; stream handlers select on it. Nil (never closed) outside a Server.
func ShuttingDown(ctx context.Context) <-chan struct{} {
	ch, _ := ctx.Value(stoppingKey{}).(chan struct{})
	return ch
}

// NewServer returns a server for handler on addr ("127.0.0.1:0" picks a port).
func NewServer(name, addr string, handler http.Handler) *Server {
	return &Server{name: name, addr: addr, handler: handler}
}

// Name names the component in logs.
func (s *Server) Name() string { return s.name + "-http" }

// Start listens and serves in the background.
func (s *Server) Start(context.Context) error {
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", s.addr, err)
	}
	s.ln = ln
	s.stopping = make(chan struct{})
	s.srv = &http.Server{
		Handler: s.handler,
		BaseContext: func(net.Listener) context.Context {
			return context.WithValue(context.Background(), stoppingKey{}, s.stopping)
		},
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(slog.Default().Handler(), slog.LevelWarn),
	}
	s.done = make(chan error, 1)
	go func() { s.done <- s.srv.Serve(ln) }()
	return nil
}

// Addr is the address the server listens on (with the real port).
func (s *Server) Addr() string {
	if s.ln == nil {
		return s.addr
	}
	return s.ln.Addr().String()
}

// Stop finishes in-flight requests (so every acknowledged write was
// answered) and closes the listener; streams still open when ctx ends are
// cut.
func (s *Server) Stop(ctx context.Context) error {
	close(s.stopping)
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
	}
	if serr := <-s.done; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return serr
	}
	return err
}

// Reachable is the address this machine dials to reach a listener on
// addr: a wildcard host ("", 0.0.0.0, ::) becomes loopback. Services use
// it for URLs to themselves and for addresses they advertise by default.
func Reachable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
