package lifecycle_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/photoncloud/photon/internal/lifecycle"
	"github.com/photoncloud/photon/internal/rest"
)

// journal records the order of every Start and Stop across components.
type journal struct{ events []string }

// component is a Component that records its calls and fails on demand; it
// also checks the contract Group promises it: Stop at most once and only
// after a successful Start, with a context that is not already cancelled.
type component struct {
	t        *testing.T
	name     string
	j        *journal
	startErr error
	stopErr  error
	started  bool
	stops    int
}

func (c *component) Name() string { return c.name }

func (c *component) Start(ctx context.Context) error {
	c.j.events = append(c.j.events, "start "+c.name)
	if c.startErr != nil {
		return c.startErr
	}
	c.started = true
	return nil
}

func (c *component) Stop(ctx context.Context) error {
	c.t.Helper()
	c.j.events = append(c.j.events, "stop "+c.name)
	c.stops++
	if !c.started {
		c.t.Errorf("%s stopped without a successful start", c.name)
	}
	if c.stops > 1 {
		c.t.Errorf("%s stopped %d times", c.name, c.stops)
	}
	if ctx.Err() != nil {
		c.t.Errorf("%s got a dead stop context: %v", c.name, ctx.Err())
	}
	return c.stopErr
}

// TestGroup covers the ordering rules dependants rely on: start in the order
// added, stop in reverse, and on a failed start roll back exactly what was
// started, in reverse, returning the start error (and any stop errors).
func TestGroup(t *testing.T) {
	errStart := errors.New("port in use")
	errStopA := errors.New("a: flush failed")
	errStopB := errors.New("b: close failed")
	tests := []struct {
		name      string
		startErrs map[string]error
		stopErrs  map[string]error
		wantStart []string // journal after Start
		startIs   []error  // Start's error must match each
		wantStop  []string // journal entries added by Stop
		stopIs    []error
	}{
		{
			name:      "all start, stop in reverse",
			wantStart: []string{"start a", "start b", "start c", "start d"},
			wantStop:  []string{"stop d", "stop c", "stop b", "stop a"},
		},
		{
			name:      "first fails: nothing to stop",
			startErrs: map[string]error{"a": errStart},
			wantStart: []string{"start a"},
			startIs:   []error{errStart},
		},
		{
			name:      "third fails: first two stopped in reverse",
			startErrs: map[string]error{"c": errStart},
			wantStart: []string{"start a", "start b", "start c", "stop b", "stop a"},
			startIs:   []error{errStart},
		},
		{
			name:      "failed start and failed rollback both reported",
			startErrs: map[string]error{"c": errStart},
			stopErrs:  map[string]error{"a": errStopA},
			wantStart: []string{"start a", "start b", "start c", "stop b", "stop a"},
			startIs:   []error{errStart, errStopA},
		},
		{
			name:      "stop errors joined, every component still stopped",
			stopErrs:  map[string]error{"a": errStopA, "b": errStopB},
			wantStart: []string{"start a", "start b", "start c", "start d"},
			wantStop:  []string{"stop d", "stop c", "stop b", "stop a"},
			stopIs:    []error{errStopA, errStopB},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j := &journal{}
			var g lifecycle.Group
			for _, n := range []string{"a", "b", "c", "d"} {
				g.Add(&component{t: t, name: n, j: j, startErr: tc.startErrs[n], stopErr: tc.stopErrs[n]})
			}
			err := g.Start(context.Background())
			if !slices.Equal(j.events, tc.wantStart) {
				t.Errorf("start journal %v, want %v", j.events, tc.wantStart)
			}
			checkErr(t, "Start", err, tc.startIs)
			if err != nil {
				for name := range tc.startErrs {
					if !strings.Contains(err.Error(), "start "+name) {
						t.Errorf("Start error %q does not name component %s", err, name)
					}
				}
			}
			j.events = nil
			err = g.Stop(context.Background())
			if !slices.Equal(j.events, tc.wantStop) {
				t.Errorf("stop journal %v, want %v", j.events, tc.wantStop)
			}
			checkErr(t, "Stop", err, tc.stopIs)
			for name := range tc.stopErrs {
				if err != nil && !strings.Contains(err.Error(), "stop "+name) {
					t.Errorf("Stop error %q does not name component %s", err, name)
				}
			}
			// A second Stop has nothing left to stop.
			j.events = nil
			if err := g.Stop(context.Background()); err != nil || len(j.events) != 0 {
				t.Errorf("second Stop = %v, journal %v", err, j.events)
			}
		})
	}
}

// checkErr checks err is nil when want is empty, else matches every error in
// want through errors.Is (so callers can still test for the cause).
func checkErr(t *testing.T, what string, err error, want []error) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Errorf("%s = %v, want nil", what, err)
		}
		return
	}
	for _, w := range want {
		if !errors.Is(err, w) {
			t.Errorf("%s = %v, want it to wrap %v", what, err, w)
		}
	}
}

// TestGroupCancelledStart checks a start that fails because its context was
// cancelled (Ctrl-C during `photon up`) still rolls back with a live
// context, so the already-started components get to shut down cleanly.
func TestGroupCancelledStart(t *testing.T) {
	j := &journal{}
	ctx, cancel := context.WithCancel(context.Background())
	var g lifecycle.Group
	g.Add(&component{t: t, name: "store", j: j})
	g.Add(&cancelling{cancel: cancel, j: j})
	err := g.Start(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Start = %v, want context.Canceled", err)
	}
	if want := []string{"start store", "start slow", "stop store"}; !slices.Equal(j.events, want) {
		t.Errorf("journal %v, want %v", j.events, want)
	}
}

// cancelling cancels the group's context during its Start and fails with it.
type cancelling struct {
	cancel context.CancelFunc
	j      *journal
}

func (c *cancelling) Name() string { return "slow" }
func (c *cancelling) Start(ctx context.Context) error {
	c.j.events = append(c.j.events, "start slow")
	c.cancel()
	return ctx.Err()
}
func (c *cancelling) Stop(context.Context) error { panic("stopped after a failed start") }

// TestGroupWithServers runs real rest.Servers as components: when the second
// cannot listen, the first, already serving, is stopped again and its port
// closed, which is what lets a failed `photon up` be retried at once.
func TestGroupWithServers(t *testing.T) {
	a := rest.NewServer("a", "127.0.0.1:0", http.NotFoundHandler())
	b := rest.NewServer("b", "127.0.0.1:99999", http.NotFoundHandler()) // no such port
	var g lifecycle.Group
	g.Add(a)
	g.Add(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := g.Start(ctx)
	if err == nil {
		_ = g.Stop(ctx)
		t.Fatal("a server started on port 99999")
	}
	if !strings.Contains(err.Error(), "start b-http") {
		t.Errorf("Start error %q does not name b-http", err)
	}
	if a.Addr() == "127.0.0.1:0" {
		t.Fatal("a never listened")
	}
	if conn, err := net.DialTimeout("tcp", a.Addr(), time.Second); err == nil {
		conn.Close()
		t.Errorf("a still listens on %s after the rollback", a.Addr())
	}
}
