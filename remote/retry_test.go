package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var errTransient = errors.New("connection reset")

// fakeBackend is a map-backed Backend whose calls can be made to fail. fail
// runs before each call with the operation and its 1-based call number for
// that operation; a non-nil result fails the call. breakAfter, for Load,
// makes the returned stream fail after that many bytes (negative: never).
type fakeBackend struct {
	mu         sync.Mutex
	objects    map[string][]byte
	calls      map[string]int
	loads      []int64 // offsets of every successful Load
	fail       func(op string, call int) error
	breakAfter func(call int) int64
}

func newFake() *fakeBackend {
	return &fakeBackend{objects: map[string][]byte{}, calls: map[string]int{}}
}

func (f *fakeBackend) call(op string) error {
	f.mu.Lock()
	f.calls[op]++
	n := f.calls[op]
	f.mu.Unlock()
	if f.fail != nil {
		return f.fail(op, n)
	}
	return nil
}

func (f *fakeBackend) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

func (f *fakeBackend) Save(ctx context.Context, name string, rd io.ReaderAt, size int64) error {
	p := make([]byte, size)
	// Read before deciding to fail, as a real upload consumes its source
	// before the server's error arrives.
	if _, err := rd.ReadAt(p, 0); err != nil && !(errors.Is(err, io.EOF) && size == 0) {
		f.call("save")
		return err
	}
	if err := f.call("save"); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.objects[name] = p
	return nil
}

