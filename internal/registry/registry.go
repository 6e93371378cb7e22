// Package registry is where PhotonCloud services announce themselves in
// ChainFire, under /photon/registry/<service>/<node>, on a lease kept alive
// while they run: a service that dies vanishes after the lease's TTL, so
// NightLight can scrape what is really there and clients can find it.
package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/state"
)

// Prefix is where entries live.
const Prefix = "/photon/registry/"

// DefaultTTL is how long an entry outlives its service.
const DefaultTTL = 10 * time.Second

// Entry is one running service instance.
type Entry struct {
	Service string `json:"service"`
	Node    string `json:"node"`
	HTTP    string `json:"http,omitempty"`
	GRPC    string `json:"grpc,omitempty"`
	Version string `json:"version,omitempty"`
	// HealthPath and MetricsPath are where, on HTTP, the instance answers
	// health and Prometheus metrics, when not at /health and /metrics
	// (LightningSTOR's are under /-/, where no bucket can be).
	HealthPath  string    `json:"health_path,omitempty"`
	MetricsPath string    `json:"metrics_path,omitempty"`
	StartedAt   time.Time `json:"started_at"`
}

// Key is e's key in ChainFire.
func (e Entry) Key() string { return Prefix + e.Service + "/" + e.Node }

func (e Entry) validate() error {
	for name, v := range map[string]string{"service": e.Service, "node": e.Node} {
		if v == "" || strings.Contains(v, "/") {
			return apierr.Validation(name, apierr.Format, "%s must be non-empty and hold no '/'", name)
		}
	}
	return nil
}

// Registration keeps one entry alive until Close.
type Registration struct {
	cli    *clientv3.Client
	entry  Entry
	ttl    time.Duration
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	lease clientv3.LeaseID
}

// Register writes e under a lease of ttl and keeps it alive in the
// background, re-registering if the lease is ever lost (e.g. the node was
// cut off for longer than ttl).
func Register(ctx context.Context, cli *clientv3.Client, e Entry, ttl time.Duration) (*Registration, error) {
	if err := e.validate(); err != nil {
		return nil, err
	}
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	if e.StartedAt.IsZero() {
		e.StartedAt = time.Now().UTC()
	}
	r := &Registration{cli: cli, entry: e, ttl: ttl}
	bg, cancel := context.WithCancel(context.Background())
	keep, err := r.put(ctx, bg)
	if err != nil {
		cancel()
		return nil, err
	}
	r.cancel = cancel
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.keepAlive(bg, keep)
	}()
	return r, nil
}

// put grants a lease and writes the entry on it within ctx, and keeps the
// lease alive until life ends.
func (r *Registration) put(ctx, life context.Context) (<-chan *clientv3.LeaseKeepAliveResponse, error) {
	b, err := json.Marshal(r.entry)
	if err != nil {
		return nil, apierr.Wrap(apierr.CodeInternal, err, "encoding registry entry")
	}
	l, err := r.cli.Grant(ctx, int64(r.ttl.Round(time.Second)/time.Second))
	if err != nil {
		return nil, state.FromEtcd(err)
	}
	if _, err := r.cli.Put(ctx, r.entry.Key(), string(b), clientv3.WithLease(l.ID)); err != nil {
		return nil, state.FromEtcd(err)
	}
	r.mu.Lock()
	r.lease = l.ID
	r.mu.Unlock()
	keep, err := r.cli.KeepAlive(life, l.ID)
	if err != nil {
		return nil, state.FromEtcd(err)
	}
	return keep, nil
}

// keepAlive drains keep-alive answers; when the channel closes before ctx
// ends the lease is gone, so it registers again, retrying every second.
func (r *Registration) keepAlive(ctx context.Context, keep <-chan *clientv3.LeaseKeepAliveResponse) {
	for {
		for range keep {
		}
		for {
			if ctx.Err() != nil {
				return
			}
			pctx, cancel := context.WithTimeout(ctx, r.ttl)
			var err error
			keep, err = r.put(pctx, ctx)
			cancel()
			if err == nil {
				slog.Info("registry: re-registered after losing the lease", "key", r.entry.Key())
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}
}

// Close stops the keep-alive and revokes the lease, which deletes the entry
// at once (if the store cannot be reached, the entry expires after its TTL).
func (r *Registration) Close(ctx context.Context) error {
	r.cancel()
	r.wg.Wait()
	r.mu.Lock()
	lease := r.lease
	r.mu.Unlock()
	_, err := r.cli.Revoke(ctx, lease)
	return state.FromEtcd(err)
}

// List returns the running instances of service ("" for every service),
// sorted by key.
func List(ctx context.Context, cli *clientv3.Client, service string) ([]Entry, error) {
	prefix := Prefix
	if service != "" {
		prefix += service + "/"
	}
	resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, state.FromEtcd(err)
	}
	out := make([]Entry, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var e Entry
		if err := json.Unmarshal(kv.Value, &e); err != nil {
			return nil, apierr.Wrap(apierr.CodeInternal, err, "registry entry %s is corrupt", kv.Key)
		}
		out = append(out, e)
	}
	return out, nil
}

// String names the entry in logs.
func (e Entry) String() string { return fmt.Sprintf("%s/%s", e.Service, e.Node) }

// Announcer is a lifecycle component that keeps entry() registered while
// it runs: for a service whose own Start does not register itself, added
// to a group right after it (entry is read at Start, once the service
// knows its address).
type Announcer struct {
	service string
	cli     func() *clientv3.Client
	entry   func() Entry
	reg     *Registration
}

// Announce returns an Announcer of service's entry, registered through the
// client cli returns.
func Announce(service string, cli func() *clientv3.Client, entry func() Entry) *Announcer {
	return &Announcer{service: service, cli: cli, entry: entry}
}

// Name names the component.
func (a *Announcer) Name() string { return "registry-" + a.service }

// Start registers the entry.
func (a *Announcer) Start(ctx context.Context) (err error) {
	a.reg, err = Register(ctx, a.cli(), a.entry(), DefaultTTL)
	return err
}

// Stop removes the entry.
func (a *Announcer) Stop(ctx context.Context) error {
	if a.reg == nil {
		return nil
	}
	return a.reg.Close(ctx)
}
