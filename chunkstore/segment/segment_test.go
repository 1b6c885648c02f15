package segment

import (
	"bytes"
	"reflect"
	"slices"
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
		// Filter keeps every other pack.
		i := 0
		out, _, err := Filter(slices.Clone(b), func(*Pack) (bool, error) { i++; return i%2 == 0, nil })
		var odd []Pack
		for j := 1; j < len(packs); j += 2 {
			odd = append(odd, packs[j])
		}
		if err != nil {
			t.Fatalf("Filter: %v", err)
		}
		if len(packs) > 0 {
			// Compared decoded: kept packs keep their encoding, which
			// need not be the shortest.
			got, err := Decode(out)
			if err != nil || len(got)+len(odd) > 0 && !reflect.DeepEqual(got, odd) {
				t.Fatalf("Filter kept %+v (%v), want %+v", got, err, odd)
			}
		}
	})
}

// TestFilter drops packs from an encoded segment and compares the result
// with encoding the packs kept.
func TestFilter(t *testing.T) {
	packs := append(sample(), Pack{ID: blob.ID{5}, Size: 99, Blobs: []Blob{{Type: blob.Data, ID: blob.ID{6}, Length: 7}}})
	enc := Encode(packs)
	tests := []struct {
		name string
		keep []bool
	}{
		{"all", []bool{true, true, true}},
		{"first dropped", []bool{false, true, true}},
		{"middle dropped", []bool{true, false, true}},
		{"last dropped", []bool{true, true, false}},
		{"none", []bool{false, false, false}},
	}
	for _, tt := range tests {
		b := append(enc[:len(enc):len(enc)], 0)[:len(enc)] // capacity beyond the segment must not matter
		i := 0
		out, kept, err := Filter(b, func(p *Pack) (bool, error) {
			if p.ID != packs[i].ID || !reflect.DeepEqual(p.Blobs, packs[i].Blobs) && len(p.Blobs)+len(packs[i].Blobs) > 0 {
				t.Errorf("%s: pack %d is %+v, want %+v", tt.name, i, p, packs[i])
			}
			i++
			return tt.keep[i-1], nil
		})
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		var want []Pack
		for j, k := range tt.keep {
			if k {
				want = append(want, packs[j])
			}
		}
		if kept != len(want) {
			t.Errorf("%s: kept %d, want %d", tt.name, kept, len(want))
		}
		if len(want) == len(packs) {
			if out != nil || !bytes.Equal(b, enc) {
				t.Errorf("%s: nothing dropped, but the segment changed", tt.name)
			}
			continue
		}
		if !bytes.Equal(out, Encode(want)) {
			t.Errorf("%s: got %x, want %x", tt.name, out, Encode(want))
		}
	}
	if _, _, err := Filter(enc[:len(enc)-1], func(*Pack) (bool, error) { return true, nil }); err == nil {
		t.Error("Filter accepted a truncated segment")
	}
}
