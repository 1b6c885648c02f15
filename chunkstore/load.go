package chunkstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"

	"github.com/zeebo/blake3"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/codec"
	"github.com/hindsight-backup/hindsight/chunkstore/crypto"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
	"github.com/hindsight-backup/hindsight/chunkstore/pack"
	"github.com/hindsight-backup/hindsight/chunkstore/segment"
	"github.com/hindsight-backup/hindsight/remote"
)

// hashBytes names immutable non-blob objects (packs, segments, snapshot
// records, key files) by the unkeyed BLAKE3 of their stored bytes, so that
// anyone can verify an object against its name without the key.
func hashBytes(b []byte) blob.ID { return blob.ID(blake3.Sum256(b)) }

func saveBytes(ctx context.Context, be remote.Backend, name string, b []byte) error {
	return be.Save(ctx, name, bytes.NewReader(b), int64(len(b)))
}

// idFromName parses the ID that ends an object name such as
// "packs/ab/ab12…" or "snapshots/ab12…".
func idFromName(name string) (blob.ID, error) {
	return blob.ParseID(path.Base(name))
}

// LoadBlob returns the plaintext of a blob, appended to buf[:0]. It checks
// the plaintext against its ID, so a blob it returns is exactly the one
// that was saved.
func (r *Repository) LoadBlob(ctx context.Context, t blob.Type, id blob.ID, buf []byte) ([]byte, error) {
	return r.loadBlob(ctx, t, id, buf, true)
}

// LoadBlobIn is LoadBlob for a caller that keeps buf whole (a cache that
// recycles it): the plaintext lies in buf's memory when it fits, but not
// necessarily at its start. Read and decrypted in place, it starts past
// the stored form's header, and moving it to the front cost a cold read
// through the mount a twentieth of its CPU.
func (r *Repository) LoadBlobIn(ctx context.Context, t blob.Type, id blob.ID, buf []byte) ([]byte, error) {
	return r.loadBlob(ctx, t, id, buf, false)
}

func (r *Repository) loadBlob(ctx context.Context, t blob.Type, id blob.ID, buf []byte, atStart bool) ([]byte, error) {
	loc, ok, err := r.idx.Lookup(t, id)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, &BlobMissingError{Type: t, ID: id}
	}
	plain, err := r.loadAt(ctx, t, id, loc, buf, atStart)
	var missing *BlobMissingError
	if !errors.As(err, &missing) {
		return plain, err
	}
	// Prune may have moved the blob and deleted its old pack between the
	// lookup and the read: the index then knows the new place.
	again, ok, lerr := r.idx.Lookup(t, id)
	if lerr != nil || !ok || again == loc {
		return nil, err
	}
	return r.loadAt(ctx, t, id, again, buf, atStart)
}

// storedBuffers holds the stored form of blobs being loaded: it is dead
// once decoded, and a fresh allocation of a chunk's size costs as much
// zeroing as its decryption costs work.
var storedBuffers = NewBufferPool(8 << 20)

func (r *Repository) loadAt(ctx context.Context, t blob.Type, id blob.ID, loc index.Location, buf []byte, atStart bool) ([]byte, error) {
	b := index.BlobEntry{Type: t, ID: id, Location: loc}
	var plain []byte
	var err error
	if rr, ok := r.be.(remote.RangeReader); ok && codec.Compression(loc.Compression) == codec.None && cap(buf) >= int(loc.Length)+remote.RangeSlack {
		// Read into buf and decode there: no second buffer, whose
		// allocations were half of what a cold read of a large file
		// allocated.
		var stored []byte
		if stored, err = readInto(ctx, rr, loc.Pack, int64(loc.Offset), int64(loc.Length), buf); err == nil {
			k := r.codec.PayloadOffset()
			plain, err = r.decodeAt(b, stored, stored[k:k])
		}
		if err == nil && atStart {
			plain = buf[:copy(buf[:len(plain)], plain)]
		}
	} else {
		var stored []byte
		var release func()
		if stored, release, err = r.readRange(ctx, loc.Pack, int64(loc.Offset), int64(loc.Length)); err == nil {
			plain, err = r.decodeAt(b, stored, buf)
			release()
		}
	}
	if remote.IsNotExist(err) {
		return nil, &BlobMissingError{Type: t, ID: id, Pack: loc.Pack}
	}
	if err != nil {
		return nil, err
	}
	return plain, nil
}

