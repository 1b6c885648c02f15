package pack

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/zeebo/blake3"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/codec"
	"github.com/hindsight-backup/hindsight/chunkstore/crypto"
)

func testCodec(t testing.TB, sealer string) *codec.Codec {
	t.Helper()
	k := &crypto.Key{}
	k.Encrypt[0] = 7
	s, err := crypto.NewSealer(sealer, k)
	if err != nil {
		t.Fatal(err)
	}
	return codec.New(s, true)
}

type testBlob struct {
	typ   blob.Type
	plain []byte
}

// testBlobs returns n blobs, alternating compressible and random content.
func testBlobs(n int) []testBlob {
	r := rand.New(rand.NewPCG(uint64(n), 2))
	blobs := make([]testBlob, n)
	for i := range blobs {
		size := r.IntN(20000)
		b := make([]byte, size)
		if i%2 == 0 {
			for j := range b {
				b[j] = byte(j / 100)
			}
		} else {
			for j := range b {
				b[j] = byte(r.Uint32())
			}
		}
		blobs[i] = testBlob{blob.Type(i % 2), b}
	}
	return blobs
}

// writePack encodes blobs into a pack and returns its bytes, ID and entries.
func writePack(t testing.TB, c *codec.Codec, blobs []testBlob) ([]byte, blob.ID, []Entry) {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriter(&buf, c)
	var stored []byte
	for i, b := range blobs {
		id := blob.ID(blake3.Sum256(b.plain))
		var comp codec.Compression
		stored, comp = c.Encode(stored[:0], b.typ, id, b.plain)
		e, err := w.Add(b.typ, id, comp, len(b.plain), stored)
		if err != nil {
			t.Fatal(err)
		}
		if w.Count() != i+1 || w.Size() != e.End() || w.Entries()[i] != e {
			t.Fatalf("after blob %d: Count %d Size %d, entry ends at %d", i, w.Count(), w.Size(), e.End())
		}
	}
	id, entries, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if w.Size() != int64(buf.Len()) {
		t.Fatalf("Size %d after Finish, wrote %d bytes", w.Size(), buf.Len())
	}
	return buf.Bytes(), id, entries
}

func TestWriteRead(t *testing.T) {
	for _, sealer := range crypto.SealerNames() {
		for _, n := range []int{0, 1, 2, 50} {
			t.Run(fmt.Sprintf("%s/%d blobs", sealer, n), func(t *testing.T) {
				c := testCodec(t, sealer)
				blobs := testBlobs(n)
				data, id, written := writePack(t, c, blobs)
				if id != blake3.Sum256(data) {
					t.Fatal("pack ID is not the BLAKE3 of the pack's bytes")
				}
				if !bytes.HasSuffix(data, []byte(Magic)) {
					t.Fatal("pack does not end in the magic")
				}
				got, err := ReadTrailer(bytes.NewReader(data), int64(len(data)), c)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got, written) || len(got) != n {
					t.Fatalf("ReadTrailer returned %d entries, Finish %d, want %d equal", len(got), len(written), n)
				}
				// Every blob decodes from its ranged read.
				for i, e := range got {
					plain, err := c.Decode(nil, e.Type, e.ID, e.Compression, int(e.RawLength), data[e.Offset:e.End()])
					if err != nil || !bytes.Equal(plain, blobs[i].plain) {
						t.Fatalf("blob %d: %v", i, err)
					}
				}
			})
		}
	}
}

func TestWriterRejects(t *testing.T) {
	c := testCodec(t, crypto.DefaultSealer)
	plain := bytes.Repeat([]byte("abc"), 1000)
	stored, comp := c.Encode(nil, blob.Data, blob.ID{1}, plain)
	if comp != codec.Zstd {
		t.Fatal("test blob did not compress")
	}
	tests := []struct {
		name      string
		typ       blob.Type
		comp      codec.Compression
		rawLength int
		stored    []byte
	}{
		{"unknown type", 5, comp, len(plain), stored},
		{"unknown compression", blob.Data, 3, len(plain), stored},
		{"negative raw length", blob.Data, comp, -1, stored},
		{"raw length over limit", blob.Data, comp, codec.MaxRawLength + 1, stored},
		{"wrong compression", blob.Data, codec.None, len(plain), stored},
		{"stored not shorter than raw", blob.Data, comp, len(stored) - c.Overhead(), stored},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := NewWriter(&buf, c)
			if _, err := w.Add(tt.typ, blob.ID{1}, tt.comp, tt.rawLength, tt.stored); err == nil {
				t.Fatal("Add accepted it")
			}
			if buf.Len() != 0 || w.Count() != 0 {
				t.Fatal("a rejected blob was written")
			}
		})
	}
}

