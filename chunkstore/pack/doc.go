// Package pack reads and writes pack files: many stored blobs back to back,
// then a sealed trailer that lists them, then a fixed-size footer. It works
// on io.Writer and io.ReaderAt only.
//
// # Layout
//
//	offset 0                                            size-8-T        size-8   size
//	+---------+---------+-----+---------+-------------------------------+--------+------+
//	| blob 0  | blob 1  | ... | blob n-1| trailer, sealed (T bytes)     | T u32  | HSP1 |
//	+---------+---------+-----+---------+-------------------------------+--------+------+
//	 stored forms, see package codec     codec.Seal(ad=ADPackTrailer)   big-endian magic
//
// A pack's ID is the unkeyed BLAKE3-256 of all its bytes, footer included, so
// anyone holding the storage can check a pack's integrity without the key.
// Blob offsets are 32-bit: a pack is smaller than 4 GiB (targets are 16–64
// MiB).
//
// # Trailer plaintext, version 1
//
//	version      1 byte   = 1
//	count        uvarint
//	count times:
//	  type        1 byte   blob.Type
//	  id         32 bytes  blob.ID
//	  offset      uvarint  of the stored form, from the start of the pack
//	  length      uvarint  of the stored form
//	  raw length  uvarint  of the plaintext
//	  compression 1 byte   codec.Compression
//
// Varints are minimal (the shortest encoding), so every trailer has exactly
// one encoding, and the plaintext ends after the last entry. Entries appear
// in offset order and do not overlap; each lies wholly before the trailer.
// The stored length must fit the compression: payload length (length minus
// the sealer's overhead) equal to the raw length when uncompressed, and
// shorter than it when compressed.
//
// # Reading
//
// A reader reads the footer, then the trailer, and then fetches any blob
// with one ranged read of [offset, offset+length) and hands the bytes to
// codec.Decode together with the entry's type, ID, compression and raw
// length. Nothing inside a pack names the pack: errors about its contents
// (*CorruptError) say what is wrong, and callers add which pack it was.
package pack
