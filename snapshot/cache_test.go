package snapshot

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
)

type cachedVal struct {
	key      int
	releases atomic.Int32
}

// testCache holds values of size 1 up to max and records what it releases.
func testCache(max int64) (*cache[int, *cachedVal], *[]int) {
	var mu sync.Mutex
	var released []int
	c := newCache[int, *cachedVal](max, func(v *cachedVal) {
		v.releases.Add(1)
		mu.Lock()
		released = append(released, v.key)
		mu.Unlock()
	})
	return c, &released
}

func loadVal(key int) func(context.Context) (*cachedVal, int64, error) {
	return func(context.Context) (*cachedVal, int64, error) { return &cachedVal{key: key}, 1, nil }
}

// TestCacheReleasesOnlyUnheldValues evicts a value a caller still holds:
// it is released when that caller is done, not before; one nobody holds is
// released at eviction.
func TestCacheReleasesOnlyUnheldValues(t *testing.T) {
	c, released := testCache(2)
	ctx := context.Background()
	v1, done1, err := c.acquire(ctx, 1, loadVal(1))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []int{2, 3} { // 3 evicts 1, the least recently used
		if _, err := c.get(ctx, k, loadVal(k)); err != nil {
			t.Fatal(err)
		}
	}
	if len(*released) != 0 {
		t.Fatalf("released %v while 1 is held", *released)
	}
	done1()
	if !slices.Equal(*released, []int{1}) || v1.releases.Load() != 1 {
		t.Fatalf("after done: released %v, want [1] once", *released)
	}
	if _, err := c.get(ctx, 4, loadVal(4)); err != nil { // evicts 2
		t.Fatal(err)
	}
	if !slices.Equal(*released, []int{1, 2}) {
		t.Fatalf("released %v, want [1 2]", *released)
	}
}

// TestCacheConcurrentRelease has many callers acquire keys through a cache
// far smaller than the key space: no value is released while a caller
// holds it, and none twice.
func TestCacheConcurrentRelease(t *testing.T) {
	c, _ := testCache(3)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				key := (i*7 + g) % 10
				v, done, err := c.acquire(context.Background(), key, loadVal(key))
				if err != nil {
					t.Error(err)
					return
				}
				if v.key != key || v.releases.Load() != 0 {
					t.Errorf("got value %d released %d times for key %d", v.key, v.releases.Load(), key)
				}
				done()
				if n := v.releases.Load(); n > 1 {
					t.Errorf("value %d released %d times", key, n)
				}
			}
		})
	}
	wg.Wait()
}
