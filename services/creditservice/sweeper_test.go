package creditservice_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/photoncloud/photon/internal/platform"
	"github.com/photoncloud/photon/internal/testutil"
	"github.com/photoncloud/photon/services/creditservice"
)

// sweeperLeader is the node name the sweeper election has elected.
func sweeperLeader(t *testing.T, cli *clientv3.Client) (string, error) {
	t.Helper()
	s, err := concurrency.NewSession(cli, concurrency.WithTTL(5))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	resp, err := concurrency.NewElection(s, "/photon/creditservice/sweeper-election").Leader(testutil.Context(t))
	if err != nil {
		return "", err
	}
	return string(resp.Kvs[0].Value), nil
}

// TestSweeperElection runs a second CreditService replica over the same
// ChainFire: exactly one of them is the elected sweeper; when it stops, the
// other takes over and expires what is due.
func TestSweeperElection(t *testing.T) {
	e := startCS(t, func(c *platform.Config) {
		c.CreditService.Node = "replica-a"
		c.CreditService.SweepInterval = 100 * time.Millisecond
	})
	b, err := creditservice.New(creditservice.Config{HTTPAddr: testutil.FreeAddr(t), Node: "replica-b", SweepInterval: 100 * time.Millisecond},
		func() creditservice.Deps {
			return creditservice.Deps{Client: e.st.ChainFire.Client(), Auth: e.st.ChainFire.Auth()}
		})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(testutil.Context(t)); err != nil {
		t.Fatal(err)
	}
	bStopped := false
	t.Cleanup(func() {
		if !bStopped {
			_ = b.Stop(context.Background())
		}
	})

	var first string
	deadline := time.Now().Add(10 * time.Second)
	for {
		if first, err = sweeperLeader(t, e.etcd); err == nil {
			break
		}
		if !errors.Is(err, concurrency.ErrElectionNoLeader) || time.Now().After(deadline) {
			t.Fatalf("no sweeper elected: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if first != "replica-a" && first != "replica-b" {
		t.Fatalf("elected %q", first)
	}

	// Stop the elected one: the other takes the seat (within the lease
	// TTL when the first dies; at once here, since it resigns).
	if first == "replica-b" {
		if err := b.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		bStopped = true
		eventuallyLeader(t, e, "replica-a")
	} else {
		if err := e.st.CreditService.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		e.cs = "http://" + b.HTTPAddr()
		eventuallyLeader(t, e, "replica-b")
	}

	// Whoever leads sweeps: a reservation past its TTL is expired in the
	// store without any request touching its wallet.
	const p = "proj-sweep"
	e.createWallet(t, p, 1000, 0)
	r := ok[creditservice.Reservation](t, e.do(t, req{method: "POST", path: "/api/v1/reservations",
		body: `{"project_id":"` + p + `","amount":100,"ttl_seconds":1}`}), http.StatusCreated)
	deadline = time.Now().Add(10 * time.Second)
	for {
		stored, _ := getJSON[creditservice.Reservation](t, e, csPrefix+"reservations/"+p+"/"+r.ID)
		if stored.Status == creditservice.ReservationExpired {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reservation still %q 10 s after its TTL", stored.Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
	wantMoney(t, e.wallet(t, p), 1000, 0)
}

func eventuallyLeader(t *testing.T, e *csEnv, want string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got, err := sweeperLeader(t, e.etcd)
		if err == nil && got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("sweeper leader %q (%v), want %q", got, err, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
