package state

import (
	"context"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/photoncloud/photon/internal/apierr"
)

// EventType says what happened to a watched item.
type EventType string

// The watch event types.
const (
	EventPut    EventType = "put"
	EventDelete EventType = "delete"
)

// Event is one change to a collection. Item.Value is zero for deletes.
type Event[T any] struct {
	Type EventType
	Item Item[T]
	Err  error
}

// Watch streams changes to the collection from revision fromRevision on
// (inclusive, so a resuming caller passes its last seen revision + 1; 0:
// from now) until ctx ends; the channel closes then. A value that does not
// decode arrives as an event with Err set; so does the error that ends the
// watch (FAILED_PRECONDITION when fromRevision has been compacted), after
// which the channel closes. Watch returns once the store has registered the
// watch, so a write made after it returns is always seen.
func (c *Collection[T]) Watch(ctx context.Context, fromRevision int64) <-chan Event[T] {
	out := make(chan Event[T])
	opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithCreatedNotify()}
	if fromRevision > 0 {
		opts = append(opts, clientv3.WithRev(fromRevision))
	}
	wch := c.cli.Watch(clientv3.WithRequireLeader(ctx), c.prefix, opts...)
	// The first response only confirms registration, or carries the error
	// that ended the watch.
	var startErr error
	select {
	case resp, ok := <-wch:
		if ok && resp.Err() != nil {
			startErr = watchError(resp, fromRevision)
		}
	case <-ctx.Done():
	}
	go func() {
		defer close(out)
		send := func(e Event[T]) bool {
			select {
			case out <- e:
				return true
			case <-ctx.Done():
				return false
			}
		}
		if startErr != nil {
			send(Event[T]{Err: startErr})
			return
		}
		for resp := range wch {
			if resp.Err() != nil {
				send(Event[T]{Err: watchError(resp, fromRevision)})
				return
			}
			for _, ev := range resp.Events {
				id := strings.TrimPrefix(string(ev.Kv.Key), c.prefix)
				e := Event[T]{Type: EventPut, Item: Item[T]{ID: id, CreateRevision: ev.Kv.CreateRevision, ModRevision: ev.Kv.ModRevision}}
				if ev.Type == clientv3.EventTypeDelete {
					e.Type = EventDelete
				} else {
					e.Item, e.Err = c.decode(id, ev.Kv.Value, ev.Kv.CreateRevision, ev.Kv.ModRevision)
				}
				if !send(e) {
					return
				}
			}
		}
	}()
	return out
}

// watchError types the error that ended a watch.
func watchError(resp clientv3.WatchResponse, fromRevision int64) error {
	err := resp.Err()
	if resp.CompactRevision == 0 {
		return FromEtcd(err)
	}
	// Not a store failure: history before CompactRevision is gone, so the
	// caller must re-list and watch from there.
	return &apierr.Error{Code: apierr.CodeFailedPrecondition, Err: err,
		Message: fmt.Sprintf("revision %d has been compacted; the oldest available is %d; list again and watch from its revision", fromRevision, resp.CompactRevision),
		Details: map[string]any{"compact_revision": resp.CompactRevision}}
}
