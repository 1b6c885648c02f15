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
type cache[K comparable, V any] struct {
	max int64

	mu       sync.Mutex
	used     int64
	order    *list.List // of *cacheItem[K, V], most recently used first
	items    map[K]*list.Element
	inflight map[K]*cacheCall[V]
}

type cacheItem[K comparable, V any] struct {
	key  K
	val  V
	size int64
}

type cacheCall[V any] struct {
	done chan struct{}
	val  V
	err  error
}

func newCache[K comparable, V any](maxBytes int64) *cache[K, V] {
	return &cache[K, V]{max: maxBytes, order: list.New(), items: make(map[K]*list.Element), inflight: make(map[K]*cacheCall[V])}
}

// get returns the value of key, calling load (which reports the value's
// size) when it is neither cached nor being loaded. The load runs detached
// from ctx: another caller may be waiting for it, so one reader being
// interrupted must not fail the others. A caller whose ctx ends stops
// waiting.
func (c *cache[K, V]) get(ctx context.Context, key K, load func(context.Context) (V, int64, error)) (V, error) {
	c.mu.Lock()
	if e, ok := c.items[key]; ok {
		c.order.MoveToFront(e)
		v := e.Value.(*cacheItem[K, V]).val
		c.mu.Unlock()
		return v, nil
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
		return call.val, call.err
	case <-ctx.Done():
		var zero V
		return zero, ctx.Err()
	}
}

// loading reports whether key is cached or on its way, so that read-ahead
// does not queue work that is already done.
func (c *cache[K, V]) loading(key K) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, cached := c.items[key]
	_, busy := c.inflight[key]
	return cached || busy
}

func (c *cache[K, V]) fill(ctx context.Context, key K, call *cacheCall[V], load func(context.Context) (V, int64, error)) {
	v, size, err := load(ctx)
	call.val, call.err = v, err
	c.mu.Lock()
	delete(c.inflight, key)
	if err == nil && size <= c.max {
		c.items[key] = c.order.PushFront(&cacheItem[K, V]{key: key, val: v, size: size})
		c.used += size
		for c.used > c.max {
			last := c.order.Back()
			it := c.order.Remove(last).(*cacheItem[K, V])
			delete(c.items, it.key)
			c.used -= it.size
		}
	}
	c.mu.Unlock()
	close(call.done)
}
