package policy

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/state"
)

// Cache mirrors IAM's keyspace (everything under Prefix) in memory: it lists
// it once, then follows a watch, re-listing if the watch falls behind a
// compaction. Every authorization decision reads only this memory.
type Cache struct {
	cli *clientv3.Client
	log *slog.Logger

	mu                sync.RWMutex
	changed           *sync.Cond // broadcast when rev advances
	ready             bool
	rev               int64
	orgs              map[string]Org
	projects          map[string]Project
	roles             map[string]Role
	bindings          map[string]Binding            // id → binding
	grants            map[string]map[string]Binding // principal → id → binding
	revokedTokens     map[string]time.Time          // jti → expiry
	revokedPrincipals map[string]time.Time          // principal → before

	// watchCx is the watch's context, with the require-leader metadata
	// that also identifies its stream for RequestProgress.
	watchCx context.Context
	cancel  context.CancelFunc
	done    chan struct{}
}

// NewCache returns a cache over cli; Start loads it.
func NewCache(cli *clientv3.Client, log *slog.Logger) *Cache {
	if log == nil {
		log = slog.Default()
	}
	c := &Cache{cli: cli, log: log}
	c.changed = sync.NewCond(c.mu.RLocker())
	c.reset()
	ctx, cancel := context.WithCancel(context.Background())
	c.watchCx, c.cancel = clientv3.WithRequireLeader(ctx), cancel
	return c
}

func (c *Cache) reset() {
	c.orgs = map[string]Org{}
	c.projects = map[string]Project{}
	c.roles = map[string]Role{}
	c.bindings = map[string]Binding{}
	c.grants = map[string]map[string]Binding{}
	c.revokedTokens = map[string]time.Time{}
	c.revokedPrincipals = map[string]time.Time{}
}

// Name names the cache as a lifecycle component.
func (c *Cache) Name() string { return "iam-cache" }

// Start loads the keyspace and follows it until Stop.
func (c *Cache) Start(ctx context.Context) error {
	rev, err := c.load(ctx)
	if err != nil {
		return err
	}
	c.done = make(chan struct{})
	go c.follow(rev)
	return nil
}

// Stop ends the watch.
func (c *Cache) Stop(context.Context) error {
	if c.done == nil {
		return nil
	}
	c.cancel()
	<-c.done
	c.mu.Lock()
	c.ready = false
	c.mu.Unlock()
	c.changed.Broadcast()
	return nil
}

// load replaces the cache with a fresh listing and returns its revision.
func (c *Cache) load(ctx context.Context) (int64, error) {
	resp, err := c.cli.Get(ctx, Prefix, clientv3.WithPrefix())
	if err != nil {
		return 0, state.FromEtcd(err)
	}
	c.mu.Lock()
	c.reset()
	for _, kv := range resp.Kvs {
		c.applyLocked(mvccpb.PUT, kv)
	}
	c.rev = resp.Header.Revision
	c.ready = true
	c.mu.Unlock()
	c.changed.Broadcast()
	return resp.Header.Revision, nil
}

