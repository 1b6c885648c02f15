package pack

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/zeebo/blake3"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/codec"
)

// Magic ends every pack.
const Magic = "HSP1"

// FooterSize is the size of the footer: trailer length and magic.
const FooterSize = 4 + len(Magic)

// MaxBlobArea bounds the stored blobs of one pack, since offsets are 32-bit.
const MaxBlobArea = math.MaxUint32

// ErrFinished is returned by a Writer used after Finish. After a failed
// write it returns that error instead.
var ErrFinished = errors.New("pack: writer is finished")

// Writer writes one pack. It is not safe for concurrent use.
type Writer struct {
	w       io.Writer
	codec   *codec.Codec
	hash    *blake3.Hasher
	size    int64
	entries []Entry
	err     error // sticky: after a failed write the pack is unusable
}

// NewWriter returns a Writer that writes a pack to w, sealing its trailer
// with c.
func NewWriter(w io.Writer, c *codec.Codec) *Writer {
	return &Writer{w: w, codec: c, hash: blake3.New()}
}

// Size is the number of bytes written so far.
func (w *Writer) Size() int64 { return w.size }

// Count is the number of blobs added so far.
func (w *Writer) Count() int { return len(w.entries) }

// Entries returns the entries added so far, in pack order. The slice is
// the Writer's own: read it, do not modify it.
func (w *Writer) Entries() []Entry { return slices.Clip(w.entries) }

// Add writes a blob's stored form, as returned by codec.Encode with the same
// type, ID and compression, and returns its entry.
func (w *Writer) Add(t blob.Type, id blob.ID, comp codec.Compression, rawLength int, stored []byte) (Entry, error) {
	if w.err != nil {
		return Entry{}, w.err
	}
	if rawLength < 0 || rawLength > codec.MaxRawLength {
		return Entry{}, fmt.Errorf("pack: blob %s: raw length %d outside 0..%d", id, rawLength, codec.MaxRawLength)
	}
	e := Entry{Type: t, ID: id, Offset: uint32(w.size), Length: uint32(len(stored)),
		RawLength: uint32(rawLength), Compression: comp}
	if err := checkEntry(e); err != nil {
		return Entry{}, fmt.Errorf("pack: %w", err)
	}
	if err := checkStoredLength(comp, len(stored), rawLength, w.codec.Overhead()); err != nil {
		return Entry{}, fmt.Errorf("pack: blob %s: %w", id, err)
	}
	if w.size+int64(len(stored)) > MaxBlobArea {
		return Entry{}, fmt.Errorf("pack: blob %s would end past the %d-byte limit", id, int64(MaxBlobArea))
	}
	if err := w.write(stored); err != nil {
		return Entry{}, err
	}
	w.entries = append(w.entries, e)
	return e, nil
}

// Finish writes the trailer and footer and returns the pack's ID and
// entries. The Writer cannot be used afterwards.
func (w *Writer) Finish() (packID blob.ID, entries []Entry, err error) {
	if w.err != nil {
		return blob.ID{}, nil, w.err
	}
	sealed, err := w.codec.Seal(nil, appendTrailer(nil, w.entries), codec.ADPackTrailer)
	if err != nil {
		w.err = fmt.Errorf("pack: trailer of %d entries: %w", len(w.entries), err)
		return blob.ID{}, nil, w.err
	}
	if err := w.write(sealed); err != nil {
		return blob.ID{}, nil, err
	}
	var footer [FooterSize]byte
	binary.BigEndian.PutUint32(footer[:4], uint32(len(sealed)))
	copy(footer[4:], Magic)
	if err := w.write(footer[:]); err != nil {
		return blob.ID{}, nil, err
	}
	w.err = ErrFinished
	w.hash.Sum(packID[:0])
	return packID, w.entries, nil
}

// write writes p and hashes what was written.
func (w *Writer) write(p []byte) error {
	n, err := w.w.Write(p)
	_, _ = w.hash.Write(p[:n])
	w.size += int64(n)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		w.err = fmt.Errorf("pack: write at offset %d: %w", w.size, err)
	}
	return w.err
}
