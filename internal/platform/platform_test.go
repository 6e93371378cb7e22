package platform_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/photoncloud/photon/internal/platform"
	"github.com/photoncloud/photon/internal/registry"
	"github.com/photoncloud/photon/internal/testutil"
)

// TestRestartKeepsState stops a stack and starts a new one on the same data
// dir: every key is still there.
func TestRestartKeepsState(t *testing.T) {
	dir := t.TempDir()
	cfg := platform.Config{DataDir: dir, ChainFire: testutil.ChainFireConfig(t)}
	st, err := platform.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := st.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	st.PrintEndpoints(&out)
	if !strings.Contains(out.String(), "http://"+cfg.ChainFire.HTTPAddr) || !strings.Contains(out.String(), dir) {
		t.Errorf("endpoint table lacks the address or data dir:\n%s", out.String())
	}
	es, err := registry.List(ctx, st.ChainFire.Client(), "chainfire")
	if err != nil || len(es) != 1 || es[0].Node != "node-1" || es[0].HTTP != cfg.ChainFire.HTTPAddr {
		t.Errorf("registry = %+v, %v; want chainfire/node-1 at %s", es, err, cfg.ChainFire.HTTPAddr)
	}
	if _, err := st.ChainFire.Client().Put(ctx, "persist/me", "yes"); err != nil {
		t.Fatal(err)
	}
	if err := st.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	st2 := testutil.StartStack(t, dir)
	resp, err := st2.ChainFire.Client().Get(ctx, "persist/me")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "yes" {
		t.Fatalf("after restart: %v %v", resp, err)
	}
}
