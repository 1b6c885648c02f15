package remotetest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/hindsight-backup/hindsight/remote"
)

// data returns n reproducible pseudo-random bytes; distinct seeds give
// distinct contents, so a mix-up between objects cannot go unnoticed.
func data(seed uint64, n int) []byte {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	p := make([]byte, n)
	rand.NewChaCha8(key).Read(p)
	return p
}

func save(t *testing.T, b remote.Backend, name string, p []byte) {
	t.Helper()
	if err := b.Save(t.Context(), name, bytes.NewReader(p), int64(len(p))); err != nil {
		t.Fatalf("Save(%q, %d bytes): %v", name, len(p), err)
	}
}

func load(t *testing.T, b remote.Backend, name string, offset, length int64) []byte {
	t.Helper()
	rc, err := b.Load(t.Context(), name, offset, length)
	if err != nil {
		t.Fatalf("Load(%q, %d, %d): %v", name, offset, length, err)
	}
	p, err := io.ReadAll(rc)
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("Load(%q, %d, %d): reading: %v", name, offset, length, err)
	}
	return p
}

// listAll returns every name under prefix with its size, failing on a name
// reported twice.
func listAll(t *testing.T, b remote.Backend, prefix string) map[string]int64 {
	t.Helper()
	got := map[string]int64{}
	err := b.List(t.Context(), prefix, func(fi remote.FileInfo) error {
		if _, dup := got[fi.Name]; dup {
			t.Errorf("List(%q) reported %q twice", prefix, fi.Name)
		}
		got[fi.Name] = fi.Size
		return nil
	})
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return got
}

// assertAbsent checks every way a caller could see name: Stat, Load and
// List.
func assertAbsent(t *testing.T, b remote.Backend, name string) {
	t.Helper()
	if fi, err := b.Stat(t.Context(), name); !errors.Is(err, remote.ErrNotExist) {
		t.Errorf("Stat(%q) = %+v, %v; want ErrNotExist", name, fi, err)
	}
	if rc, err := b.Load(t.Context(), name, 0, 0); !errors.Is(err, remote.ErrNotExist) {
		if err == nil {
			rc.Close()
		}
		t.Errorf("Load(%q) error = %v; want ErrNotExist", name, err)
	}
	if _, ok := listAll(t, b, "")[name]; ok {
		t.Errorf("List(\"\") reports %q", name)
	}
}

// assertEmpty checks that nothing at all is listed: a failed save must not
// leave a partial object under another name either.
func assertEmpty(t *testing.T, b remote.Backend) {
	t.Helper()
	if all := listAll(t, b, ""); len(all) != 0 {
		t.Errorf("List(\"\") = %v; want nothing", all)
	}
}

// failingReaderAt yields the first n bytes of p, then err.
type failingReaderAt struct {
	p   []byte
	n   int64
	err error
}

func (r *failingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= r.n {
		return 0, r.err
	}
	n := copy(p, r.p[off:r.n])
	if n < len(p) {
		return n, r.err
	}
	return n, nil
}

// cancellingReaderAt cancels a context on its first read, then keeps
// serving data, so that only the backend's own context checks can stop the
// upload.
type cancellingReaderAt struct {
	r      io.ReaderAt
	cancel func()
}

func (c *cancellingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	c.cancel()
	return c.r.ReadAt(p, off)
}
