package codec

import (
	"bytes"
	"errors"
	"testing"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/crypto"
)

// The "none" sealer lets fuzzed bytes through to decompression and the
// length checks; the default sealer covers authentication.

func FuzzEncodeDecode(f *testing.F) {
	f.Add([]byte{}, uint8(0))
	f.Add([]byte("x"), uint8(1))
	f.Add(text(5000, 1), uint8(0))
	f.Add(random(100, 1), uint8(1))
	f.Add(text(70<<10, 2), uint8(0))
	codecs := []*Codec{
		testCodec(f, crypto.NoEncryption, true),
		testCodec(f, crypto.DefaultSealer, true),
	}
	f.Fuzz(func(t *testing.T, data []byte, typ uint8) {
		for _, c := range codecs {
			id := blob.ID{typ}
			stored, comp := c.Encode(nil, blob.Type(typ), id, data)
			got, err := c.Decode(nil, blob.Type(typ), id, comp, len(data), stored)
			if err != nil {
				t.Fatalf("%s: %v", c.sealer.Name(), err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("%s: round trip changed the data", c.sealer.Name())
			}
		}
	})
}

func FuzzDecode(f *testing.F) {
	plain := text(3000, 1)
	c := testCodec(f, crypto.NoEncryption, true)
	stored, comp := c.Encode(nil, blob.Data, testID, plain)
	f.Add(stored, uint8(comp), len(plain))
	f.Add(plain, uint8(None), len(plain))
	f.Add([]byte{}, uint8(Zstd), 0)
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x00, 0x19, 0x00, 0x00, 'a', 'b', 'c'}, uint8(Zstd), 3)
	sealed := testCodec(f, crypto.DefaultSealer, true)
	f.Fuzz(func(t *testing.T, stored []byte, comp uint8, rawLength int) {
		for _, c := range []*Codec{c, sealed} {
			got, err := c.Decode([]byte("dst"), blob.Data, testID, Compression(comp), rawLength, stored)
			if err != nil {
				var ce *Error
				if !errors.As(err, &ce) || string(got) != "dst" {
					t.Fatalf("%s: error %v is not an *Error, or dst changed", c.sealer.Name(), err)
				}
				continue
			}
			if len(got) != 3+rawLength {
				t.Fatalf("%s: decoded %d bytes, want raw length %d", c.sealer.Name(), len(got)-3, rawLength)
			}
		}
	})
}

func FuzzSealOpen(f *testing.F) {
	f.Add([]byte{})
	f.Add(text(3000, 1))
	f.Add(random(300, 1))
	codecs := []*Codec{
		testCodec(f, crypto.NoEncryption, true),
		testCodec(f, crypto.DefaultSealer, true),
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, c := range codecs {
			sealed, err := c.Seal(nil, data, ADIndexSegment)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.Open(nil, sealed, ADIndexSegment)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("%s: round trip: %v", c.sealer.Name(), err)
			}
		}
	})
}

func FuzzOpen(f *testing.F) {
	c := testCodec(f, crypto.NoEncryption, true)
	good, _ := c.Seal(nil, text(3000, 1), ADConfig)
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte{0, 'a'})
	f.Add([]byte{1, 0x28, 0xb5, 0x2f, 0xfd, 0x20, 3, 0x19, 0x00, 0x00, 'a', 'b', 'c'})
	sealed := testCodec(f, crypto.DefaultSealer, true)
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, c := range []*Codec{c, sealed} {
			got, err := c.Open([]byte("dst"), in, ADConfig)
			if err != nil {
				var ce *Error
				if !errors.As(err, &ce) || string(got) != "dst" {
					t.Fatalf("%s: error %v is not an *Error, or dst changed", c.sealer.Name(), err)
				}
				continue
			}
			// Whatever opened must survive a round trip.
			again, err := c.Seal(nil, got[3:], ADConfig)
			if err != nil {
				t.Fatal(err)
			}
			back, err := c.Open(nil, again, ADConfig)
			if err != nil || !bytes.Equal(back, got[3:]) {
				t.Fatalf("%s: re-seal round trip: %v", c.sealer.Name(), err)
			}
		}
	})
}
