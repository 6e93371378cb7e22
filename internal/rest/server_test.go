package rest_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/photoncloud/photon/internal/rest"
)

// startServer starts a rest.Server on a free loopback port and stops it
// when the test ends unless the test stopped it itself (Stop may run once).
func startServer(t *testing.T, h http.Handler) (*rest.Server, *bool) {
	t.Helper()
	s := rest.NewServer("unit", "127.0.0.1:0", h)
	if err := s.Start(context.Background()); err != nil {
		t.Fatalf("start: %v", err)
	}
	stopped := new(bool)
	t.Cleanup(func() {
		if !*stopped {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = s.Stop(ctx)
		}
	})
	return s, stopped
}

// TestServerLifecycle checks Start picks a real port for ":0", serves the
// router, drains an in-flight request on Stop (an acknowledged write must be
// answered) and then refuses connections.
func TestServerLifecycle(t *testing.T) {
	started := make(chan struct{})
	rt := rest.NewRouter("unit", nil)
	rt.Handle("GET /hello", func(*http.Request) (any, error) { return "hi", nil })
	rt.Handle("POST /slow", func(*http.Request) (any, error) {
		close(started)
		time.Sleep(300 * time.Millisecond)
		return "done", nil
	})
	rt.Handle("GET /stopping", func(r *http.Request) (any, error) {
		return rest.ShuttingDown(r.Context()) != nil, nil
	})
	s, stopped := startServer(t, rt)

	if s.Name() != "unit-http" {
		t.Errorf("Name = %q", s.Name())
	}
	host, port, err := net.SplitHostPort(s.Addr())
	if err != nil || host != "127.0.0.1" || port == "0" {
		t.Fatalf("Addr = %q, want 127.0.0.1 with a real port", s.Addr())
	}
	base := "http://" + s.Addr()
	if data := dataOf(t, do(t, "GET", base+"/hello", nil), 200); string(data) != `"hi"` {
		t.Errorf("hello = %s", data)
	}
	if data := dataOf(t, do(t, "GET", base+"/stopping", nil), 200); string(data) != "true" {
		t.Error("a Server's requests must carry the ShuttingDown channel")
	}

	type result struct {
		r   reply
		err error
	}
	inflight := make(chan result, 1)
	go func() {
		resp, err := http.Post(base+"/slow", "application/json", nil)
		if err != nil {
			inflight <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		inflight <- result{r: reply{Status: resp.StatusCode, Header: resp.Header, Body: b}, err: err}
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	*stopped = true
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	res := <-inflight
	if res.err != nil {
		t.Fatalf("in-flight request failed across Stop: %v", res.err)
	}
	if data := dataOf(t, res.r, 200); string(data) != `"done"` {
		t.Errorf("in-flight = %s", data)
	}
	if _, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
		t.Error("the listener is still open after Stop")
	}
}

// TestServerStartError checks a port already taken is Start's error, not a
// background failure nobody sees.
func TestServerStartError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := rest.NewServer("dup", ln.Addr().String(), http.NotFoundHandler())
	if err := s.Start(context.Background()); err == nil || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Fatalf("Start on a taken port = %v, want an error naming it", err)
	}
	if s.Addr() != ln.Addr().String() {
		t.Errorf("Addr before a successful Start = %q", s.Addr())
	}
}

// streamRouter serves GET /events: one event, then wait for the server to
// stop (or the client to leave), then a goodbye event — how SSE watches end.
func streamRouter(t *testing.T, obeyShutdown bool) (*rest.Router, chan struct{}) {
	t.Helper()
	ended := make(chan struct{}, 1)
	rt := rest.NewRouter("unit", nil)
	rt.HandleStream("GET /events", func(w http.ResponseWriter, r *http.Request) error {
		defer func() { ended <- struct{}{} }()
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "event: hello\n\n")
		if err := http.NewResponseController(w).Flush(); err != nil {
			return err
		}
		stop := rest.ShuttingDown(r.Context())
		if !obeyShutdown {
			stop = nil
		}
		select {
		case <-stop:
			_, _ = io.WriteString(w, "event: bye\n\n")
		case <-r.Context().Done():
		}
		return nil
	})
	return rt, ended
}

// openStream opens /events and returns a reader positioned after the first
// event, so the stream is known to be live before the server stops.
func openStream(t *testing.T, base string) *bufio.Reader {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	br := bufio.NewReader(resp.Body)
	for _, want := range []string{"event: hello\n", "\n"} {
		line, err := br.ReadString('\n')
		if err != nil || line != want {
			t.Fatalf("stream line %q, %v; want %q", line, err, want)
		}
	}
	return br
}

// TestServerStopEndsStreams checks ShuttingDown closes when Stop begins, so
// a stream that selects on it ends and Stop returns promptly instead of
// waiting for its deadline (http.Server.Shutdown waits for active
// connections, and an open SSE stream is always active).
func TestServerStopEndsStreams(t *testing.T) {
	rt, ended := streamRouter(t, true)
	s, stopped := startServer(t, rt)
	br := openStream(t, "http://"+s.Addr())

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	*stopped = true
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Stop took %v with a stream open; ShuttingDown did not end it", d)
	}
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("stream handler did not return")
	}
	tail, err := io.ReadAll(br)
	if err != nil || string(tail) != "event: bye\n\n" {
		t.Errorf("after Stop the client read %q, %v; want the goodbye event then EOF", tail, err)
	}
}

// TestServerStopDeadline checks a stream that ignores ShuttingDown is cut
// when Stop's context ends, and Stop reports that deadline rather than
// hanging: a stuck handler must not block process exit.
func TestServerStopDeadline(t *testing.T) {
	rt, ended := streamRouter(t, false)
	s, stopped := startServer(t, rt)
	br := openStream(t, "http://"+s.Addr())

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	*stopped = true
	err := s.Stop(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Stop = %v, want the deadline", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Stop took %v past its 300ms deadline", d)
	}
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the cut stream's handler did not return")
	}
	if _, err := io.ReadAll(br); err == nil {
		// A cut chunked stream ends without its terminating chunk.
		t.Error("the client saw a clean end of a stream that was cut")
	}
}

// TestShuttingDownOutsideServer checks the documented nil channel (which
// blocks forever in a select) for requests not served by a rest.Server.
func TestShuttingDownOutsideServer(t *testing.T) {
	if ch := rest.ShuttingDown(context.Background()); ch != nil {
		t.Errorf("ShuttingDown(background) = %v, want nil", ch)
	}
	rt := rest.NewRouter("unit", nil)
	rt.Handle("GET /", func(r *http.Request) (any, error) { return rest.ShuttingDown(r.Context()) == nil, nil })
	srv := serve(t, rt)
	if data := dataOf(t, do(t, "GET", srv.URL+"/", nil), 200); string(data) != "true" {
		t.Errorf("ShuttingDown under httptest = non-nil")
	}
}