// follow applies the watch from rev+1 on, re-listing after a compaction or
// any other end of the watch, until Stop.
func (c *Cache) follow(rev int64) {
	defer close(c.done)
	ctx := c.watchCx
	for ctx.Err() == nil {
		wch := c.cli.Watch(ctx, Prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
		for resp := range wch {
			if err := resp.Err(); err != nil {
				c.log.Warn("iam cache: watch ended; reloading", "err", err)
				break
			}
			c.mu.Lock()
			for _, ev := range resp.Events {
				c.applyLocked(ev.Type, ev.Kv)
			}
			// A watcher that is behind gets its history in batches of at
			// most 1000 revisions, each stamped with the store's current
			// revision, so only the last event says how far the cache has
			// got; the header counts only in a progress report (no events).
			seen := resp.Header.Revision
			if n := len(resp.Events); n > 0 {
				seen = resp.Events[n-1].Kv.ModRevision
			}
			if seen > c.rev {
				c.rev = seen
			}
			rev = c.rev
			c.mu.Unlock()
			c.changed.Broadcast()
		}
		if ctx.Err() != nil {
			return
		}
		// The watch ended (compaction, lost leader): list afresh.
		for ctx.Err() == nil {
			r, err := c.load(ctx)
			if err == nil {
				rev = r
				break
			}
			c.log.Warn("iam cache: reload failed", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
}

// applyLocked applies one stored change.
func (c *Cache) applyLocked(typ mvccpb.Event_EventType, kv *mvccpb.KeyValue) {
	rest := strings.TrimPrefix(string(kv.Key), Prefix)
	kind, id, ok := strings.Cut(rest, "/")
	if kind == "revoked" {
		kind, id, ok = strings.Cut(id, "/")
		kind = "revoked/" + kind
	}
	if !ok || id == "" {
		return
	}
	del := typ == mvccpb.DELETE
	decode := func(v any) bool {
		if err := json.Unmarshal(kv.Value, v); err != nil {
			c.log.Error("iam cache: corrupt record ignored", "key", string(kv.Key), "err", err)
			return false
		}
		return true
	}
	switch kind {
	case "orgs":
		var o Org
		if del {
			delete(c.orgs, id)
		} else if decode(&o) {
			c.orgs[id] = o
		}
	case "projects":
		var p Project
		if del {
			delete(c.projects, id)
		} else if decode(&p) {
			c.projects[id] = p
		}
	case "roles":
		var r Role
		if del {
			delete(c.roles, id)
		} else if decode(&r) {
			c.roles[id] = r
		}
	case "bindings":
		if old, had := c.bindings[id]; had {
			delete(c.grants[old.PrincipalID], id)
			if len(c.grants[old.PrincipalID]) == 0 {
				delete(c.grants, old.PrincipalID)
			}
			delete(c.bindings, id)
		}
		var b Binding
		if !del && decode(&b) {
			c.bindings[id] = b
			if c.grants[b.PrincipalID] == nil {
				c.grants[b.PrincipalID] = map[string]Binding{}
			}
			c.grants[b.PrincipalID][id] = b
		}
	case "revoked/tokens":
		var r RevokedToken
		if del {
			delete(c.revokedTokens, id)
		} else if decode(&r) {
			c.revokedTokens[id] = r.ExpiresAt
		}
	case "revoked/principals":
		var r RevokedPrincipal
		if del {
			delete(c.revokedPrincipals, id)
		} else if decode(&r) {
			c.revokedPrincipals[id] = r.Before
		}
	}
}

func (c *Cache) readyLocked() error {
	if !c.ready {
		return apierr.New(apierr.CodeUnavailable, "authorization cache is not loaded yet")
	}
	return nil
}

// Revision is the store revision the cache reflects.
func (c *Cache) Revision() int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.rev
}

// WaitFor blocks until the cache reflects revision rev (e.g. the revision of
// a write IAM just made), so that IAM's next decision sees its own write.
func (c *Cache) WaitFor(ctx context.Context, rev int64) error {
	if c.Revision() >= rev {
		return nil
	}
	// Ask the store to tell the watch where it stands, so the revision
	// advances even when nothing under Prefix changed.
	stop := context.AfterFunc(ctx, func() { c.changed.Broadcast() })
	defer stop()
	deadline := time.Now().Add(5 * time.Second)
	c.mu.RLock()
	defer c.mu.RUnlock()
	for c.rev < rev {
		if err := ctx.Err(); err != nil {
			return state.FromEtcd(err)
		}
		if time.Now().After(deadline) {
			return apierr.New(apierr.CodeUnavailable, "authorization cache is behind the store")
		}
		c.mu.RUnlock()
		_ = c.cli.RequestProgress(c.watchCx)
		c.mu.RLock()
		// The answer may have been applied (and broadcast) while unlocked.
		// From here the lock is held until Wait listens, so no later update
		// is missed; the timer is armed only now, so a slow RLock (behind a
		// reload) cannot spend it before Wait listens.
		if c.rev >= rev {
			break
		}
		timer := time.AfterFunc(50*time.Millisecond, c.changed.Broadcast)
		c.changed.Wait()
		timer.Stop()
	}
	return nil
}

// Sync blocks until the cache reflects every write committed before the
// call: one linearizable read of the store's revision, then WaitFor.
func (c *Cache) Sync(ctx context.Context) error {
	resp, err := c.cli.Get(ctx, Prefix+"sync", clientv3.WithCountOnly())
	if err != nil {
		return state.FromEtcd(err)
	}
	return c.WaitFor(ctx, resp.Header.Revision)
}
