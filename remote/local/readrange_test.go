package local

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"github.com/cockroachdb/pebble/v2/vfs"
	"golang.org/x/sys/unix"

	"github.com/hindsight-backup/hindsight/remote"
)

// TestReadRange reads ranges of an object on disk and in memory, cached
// and not, into buffers large enough and too small, and checks the bytes,
// where they landed, and that a sparse read of an uncached range left the
// page cache alone.
func TestReadRange(t *testing.T) {
	dir := t.TempDir()
	disk, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	const name = "packs/ab/abcd"
	p := data(5, 1<<20+123)
	sparse := remote.WithSparseReads(context.Background())
	for _, b := range []*Backend{disk, create(t, vfs.NewMem(), "/repo")} {
		save(t, b, name, p)
		tests := []struct {
			name      string
			ctx       context.Context
			off, n    int64
			buf       int
			uncached  bool
			wantInBuf bool
		}{
			{"sparse, uncached, unaligned", sparse, 4097, 300_000, 300_000 + remote.RangeSlack, true, true},
			{"sparse, uncached, to the end", sparse, 1 << 19, 1<<19 + 123, 1<<20 + remote.RangeSlack, true, true},
			{"sparse, cached", sparse, 10, 5000, 5000 + remote.RangeSlack, false, true},
			{"sparse, small buffer", sparse, 10, 5000, 100, true, false},
			{"plain", context.Background(), 4097, 300_000, 300_000, true, true},
		}
		for _, tc := range tests {
			path := filepath.Join(dir, name)
			if b == disk {
				f, err := os.Open(path)
				if err != nil {
					t.Fatal(err)
				}
				if tc.uncached {
					err = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
				} else {
					_, err = io.Copy(io.Discard, f)
				}
				f.Close()
				if err != nil {
					t.Fatal(err)
				}
			}
			buf := make([]byte, tc.buf)
			got, err := b.ReadRange(tc.ctx, name, tc.off, tc.n, buf)
			if err != nil || !bytes.Equal(got, p[tc.off:tc.off+tc.n]) {
				t.Fatalf("%s: %d bytes, %v", tc.name, len(got), err)
			}
			if in := within(got, buf); in != tc.wantInBuf {
				t.Errorf("%s: bytes in the buffer given: %v, want %v", tc.name, in, tc.wantInBuf)
			}
			if b == disk && tc.uncached && tc.ctx == sparse && tc.wantInBuf && cachedBytes(t, path) != 0 {
				t.Errorf("%s: the read went through the page cache", tc.name)
			}
		}
		if _, err := b.ReadRange(sparse, name, 1<<20, 124, nil); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("range past the end: %v, want io.ErrUnexpectedEOF", err)
		}
		if _, err := b.ReadRange(sparse, "packs/ab/abce", 0, 1, nil); !remote.IsNotExist(err) {
			t.Errorf("missing object: %v, want ErrNotExist", err)
		}
	}
}

// within reports whether p lies in buf's memory.
func within(p, buf []byte) bool {
	start, end := uintptr(unsafe.Pointer(unsafe.SliceData(buf))), uintptr(unsafe.Pointer(unsafe.SliceData(buf)))+uintptr(cap(buf))
	at := uintptr(unsafe.Pointer(unsafe.SliceData(p)))
	return at >= start && at+uintptr(len(p)) <= end
}

// cachedBytes is how much of the file at path the page cache holds.
func cachedBytes(t *testing.T, path string) uint64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st unix.Cachestat_t
	if err := unix.Cachestat(uint(f.Fd()), &unix.CachestatRange{}, &st, 0); err != nil {
		t.Fatalf("cachestat: %v", err)
	}
	return st.Cache * uint64(unix.Getpagesize())
}
