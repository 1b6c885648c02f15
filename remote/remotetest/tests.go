package remotetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"testing"

	"github.com/hindsight-backup/hindsight/remote"
)

func testSaveLoad(t *testing.T, b remote.Backend) {
	for _, size := range []int{0, 1, 1<<20 + 7} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			name := fmt.Sprintf("data/obj-%d", size)
			want := data(uint64(size), size)
			save(t, b, name, want)
			fi, err := b.Stat(t.Context(), name)
			if err != nil {
				t.Fatalf("Stat: %v", err)
			}
			if fi.Name != name || fi.Size != int64(size) {
				t.Errorf("Stat = %+v; want name %q size %d", fi, name, size)
			}
			if got := load(t, b, name, 0, 0); !bytes.Equal(got, want) {
				t.Errorf("Load returned %d bytes that differ from the %d saved", len(got), len(want))
			}
			if got := listAll(t, b, name); got[name] != int64(size) || len(got) != 1 {
				t.Errorf("List(%q) = %v; want just it with size %d", name, got, size)
			}
		})
	}
}

func testRangedLoad(t *testing.T, b remote.Backend) {
	const size = 1000
	obj := data(1, size)
	save(t, b, "ranged", obj)
	tests := []struct {
		name           string
		offset, length int64
		want           []byte
	}{
		{"whole", 0, 0, obj},
		{"whole negative length", 0, -1, obj},
		{"exact length", 0, size, obj},
		{"head", 0, 10, obj[:10]},
		{"middle", 400, 200, obj[400:600]},
		{"tail to end", 990, 0, obj[990:]},
		{"last byte", size - 1, 1, obj[size-1:]},
		{"offset at end", size, 0, nil},
		{"offset at end with length", size, 5, nil},
		{"length past end is cut short", 990, 100, obj[990:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := load(t, b, "ranged", tt.offset, tt.length)
			if !bytes.Equal(got, tt.want) {
				t.Errorf("Load(%d, %d) = %d bytes; want %d bytes %x…", tt.offset, tt.length, len(got), len(tt.want), tt.want[:min(len(tt.want), 4)])
			}
		})
	}
}

func testLoadOffsetBeyondEnd(t *testing.T, b remote.Backend) {
	save(t, b, "short", data(2, 10))
	rc, err := b.Load(t.Context(), "short", 11, 0)
	if err == nil {
		rc.Close()
		t.Fatal("Load at offset 11 of a 10-byte object succeeded; want an error")
	}
	if errors.Is(err, remote.ErrNotExist) {
		t.Errorf("Load beyond end = %v; the object exists, so not ErrNotExist", err)
	}
}

func testList(t *testing.T, b remote.Backend) {
	objects := map[string]int{
		"keys/k1":        11,
		"snapshots/s1":   12,
		"snapshots/s2":   13,
		"packs/ab/ab01":  14,
		"packs/ab/ab02":  15,
		"packs/abc/abc1": 16,
		"packs/b1/b1ff":  17,
		"packsx/p":       18,
	}
	for name, size := range objects {
		save(t, b, name, data(uint64(size), size))
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{"", slices.Collect(maps.Keys(objects))},
		{"packs/", []string{"packs/ab/ab01", "packs/ab/ab02", "packs/abc/abc1", "packs/b1/b1ff"}},
		{"packs", []string{"packs/ab/ab01", "packs/ab/ab02", "packs/abc/abc1", "packs/b1/b1ff", "packsx/p"}},
		{"packs/ab", []string{"packs/ab/ab01", "packs/ab/ab02", "packs/abc/abc1"}},
		{"packs/ab/", []string{"packs/ab/ab01", "packs/ab/ab02"}},
		{"packs/ab/ab0", []string{"packs/ab/ab01", "packs/ab/ab02"}},
		{"packs/ab/ab01", []string{"packs/ab/ab01"}},
		{"snap", []string{"snapshots/s1", "snapshots/s2"}},
		{"snapshots/", []string{"snapshots/s1", "snapshots/s2"}},
		{"nothing/", nil},
		{"packs/zz/", nil},
		{"packs/ab/ab01x", nil},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.prefix), func(t *testing.T) {
			got := listAll(t, b, tt.prefix)
			names := slices.Sorted(maps.Keys(got))
			want := slices.Sorted(slices.Values(tt.want))
			if !slices.Equal(names, want) {
				t.Fatalf("List(%q) = %q; want %q", tt.prefix, names, want)
			}
			for name, size := range got {
				if size != int64(objects[name]) {
					t.Errorf("List(%q) size of %q = %d; want %d", tt.prefix, name, size, objects[name])
				}
			}
		})
	}
}

