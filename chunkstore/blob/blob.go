// Package blob holds the identifiers every layer of the chunk store shares:
// blob IDs and blob types. It has no behaviour beyond parsing and printing.
package blob

import (
	"encoding/hex"
	"fmt"
)

// IDSize is the size of a blob or pack ID: a 256-bit BLAKE3 digest.
const IDSize = 32

// ID names a blob (keyed BLAKE3 of its plaintext) or a pack (BLAKE3 of its
// bytes). The zero ID is never produced by hashing in practice and marks a
// hole in a file's content list.
type ID [IDSize]byte

// String returns the full lower-case hex form.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Short returns the 8-character prefix shown to users.
func (id ID) Short() string { return id.String()[:8] }

// IsZero reports whether id is the zero ID.
func (id ID) IsZero() bool { return id == ID{} }

// ParseID parses the 64-character hex form of an ID.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 2*IDSize {
		return id, fmt.Errorf("invalid ID %q: want %d hex digits, have %d", s, 2*IDSize, len(s))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("invalid ID %q: %w", s, err)
	}
	return id, nil
}

// Type says what a blob holds. The numeric values are part of the on-disk
// format (pack trailers, index segments, index keys) and never change.
type Type uint8

const (
	Data Type = 0 // a chunk of file or volume content
	Tree Type = 1 // one encoded directory
)

func (t Type) String() string {
	switch t {
	case Data:
		return "data"
	case Tree:
		return "tree"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Valid reports whether t is a known type.
func (t Type) Valid() bool { return t == Data || t == Tree }
