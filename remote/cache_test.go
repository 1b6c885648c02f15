package remote

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func newCache(t *testing.T, inner Backend, dir string, maxBytes int64) Backend {
	t.Helper()
	b, err := WithCache(inner, CacheOptions{Dir: dir, MaxBytes: maxBytes, MaxRange: 4096,
		Cacheable: func(name string) bool { return strings.HasPrefix(name, "packs/") }})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func cachedFake() *fakeBackend {
	f := newFake()
	for _, name := range []string{"packs/a", "keys/k"} {
		f.objects[name] = bytes.Repeat([]byte(name[len(name)-1:]), 10000)
	}
	return f
}

func read(t *testing.T, b Backend, name string, off, n int64) []byte {
	t.Helper()
	rc, err := b.Load(t.Context(), name, off, n)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	p, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCacheHitsAndBypasses(t *testing.T) {
	tests := []struct {
		name       string
		object     string
		off, n     int64
		innerLoads int // for two identical Loads
	}{
		{"range of a pack", "packs/a", 100, 1000, 1},
		{"whole object", "packs/a", 0, 0, 2},
		{"range above MaxRange", "packs/a", 0, 5000, 2},
		{"range past the end", "packs/a", 9500, 1000, 2},
		{"object not cacheable", "keys/k", 100, 1000, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := cachedFake()
			b := newCache(t, f, t.TempDir(), 1<<20)
			want := f.objects[tt.object][tt.off:]
			if tt.n > 0 {
				want = want[:min(int64(len(want)), tt.n)]
			}
			for range 2 {
				if got := read(t, b, tt.object, tt.off, tt.n); !bytes.Equal(got, want) {
					t.Fatalf("Load returned %d bytes that differ from the %d stored", len(got), len(want))
				}
			}
			if got := f.count("load"); got != tt.innerLoads {
				t.Errorf("%d Loads reached the backend; want %d", got, tt.innerLoads)
			}
		})
	}
}

// The cache stays within MaxBytes, evicting the least recently used range.
func TestCacheEvictsLeastRecentlyUsed(t *testing.T) {
	f := cachedFake()
	dir := t.TempDir()
	b := newCache(t, f, dir, 3000)
	for _, off := range []int64{0, 1000, 2000, 0, 3000} { // the second 0 refreshes it
		read(t, b, "packs/a", off, 1000)
	}
	loads := f.count("load")
	read(t, b, "packs/a", 0, 1000) // recently used: kept
	if f.count("load") != loads {
		t.Error("the most recently used range was evicted")
	}
	read(t, b, "packs/a", 1000, 1000) // least recently used: evicted
	if f.count("load") != loads+1 {
		t.Error("the least recently used range was kept past MaxBytes")
	}
	if files, _ := os.ReadDir(dir); len(files) > 3 {
		t.Errorf("%d files in a cache of three entries' size", len(files))
	}
}

// A later run uses what an earlier one cached, drops damaged entries and
// leftovers of interrupted writes.
func TestCachePersistsAndHeals(t *testing.T) {
	f := cachedFake()
	dir := t.TempDir()
	read(t, newCache(t, f, dir, 1<<20), "packs/a", 0, 1000)
	read(t, newCache(t, f, dir, 1<<20), "packs/a", 1000, 1000)
	if err := os.WriteFile(filepath.Join(dir, "left.tmp"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(dir, cacheFile("packs/a", 1000, 1000)), 10); err != nil {
		t.Fatal(err)
	}
	b := newCache(t, f, dir, 1<<20)
	if _, err := os.Stat(filepath.Join(dir, "left.tmp")); !os.IsNotExist(err) {
		t.Errorf("an interrupted write's temporary file survived (%v)", err)
	}
	loads := f.count("load")
	read(t, b, "packs/a", 0, 1000)
	if f.count("load") != loads {
		t.Error("a range cached by an earlier run was fetched again")
	}
	if got := read(t, b, "packs/a", 1000, 1000); !bytes.Equal(got, f.objects["packs/a"][1000:2000]) || f.count("load") != loads+1 {
		t.Error("a damaged entry was served instead of fetched again")
	}
}
