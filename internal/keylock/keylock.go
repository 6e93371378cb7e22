// Package keylock serializes one process's work on a key (a wallet, a
// subnet): callers queue instead of losing compare-and-swap races against
// each other, which still guard against other processes. A caller that
// waits past its deadline gives up.
package keylock

import (
	"context"
	"sync"

	"github.com/photoncloud/photon/internal/apierr"
)

// Set is a lock per key; the zero Set is ready. Idle keys hold no memory.
type Set struct {
	mu    sync.Mutex
	locks map[string]*lock
}

type lock struct {
	held chan struct{} // a token: holding the lock is having sent one
	refs int
}

// Lock waits for key and returns its unlock, or UNAVAILABLE once ctx ends;
// what names the key in that error ("wallet proj-1").
func (s *Set) Lock(ctx context.Context, key, what string) (func(), error) {
	s.mu.Lock()
	if s.locks == nil {
		s.locks = map[string]*lock{}
	}
	l := s.locks[key]
	if l == nil {
		l = &lock{held: make(chan struct{}, 1)}
		s.locks[key] = l
	}
	l.refs++
	s.mu.Unlock()
	release := func() {
		s.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(s.locks, key)
		}
		s.mu.Unlock()
	}
	select {
	case l.held <- struct{}{}:
		return func() { <-l.held; release() }, nil
	case <-ctx.Done():
		release()
		return nil, apierr.Wrap(apierr.CodeUnavailable, ctx.Err(), "timed out waiting for other changes to %s; retry", what)
	}
}