func (f *fakeBackend) Load(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	if err := f.call("load"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.objects[name]
	if !ok {
		return nil, ErrNotExist
	}
	if offset > int64(len(p)) {
		return nil, Permanent(errors.New("offset beyond end"))
	}
	p = p[offset:]
	if length > 0 && length < int64(len(p)) {
		p = p[:length]
	}
	f.loads = append(f.loads, offset)
	var rd io.Reader = bytes.NewReader(p)
	if f.breakAfter != nil {
		if n := f.breakAfter(len(f.loads)); n >= 0 && n <= int64(len(p)) {
			rd = io.MultiReader(bytes.NewReader(p[:n]), errReader{errTransient})
		}
	}
	return io.NopCloser(rd), nil
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func (f *fakeBackend) Stat(ctx context.Context, name string) (FileInfo, error) {
	if err := f.call("stat"); err != nil {
		return FileInfo{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.objects[name]
	if !ok {
		return FileInfo{}, ErrNotExist
	}
	return FileInfo{Name: name, Size: int64(len(p))}, nil
}

// List delivers the objects in name order and consults fail after each
// one, so a listing can break midway.
func (f *fakeBackend) List(ctx context.Context, prefix string, fn func(FileInfo) error) error {
	if err := f.call("list"); err != nil {
		return err
	}
	f.mu.Lock()
	names := slices.Sorted(maps.Keys(f.objects))
	f.mu.Unlock()
	for _, n := range names {
		if !strings.HasPrefix(n, prefix) {
			continue
		}
		if err := fn(FileInfo{Name: n, Size: int64(len(f.objects[n]))}); err != nil {
			return err
		}
		if err := f.call("list-item"); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeBackend) Remove(ctx context.Context, name string) error {
	f.mu.Lock()
	_, ok := f.objects[name]
	delete(f.objects, name)
	f.mu.Unlock()
	// Failing after the deletion models a lost reply.
	if err := f.call("remove"); err != nil {
		return err
	}
	if !ok {
		return ErrNotExist
	}
	return nil
}

func (f *fakeBackend) Location() string { return "fake" }
func (f *fakeBackend) Close() error     { return nil }

// fastRetry keeps tests quick while still exercising real sleeps.
func fastRetry() RetryOptions {
	return RetryOptions{
		MaxAttempts:  5,
		InitialDelay: time.Millisecond,
		MaxDelay:     2 * time.Millisecond,
		Logger:       slog.New(slog.DiscardHandler),
	}
}

// failFirst fails the first n calls of op with err.
func failFirst(op string, n int, err error) func(string, int) error {
	return func(o string, call int) error {
		if o == op && call <= n {
			return err
		}
		return nil
	}
}

func TestRetryOperations(t *testing.T) {
	permanent := Permanent(errors.New("disk full"))
	tests := []struct {
		name      string
		op        string
		fail      func(string, int) error
		wantCalls int
		wantErr   error // nil: success
	}{
		{"save transient then ok", "save", failFirst("save", 2, errTransient), 3, nil},
		{"save permanent not retried", "save", failFirst("save", 9, permanent), 1, permanent},
		{"save gives up", "save", failFirst("save", 99, errTransient), 5, errTransient},
		{"stat transient then ok", "stat", failFirst("stat", 4, errTransient), 5, nil},
		{"stat not-exist not retried", "stat-missing", nil, 1, ErrNotExist},
		{"load open transient then ok", "load", failFirst("load", 1, errTransient), 2, nil},
		{"load not-exist not retried", "load-missing", nil, 1, ErrNotExist},
		{"remove transient then ok", "remove", failFirst("remove", 1, errTransient), 2, nil},
		{"remove permanent not retried", "remove", failFirst("remove", 9, permanent), 1, permanent},
		{"list transient then ok", "list", failFirst("list", 2, errTransient), 3, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			f.objects["obj"] = []byte("content")
			f.fail = tt.fail
			b := WithRetry(f, fastRetry())
			ctx := t.Context()
			var err error
			op := tt.op
			switch tt.op {
			case "save":
				err = b.Save(ctx, "new", strings.NewReader("hello"), 5)
				if err == nil && string(f.objects["new"]) != "hello" {
					t.Errorf("saved %q; want hello", f.objects["new"])
				}
			case "stat":
				_, err = b.Stat(ctx, "obj")
			case "stat-missing":
				op = "stat"
				_, err = b.Stat(ctx, "missing")
			case "load", "load-missing":
				name := map[string]string{"load": "obj", "load-missing": "missing"}[tt.op]
				op = "load"
				var rc io.ReadCloser
				rc, err = b.Load(ctx, name, 0, 0)
				if err == nil {
					got, _ := io.ReadAll(rc)
					rc.Close()
					if string(got) != "content" {
						t.Errorf("loaded %q", got)
					}
				}
			case "remove":
				err = b.Remove(ctx, "obj")
			case "list":
				n := 0
				err = b.List(ctx, "", func(FileInfo) error { n++; return nil })
				if err == nil && n != 1 {
					t.Errorf("fn called %d times; want 1", n)
				}
			}
			if tt.wantErr == nil && err != nil {
				t.Fatalf("err = %v; want success", err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v; want %v", err, tt.wantErr)
			}
			if got := f.count(op); got != tt.wantCalls {
				t.Errorf("%s called %d times; want %d", op, got, tt.wantCalls)
			}
		})
	}
}

func TestRetryStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	f := newFake()
	f.fail = func(op string, call int) error {
		if call == 2 {
			cancel()
		}
		return errTransient
	}
	opts := fastRetry()
	opts.MaxAttempts = 100
	_, err := WithRetry(f, opts).Stat(ctx, "x")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v; want context.Canceled", err)
	}
	if got := f.count("stat"); got != 2 {
		t.Errorf("stat called %d times; want 2 (no retry after cancel)", got)
	}
}

func TestRetryCancelDuringBackoff(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	f := newFake()
	f.fail = failFirst("stat", 99, errTransient)
	opts := fastRetry()
	opts.InitialDelay, opts.MaxDelay, opts.MaxElapsed = time.Hour, time.Hour, 10*time.Hour
	start := time.Now()
	_, err := WithRetry(f, opts).Stat(ctx, "x")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v; want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("returned after %v; the backoff sleep ignored the context", d)
	}
}

func TestRetryMaxElapsed(t *testing.T) {
	f := newFake()
	f.fail = failFirst("stat", 1<<30, errTransient)
	opts := fastRetry()
	opts.MaxAttempts = 1 << 30
	opts.InitialDelay, opts.MaxDelay = 5*time.Millisecond, 5*time.Millisecond
	opts.MaxElapsed = 50 * time.Millisecond
	_, err := WithRetry(f, opts).Stat(t.Context(), "x")
	if !errors.Is(err, errTransient) {
		t.Errorf("err = %v; want the transient error", err)
	}
	if n := f.count("stat"); n < 2 || n > 50 {
		t.Errorf("stat called %d times; want a few (retried, then stopped by MaxElapsed)", n)
	}
}

func TestRetrySaveResendsFromStart(t *testing.T) {
	f := newFake()
	f.fail = failFirst("save", 2, errTransient)
	src := &countingReaderAt{r: bytes.NewReader(bytes.Repeat([]byte("abc"), 1000))}
	if err := WithRetry(f, fastRetry()).Save(t.Context(), "x", src, 3000); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f.objects["x"], bytes.Repeat([]byte("abc"), 1000)) {
		t.Error("stored content differs from the source")
	}
	if !slices.Equal(src.offsets, []int64{0, 0, 0}) {
		t.Errorf("reads at offsets %v; want each of 3 attempts to start at 0", src.offsets)
	}
}

type countingReaderAt struct {
	r       io.ReaderAt
	offsets []int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	c.offsets = append(c.offsets, off)
	return c.r.ReadAt(p, off)
}

func TestRetrySaveSourceFailureNotRetried(t *testing.T) {
	f := newFake()
	srcErr := errors.New("bad sector")
	err := WithRetry(f, fastRetry()).Save(t.Context(), "x", errReaderAt{srcErr}, 10)
	if !errors.Is(err, srcErr) {
		t.Errorf("err = %v; want the source's error", err)
	}
	if n := f.count("save"); n != 1 {
		t.Errorf("save called %d times; a failing source must not be retried", n)
	}
}

type errReaderAt struct{ err error }

func (r errReaderAt) ReadAt([]byte, int64) (int, error) { return 0, r.err }

func TestRetryRemoveLostReply(t *testing.T) {
	f := newFake()
	f.objects["x"] = []byte("x")
	f.fail = failFirst("remove", 1, errTransient)
	if err := WithRetry(f, fastRetry()).Remove(t.Context(), "x"); err != nil {
		t.Errorf("Remove = %v; the first attempt deleted it, so want nil", err)
	}
	if _, ok := f.objects["x"]; ok {
		t.Error("object still present")
	}
}

func TestRetryListResumesWithoutDuplicates(t *testing.T) {
	f := newFake()
	for i := range 4 {
		f.objects[fmt.Sprintf("o%d", i)] = []byte{byte(i)}
	}
	// The first listing breaks after delivering two names.
	f.fail = func(op string, call int) error {
		if op == "list-item" && call == 2 {
			return errTransient
		}
		return nil
	}
	var got []string
	if err := WithRetry(f, fastRetry()).List(t.Context(), "", func(fi FileInfo) error {
		got = append(got, fi.Name)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"o0", "o1", "o2", "o3"}; !slices.Equal(got, want) {
		t.Errorf("fn saw %q; want each name once: %q", got, want)
	}
	if n := f.count("list"); n != 2 {
		t.Errorf("list called %d times; want 2", n)
	}
}

func TestRetryListCallbackErrorNotRetried(t *testing.T) {
	f := newFake()
	f.objects["a"], f.objects["b"] = []byte("a"), []byte("b")
	stop := errors.New("stop")
	err := WithRetry(f, fastRetry()).List(t.Context(), "", func(FileInfo) error { return stop })
	if err != stop {
		t.Errorf("List = %v; want fn's error unchanged", err)
	}
	if IsPermanent(err) {
		t.Error("fn's error came back marked permanent")
	}
	if n := f.count("list"); n != 1 {
		t.Errorf("list called %d times; want 1", n)
	}
}

func TestRetryLoadResumesMidStream(t *testing.T) {
	obj := make([]byte, 100_000)
	for i := range obj {
		obj[i] = byte(i * 7)
	}
	tests := []struct {
		name           string
		offset, length int64
		breakAfter     map[int]int64 // Load call → bytes its stream delivers before failing
		openFails      int           // Load calls that fail before a stream is returned
		wantLoads      []int64
	}{
		{
			name: "range breaks twice", offset: 1000, length: 50_000,
			breakAfter: map[int]int64{1: 7000, 2: 3000},
			wantLoads:  []int64{1000, 8000, 11000},
		},
		{
			name: "to end breaks once", offset: 90_000, length: 0,
			breakAfter: map[int]int64{1: 4000},
			wantLoads:  []int64{90_000, 94_000},
		},
		{
			name: "reopen fails before resuming", offset: 0, length: 0,
			breakAfter: map[int]int64{1: 10},
			openFails:  2,
			wantLoads:  []int64{0, 10},
		},
		{
			name: "break right after the last wanted byte", offset: 0, length: 500,
			breakAfter: map[int]int64{1: 500},
			wantLoads:  []int64{0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			f.objects["pack"] = obj
			f.breakAfter = func(call int) int64 {
				if n, ok := tt.breakAfter[call]; ok {
					return n
				}
				return -1
			}
			b := WithRetry(f, fastRetry())
			rc, err := b.Load(t.Context(), "pack", tt.offset, tt.length)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			f.fail = func(op string, call int) error {
				if op == "load" && call >= 2 && call < 2+tt.openFails {
					return errTransient
				}
				return nil
			}
			got, err := io.ReadAll(rc)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			end := int64(len(obj))
			if tt.length > 0 {
				end = tt.offset + tt.length
			}
			if !bytes.Equal(got, obj[tt.offset:end]) {
				t.Errorf("read %d bytes that differ from the %d wanted", len(got), end-tt.offset)
			}
			if !slices.Equal(f.loads, tt.wantLoads) {
				t.Errorf("Loads at offsets %v; want %v", f.loads, tt.wantLoads)
			}
		})
	}
}

func TestRetryLoadGivesUpWithoutProgress(t *testing.T) {
	f := newFake()
	f.objects["pack"] = make([]byte, 100)
	f.breakAfter = func(int) int64 { return 0 }
	rc, err := WithRetry(f, fastRetry()).Load(t.Context(), "pack", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.ReadAll(rc); !errors.Is(err, errTransient) {
		t.Errorf("read error = %v; want the stream's error after giving up", err)
	}
	if n := f.count("load"); n != 5 {
		t.Errorf("Load called %d times; want MaxAttempts = 5", n)
	}
}

func TestRetryUnwrapAndFileSaver(t *testing.T) {
	plain := newFake()
	b := WithRetry(plain, RetryOptions{})
	if u, ok := b.(interface{ Unwrap() Backend }); !ok || u.Unwrap() != Backend(plain) {
		t.Error("Unwrap does not return the wrapped backend")
	}
	if _, ok := b.(FileSaver); ok {
		t.Error("wrapper claims FileSaver over a backend that is not one")
	}
	fs := &fakeFileSaver{fakeBackend: newFake()}
	saver, ok := WithRetry(fs, RetryOptions{}).(FileSaver)
	if !ok {
		t.Fatal("wrapper hides the inner FileSaver")
	}
	if err := saver.SaveFile(t.Context(), "n", "/p"); err != nil || fs.got != "n</p" {
		t.Errorf("SaveFile = %v, inner saw %q", err, fs.got)
	}
}

type fakeFileSaver struct {
	*fakeBackend
	got string
}

func (f *fakeFileSaver) SaveFile(_ context.Context, name, path string) error {
	f.got = name + "<" + path
	return nil
}

func TestDelay(t *testing.T) {
	opts := RetryOptions{InitialDelay: 100 * time.Millisecond, MaxDelay: time.Second}.withDefaults()
	tests := []struct {
		failures int
		max      time.Duration
	}{
		{1, 100 * time.Millisecond},
		{2, 200 * time.Millisecond},
		{3, 400 * time.Millisecond},
		{4, 800 * time.Millisecond},
		{5, time.Second},
		{60, time.Second},
	}
	for _, tt := range tests {
		for range 50 {
			if d := delay(opts, tt.failures); d < tt.max/2 || d > tt.max {
				t.Errorf("delay after %d failures = %v; want in [%v, %v]", tt.failures, d, tt.max/2, tt.max)
			}
		}
	}
}

func TestPermanent(t *testing.T) {
	base := errors.New("x")
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", base, false},
		{"marked", Permanent(base), true},
		{"wrapped mark", fmt.Errorf("ctx: %w", Permanent(base)), true},
		{"joined", errors.Join(errTransient, Permanent(base)), true},
	}
	for _, tt := range tests {
		if got := IsPermanent(tt.err); got != tt.want {
			t.Errorf("%s: IsPermanent = %v; want %v", tt.name, got, tt.want)
		}
	}
	if Permanent(nil) != nil {
		t.Error("Permanent(nil) != nil")
	}
	if !errors.Is(Permanent(base), base) {
		t.Error("Permanent hides the error it marks")
	}
}

func TestCheckName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"config", true},
		{"packs/ab/ab01", true},
		{"a/b/c/d/e", true},
		{"", false},
		{"/etc/passwd", false},
		{"../x", false},
		{"a/../b", false},
		{"a/./b", false},
		{"a//b", false},
		{"a/", false},
		{".tmp-1", false},
		{"a\\b", false},
		{"a\x00", false},
	}
	for _, tt := range tests {
		err := CheckName(tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("CheckName(%q) = %v; want ok=%v", tt.name, err, tt.ok)
		}
		if err != nil && (!errors.Is(err, ErrInvalidName) || !IsPermanent(err)) {
			t.Errorf("CheckName(%q) = %v; want a permanent ErrInvalidName", tt.name, err)
		}
	}
	prefixes := []struct {
		prefix string
		ok     bool
	}{
		{"", true}, {"packs/", true}, {"packs/ab", true}, {"snap", true},
		{"/", false}, {"../", false}, {"a//", false}, {"a\\", false},
	}
	for _, tt := range prefixes {
		if err := CheckPrefix(tt.prefix); (err == nil) != tt.ok {
			t.Errorf("CheckPrefix(%q) = %v; want ok=%v", tt.prefix, err, tt.ok)
		}
	}
}
