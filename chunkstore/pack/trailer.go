package pack

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/codec"
)

// Entry locates one blob in a pack.
type Entry struct {
	Type        blob.Type
	ID          blob.ID
	Offset      uint32 // of the stored form, from the start of the pack
	Length      uint32 // of the stored form
	RawLength   uint32 // of the plaintext
	Compression codec.Compression
}

// End is the offset just past the entry's stored form.
func (e Entry) End() int64 { return int64(e.Offset) + int64(e.Length) }

const trailerVersion = 1

// minEntrySize is the smallest encoded entry: type, ID, three one-byte
// varints, compression. It bounds the count a trailer can honestly claim.
const minEntrySize = 1 + blob.IDSize + 3 + 1

// appendTrailer appends the plaintext trailer listing entries to dst.
func appendTrailer(dst []byte, entries []Entry) []byte {
	dst = append(dst, trailerVersion)
	dst = binary.AppendUvarint(dst, uint64(len(entries)))
	for _, e := range entries {
		dst = append(dst, byte(e.Type))
		dst = append(dst, e.ID[:]...)
		dst = binary.AppendUvarint(dst, uint64(e.Offset))
		dst = binary.AppendUvarint(dst, uint64(e.Length))
		dst = binary.AppendUvarint(dst, uint64(e.RawLength))
		dst = append(dst, byte(e.Compression))
	}
	return dst
}

// decodeTrailer parses a plaintext trailer. It checks the encoding and each
// entry on its own; checkLayout checks the entries against the pack.
func decodeTrailer(b []byte) ([]Entry, error) {
	d := decoder{b: b}
	if v := d.byte(); d.err == nil && v != trailerVersion {
		return nil, fmt.Errorf("trailer version %d is not supported (want %d)", v, trailerVersion)
	}
	count := d.uvarint()
	if d.err == nil && count > uint64(len(d.b)/minEntrySize) {
		return nil, fmt.Errorf("trailer claims %d entries in %d bytes", count, len(d.b))
	}
	entries := make([]Entry, 0, count)
	for i := uint64(0); i < count && d.err == nil; i++ {
		var e Entry
		e.Type = blob.Type(d.byte())
		copy(e.ID[:], d.bytes(blob.IDSize))
		e.Offset = d.uint32()
		e.Length = d.uint32()
		e.RawLength = d.uint32()
		e.Compression = codec.Compression(d.byte())
		if d.err != nil {
			break
		}
		if err := checkEntry(e); err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
		entries = append(entries, e)
	}
	if d.err != nil {
		return nil, fmt.Errorf("after %d of %d entries: %w", len(entries), count, d.err)
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%d bytes after the last trailer entry", len(d.b))
	}
	return entries, nil
}

// checkEntry checks what an entry says about itself.
func checkEntry(e Entry) error {
	switch {
	case !e.Type.Valid():
		return fmt.Errorf("blob %s has unknown %v", e.ID, e.Type)
	case !e.Compression.Valid():
		return fmt.Errorf("blob %s has unknown %v", e.ID, e.Compression)
	case e.RawLength > codec.MaxRawLength:
		return fmt.Errorf("blob %s: raw length %d over the limit of %d", e.ID, e.RawLength, codec.MaxRawLength)
	}
	return nil
}

// checkStoredLength checks that a stored length fits the compression and raw
// length, as codec.Encode produces them; overhead is the sealer's.
func checkStoredLength(comp codec.Compression, length, rawLength, overhead int) error {
	payload := length - overhead
	switch {
	case comp == codec.None && payload != rawLength:
		return fmt.Errorf("stored length %d does not fit raw length %d uncompressed", length, rawLength)
	case comp == codec.Zstd && (payload < 0 || payload >= rawLength):
		return fmt.Errorf("stored length %d does not fit raw length %d compressed", length, rawLength)
	}
	return nil
}

// checkLayout checks entries against the pack: in offset order, not
// overlapping, within the blob area, with stored lengths that fit.
func checkLayout(entries []Entry, blobArea int64, overhead int) error {
	var end int64
	for i, e := range entries {
		switch {
		case int64(e.Offset) < end:
			return fmt.Errorf("entry %d (blob %s) at offset %d overlaps or precedes the one before, which ends at %d",
				i, e.ID, e.Offset, end)
		case e.End() > blobArea:
			return fmt.Errorf("entry %d (blob %s) ends at %d, past the blob area of %d bytes", i, e.ID, e.End(), blobArea)
		}
		if err := checkStoredLength(e.Compression, int(e.Length), int(e.RawLength), overhead); err != nil {
			return fmt.Errorf("entry %d (blob %s): %w", i, e.ID, err)
		}
		end = e.End()
	}
	return nil
}

var errTruncated = errors.New("truncated")

// decoder reads a trailer; the first error sticks and zeroes later reads.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) bytes(n int) []byte {
	if d.err != nil || len(d.b) < n {
		d.err = cmp.Or(d.err, errTruncated)
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) byte() byte {
	if p := d.bytes(1); p != nil {
		return p[0]
	}
	return 0
}

// uvarint reads a minimal uvarint, so that each trailer has one encoding.
func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	switch {
	case n == 0:
		d.err = errTruncated
	case n < 0:
		d.err = errors.New("varint overflows 64 bits")
	case n != uvarintLen(v):
		d.err = fmt.Errorf("varint %d in %d bytes is not minimal", v, n)
	}
	if d.err != nil {
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) uint32() uint32 {
	v := d.uvarint()
	if v > math.MaxUint32 {
		d.err = fmt.Errorf("value %d overflows 32 bits", v)
		return 0
	}
	return uint32(v)
}

func uvarintLen(v uint64) int {
	var buf [binary.MaxVarintLen64]byte
	return binary.PutUvarint(buf[:], v)
}
