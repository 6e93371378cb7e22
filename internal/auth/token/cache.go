package token

import (
	"strings"
	"sync"
	"sync/atomic"
)

// cache maps verified token strings to their claims, bounded in size. A hit
// is a sync.Map load, which takes no lock and writes no shared memory, so a
// token used by many concurrent requests does not bounce a lock's cache line
// between cores the way even an RWMutex's reader count does.
type cache struct {
	m    sync.Map // string → *Claims
	n    atomic.Int64
	size int64

	evictMu sync.Mutex // one evictor at a time; hits never take it
}

func newCache(size int) *cache { return &cache{size: int64(size)} }

func (c *cache) get(raw string) (*Claims, bool) {
	v, ok := c.m.Load(raw)
	if !ok {
		return nil, false
	}
	return v.(*Claims), true
}

// put adds raw (expired tells eviction which entries are dead), first reserving a slot so that the bound holds even under
// concurrent inserts. A full cache drops what has expired and, if that is not
// enough, down to half (in the map's hash order, which is as good as random):
// amortized O(1) per insert, with no bookkeeping on the hit path.
func (c *cache) put(raw string, cl *Claims, expired func(*Claims) bool) {
	for {
		n := c.n.Load()
		if n >= c.size {
			c.evict(expired)
			continue
		}
		if c.n.CompareAndSwap(n, n+1) {
			break
		}
	}
	// Clone: raw may be a slice of a large request header we must not pin.
	if _, loaded := c.m.LoadOrStore(strings.Clone(raw), cl); loaded {
		c.n.Add(-1)
	}
}

func (c *cache) evict(expired func(*Claims) bool) {
	c.evictMu.Lock()
	defer c.evictMu.Unlock()
	if c.n.Load() < c.size {
		return // another goroutine evicted while we waited
	}
	del := func(k any) {
		if _, ok := c.m.LoadAndDelete(k); ok {
			c.n.Add(-1)
		}
	}
	c.m.Range(func(k, v any) bool {
		if expired(v.(*Claims)) {
			del(k)
		}
		return true
	})
	c.m.Range(func(k, _ any) bool {
		if c.n.Load() <= c.size/2 {
			return false
		}
		del(k)
		return true
	})
}

// len is the number of cached tokens (tests).
func (c *cache) len() int {
	n := 0
	c.m.Range(func(any, any) bool { n++; return true })
	return n
}
