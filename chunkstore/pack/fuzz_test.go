package pack

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"testing"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/codec"
	"github.com/hindsight-backup/hindsight/chunkstore/crypto"
)

func FuzzDecodeTrailer(f *testing.F) {
	f.Add(appendTrailer(nil, nil))
	f.Add(appendTrailer(nil, []Entry{
		{Type: blob.Data, ID: blob.ID{1}, Offset: 0, Length: 140, RawLength: 100},
		{Type: blob.Tree, ID: blob.ID{2}, Offset: 140, Length: 1 << 20, RawLength: 3 << 20, Compression: codec.Zstd},
	}))
	f.Add([]byte{1, 1})
	f.Add([]byte{2, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, err := decodeTrailer(b)
		if err != nil {
			return
		}
		// One encoding per trailer: decoding then encoding gives the input.
		if again := appendTrailer(nil, entries); !bytes.Equal(again, b) {
			t.Fatalf("re-encoded trailer differs:\n got %x\nwant %x", again, b)
		}
	})
}

// FuzzTrailerRoundTrip encodes entries made from fuzzed bytes and decodes them.
func FuzzTrailerRoundTrip(f *testing.F) {
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0xff}, 3*entryFuzzSize))
	f.Add(bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7}, 30))
	f.Fuzz(func(t *testing.T, b []byte) {
		var entries []Entry
		for ; len(b) >= entryFuzzSize; b = b[entryFuzzSize:] {
			e := Entry{
				Type:        blob.Type(b[0] & 1),
				Offset:      binary.LittleEndian.Uint32(b[1:]),
				Length:      binary.LittleEndian.Uint32(b[5:]),
				RawLength:   binary.LittleEndian.Uint32(b[9:]) % (codec.MaxRawLength + 1),
				Compression: codec.Compression(b[13] & 1),
			}
			copy(e.ID[:], b[14:])
			entries = append(entries, e)
		}
		got, err := decodeTrailer(appendTrailer(nil, entries))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(entries) || (len(got) > 0 && !slices.Equal(got, entries)) {
			t.Fatalf("round trip changed the entries:\n got %v\nwant %v", got, entries)
		}
	})
}

const entryFuzzSize = 14 + blob.IDSize

// FuzzReadTrailer feeds garbage packs to ReadTrailer. With the "none" sealer
// the fuzzer can forge trailers, so the layout checks are reached too.
func FuzzReadTrailer(f *testing.F) {
	c := testCodec(f, crypto.NoEncryption)
	good, _, _ := writePack(f, c, testBlobs(3))
	f.Add(good)
	f.Add([]byte(Magic))
	f.Add([]byte{0, 0, 0, 0, 'H', 'S', 'P', '1'})
	f.Add([]byte{0, 0, 0, 1, 0, 'H', 'S', 'P', '1'})
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, err := ReadTrailer(bytes.NewReader(b), int64(len(b)), c)
		if err != nil {
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not a *CorruptError", err)
			}
			return
		}
		trailerLen := int64(binary.BigEndian.Uint32(b[len(b)-FooterSize:]))
		if err := checkLayout(entries, int64(len(b))-int64(FooterSize)-trailerLen, c.Overhead()); err != nil {
			t.Fatalf("accepted entries fail the layout check: %v", err)
		}
	})
}