func testListEmpty(t *testing.T, b remote.Backend) {
	for _, prefix := range []string{"", "packs/", "x"} {
		if got := listAll(t, b, prefix); len(got) != 0 {
			t.Errorf("List(%q) on an empty backend = %v", prefix, got)
		}
	}
}

func testListStopsOnError(t *testing.T, b remote.Backend) {
	for i := range 5 {
		save(t, b, fmt.Sprintf("stop/%d", i), data(uint64(i), 3))
	}
	stop := errors.New("stop here")
	calls := 0
	err := b.List(t.Context(), "stop/", func(remote.FileInfo) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) {
		t.Errorf("List error = %v; want the callback's error", err)
	}
	if calls != 1 {
		t.Errorf("callback ran %d times after returning an error; want 1", calls)
	}
}

func testRemove(t *testing.T, b remote.Backend) {
	save(t, b, "rm/a", data(3, 100))
	save(t, b, "rm/b", data(4, 100))
	if err := b.Remove(t.Context(), "rm/a"); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	assertAbsent(t, b, "rm/a")
	if err := b.Remove(t.Context(), "rm/a"); !errors.Is(err, remote.ErrNotExist) {
		t.Errorf("second Remove = %v; want ErrNotExist", err)
	}
	if got := load(t, b, "rm/b", 0, 0); !bytes.Equal(got, data(4, 100)) {
		t.Error("removing rm/a damaged rm/b")
	}
	// Names are content addresses: a removed pack may legitimately come back.
	save(t, b, "rm/a", data(3, 100))
	if got := load(t, b, "rm/a", 0, 0); !bytes.Equal(got, data(3, 100)) {
		t.Error("saving a removed name again did not restore it")
	}
}

func testMissing(t *testing.T, b remote.Backend) {
	save(t, b, "dir/obj", data(5, 10))
	for _, name := range []string{"missing", "nodir/sub/x", "dir/other", "dir"} {
		t.Run(name, func(t *testing.T) {
			assertAbsent(t, b, name)
			if err := b.Remove(t.Context(), name); !errors.Is(err, remote.ErrNotExist) {
				t.Errorf("Remove(%q) = %v; want ErrNotExist", name, err)
			}
		})
	}
}

func testOverwrite(t *testing.T, b remote.Backend) {
	p := data(6, 5000)
	save(t, b, "same/x", p)
	save(t, b, "same/x", p)
	if got := load(t, b, "same/x", 0, 0); !bytes.Equal(got, p) {
		t.Error("content changed after saving the same bytes twice")
	}
	if got := listAll(t, b, ""); len(got) != 1 || got["same/x"] != 5000 {
		t.Errorf("List = %v; want only same/x of 5000 bytes", got)
	}
}

func testFailedOverwriteKeepsOld(t *testing.T, b remote.Backend) {
	old := data(7, 3000)
	save(t, b, "keep/x", old)
	bad := &failingReaderAt{p: data(8, 3000), n: 1000, err: errors.New("disk read error")}
	if err := b.Save(t.Context(), "keep/x", bad, 3000); err == nil {
		t.Fatal("Save with a failing reader succeeded")
	}
	if got := load(t, b, "keep/x", 0, 0); !bytes.Equal(got, old) {
		t.Errorf("after a failed overwrite Load = %d bytes; want the old 3000 bytes intact", len(got))
	}
	if got := listAll(t, b, ""); len(got) != 1 {
		t.Errorf("List = %v; want only keep/x", got)
	}
}