type failingWriter struct{ left int }

func (f *failingWriter) Write(p []byte) (int, error) {
	if len(p) > f.left {
		n := f.left
		f.left = 0
		return n, errors.New("disk full")
	}
	f.left -= len(p)
	return len(p), nil
}

func TestWriterErrorsStick(t *testing.T) {
	c := testCodec(t, crypto.DefaultSealer)
	w := NewWriter(&failingWriter{left: 10}, c)
	stored, comp := c.Encode(nil, blob.Data, blob.ID{}, make([]byte, 200))
	if _, err := w.Add(blob.Data, blob.ID{}, comp, 200, stored); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Add over a failing writer: %v", err)
	}
	if _, err := w.Add(blob.Data, blob.ID{}, comp, 200, stored); err == nil {
		t.Fatal("Add after a write error succeeded")
	}
	if _, _, err := w.Finish(); err == nil {
		t.Fatal("Finish after a write error succeeded")
	}
}

func TestWriterFinishTwice(t *testing.T) {
	c := testCodec(t, crypto.DefaultSealer)
	w := NewWriter(io.Discard, c)
	if _, _, err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.Finish(); !errors.Is(err, ErrFinished) {
		t.Fatalf("second Finish: %v, want ErrFinished", err)
	}
	if _, err := w.Add(blob.Data, blob.ID{}, codec.None, 0, make([]byte, c.Overhead())); !errors.Is(err, ErrFinished) {
		t.Fatalf("Add after Finish: %v, want ErrFinished", err)
	}
}

