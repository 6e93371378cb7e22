package keylock

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/photoncloud/photon/internal/apierr"
)

func TestLockSerializesOneKey(t *testing.T) {
	var s Set
	var mu sync.Mutex
	inside, most := 0, 0
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			unlock, err := s.Lock(context.Background(), "k", "k")
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			inside++
			most = max(most, inside)
			mu.Unlock()
			time.Sleep(time.Millisecond)
			mu.Lock()
			inside--
			mu.Unlock()
			unlock()
		}()
	}
	wg.Wait()
	if most != 1 {
		t.Fatalf("%d holders at once", most)
	}
	if len(s.locks) != 0 {
		t.Fatalf("%d idle keys kept", len(s.locks))
	}
}

func TestLockGivesUpAtDeadline(t *testing.T) {
	var s Set
	unlock, err := s.Lock(context.Background(), "k", "wallet k")
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.Lock(context.Background(), "other", "other")
	if err != nil {
		t.Fatal("a held key blocked another:", err)
	}
	other()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := s.Lock(ctx, "k", "wallet k"); apierr.CodeOf(err) != apierr.CodeUnavailable {
		t.Fatalf("waiting past the deadline: %v, want UNAVAILABLE", err)
	}
	unlock()
	again, err := s.Lock(context.Background(), "k", "wallet k")
	if err != nil {
		t.Fatal("the key stayed locked after a waiter gave up:", err)
	}
	again()
	if len(s.locks) != 0 {
		t.Fatalf("%d idle keys kept", len(s.locks))
	}
}
