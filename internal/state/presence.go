package state

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Presence is a record that exists while its owner runs: a node agent's
// registration, written on a lease the owner keeps alive. When the owner
// stops, the lease is revoked and the record goes at once; when it dies,
// the record goes with the lease's TTL.
type Presence struct {
	cli   *clientv3.Client
	ttl   time.Duration
	write func(ctx context.Context, lease clientv3.LeaseID) error
	lease clientv3.LeaseID
}

// NewPresence writes the record (write puts it on the lease it is given)
// on a new lease of ttl.
func NewPresence(ctx context.Context, cli *clientv3.Client, ttl time.Duration, write func(ctx context.Context, lease clientv3.LeaseID) error) (*Presence, error) {
	p := &Presence{cli: cli, ttl: ttl, write: write}
	if err := p.register(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *Presence) register(ctx context.Context) error {
	g, err := p.cli.Grant(ctx, int64(p.ttl/time.Second))
	if err != nil {
		return fmt.Errorf("lease: %w", FromEtcd(err))
	}
	if err := p.write(ctx, g.ID); err != nil {
		return err
	}
	p.lease = g.ID
	return nil
}

// Keep keeps the lease alive until ctx ends, writing the record again on a
// new lease when the old one was lost (the store was out of reach for
// longer than the TTL); renewed, if not nil, is told each time. At the end
// it revokes the lease.
func (p *Presence) Keep(ctx context.Context, renewed func()) {
	for ctx.Err() == nil {
		if ch, err := p.cli.KeepAlive(ctx, p.lease); err == nil {
			for range ch {
			}
		}
		if ctx.Err() != nil {
			break
		}
		time.Sleep(time.Second)
		if p.register(ctx) == nil && renewed != nil {
			renewed()
		}
	}
	rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, _ = p.cli.Revoke(rctx, p.lease)
}

// WatchKick calls kick on every change under prefix until ctx ends,
// watching again after an interruption (a lost leader, a compaction).
func WatchKick(ctx context.Context, cli *clientv3.Client, prefix string, kick func()) {
	for ctx.Err() == nil {
		for wr := range cli.Watch(clientv3.WithRequireLeader(ctx), prefix, clientv3.WithPrefix()) {
			if wr.Err() != nil {
				break
			}
			kick()
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}
