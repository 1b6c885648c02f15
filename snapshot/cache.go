package snapshot

import (
	"container/list"
	"context"
	"sync"
)

// cache keeps recently used values up to a budget of bytes and collapses
// concurrent loads of one key into a single load: eight readers of one
// large file fetch each chunk once. A value larger than the whole budget is
// returned but not kept.
//
// With a release function the cache recycles what it evicts: release gets
// each evicted value once no caller holds it any more (see acquire).
type cache[K comparable, V any] struct {
	max     int64
	release func(V)

	mu       sync.Mutex
	used     int64
	order    *list.List // of *cacheItem[K, V], most recently used first
	items    map[K]*list.Element
	inflight map[K]*cacheCall[V]
}

type cacheItem[K comparable, V any] struct {
	key     K
	val     V
	size    int64
	refs    int  // callers between acquire and their done
	evicted bool // out of the cache; released when refs drops to 0
}

type cacheCall[V any] struct {
	done   chan struct{}
	val    V
	err    error
	cached bool // val went into the cache, which may recycle it
	// dropped: the load was given up without a result (see
	// reservation.drop); its waiters load the value themselves.
	dropped bool
}

func newCache[K comparable, V any](maxBytes int64, release func(V)) *cache[K, V] {
	return &cache[K, V]{max: maxBytes, release: release, order: list.New(), items: make(map[K]*list.Element), inflight: make(map[K]*cacheCall[V])}
}

// get returns the value of key, for a cache without a release function,
// whose values stay valid after eviction.
func (c *cache[K, V]) get(ctx context.Context, key K, load func(context.Context) (V, int64, error)) (V, error) {
	v, done, err := c.acquire(ctx, key, load)
	if err == nil {
		done()
	}
	return v, err
}

// acquire returns the value of key, calling load (which reports the value's
// size) when it is neither cached nor being loaded, and a done function:
// the value is not recycled before done is called. The load runs detached
// from ctx: another caller may be waiting for it, so one reader being
// interrupted must not fail the others. A caller whose ctx ends stops
// waiting.
func (c *cache[K, V]) acquire(ctx context.Context, key K, load func(context.Context) (V, int64, error)) (V, func(), error) {
	for {
		c.mu.Lock()
		if e, ok := c.items[key]; ok {
			c.order.MoveToFront(e)
			it := e.Value.(*cacheItem[K, V])
			it.refs++
			c.mu.Unlock()
			return it.val, func() { c.done(it) }, nil
		}
		call, ok := c.inflight[key]
		if !ok {
			call = &cacheCall[V]{done: make(chan struct{})}
			c.inflight[key] = call
			go c.fill(context.WithoutCancel(ctx), key, call, load)
		}
		c.mu.Unlock()
		select {
		case <-call.done:
		case <-ctx.Done():
			var zero V
			return zero, nil, ctx.Err()
		}
		if call.dropped {
			continue
		}
		if call.err != nil || !call.cached {
			// Nobody recycles a value the cache never held.
			return call.val, func() {}, call.err
		}
		// The value went into the cache: take a reference there, or, if
		// it was evicted (and maybe recycled) already, load it again.
	}
}

func (c *cache[K, V]) done(it *cacheItem[K, V]) {
	c.mu.Lock()
	defer c.mu.Unlock()
	it.refs--
	if it.refs == 0 && it.evicted && c.release != nil {
		c.release(it.val)
	}
}

// loading reports whether key is cached or on its way, so that read-ahead
// does not queue work that is already done.
func (c *cache[K, V]) loading(key K) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.has(key)
}

// has reports whether key is cached or on its way; the caller holds mu.
func (c *cache[K, V]) has(key K) bool {
	_, cached := c.items[key]
	_, busy := c.inflight[key]
	return cached || busy
}

// peek returns key's value if it is cached, without loading it or counting
// it as used: for a cache without a release function, whose values stay
// valid after eviction.
func (c *cache[K, V]) peek(key K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[key]; ok {
		return e.Value.(*cacheItem[K, V]).val, true
	}
	var zero V
	return zero, false
}

func (c *cache[K, V]) fill(ctx context.Context, key K, call *cacheCall[V], load func(context.Context) (V, int64, error)) {
	v, size, err := load(ctx)
	c.mu.Lock()
	c.settle(key, call, v, size, err)
	c.mu.Unlock()
}

// settle ends the load of key with its result, caching a value that fits,
// and wakes its waiters; the caller holds mu.
func (c *cache[K, V]) settle(key K, call *cacheCall[V], v V, size int64, err error) {
	call.val, call.err = v, err
	delete(c.inflight, key)
	if err == nil && size <= c.max {
		call.cached = true
		c.items[key] = c.order.PushFront(&cacheItem[K, V]{key: key, val: v, size: size})
		c.used += size
		for c.used > c.max {
			it := c.order.Remove(c.order.Back()).(*cacheItem[K, V])
			delete(c.items, it.key)
			c.used -= it.size
			it.evicted = true
			if it.refs == 0 && c.release != nil {
				c.release(it.val)
			}
		}
	}
	close(call.done)
}

// reservation is a set of keys whose loads one caller runs, together: a
// reader asking for one of them waits for it rather than loading it a
// second time.
type reservation[K comparable, V any] struct {
	c     *cache[K, V]
	keys  []K
	calls map[K]*cacheCall[V] // those not settled yet; under c.mu
}

// reserve takes on the loads of the keys that are neither cached nor being
// loaded. The caller must settle each reserved key with put, or give the
// rest up with drop.
func (c *cache[K, V]) reserve(keys []K) *reservation[K, V] {
	r := &reservation[K, V]{c: c, calls: make(map[K]*cacheCall[V])}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		if c.has(k) {
			continue
		}
		call := &cacheCall[V]{done: make(chan struct{})}
		c.inflight[k] = call
		r.calls[k] = call
		r.keys = append(r.keys, k)
	}
	return r
}

// put settles reserved key with value v of size bytes; a key not reserved
// or settled already is ignored.
func (r *reservation[K, V]) put(key K, v V, size int64) {
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	if call, ok := r.calls[key]; ok {
		delete(r.calls, key)
		r.c.settle(key, call, v, size, nil)
	}
}

// drop gives up the loads of the keys not settled yet: their waiters load
// them themselves, so that a failed batch hands nobody an error that is
// not about the key they asked for.
func (r *reservation[K, V]) drop() {
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	for k, call := range r.calls {
		delete(r.c.inflight, k)
		call.dropped = true
		close(call.done)
	}
	clear(r.calls)
}

// clear evicts everything; values still held are released when done.
func (c *cache[K, V]) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for e := c.order.Front(); e != nil; e = e.Next() {
		it := e.Value.(*cacheItem[K, V])
		it.evicted = true
		if it.refs == 0 && c.release != nil {
			c.release(it.val)
		}
	}
	c.order.Init()
	clear(c.items)
	c.used = 0
}
