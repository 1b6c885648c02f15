package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestWrappersUnwrapAndFileSaver(t *testing.T) {
	wrappers := map[string]func(Backend) Backend{
		"rate limit":  func(b Backend) Backend { return WithRateLimit(b, 1<<20, 1<<20) },
		"concurrency": func(b Backend) Backend { return WithConcurrency(b, 2) },
	}
	for name, wrap := range wrappers {
		t.Run(name, func(t *testing.T) {
			plain := newFake()
			w := wrap(plain)
			if u, ok := w.(Wrapper); !ok || u.Unwrap() != Backend(plain) {
				t.Error("Unwrap does not return the wrapped backend")
			}
			if _, ok := w.(FileSaver); ok {
				t.Error("wrapper claims FileSaver over a backend that is not one")
			}
			fs := &fakeFileSaver{fakeBackend: newFake()}
			saver, ok := wrap(fs).(FileSaver)
			if !ok {
				t.Fatal("wrapper hides the inner FileSaver")
			}
			if err := saver.SaveFile(t.Context(), "n", "/p"); err != nil || fs.got != "n</p" {
				t.Errorf("SaveFile = %v, inner saw %q", err, fs.got)
			}
		})
	}
}

// TestWrapOrder pins the composition: retry outside the connection limit,
// the connection limit outside the rate limit.
func TestWrapOrder(t *testing.T) {
	inner := newFake()
	b := Wrap(inner, WrapOptions{Retry: &RetryOptions{}, UploadRate: 1 << 20, Connections: 3})
	var chain []string
	for {
		chain = append(chain, fmt.Sprintf("%T", b))
		w, ok := b.(Wrapper)
		if !ok {
			break
		}
		b = w.Unwrap()
	}
	want := "[*remote.retryBackend *remote.concurrencyBackend *remote.rateBackend *remote.fakeBackend]"
	if got := fmt.Sprint(chain); got != want {
		t.Errorf("Wrap built %s; want %s", got, want)
	}
	if b := Wrap(inner, WrapOptions{}); b != Backend(inner) {
		t.Errorf("Wrap with no options = %T; want the backend itself", b)
	}
}

func TestRateLimit(t *testing.T) {
	const rate = 512 << 10
	const size = 320 << 10 // the first 64 KiB burst is free: 256 KiB / 512 KiB/s = 0.5s
	p := bytes.Repeat([]byte{7}, size)
	tests := []struct {
		name string
		up   int64
		down int64
		op   func(t *testing.T, b Backend)
		slow bool
	}{
		{"upload limited", rate, 0, func(t *testing.T, b Backend) { saveAll(t, b, p) }, true},
		{"download limited", 0, rate, func(t *testing.T, b Backend) { loadAll(t, b, size) }, true},
		{"upload limit spares downloads", rate, 0, func(t *testing.T, b Backend) { loadAll(t, b, size) }, false},
		{"download limit spares uploads", 0, rate, func(t *testing.T, b Backend) { saveAll(t, b, p) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inner := newFake()
			inner.objects["x"] = p
			b := WithRateLimit(inner, tt.up, tt.down)
			start := time.Now()
			tt.op(t, b)
			took := time.Since(start)
			if tt.slow && took < 400*time.Millisecond {
				t.Errorf("moved %d bytes at %d B/s in %v; want >= 0.4s", size, rate, took)
			}
			if !tt.slow && took > 300*time.Millisecond {
				t.Errorf("unlimited direction took %v", took)
			}
		})
	}
}

func saveAll(t *testing.T, b Backend, p []byte) {
	t.Helper()
	if err := b.Save(t.Context(), "y", bytes.NewReader(p), int64(len(p))); err != nil {
		t.Fatal(err)
	}
}

