package flaredb

import (
	"bytes"
	"context"
	"errors"
	"io"
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
			rest.WriteError(w, r, apierr.Wrap(apierr.CodeUnavailable, err, "the leader could not be reached; retry shortly"))
		},
	}
	return f
}

type targetKey struct{}

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
	target, err := f.leaderURL(r.Context())
	if target == nil || err != nil {
		return false, err
	}
	reset()
	f.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), targetKey{}, target)))
	return true, nil
}

// leaderURL waits (up to the leader wait) for a leader whose HTTP address
// is known: nil if that leader is this node.
func (f *forwarder) leaderURL(ctx context.Context) (*url.URL, error) {
	ctx, cancel := context.WithTimeout(ctx, f.wait)
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
			return nil, apierr.New(apierr.CodeUnavailable, "no FlareDB leader within %s; retry shortly", f.wait)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