// LoadSlack is the room beyond a data blob's size that LoadBlob's buffer
// needs for the blob to be read and decoded in it, without a buffer of
// its own for the stored form.
const LoadSlack = remote.RangeSlack + 64

// decodeAt decodes b's stored bytes into buf[:0]. Decryption already
// proves an encrypted blob: the AEAD binds its ID, and only a key holder
// can seal it. Hashing it again would cost a sixth of a mount's or
// restore's CPU for nothing but a guard against our own writer; check
// --read-data still hashes every blob. Without encryption the hash is the
// only proof.
func (r *Repository) decodeAt(b index.BlobEntry, stored, buf []byte) ([]byte, error) {
	hash := r.cfg.Encryption == crypto.NoEncryption
	return r.decodeStored(b.Pack, b.Type, b.ID, codec.Compression(b.Compression), int(b.RawLength), stored, buf, hash)
}

// readRange reads n bytes of a pack into a buffer of storedBuffers, which
// release gives back once the bytes are dead. A backend that can read
// into it directly (the local disk) spares the copy through a reader.
func (r *Repository) readRange(ctx context.Context, packID blob.ID, off, n int64) (b []byte, release func(), err error) {
	var buf []byte
	if rr, ok := r.be.(remote.RangeReader); ok {
		buf = storedBuffers.Get(int(n) + remote.RangeSlack)
		b, err = readInto(ctx, rr, packID, off, n, buf)
	} else {
		buf = storedBuffers.Get(int(n))
		b, err = buf[:n], r.loadFull(ctx, packID, off, buf[:n])
	}
	if err != nil {
		storedBuffers.Put(buf)
		return nil, nil, err
	}
	return b, func() { storedBuffers.Put(buf) }, nil
}

// readInto reads n bytes of a pack with rr into buf's memory (see
// remote.RangeReader); a range the pack does not hold makes it corrupt.
func readInto(ctx context.Context, rr remote.RangeReader, packID blob.ID, off, n int64, buf []byte) ([]byte, error) {
	b, err := rr.ReadRange(ctx, packName(packID), off, n, buf)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = shortRead(packID, off, n, err)
	}
	return b, err
}

// loadFull fills b from a pack at off with a Load.
func (r *Repository) loadFull(ctx context.Context, packID blob.ID, off int64, b []byte) error {
	rd, err := r.be.Load(ctx, packName(packID), off, int64(len(b)))
	if err != nil {
		return err
	}
	defer rd.Close()
	if _, err := io.ReadFull(rd, b); err != nil {
		return shortRead(packID, off, int64(len(b)), err)
	}
	return nil
}

func shortRead(packID blob.ID, off, n int64, err error) error {
	return &CorruptPackError{Pack: packID, Err: fmt.Errorf("short read at %d+%d: %w", off, n, err)}
}

// backendReaderAt reads one object with ranged loads.
type backendReaderAt struct {
	ctx  context.Context
	be   remote.Backend
	name string
}

func (b backendReaderAt) ReadAt(p []byte, off int64) (int, error) {
	rd, err := b.be.Load(b.ctx, b.name, off, int64(len(p)))
	if err != nil {
		return 0, err
	}
	defer rd.Close()
	return io.ReadFull(rd, p)
}

// PackEntries reads a pack's trailer from the backend.
func (r *Repository) PackEntries(ctx context.Context, id blob.ID) ([]pack.Entry, int64, error) {
	name := packName(id)
	fi, err := r.be.Stat(ctx, name)
	if err != nil {
		return nil, 0, err
	}
	entries, err := pack.ReadTrailer(backendReaderAt{ctx, r.be, name}, fi.Size, r.codec)
	if err != nil {
		return nil, fi.Size, &CorruptPackError{Pack: id, Err: err}
	}
	return entries, fi.Size, nil
}

