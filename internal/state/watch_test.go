package state_test

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/state"
	"github.com/photoncloud/photon/internal/testutil"
)

// next receives one event or fails after a timeout, so a lost event shows
// as a failure naming what was expected instead of a hung test.
func next[T any](t *testing.T, ch <-chan state.Event[T], what string) state.Event[T] {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatalf("watch closed while waiting for %s", what)
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatalf("no event for %s", what)
	}
	panic("unreachable")
}

// storeRevision is the store's current revision, read past the code under
// test, so a watch can start right after it without racing its registration.
func storeRevision(t *testing.T, cli *clientv3.Client) int64 {
	t.Helper()
	resp, err := cli.Get(testutil.Context(t), "/")
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Revision
}

// TestWatch checks a watch delivers puts and deletes of its collection only,
// in commit order with the revisions a client needs to resume, reports an
// undecodable value without ending, replays history from a revision, and
// closes its channel when the context ends (or the goroutine would leak).
func TestWatch(t *testing.T) {
	cli := testutil.StartChainFire(t).Client()
	c := state.NewCollection[vpc](cli, "/test/watch/vpcs/", "vpc")
	neighbour := state.NewCollection[vpc](cli, "/test/watch/vpcs2/", "vpc")

	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	from := storeRevision(t, cli) + 1
	ch := c.Watch(ctx, from)

	a, err := c.Create(testutil.Context(t), "a", vpc{Name: "a1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := neighbour.Create(testutil.Context(t), "x", vpc{}); err != nil {
		t.Fatal(err)
	}
	a2, err := c.Update(testutil.Context(t), "a", vpc{Name: "a2"}, a.ModRevision)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(testutil.Context(t), c.Key("corrupt"), "{"); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(testutil.Context(t), "a", a2.ModRevision); err != nil {
		t.Fatal(err)
	}
	b, err := c.Create(testutil.Context(t), "b", vpc{Name: "b1", Size: 2})
	if err != nil {
		t.Fatal(err)
	}
	// Several keys in one transaction arrive as separate events.
	op1, _ := c.CreateOp("c1", vpc{Name: "c1"})
	op2, _ := c.CreateOp("c2", vpc{Name: "c2"})
	txRev, err := state.Commit(testutil.Context(t), cli, op1, op2)
	if err != nil {
		t.Fatal(err)
	}

	type want struct {
		typ     state.EventType
		id      string
		name    string
		mod     int64
		corrupt bool
	}
	wants := []want{
		{state.EventPut, "a", "a1", a.ModRevision, false},
		{state.EventPut, "a", "a2", a2.ModRevision, false},
		{state.EventPut, "corrupt", "", 0, true},
		{state.EventDelete, "a", "", 0, false},
		{state.EventPut, "b", "b1", b.ModRevision, false},
		{state.EventPut, "c1", "c1", txRev, false},
		{state.EventPut, "c2", "c2", txRev, false},
	}
	var lastRev int64
	for i, w := range wants {
		ev := next(t, ch, w.id)
		if ev.Type != w.typ || ev.Item.ID != w.id {
			t.Fatalf("event %d = %s %s, want %s %s", i, ev.Type, ev.Item.ID, w.typ, w.id)
		}
		if w.corrupt {
			if apierr.CodeOf(ev.Err) != apierr.CodeInternal {
				t.Errorf("corrupt value event err = %v, want INTERNAL", ev.Err)
			}
		} else if ev.Err != nil {
			t.Errorf("event %d err = %v", i, ev.Err)
		}
		if w.name != "" && ev.Item.Value.Name != w.name {
			t.Errorf("event %d value = %+v, want name %s", i, ev.Item.Value, w.name)
		}
		if w.mod != 0 && ev.Item.ModRevision != w.mod {
			t.Errorf("event %d mod revision %d, want %d", i, ev.Item.ModRevision, w.mod)
		}
		if ev.Item.ModRevision < lastRev {
			t.Errorf("event %d went back in revision: %d < %d", i, ev.Item.ModRevision, lastRev)
		}
		lastRev = ev.Item.ModRevision
		if w.typ == state.EventDelete && ev.Item.Value != (vpc{}) {
			t.Errorf("delete event carries a value: %+v", ev.Item.Value)
		}
		if w.typ == state.EventPut && !w.corrupt && ev.Item.CreateRevision == 0 {
			t.Errorf("event %d lacks its create revision", i)
		}
	}
	select {
	case ev := <-ch:
		t.Errorf("unexpected event %+v (the neighbour collection leaked in?)", ev)
	case <-time.After(200 * time.Millisecond):
	}

	t.Run("replay from a revision", func(t *testing.T) {
		rctx, rcancel := context.WithCancel(context.Background())
		defer rcancel()
		replay := c.Watch(rctx, a2.ModRevision)
		ev := next(t, replay, "replayed update")
		if ev.Type != state.EventPut || ev.Item.ID != "a" || ev.Item.Value.Name != "a2" {
			t.Errorf("first replayed event %+v, want the update of a", ev)
		}
	})

	cancel()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				return
			}
			// An event already in flight, or the cancellation itself, may
			// still arrive; only an ordinary new change would be wrong.
			if ev.Err == nil && ev.Item.ID != "" {
				t.Errorf("event after cancel: %+v", ev)
			}
		case <-deadline:
			t.Fatal("watch channel still open 10s after its context ended")
		}
	}
}