func testConcurrentSaves(t *testing.T, b remote.Backend) {
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		// Several goroutines share each new directory, so that creating
		// directories races as well as writing objects.
		name := fmt.Sprintf("concurrent/%d/%d", i%4, i)
		p := data(uint64(100+i), 64<<10+i)
		wg.Go(func() {
			if err := b.Save(t.Context(), name, bytes.NewReader(p), int64(len(p))); err != nil {
				errs <- fmt.Errorf("Save(%q): %w", name, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := listAll(t, b, "concurrent/"); len(got) != n {
		t.Errorf("List found %d objects; want %d", len(got), n)
	}
	for i := range n {
		name := fmt.Sprintf("concurrent/%d/%d", i%4, i)
		if got := load(t, b, name, 0, 0); !bytes.Equal(got, data(uint64(100+i), 64<<10+i)) {
			t.Errorf("%s: content differs from what was saved", name)
		}
	}
}

func testReaderFailsMidway(t *testing.T, b remote.Backend) {
	p := data(9, 1<<20+7)
	tests := []struct {
		name  string
		after int64
	}{
		{"at start", 0},
		{"midway", 300_000},
		{"one byte short", 1<<20 + 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rd := &failingReaderAt{p: p, n: tt.after, err: errors.New("injected read failure")}
			if err := b.Save(t.Context(), "fail/x", rd, int64(len(p))); err == nil {
				t.Fatal("Save with a failing reader succeeded")
			}
			assertAbsent(t, b, "fail/x")
			assertEmpty(t, b)
		})
	}
}

func testShortReader(t *testing.T, b remote.Backend) {
	tests := []struct {
		name     string
		have     int
		declared int64
	}{
		{"empty source", 0, 10},
		{"half", 500, 1000},
		{"one byte short of a large object", 1 << 20, 1<<20 + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rd := bytes.NewReader(data(10, tt.have))
			if err := b.Save(t.Context(), "short/x", rd, tt.declared); err == nil {
				t.Fatalf("Save of %d bytes declared as %d succeeded", tt.have, tt.declared)
			}
			assertAbsent(t, b, "short/x")
			assertEmpty(t, b)
		})
	}
}

func testContextCancel(t *testing.T, b remote.Backend) {
	p := data(11, 4<<20+1)
	tests := []struct {
		name string
		rd   func(cancel func()) io.ReaderAt
		pre  bool
	}{
		{"before save", func(func()) io.ReaderAt { return bytes.NewReader(p) }, true},
		{"during save", func(cancel func()) io.ReaderAt {
			return &cancellingReaderAt{r: bytes.NewReader(p), cancel: cancel}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tt.pre {
				cancel()
			}
			err := b.Save(ctx, "cancel/x", tt.rd(cancel), int64(len(p)))
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Save with a cancelled context = %v; want context.Canceled", err)
			}
			assertAbsent(t, b, "cancel/x")
			assertEmpty(t, b)
		})
	}
}

func testDeepNames(t *testing.T, b remote.Backend) {
	deep := "a/b/c/d/e/f/g/h/i/j/obj"
	p := data(12, 77)
	save(t, b, deep, p)
	save(t, b, "a/b/c/side", data(13, 5))
	if got := load(t, b, deep, 70, 0); !bytes.Equal(got, p[70:]) {
		t.Errorf("ranged Load of deep name = %x; want %x", got, p[70:])
	}
	got := slices.Sorted(maps.Keys(listAll(t, b, "a/b/c/")))
	if want := []string{deep, "a/b/c/side"}; !slices.Equal(got, want) {
		t.Errorf("List(a/b/c/) = %q; want %q", got, want)
	}
	if err := b.Remove(t.Context(), deep); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	assertAbsent(t, b, deep)
}

func testInvalidNames(t *testing.T, b remote.Backend) {
	names := []string{
		"", "/abs", "/", "../x", "a/../../b", "..", ".", "a/./b", "a//b",
		"a/", ".hidden", "a/.tmp-123", "a\\b", "a\x00b",
	}
	ctx := t.Context()
	for _, name := range names {
		t.Run(fmt.Sprintf("%q", name), func(t *testing.T) {
			ops := map[string]error{
				"Save":   b.Save(ctx, name, bytes.NewReader([]byte("x")), 1),
				"Remove": b.Remove(ctx, name),
			}
			_, ops["Stat"] = b.Stat(ctx, name)
			rc, err := b.Load(ctx, name, 0, 0)
			if err == nil {
				rc.Close()
			}
			ops["Load"] = err
			for op, err := range ops {
				if !errors.Is(err, remote.ErrInvalidName) {
					t.Errorf("%s(%q) = %v; want ErrInvalidName", op, name, err)
				}
			}
		})
	}
	for _, prefix := range []string{"/", "../", "a//b", "./x"} {
		err := b.List(ctx, prefix, func(remote.FileInfo) error { return nil })
		if !errors.Is(err, remote.ErrInvalidName) {
			t.Errorf("List(%q) = %v; want ErrInvalidName", prefix, err)
		}
	}
	assertEmpty(t, b)
}