func TestReadTrailerCorrupt(t *testing.T) {
	c := testCodec(t, crypto.DefaultSealer)
	good, _, entries := writePack(t, c, testBlobs(5))
	trailerLen := int(binary.BigEndian.Uint32(good[len(good)-FooterSize:]))
	blobArea := len(good) - FooterSize - trailerLen
	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	flip := func(i int) []byte { return edit(func(b []byte) []byte { b[i] ^= 1; return b }) }
	withTrailerLen := func(n uint32) []byte {
		return edit(func(b []byte) []byte { binary.BigEndian.PutUint32(b[len(b)-FooterSize:], n); return b })
	}
	// A valid trailer of another pack, grafted onto these blobs.
	other, _, _ := writePack(t, c, testBlobs(7))
	otherTrailer := other[len(other)-FooterSize-int(binary.BigEndian.Uint32(other[len(other)-FooterSize:])):]

	tests := []struct {
		name string
		pack []byte
		want string // in the error
	}{
		{"empty", nil, "too small"},
		{"footer only, no magic", make([]byte, FooterSize), "magic"},
		{"last byte cut", good[:len(good)-1], "magic"},
		{"first byte cut", good[1:], "fit the pack"},
		{"magic bit", flip(len(good) - 1), "magic"},
		{"trailer bit", flip(blobArea + 30), "does not open"},
		{"trailer length too large", withTrailerLen(uint32(len(good))), "does not fit"},
		{"trailer length huge", withTrailerLen(0xffffffff), "does not fit"},
		{"trailer length short", withTrailerLen(uint32(trailerLen - 1)), "does not open"},
		{"trailer length zero", withTrailerLen(0), "does not open"},
		{"blobs cut", append(bytes.Clone(good[:entries[4].Offset]), good[blobArea:]...), "fit the pack"},
		{"foreign trailer", append(bytes.Clone(good[:blobArea]), otherTrailer...), "fit the pack"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadTrailer(bytes.NewReader(tt.pack), int64(len(tt.pack)), c)
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("ReadTrailer error = %v, want *CorruptError", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

// TestReadTrailerBadEntries reaches the layout checks behind authentication
// by sealing hand-made trailers.
func TestReadTrailerBadEntries(t *testing.T) {
	c := testCodec(t, crypto.DefaultSealer)
	ov := uint32(c.Overhead())
	ok := Entry{Type: blob.Data, ID: blob.ID{1}, Offset: 0, Length: 100 + ov, RawLength: 100}
	entry := func(f func(*Entry)) Entry { e := ok; f(&e); return e }
	tests := []struct {
		name    string
		entries []Entry
		want    string
	}{
		{"valid", []Entry{ok}, ""},
		{"gap is allowed", []Entry{entry(func(e *Entry) { e.Offset = 10 })}, ""},
		{"past blob area", []Entry{entry(func(e *Entry) { e.Offset = 11 })}, "past the blob area"},
		{"overlap", []Entry{ok, entry(func(e *Entry) { e.Offset = 100 })}, "overlaps"},
		{"out of order", []Entry{entry(func(e *Entry) { e.Offset = 50; e.Length = ov + 5; e.RawLength = 5 }), ok}, "precedes"},
		{"unknown type", []Entry{entry(func(e *Entry) { e.Type = 2 })}, "unknown type"},
		{"unknown compression", []Entry{entry(func(e *Entry) { e.Compression = 2 })}, "unknown compression"},
		{"raw length over limit", []Entry{entry(func(e *Entry) { e.RawLength = codec.MaxRawLength + 1 })}, "limit"},
		{"uncompressed length mismatch", []Entry{entry(func(e *Entry) { e.RawLength = 99 })}, "does not fit raw length"},
		{"compressed not shorter", []Entry{entry(func(e *Entry) { e.Compression = codec.Zstd })}, "does not fit raw length"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sealed, err := c.Seal(nil, appendTrailer(nil, tt.entries), codec.ADPackTrailer)
			if err != nil {
				t.Fatal(err)
			}
			pack := make([]byte, 100+ov+10, 2000)
			pack = append(pack, sealed...)
			pack = binary.BigEndian.AppendUint32(pack, uint32(len(sealed)))
			pack = append(pack, Magic...)
			got, err := ReadTrailer(bytes.NewReader(pack), int64(len(pack)), c)
			if tt.want == "" {
				if err != nil || !slices.Equal(got, tt.entries) {
					t.Fatalf("ReadTrailer = %v, %v", got, err)
				}
				return
			}
			var ce *CorruptError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ReadTrailer error = %v, want a *CorruptError mentioning %q", err, tt.want)
			}
		})
	}
}

type errReaderAt struct{}

func (errReaderAt) ReadAt([]byte, int64) (int, error) { return 0, errors.New("connection reset") }

func TestReadTrailerIOError(t *testing.T) {
	_, err := ReadTrailer(errReaderAt{}, 1000, testCodec(t, crypto.DefaultSealer))
	var ce *CorruptError
	if err == nil || errors.As(err, &ce) || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("ReadTrailer over a failing reader: %v, want the I/O error, not corruption", err)
	}
	// A pack shorter than the size the caller expects is corrupt, though.
	c := testCodec(t, crypto.DefaultSealer)
	data, _, _ := writePack(t, c, testBlobs(2))
	_, err = ReadTrailer(bytes.NewReader(data), int64(len(data))+5, c)
	if !errors.As(err, &ce) {
		t.Fatalf("ReadTrailer with a size past the end: %v, want *CorruptError", err)
	}
}

func TestDecodeTrailerRejects(t *testing.T) {
	valid := appendTrailer(nil, []Entry{{Type: blob.Tree, ID: blob.ID{3}, Offset: 5000, Length: 5000, RawLength: 10, Compression: codec.Zstd}})
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "truncated"},
		{"version 2", append([]byte{2}, valid[1:]...), "version 2"},
		{"count only", []byte{1, 1}, "claims 1 entries"},
		{"huge count", []byte{1, 0xff, 0xff, 0xff, 0xff, 0x0f}, "claims"},
		{"cut short", valid[:len(valid)-1], "truncated"},
		{"trailing byte", append(bytes.Clone(valid), 0), "after the last"},
		{"non-minimal varint", append(append([]byte{1, 1, 0}, make([]byte, 32)...), 0x85, 0x00, 50, 10, 1), "not minimal"},
		{"offset over 32 bits", append(append([]byte{1, 1, 0}, make([]byte, 32)...), 0x80, 0x80, 0x80, 0x80, 0x10, 50, 10, 1), "32 bits"},
		{"varint over 64 bits", append([]byte{1}, bytes.Repeat([]byte{0xff}, 11)...), "64 bits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeTrailer(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("decodeTrailer error = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}
