package chunkstore

import (
	"context"
	"fmt"
	"io"

	"github.com/zeebo/blake3"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/codec"
	"github.com/hindsight-backup/hindsight/chunkstore/pack"
	"github.com/hindsight-backup/hindsight/remote"
)

// readPack reads pack id from be once, start to end, with one request
// rather than one per blob, and reports whether its bytes hash to its
// name: the check that covers every byte, footer and gaps included.
// onBlob, if not nil, gets the stored form of each entry, which must be
// in offset order as the trailer lists them. n is how many bytes the
// pack had.
func readPack(ctx context.Context, be remote.Backend, id blob.ID, entries []pack.Entry, onBlob func(pack.Entry, []byte)) (n int64, intact bool, err error) {
	rc, err := be.Load(ctx, packName(id), 0, 0)
	if err != nil {
		return 0, false, err
	}
	defer rc.Close()
	h := blake3.New()
	cr := &countingReader{r: io.TeeReader(rc, h)}
	for _, e := range entries {
		if _, err := io.CopyN(io.Discard, cr, int64(e.Offset)-cr.n); err != nil {
			return cr.n, false, shortPack(id, err)
		}
		stored := storedBuffers.Get(int(e.Length))[:e.Length]
		_, err := io.ReadFull(cr, stored)
		if err == nil {
			onBlob(e, stored)
		}
		storedBuffers.Put(stored)
		if err != nil {
			return cr.n, false, shortPack(id, err)
		}
	}
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return cr.n, false, err
	}
	return cr.n, blob.ID(h.Sum(nil)) == id, nil
}

// shortPack tells a pack that ends early, which is damage, from a read
// that failed.
func shortPack(id blob.ID, err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return &CorruptPackError{Pack: id, Err: fmt.Errorf("ends early: %w", io.ErrUnexpectedEOF)}
	}
	return err
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// decodeStored turns a blob's stored form into its plaintext and, with
// hash, checks it against its ID.
func (r *Repository) decodeStored(packID blob.ID, t blob.Type, id blob.ID, comp codec.Compression, rawLength int, stored, buf []byte, hash bool) ([]byte, error) {
	plain, err := r.codec.Decode(buf[:0], t, id, comp, rawLength, stored)
	if err != nil {
		return nil, &CorruptPackError{Pack: packID, Blob: id, Err: err}
	}
	if hash && r.key.BlobID(plain) != id {
		return nil, &CorruptPackError{Pack: packID, Blob: id, Err: fmt.Errorf("content does not hash to its ID")}
	}
	return plain, nil
}
