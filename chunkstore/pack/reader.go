package pack

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/hindsight-backup/hindsight/chunkstore/codec"
)

// CorruptError reports a pack whose bytes are not a valid pack. A pack has
// no name inside this package: callers wrap the error with the pack's ID
// or file name.
type CorruptError struct {
	Reason string
	Err    error // the cause, if any: a codec error, io.ErrUnexpectedEOF, ...
}

func (e *CorruptError) Error() string {
	if e.Err == nil {
		return "pack: corrupt: " + e.Reason
	}
	return "pack: corrupt: " + e.Reason + ": " + e.Err.Error()
}

func (e *CorruptError) Unwrap() error { return e.Err }

// ReadTrailer reads the footer and trailer of the size-byte pack in rd and
// returns its entries, checked against the pack's layout. It returns a
// *CorruptError when the bytes are not a valid pack, and other errors as rd
// returns them (a pack shorter than size is corrupt).
func ReadTrailer(rd io.ReaderAt, size int64, c *codec.Codec) ([]Entry, error) {
	if size < int64(FooterSize) {
		return nil, &CorruptError{Reason: fmt.Sprintf("%d bytes is too small for a footer", size)}
	}
	var footer [FooterSize]byte
	if err := readAt(rd, footer[:], size-int64(FooterSize)); err != nil {
		return nil, err
	}
	if string(footer[4:]) != Magic {
		return nil, &CorruptError{Reason: fmt.Sprintf("footer magic %q, want %q", footer[4:], Magic)}
	}
	trailerLen := int64(binary.BigEndian.Uint32(footer[:4]))
	// Bound the allocation before trusting the length: by the pack, and by
	// the largest trailer the codec would open.
	blobArea := size - int64(FooterSize) - trailerLen
	if blobArea < 0 || trailerLen > int64(1+codec.MaxRawLength+c.Overhead()) {
		return nil, &CorruptError{Reason: fmt.Sprintf("trailer length %d does not fit a pack of %d bytes", trailerLen, size)}
	}
	sealed := make([]byte, trailerLen)
	if err := readAt(rd, sealed, blobArea); err != nil {
		return nil, err
	}
	plain, err := c.Open(nil, sealed, codec.ADPackTrailer)
	if err != nil {
		return nil, &CorruptError{Reason: "trailer does not open", Err: err}
	}
	entries, err := decodeTrailer(plain)
	if err != nil {
		return nil, &CorruptError{Reason: "trailer does not decode", Err: err}
	}
	if err := checkLayout(entries, blobArea, c.Overhead()); err != nil {
		return nil, &CorruptError{Reason: "trailer does not fit the pack", Err: err}
	}
	return entries, nil
}

// readAt fills p from off, reporting a short pack as corruption.
func readAt(rd io.ReaderAt, p []byte, off int64) error {
	n, err := rd.ReadAt(p, off)
	if n == len(p) {
		// ReaderAt may report io.EOF along with a full read at the end.
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &CorruptError{Reason: fmt.Sprintf("short read of %d bytes at offset %d", n, off), Err: io.ErrUnexpectedEOF}
	}
	return fmt.Errorf("pack: read %d bytes at offset %d: %w", len(p), off, err)
}
