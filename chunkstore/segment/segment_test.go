package segment

import (
	"reflect"
	"testing"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
)

func sample() []Pack {
	return []Pack{
		{ID: blob.ID{1}, Size: 64 << 20, Blobs: []Blob{
			{Type: blob.Data, ID: blob.ID{2}, Offset: 0, Length: 1 << 20, RawLength: 2 << 20, Compression: 1},
			{Type: blob.Tree, ID: blob.ID{3}, Offset: 1 << 20, Length: 300, RawLength: 280},
		}},
		{ID: blob.ID{4}, Size: 10, Blobs: []Blob{}},
	}
}

func TestRoundTrip(t *testing.T) {
	for _, packs := range [][]Pack{{}, sample()} {
		b := Encode(packs)
		if len(b) != cap(b) {
			t.Errorf("encoded %d bytes into a buffer of %d", len(b), cap(b))
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, packs) {
			t.Fatalf("round trip: got %+v, want %+v", got, packs)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	good := Encode(sample())
	tests := map[string][]byte{
		"empty":         nil,
		"wrong version": append([]byte{9}, good[1:]...),
		"truncated":     good[:len(good)-1],
		"trailing":      append(append([]byte(nil), good...), 0),
		"huge count":    {1, 0xff, 0xff, 0xff, 0xff, 0x0f},
	}
	bad := append([]byte(nil), good...)
	bad[1+1+blob.IDSize+4+1] = 7 // version, pack count, pack ID, size (4-byte uvarint), blob count: first blob's type
	tests["bad type"] = bad
	for name, b := range tests {
		if _, err := Decode(b); err == nil {
			t.Errorf("%s: Decode accepted %x", name, b)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(Encode(sample()))
	f.Add(Encode(nil))
	f.Add([]byte{1, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		packs, err := Decode(b)
		if err != nil {
			return
		}
		enc := Encode(packs)
		if len(enc) != cap(enc) {
			t.Fatalf("encoded %d bytes into a buffer of %d", len(enc), cap(enc))
		}
		again, err := Decode(enc)
		if err != nil || !reflect.DeepEqual(again, packs) {
			t.Fatalf("re-decoding failed: %v", err)
		}
	})
}
