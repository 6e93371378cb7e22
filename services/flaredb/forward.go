package flaredb

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/rest"
	"github.com/photoncloud/photon/services/flaredb/engine"
)

// forwardedHeader marks a request a follower sent on to the leader: the
// leader serves it or fails it, and never forwards it again, so two nodes
// that each think the other leads cannot bounce a request between them.
const forwardedHeader = "X-Flaredb-Forwarded-By"

// forwarder sends requests that need the leader to it, unchanged
// (credentials included: the leader authenticates them again).
type forwarder struct {
	node  *engine.Node
	wait  time.Duration
	proxy *httputil.ReverseProxy
}

func newForwarder(node *engine.Node, wait time.Duration) *forwarder {
	f := &forwarder{node: node, wait: wait}
	f.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			target := pr.In.Context().Value(targetKey{}).(*url.URL)
			pr.SetURL(target)
			pr.Out.Host = target.Host
			pr.Out.Header.Set(forwardedHeader, node.ID())
			pr.Out.Header.Set(rest.HeaderRequestID, rest.RequestID(pr.In.Context()))
		},
		Transport: &http.Transport{MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if h, ok := r.Context().Value(proxyErrKey{}).(*proxyErr); ok && isDialError(err) {
				h.err = err // nothing was sent: forward may try again
				return
			}
			rest.WriteError(w, r, &apierr.Error{Code: apierr.CodeUnavailable, Err: err, Details: map[string]any{"indeterminate": true},
				Message: "the leader failed while serving the request: a write may or may not have been applied"})
		},
	}
	return f
}

type (
	targetKey   struct{}
	proxyErrKey struct{}
	// proxyErr receives a dial error, after which nothing was sent.
	proxyErr struct{ err error }
)

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// leaderRoute serves a route on the leader: here if this node leads (or
// the request does not need the leader), else by forwarding. A write that
// finds leadership gone before it was replicated is forwarded too.
func (f *forwarder) leaderRoute(serve rest.Handler, need func(*http.Request, []byte) bool) rest.StreamHandler {
	return func(w http.ResponseWriter, r *http.Request) error {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return apierr.New(apierr.CodePayloadTooLarge, "request body exceeds %d bytes", mbe.Limit)
			}
			return apierr.Wrap(apierr.CodeValidation, err, "reading the request body failed")
		}
		reset := func() { r.Body = io.NopCloser(bytes.NewReader(body)) }
		reset()
		if need(r, body) && !f.node.IsLeader() {
			if served, err := f.forward(w, r, reset); served || err != nil {
				return err
			}
		}
		data, err := serve(r)
		if errors.Is(err, engine.ErrNotLeader) && r.Header.Get(forwardedHeader) == "" {
			// Not replicated (the engine says so only before a write
			// reaches the log), so sending it on is safe.
			if served, ferr := f.forward(w, r, reset); served || ferr != nil {
				return ferr
			}
			return err
		}
		if err != nil {
			return err
		}
		status := http.StatusOK
		if s, ok := data.(rest.Status); ok {
			status, data = s.Code, s.Data
		}
		rest.WriteData(w, r, status, data)
		return nil
	}
}

// forward sends r to the leader; served is false (and err nil) when this
// node turned out to lead, so the caller serves r itself.
func (f *forwarder) forward(w http.ResponseWriter, r *http.Request, reset func()) (served bool, err error) {
	if by := r.Header.Get(forwardedHeader); by != "" {
		return false, apierr.New(apierr.CodeUnavailable, "forwarded by %s to a node that does not lead: leadership is changing; retry", by)
	}
	// A leader that cannot be dialled has died (or is dying): wait for
	// the next one, as long as a request may wait for a leader.
	deadline := time.Now().Add(f.wait)
	for {
		target, err := f.leaderURL(r.Context(), time.Until(deadline))
		if target == nil || err != nil {
			return false, err
		}
		reset()
		pe := &proxyErr{}
		ctx := context.WithValue(context.WithValue(r.Context(), targetKey{}, target), proxyErrKey{}, pe)
		f.proxy.ServeHTTP(w, r.WithContext(ctx))
		if pe.err == nil {
			return true, nil
		}
		if time.Now().After(deadline) {
			return false, apierr.Wrap(apierr.CodeUnavailable, pe.err, "the leader could not be reached; retry shortly")
		}
		select {
		case <-r.Context().Done():
			return false, r.Context().Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// leaderURL waits (up to the leader wait) for a leader whose HTTP address
// is known: nil if that leader is this node.
func (f *forwarder) leaderURL(ctx context.Context, wait time.Duration) (*url.URL, error) {
	ctx, cancel := context.WithTimeout(ctx, max(wait, 0))
	defer cancel()
	for {
		if f.node.IsLeader() {
			return nil, nil
		}
		if id, _ := f.node.Leader(); id != "" && id != f.node.ID() {
			if addr, ok := f.node.NodeHTTPAddr(ctx, id); ok {
				return &url.URL{Scheme: "http", Host: addr}, nil
			}
		}
		select {
		case <-ctx.Done():
			if err := ctx.Err(); errors.Is(err, context.Canceled) {
				return nil, err
			}
			return nil, apierr.New(apierr.CodeUnavailable, "no FlareDB leader within %s; retry shortly", f.wait)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
