package iam

import (
	"sync"
	"time"
)

// loginLimiter counts failed logins per (principal, source) and per
// principal, and refuses further attempts for a window once a count is
// reached, so that guessing a password costs hours rather than seconds
// (in memory, per replica: each replica bounds the rate on its own).
type loginLimiter struct {
	mu       sync.Mutex
	perPair  int
	perUser  int
	window   time.Duration
	now      func() time.Time
	counters map[string]*failures
}

type failures struct {
	count       int
	first       time.Time
	lockedUntil time.Time
}

func newLoginLimiter(perPair int, window time.Duration, now func() time.Time) *loginLimiter {
	return &loginLimiter{perPair: perPair, perUser: 4 * perPair, window: window, now: now, counters: map[string]*failures{}}
}

// blocked returns how long the principal must wait when calling from
// source, or 0.
func (l *loginLimiter) blocked(principal, source string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	var wait time.Duration
	for _, k := range []string{"p\x00" + principal + "\x00" + source, "u\x00" + principal} {
		if f := l.counters[k]; f != nil && f.lockedUntil.After(now) {
			wait = max(wait, f.lockedUntil.Sub(now))
		}
	}
	return wait
}

// fail records a failed attempt.
func (l *loginLimiter) fail(principal, source string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if len(l.counters) > 100_000 {
		l.sweepLocked(now)
	}
	l.bumpLocked("p\x00"+principal+"\x00"+source, l.perPair, now)
	l.bumpLocked("u\x00"+principal, l.perUser, now)
}

func (l *loginLimiter) bumpLocked(key string, limit int, now time.Time) {
	f := l.counters[key]
	if f == nil || now.Sub(f.first) > l.window && !f.lockedUntil.After(now) {
		f = &failures{first: now}
		l.counters[key] = f
	}
	f.count++
	if f.count >= limit {
		f.lockedUntil = now.Add(l.window)
		f.count, f.first = 0, now
	}
}

// succeed forgets the pair's failures (not the principal's: a success from
// one source must not reset what others are guessing).
func (l *loginLimiter) succeed(principal, source string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.counters, "p\x00"+principal+"\x00"+source)
}

func (l *loginLimiter) sweepLocked(now time.Time) {
	for k, f := range l.counters {
		if now.Sub(f.first) > l.window && !f.lockedUntil.After(now) {
			delete(l.counters, k)
		}
	}
}
