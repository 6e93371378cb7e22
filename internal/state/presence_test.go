package state_test

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/photoncloud/photon/internal/state"
	"github.com/photoncloud/photon/internal/testutil"
)

// A presence record exists while Keep runs, outlives its TTL there, and
// goes at once when Keep ends; WatchKick sees changes under its prefix.
func TestPresence(t *testing.T) {
	cli := testutil.StartChainFire(t).Client()
	ctx := testutil.Context(t)
	const key = "/test/presence/node-a"
	kicks := make(chan struct{}, 16)
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go state.WatchKick(wctx, cli, "/test/presence/", func() { kicks <- struct{}{} })
	time.Sleep(100 * time.Millisecond) // the watch is in place

	p, err := state.NewPresence(ctx, cli, time.Second, func(ctx context.Context, lease clientv3.LeaseID) error {
		_, err := cli.Put(ctx, key, "up", clientv3.WithLease(lease))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-kicks:
	case <-time.After(5 * time.Second):
		t.Fatal("WatchKick saw no change")
	}
	kctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { p.Keep(kctx, nil); close(done) }()
	time.Sleep(2500 * time.Millisecond) // past the 1 s TTL
	if resp, err := cli.Get(ctx, key); err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("the record while kept: %v %v", resp, err)
	}
	stop()
	<-done
	if resp, err := cli.Get(ctx, key); err != nil || len(resp.Kvs) != 0 {
		t.Fatalf("the record after Keep ended: %v %v", resp.Kvs, err)
	}
}