func loadAll(t *testing.T, b Backend, want int) {
	t.Helper()
	rc, err := b.Load(t.Context(), "x", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if n, err := io.Copy(io.Discard, rc); err != nil || n != int64(want) {
		t.Fatalf("read %d bytes, %v; want %d", n, err, want)
	}
}

// A cancelled context ends the wait for tokens at once.
func TestRateLimitCancel(t *testing.T) {
	b := WithRateLimit(newFake(), 1024, 0)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	p := make([]byte, 1<<20)
	start := time.Now()
	err := b.Save(ctx, "x", bytes.NewReader(p), int64(len(p)))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Save = %v; want DeadlineExceeded", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("cancelled Save took %v", took)
	}
}

// gateBackend blocks every Save and Stat until gate closes, counting how
// many are in flight at once.
type gateBackend struct {
	*fakeBackend
	gate           chan struct{}
	inFlight, peak atomic.Int32
}

func (g *gateBackend) enter() {
	n := g.inFlight.Add(1)
	for {
		p := g.peak.Load()
		if n <= p || g.peak.CompareAndSwap(p, n) {
			break
		}
	}
	<-g.gate
	g.inFlight.Add(-1)
}

func (g *gateBackend) Save(ctx context.Context, name string, rd io.ReaderAt, size int64) error {
	g.enter()
	return g.fakeBackend.Save(ctx, name, rd, size)
}

func (g *gateBackend) Stat(ctx context.Context, name string) (FileInfo, error) {
	g.enter()
	return g.fakeBackend.Stat(ctx, name)
}

func TestConcurrencyLimit(t *testing.T) {
	g := &gateBackend{fakeBackend: newFake(), gate: make(chan struct{})}
	b := WithConcurrency(g, 2)
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			if i%2 == 0 {
				b.Save(t.Context(), fmt.Sprint(i), bytes.NewReader(nil), 0)
			} else {
				b.Stat(t.Context(), "x")
			}
		})
	}
	// Give every goroutine the chance to get past the limit if it could.
	time.Sleep(100 * time.Millisecond)
	if got := g.inFlight.Load(); got != 2 {
		t.Errorf("%d operations in flight under a limit of 2", got)
	}
	close(g.gate)
	wg.Wait()
	if got := g.peak.Load(); got != 2 {
		t.Errorf("peak of %d operations in flight; want 2", got)
	}
}

// A Load holds its slot until its stream is closed, and a second Close
// does not free a slot that another operation holds.
func TestConcurrencyLoadHoldsSlot(t *testing.T) {
	inner := newFake()
	inner.objects["x"] = []byte("data")
	b := WithConcurrency(inner, 1)
	rc, err := b.Load(t.Context(), "x", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := b.Stat(short, "x"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stat while a stream is open = %v; want to wait for the slot", err)
	}
	rc.Close()
	rc2, err := b.Load(t.Context(), "x", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	rc.Close() // again: must not release rc2's slot
	short2, cancel2 := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel2()
	if _, err := b.Stat(short2, "x"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a second Close of a stream freed another stream's slot (Stat = %v)", err)
	}
	rc2.Close()
	if _, err := b.Stat(t.Context(), "x"); err != nil {
		t.Errorf("Stat after every stream closed = %v", err)
	}
}

// A failed Load gives its slot back.
func TestConcurrencyFailedLoadReleases(t *testing.T) {
	b := WithConcurrency(newFake(), 1)
	for range 3 {
		if _, err := b.Load(t.Context(), "missing", 0, 0); !errors.Is(err, ErrNotExist) {
			t.Fatalf("Load = %v; want ErrNotExist", err)
		}
	}
}

// TestAs finds the backend under any stack of wrappers, and reports its
// absence without a panic.
func TestAs(t *testing.T) {
	plain := newFake()
	w := Wrap(plain, WrapOptions{Retry: &RetryOptions{}, UploadRate: 1 << 20, Connections: 2})
	if got, ok := As[*fakeBackend](w); !ok || got != plain {
		t.Errorf("As through Wrap = %v, %v; want the wrapped backend", got, ok)
	}
	if _, ok := As[*fakeFileSaver](w); ok {
		t.Error("As found a type the stack does not hold")
	}
}
