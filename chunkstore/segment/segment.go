// Package segment encodes index segments: immutable lists of packs and the
// blobs each holds, written with every backup so that a machine that has
// only the repository (a fresh host, a clone from S3) rebuilds its index by
// reading segments instead of every pack's trailer.
//
// Plaintext layout (sealed by the caller before storage):
//
//	version    byte (1)
//	packCount  uvarint
//	per pack:  packID [32]  size uvarint  blobCount uvarint
//	           per blob: type byte  blobID [32]  offset uvarint  length uvarint
//	                     rawLength uvarint  compression byte
//
// Decoding bounds every count by the bytes that remain, so garbage cannot
// make it allocate more than the input's size warrants.
package segment

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
)

const version = 1

// Blob is one blob's place in its pack.
type Blob struct {
	Type        blob.Type
	ID          blob.ID
	Offset      uint32
	Length      uint32
	RawLength   uint32
	Compression uint8
}

// Pack is one pack and its blobs.
type Pack struct {
	ID    blob.ID
	Size  int64
	Blobs []Blob
}

// Encode returns the plaintext encoding of packs.
func Encode(packs []Pack) []byte {
	b := make([]byte, 0, encodedSize(packs))
	b = append(b, version)
	b = binary.AppendUvarint(b, uint64(len(packs)))
	for _, p := range packs {
		b = append(b, p.ID[:]...)
		b = binary.AppendUvarint(b, uint64(p.Size))
		b = binary.AppendUvarint(b, uint64(len(p.Blobs)))
		for _, e := range p.Blobs {
			b = append(b, byte(e.Type))
			b = append(b, e.ID[:]...)
			b = binary.AppendUvarint(b, uint64(e.Offset))
			b = binary.AppendUvarint(b, uint64(e.Length))
			b = binary.AppendUvarint(b, uint64(e.RawLength))
			b = append(b, e.Compression)
		}
	}
	return b
}

// encodedSize is the length of Encode's result: a segment is several MiB,
// and growing it by appending would allocate twice that.
func encodedSize(packs []Pack) int {
	n := 1 + uvarintLen(uint64(len(packs)))
	for _, p := range packs {
		n += blob.IDSize + uvarintLen(uint64(p.Size)) + uvarintLen(uint64(len(p.Blobs)))
		for _, e := range p.Blobs {
			n += 1 + blob.IDSize + uvarintLen(uint64(e.Offset)) + uvarintLen(uint64(e.Length)) + uvarintLen(uint64(e.RawLength)) + 1
		}
	}
	return n
}

func uvarintLen(v uint64) int {
	n := 1
	for ; v >= 0x80; v >>= 7 {
		n++
	}
	return n
}

// minBlobBytes and minPackBytes are the fewest bytes one encoded entry can
// take; they bound counts read from untrusted input.
const (
	minBlobBytes = 1 + blob.IDSize + 3 + 1
	minPackBytes = blob.IDSize + 2
)

var errShort = errors.New("truncated")

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint(max uint64) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	if v > max {
		d.err = fmt.Errorf("value %d exceeds %d", v, max)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(n int) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.b) < n {
		d.err = errShort
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if v := d.bytes(1); v != nil {
		return v[0]
	}
	return 0
}

func (d *decoder) id() (id blob.ID) {
	copy(id[:], d.bytes(blob.IDSize))
	return id
}

// Decode parses a segment's plaintext.
func Decode(b []byte) ([]Pack, error) {
	packs := []Pack{}
	err := Each(b, func(p *Pack, _ []byte) error {
		packs = append(packs, Pack{ID: p.ID, Size: p.Size, Blobs: append(make([]Blob, 0, len(p.Blobs)), p.Blobs...)})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return packs, nil
}

// Each calls fn with each pack of a segment's plaintext in turn, and with
// the bytes that encode it, so that a segment of a hundred thousand blobs
// is read without holding all of them decoded. fn must not keep p: its
// Blobs are reused for the next pack. An error from fn ends the walk.
func Each(b []byte, fn func(p *Pack, enc []byte) error) error {
	if len(b) == 0 || b[0] != version {
		return fmt.Errorf("index segment: unknown version")
	}
	d := &decoder{b: b[1:]}
	n := d.uvarint(uint64(len(d.b) / minPackBytes))
	var p Pack
	for i := uint64(0); i < n && d.err == nil; i++ {
		start := d.b
		p.ID, p.Size = d.id(), int64(d.uvarint(math.MaxInt64))
		m := d.uvarint(uint64(len(d.b) / minBlobBytes))
		p.Blobs = p.Blobs[:0]
		for j := uint64(0); j < m && d.err == nil; j++ {
			e := Blob{Type: blob.Type(d.byte())}
			if d.err == nil && !e.Type.Valid() {
				d.err = fmt.Errorf("unknown blob type %d", e.Type)
			}
			e.ID = d.id()
			e.Offset = uint32(d.uvarint(math.MaxUint32))
			e.Length = uint32(d.uvarint(math.MaxUint32))
			e.RawLength = uint32(d.uvarint(math.MaxUint32))
			e.Compression = d.byte()
			p.Blobs = append(p.Blobs, e)
		}
		if d.err == nil {
			if err := fn(&p, start[:len(start)-len(d.b)]); err != nil {
				return err
			}
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return fmt.Errorf("index segment: %w", d.err)
	}
	return nil
}

// Filter rewrites the segment b in place without the packs for which keep
// says false, and returns the result, or nil where it keeps them all (b is
// then unchanged), and how many packs it kept. Kept packs are moved as they
// were encoded: a pack only ever moves towards the start, over bytes
// already read, and the new header is no longer than the old one. keep
// must not keep p. After an error, b may be partly rewritten.
func Filter(b []byte, keep func(p *Pack) (bool, error)) (out []byte, kept int, err error) {
	body, w := 0, -1 // where the packs begin; where the next kept one goes once one was dropped
	err = Each(b, func(p *Pack, enc []byte) error {
		off := cap(b) - cap(enc) // enc is a part of b
		if body == 0 {
			body = off
		}
		ok, err := keep(p)
		switch {
		case err != nil:
			return err
		case !ok && w < 0:
			w = off
		case ok && w >= 0:
			w += copy(b[w:], enc)
		}
		if ok {
			kept++
		}
		return nil
	})
	if err != nil || w < 0 {
		return nil, kept, err
	}
	head := binary.AppendUvarint([]byte{version}, uint64(kept))
	start := body - len(head)
	copy(b[start:], head)
	return b[start:w], kept, nil
}
