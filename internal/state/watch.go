package state

import (
	"context"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
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

// Watch streams changes to the collection after revision fromRevision (0:
// from now) until ctx ends; the channel closes then. A value that does not
// decode arrives as an event with Err set.
func (c *Collection[T]) Watch(ctx context.Context, fromRevision int64) <-chan Event[T] {
	out := make(chan Event[T])
	opts := []clientv3.OpOption{clientv3.WithPrefix()}
	if fromRevision > 0 {
		opts = append(opts, clientv3.WithRev(fromRevision))
	}
	wch := c.cli.Watch(clientv3.WithRequireLeader(ctx), c.prefix, opts...)
	go func() {
		defer close(out)
		for resp := range wch {
			if err := resp.Err(); err != nil {
				select {
				case out <- Event[T]{Err: FromEtcd(err)}:
				case <-ctx.Done():
				}
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
				select {
				case out <- e:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}
