package chunkstore

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"
	"unsafe"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/crypto"
	"github.com/hindsight-backup/hindsight/remote"
)

// TestLoadBlobInPlace loads incompressible and compressible blobs, sealed
// and not, into buffers with and without LoadSlack to spare, sparse and
// not: the bytes are right and, given the room, in the caller's buffer
// (an uncompressed blob is read and decoded there): at its start from
// LoadBlob, anywhere in it from LoadBlobIn. A damaged one fails as
// corrupt.
func TestLoadBlobInPlace(t *testing.T) {
	for _, enc := range crypto.SealerNames() {
		r, dir := TestRepository(t, InitOptions{Encryption: enc})
		ctx := context.Background()
		random := randomData(7, 300<<10)
		zeros := make([]byte, 200<<10)
		var ids []blob.ID
		for _, b := range [][]byte{random, zeros} {
			id := r.BlobID(b)
			if _, err := r.SaveBlob(ctx, blob.Data, id, b); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		if err := r.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		for _, ctx := range []context.Context{ctx, remote.WithSparseReads(ctx)} {
			for i, want := range [][]byte{random, zeros} {
				for _, room := range []int{0, len(want) + LoadSlack} {
					for _, anywhere := range []bool{false, true} {
						load := r.LoadBlob
						if anywhere {
							load = r.LoadBlobIn
						}
						buf := make([]byte, 0, room)
						got, err := load(ctx, blob.Data, ids[i], buf)
						if err != nil || !bytes.Equal(got, want) {
							t.Fatalf("%q: blob %d into %d bytes (anywhere %v): %d bytes, %v", enc, i, room, anywhere, len(got), err)
						}
						inBuf := room > 0 && unsafe.SliceData(got) == unsafe.SliceData(buf[:1])
						if anywhere {
							inBuf = room > 0 && within(buf[:room], got)
						}
						if inBuf != (room > 0) {
							t.Errorf("%q: blob %d into %d bytes (anywhere %v): decoded in the buffer given: %v", enc, i, room, anywhere, inBuf)
						}
					}
				}
			}
		}
		loc, _, err := r.Index().Lookup(blob.Data, ids[0])
		if err != nil {
			t.Fatal(err)
		}
		flipByte(t, filepath.Join(dir, packName(loc.Pack)), int64(loc.Offset)+100)
		var corrupt *CorruptPackError
		if _, err := r.LoadBlob(ctx, blob.Data, ids[0], make([]byte, 0, len(random)+LoadSlack)); !errors.As(err, &corrupt) {
			t.Errorf("damaged blob: %v, want a CorruptPackError", err)
		}
	}
}

// within reports whether b lies inside buf's memory.
func within(buf, b []byte) bool {
	start := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return p >= start && p+uintptr(len(b)) <= start+uintptr(len(buf))
}
