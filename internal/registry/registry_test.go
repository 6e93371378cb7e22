package registry_test

import (
	"context"
	"testing"
	"time"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/registry"
	"github.com/photoncloud/photon/internal/testutil"
)

// TestRegisterListClose registers two services, lists them, and closes one:
// its entry is gone at once.
func TestRegisterListClose(t *testing.T) {
	s := testutil.StartChainFire(t)
	cli := s.Client()
	a, err := registry.Register(testutil.Context(t), cli, registry.Entry{Service: "iam", Node: "n1", HTTP: "127.0.0.1:8083"}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	b, err := registry.Register(testutil.Context(t), cli, registry.Entry{Service: "prismnet", Node: "n1"}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// Every service, sorted by key: the node's own ChainFire entry too.
	all, err := registry.List(testutil.Context(t), cli, "")
	if err != nil || len(all) != 3 || all[0].Service != "chainfire" || all[1].Service != "iam" || all[2].Service != "prismnet" ||
		all[1].HTTP != "127.0.0.1:8083" || all[1].StartedAt.IsZero() {
		t.Fatalf("list = %+v, %v", all, err)
	}
	if err := a.Close(testutil.Context(t)); err != nil {
		t.Fatal(err)
	}
	iam, err := registry.List(testutil.Context(t), cli, "iam")
	if err != nil || len(iam) != 0 {
		t.Fatalf("after close: %+v, %v", iam, err)
	}
	if err := b.Close(testutil.Context(t)); err != nil {
		t.Fatal(err)
	}
}

// TestDeadServiceExpires registers through a client that then goes
// away without closing: the entry expires with its lease.
func TestDeadServiceExpires(t *testing.T) {
	s := testutil.StartChainFire(t)
	dying := testutil.EtcdClient(t, s.GRPCAddr())
	if _, err := registry.Register(testutil.Context(t), dying, registry.Entry{Service: "flaredb", Node: "n2"}, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	dying.Close() // the process "dies": no more keep-alives, no revoke
	deadline := time.Now().Add(15 * time.Second)
	for {
		es, err := registry.List(testutil.Context(t), s.Client(), "flaredb")
		if err != nil {
			t.Fatal(err)
		}
		if len(es) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the entry of a dead service is still there after 15s (TTL 2s)")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestReRegistersAfterLosingLease revokes the lease behind a live
// registration (as an expiry during a partition would): it comes back.
func TestReRegistersAfterLosingLease(t *testing.T) {
	s := testutil.StartChainFire(t)
	cli := s.Client()
	r, err := registry.Register(testutil.Context(t), cli, registry.Entry{Service: "nightlight", Node: "n1"}, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	leases, err := cli.Leases(testutil.Context(t))
	if err != nil || len(leases.Leases) == 0 {
		t.Fatalf("leases: %v %v", leases, err)
	}
	for _, l := range leases.Leases {
		if _, err := cli.Revoke(testutil.Context(t), l.ID); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		es, err := registry.List(testutil.Context(t), cli, "nightlight")
		if err != nil {
			t.Fatal(err)
		}
		if len(es) == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("not re-registered within 15s of losing the lease")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestBadEntry(t *testing.T) {
	s := testutil.StartChainFire(t)
	for _, e := range []registry.Entry{{Service: "", Node: "n"}, {Service: "a/b", Node: "n"}, {Service: "a", Node: ""}} {
		if _, err := registry.Register(testutil.Context(t), s.Client(), e, time.Second); apierr.CodeOf(err) != apierr.CodeValidation {
			t.Errorf("Register(%+v) = %v, want VALIDATION_ERROR", e, err)
		}
	}
}