func (r *Repository) readPackSegment(ctx context.Context, id blob.ID) (segment.Pack, error) {
	entries, size, err := r.PackEntries(ctx, id)
	if err != nil {
		return segment.Pack{}, err
	}
	p := segment.Pack{ID: id, Size: size, Blobs: make([]segment.Blob, len(entries))}
	for i, e := range entries {
		p.Blobs[i] = segment.Blob{Type: e.Type, ID: e.ID, Offset: e.Offset, Length: e.Length, RawLength: e.RawLength, Compression: uint8(e.Compression)}
	}
	return p, nil
}

// mergeSegments adds to the index every index segment it has not merged
// yet: segments written by other machines (a remote written by several
// hosts) or lost from a deleted index.
func (r *Repository) mergeSegments(ctx context.Context) error {
	var todo []blob.ID
	err := r.be.List(ctx, segmentsPrefix, func(fi remote.FileInfo) error {
		id, err := idFromName(fi.Name)
		if err != nil {
			return nil // not ours; check reports it
		}
		ok, err := r.idx.HasSegment(id)
		if err == nil && !ok {
			todo = append(todo, id)
		}
		return err
	})
	if err != nil {
		return err
	}
	for _, id := range todo {
		err := r.mergeSegment(ctx, r.idx, id, nil)
		if errors.Is(err, ErrCorrupt) {
			// Failing would stop every command for good: index rebuild
			// reads the trailers of the packs a damaged segment lists
			// but cannot mark the segment merged. Blobs it alone lists
			// are missing from the index until that rebuild.
			slog.Warn("skipping a damaged index segment; 'hindsight index rebuild' reads its packs' trailers instead",
				"segment", id, "err", err)
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// LoadSegment reads and decodes one index segment.
func (r *Repository) LoadSegment(ctx context.Context, id blob.ID) ([]segment.Pack, error) {
	return r.loadSegment(ctx, id, 0)
}

// loadSegment is LoadSegment for a segment of a known size.
func (r *Repository) loadSegment(ctx context.Context, id blob.ID, size int64) ([]segment.Pack, error) {
	plain, err := r.openSegment(ctx, id, size)
	if err != nil {
		return nil, err
	}
	packs, err := segment.Decode(plain)
	if err != nil {
		return nil, fmt.Errorf("index segment %s: %w: %w", id, ErrCorrupt, err)
	}
	return packs, nil
}

// openSegment returns the plaintext of a segment of a known size.
func (r *Repository) openSegment(ctx context.Context, id blob.ID, size int64) ([]byte, error) {
	b, err := loadSized(ctx, r.be, segmentsPrefix+id.String(), size)
	if err != nil {
		return nil, err
	}
	if hashBytes(b) != id {
		return nil, fmt.Errorf("index segment %s: %w: content does not match its name", id, ErrCorrupt)
	}
	plain, err := r.codec.Open(nil, b, codec.ADIndexSegment)
	if err != nil {
		return nil, fmt.Errorf("index segment %s: %w: %w", id, ErrCorrupt, err)
	}
	return plain, nil
}

// mergeSegment adds a segment's packs to idx, those for which keep holds
// (all when keep is nil).
func (r *Repository) mergeSegment(ctx context.Context, idx index.Store, id blob.ID, keep func(blob.ID) bool) error {
	packs, err := r.LoadSegment(ctx, id)
	if err != nil {
		return err
	}
	pb := make([]index.PackBlobs, 0, len(packs))
	for _, p := range packs {
		if keep == nil || keep(p.ID) {
			pb = append(pb, index.PackBlobs{PackInfo: index.PackInfo{ID: p.ID, Size: p.Size, Count: uint32(len(p.Blobs))}, Blobs: segmentEntries(p)})
		}
	}
	return idx.AddSegment(id, pb)
}

func segmentEntries(p segment.Pack) []index.BlobEntry {
	out := make([]index.BlobEntry, len(p.Blobs))
	for i, b := range p.Blobs {
		out[i] = index.BlobEntry{Type: b.Type, ID: b.ID, Location: index.Location{
			Pack: p.ID, Offset: b.Offset, Length: b.Length, RawLength: b.RawLength, Compression: b.Compression}}
	}
	return out
}
