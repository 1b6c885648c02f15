package snapshot

import (
	"context"
	"errors"
	"fmt"
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

// TestCacheClear empties the cache: values nobody holds are released at
// once, a held one when its holder is done, each exactly once, and the
// cache then loads afresh.
func TestCacheClear(t *testing.T) {
	ctx := context.Background()
	c, released := testCache(10)
	for k := range 3 {
		if _, err := c.get(ctx, k, loadVal(k)); err != nil {
			t.Fatal(err)
		}
	}
	held, done, err := c.acquire(ctx, 1, loadVal(1))
	if err != nil {
		t.Fatal(err)
	}
	c.clear()
	if got := slices.Sorted(slices.Values(*released)); !slices.Equal(got, []int{0, 2}) {
		t.Errorf("released %v on clear, want [0 2]", got)
	}
	done()
	if held.releases.Load() != 1 {
		t.Errorf("the held value was released %d times after done, want 1", held.releases.Load())
	}
	if c.loading(0) || c.used != 0 {
		t.Errorf("after clear: key 0 cached %v, %d bytes used", c.loading(0), c.used)
	}
	v, err := c.get(ctx, 0, loadVal(0))
	if err != nil || v.releases.Load() != 0 {
		t.Errorf("loading again after clear: %v, released %d times", err, v.releases.Load())
	}
}

// waitFor has n callers get key from c, loading it with load, and returns
// once all of them have started; each one's result is sent to got.
func waitFor(c *cache[int, *cachedVal], key, n int, load func(context.Context) (*cachedVal, int64, error)) <-chan error {
	got := make(chan error, n)
	var started sync.WaitGroup
	started.Add(n)
	defer started.Wait()
	for range n {
		go func() {
			started.Done()
			v, err := c.get(context.Background(), key, load)
			if err == nil && (v == nil || v.key != key) {
				err = fmt.Errorf("got value %+v for key %d", v, key)
			}
			got <- err
		}()
	}
	return got
}

// TestReservationPut settles reserved keys: callers waiting for them get
// the batch's values without loading them, and keys cached or being
// loaded already are not reserved again.
func TestReservationPut(t *testing.T) {
	c, _ := testCache(10)
	if _, err := c.get(context.Background(), 0, loadVal(0)); err != nil {
		t.Fatal(err)
	}
	res := c.reserve([]int{0, 1, 2})
	if !slices.Equal(res.keys, []int{1, 2}) {
		t.Fatalf("reserved %v, want [1 2]", res.keys)
	}
	if again := c.reserve([]int{1, 2}); len(again.keys) != 0 {
		t.Fatalf("reserved %v while a batch holds them", again.keys)
	}
	var loads atomic.Int32
	load := func(ctx context.Context) (*cachedVal, int64, error) {
		loads.Add(1)
		return loadVal(1)(ctx)
	}
	got := waitFor(c, 1, 4, load)
	res.put(1, &cachedVal{key: 1}, 1)
	for range 4 {
		if err := <-got; err != nil {
			t.Error(err)
		}
	}
	res.drop()
	if n := loads.Load(); n != 0 {
		t.Errorf("waiters loaded the reserved key %d times, want 0", n)
	}
	if !c.loading(1) || c.loading(2) {
		t.Errorf("after drop: 1 cached %v (want true), 2 loading %v (want false)", c.loading(1), c.loading(2))
	}
}

// TestReservationDrop gives up a batch that failed: its waiters load the
// key themselves, one load for all of them, and get that load's result,
// not an error of the batch.
func TestReservationDrop(t *testing.T) {
	c, _ := testCache(10)
	res := c.reserve([]int{1})
	var loads atomic.Int32
	errMissing := errors.New("missing")
	load := func(context.Context) (*cachedVal, int64, error) {
		loads.Add(1)
		return nil, 0, errMissing
	}
	got := waitFor(c, 1, 4, load)
	res.drop()
	for range 4 {
		if err := <-got; !errors.Is(err, errMissing) {
			t.Errorf("waiter got %v, want its own load's error", err)
		}
	}
	if n := loads.Load(); n < 1 || n > 4 {
		t.Errorf("%d loads for 4 waiters", n)
	}
	res.put(1, &cachedVal{key: 1}, 1) // settled by drop: ignored
	if c.loading(1) {
		t.Error("a put after drop cached the key")
	}
}