// TestWatchAbandoned checks a watch whose consumer stops reading still ends
// when its context does: the goroutine must not block forever on a send.
func TestWatchAbandoned(t *testing.T) {
	cli := testutil.StartChainFire(t).Client()
	c := state.NewCollection[vpc](cli, "/test/abandon/", "vpc")
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch := c.Watch(ctx, storeRevision(t, cli)+1)
	for _, id := range []string{"a", "b", "c"} {
		if _, err := c.Create(testutil.Context(t), id, vpc{}); err != nil {
			t.Fatal(err)
		}
	}
	next(t, ch, "a") // the watch is live; b and c are left unread
	cancel()
	// Nobody reads for a while: the goroutine must pick ctx.Done over its
	// blocked send and close the channel, so the first read sees it closed.
	time.Sleep(time.Second)
	select {
	case ev, ok := <-ch:
		if ok {
			t.Errorf("watch still delivering after its context ended: %+v", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watch channel still open after its context ended")
	}
}

// TestWatchCompacted checks a watch from a revision the store has compacted
// away reports FAILED_PRECONDITION with the oldest revision left (the caller
// must re-list; it is not a store failure) and then closes.
func TestWatchCompacted(t *testing.T) {
	cli := testutil.StartChainFire(t).Client()
	c := state.NewCollection[vpc](cli, "/test/compacted/", "vpc")
	a, err := c.Create(testutil.Context(t), "a", vpc{Name: "1"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Update(testutil.Context(t), "a", vpc{Name: "2"}, a.ModRevision)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(testutil.Context(t), b.ModRevision); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch := c.Watch(ctx, a.ModRevision)
	ev := next(t, ch, "the compaction error")
	e := apierr.As(ev.Err)
	if ev.Err == nil || e.Code != apierr.CodeFailedPrecondition || e.Details["compact_revision"] != b.ModRevision {
		t.Fatalf("event = %+v (err %v), want FAILED_PRECONDITION with compact_revision %d", ev, ev.Err, b.ModRevision)
	}
	select {
	case ev, ok := <-ch:
		if ok {
			t.Errorf("event after the terminal error: %+v", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watch did not close after its terminal error")
	}
	// From the compact revision itself the history is still there.
	ch2 := c.Watch(ctx, b.ModRevision)
	if ev := next(t, ch2, "the update at the compact revision"); ev.Err != nil || ev.Item.Value.Name != "2" {
		t.Errorf("event = %+v", ev)
	}
}

// TestWatchFromNowIsRegistered checks that Watch(ctx, 0) returns only once
// the watch is registered: a write made right after it returns is seen,
// every time (before registration was awaited, this raced).
func TestWatchFromNowIsRegistered(t *testing.T) {
	cli := testutil.StartChainFire(t).Client()
	c := state.NewCollection[vpc](cli, "/test/fromnow/", "vpc")
	for i := 0; i < 20; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		ch := c.Watch(ctx, 0)
		id := "v" + string(rune('a'+i))
		if _, err := c.Create(testutil.Context(t), id, vpc{Name: id}); err != nil {
			t.Fatal(err)
		}
		if ev := next(t, ch, id); ev.Err != nil || ev.Item.ID != id {
			t.Fatalf("round %d: event %+v", i, ev)
		}
		cancel()
	}
}
