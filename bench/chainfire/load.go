package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/photoncloud/photon/bench/internal/pairbench"
)

// kvClient is how the workers talk to one target.
type kvClient interface {
	put(ctx context.Context, key string) error
	get(ctx context.Context, key string) error
	// check reads key back in full and compares its value.
	check(ctx context.Context, key string) error
}

// target is one system under test.
type target struct {
	id, name string
	client   kvClient
	pid      int // of the server process
}

// loop is conc closed-loop workers running op on t, each on a key picked
// uniformly at random.
func (t target) loop(op string, conc int, keys []string) pairbench.ClosedLoop {
	do := t.client.get
	if op == "put" {
		do = t.client.put
	}
	return pairbench.ClosedLoop{Target: t.id, Conc: conc, ServerPid: t.pid, Op: func(ctx context.Context) error {
		return do(ctx, keys[rand.IntN(len(keys))])
	}}
}

// restClient drives ChainFire's REST API.
type restClient struct {
	base  string
	hc    *http.Client
	body  []byte // {"value":"…"}
	value string
}

func newREST(base string, value []byte, conc int) *restClient {
	body, _ := json.Marshal(map[string]string{"value": string(value)})
	return &restClient{base: base, hc: pairbench.HTTPClient(conc), body: body, value: string(value)}
}

func (c *restClient) put(ctx context.Context, key string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/api/v1/kv/"+key+"/put", bytes.NewReader(c.body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	_, err = c.do(req, io.Discard)
	return err
}

// get checks the status and that the body is long enough to hold the value;
// decoding the JSON is left to check, so the client spends no more CPU than
// it must on the cores it shares with the server.
func (c *restClient) get(ctx context.Context, key string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/v1/kv/"+key, nil)
	if err != nil {
		return err
	}
	n, err := c.do(req, io.Discard)
	if err == nil && n < int64(len(c.value)) {
		err = fmt.Errorf("GET %s: %d-byte body cannot hold a %d-byte value", key, n, len(c.value))
	}
	return err
}

func (c *restClient) check(ctx context.Context, key string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/v1/kv/"+key, nil)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if _, err := c.do(req, &buf); err != nil {
		return err
	}
	var env struct {
		Data struct{ Key, Value string } `json:"data"`
	}
	if err := json.Unmarshal(buf.Bytes(), &env); err != nil {
		return err
	}
	if env.Data.Key != key || env.Data.Value != c.value {
		return fmt.Errorf("got key %q with a %d-byte value, want %q with the %d-byte value written", env.Data.Key, len(env.Data.Value), key, len(c.value))
	}
	return nil
}

// do sends req and reads the whole body into w (so the connection is reused);
// any status but 200 is an error.
func (c *restClient) do(req *http.Request, w io.Writer) (int64, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return n, fmt.Errorf("%s %s: status %s", req.Method, req.URL.Path, resp.Status)
	}
	return n, err
}

// grpcClient drives an etcd v3 gRPC API: one clientv3.Client shared by all
// workers.
type grpcClient struct {
	cli       *clientv3.Client
	value     string
	compacted int64 // revision of the last compaction
}

func newGRPC(addr string, value []byte) (*grpcClient, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"http://" + addr}, DialTimeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("etcd client for %s: %w", addr, err)
	}
	return &grpcClient{cli: cli, value: string(value)}, nil
}

func (c *grpcClient) close() { _ = c.cli.Close() }

// compact drops the history before the current revision and waits until the
// server has removed it, so each cycle starts from stores of the same size.
func (c *grpcClient) compact(ctx context.Context) error {
	resp, err := c.cli.Get(ctx, "bench-", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return err
	}
	rev := resp.Header.Revision
	if rev == c.compacted {
		return nil // nothing written since the last compaction
	}
	_, err = c.cli.Compact(ctx, rev, clientv3.WithCompactPhysical())
	if err == nil || errors.Is(err, rpctypes.ErrCompacted) {
		c.compacted, err = rev, nil
	}
	return err
}

func (c *grpcClient) put(ctx context.Context, key string) error {
	_, err := c.cli.Put(ctx, key, c.value)
	return err
}

func (c *grpcClient) get(ctx context.Context, key string) error {
	resp, err := c.cli.Get(ctx, key) // linearizable: the default
	if err == nil && (len(resp.Kvs) != 1 || len(resp.Kvs[0].Value) != len(c.value)) {
		err = fmt.Errorf("get %s: %d keys, want 1 with a %d-byte value", key, len(resp.Kvs), len(c.value))
	}
	return err
}

func (c *grpcClient) check(ctx context.Context, key string) error {
	resp, err := c.cli.Get(ctx, key)
	if err != nil {
		return err
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != c.value {
		return fmt.Errorf("get %s: not the value written", key)
	}
	return nil
}

// makeValue returns n printable bytes (no JSON escaping needed).
func makeValue(n int) []byte {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[rand.IntN(len(alphabet))]
	}
	return b
}

// makeKeys returns the key space.
func makeKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("bench-%07d", i)
	}
	return keys
}

// populate writes every key with conc workers.
func populate(ctx context.Context, c *grpcClient, keys []string, conc int) error {
	var wg sync.WaitGroup
	errs := make(chan error, conc)
	next := make(chan string)
	for range conc {
		wg.Go(func() {
			for k := range next {
				octx, cancel := context.WithTimeout(ctx, pairbench.OpTimeout)
				err := c.put(octx, k)
				cancel()
				if err != nil {
					errs <- fmt.Errorf("populate %s: %w", k, err)
					return
				}
			}
		})
	}
	var err error
feed:
	for _, k := range keys {
		select {
		case next <- k:
		case err = <-errs:
			break feed
		}
	}
	close(next)
	wg.Wait()
	close(errs)
	if err != nil {
		return err
	}
	return <-errs // nil when the channel is empty
}
