package chunkstore

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
)

func TestLoadBlobs(t *testing.T) {
	r, _ := TestRepository(t, InitOptions{PackSize: 1 << 20})
	ctx := context.Background()
	// Small blobs that share runs, and large ones that make their own,
	// across several packs.
	want := saveBlobs(t, r, 40, 3<<10)
	for id, b := range saveBlobs(t, r, 8, 300<<10) {
		want[id] = b
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var ids []blob.ID
	for id := range want {
		ids = append(ids, id)
	}
	var mu sync.Mutex
	got := map[blob.ID][]byte{}
	err := r.LoadBlobs(ctx, blob.Data, ids, 3, func(id blob.ID, plain []byte) error {
		mu.Lock()
		defer mu.Unlock()
		if _, ok := got[id]; ok {
			t.Errorf("blob %s loaded twice", id.Short())
		}
		got[id] = bytes.Clone(plain)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("loaded %d blobs of %d", len(got), len(want))
	}
	for id, b := range want {
		if !bytes.Equal(got[id], b) {
			t.Fatalf("blob %s: wrong content", id.Short())
		}
	}

	unknown := blob.ID{1, 2, 3}
	err = r.LoadBlobs(ctx, blob.Data, append(ids, unknown), 3, func(blob.ID, []byte) error { return nil })
	var missing *BlobMissingError
	if !errors.As(err, &missing) || missing.ID != unknown || !missing.Pack.IsZero() {
		t.Fatalf("LoadBlobs with an unknown blob: %v", err)
	}
}

// A run whose pack is gone (repacked since the lookup) loads each blob
// where the index places it now.
func TestLoadRunPackGone(t *testing.T) {
	r, _ := TestRepository(t, InitOptions{PackSize: 1 << 20})
	ctx := context.Background()
	want := saveBlobs(t, r, 2, 3<<10)
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var run []index.BlobEntry
	for id := range want {
		l, ok, err := r.Index().Lookup(blob.Data, id)
		if err != nil || !ok {
			t.Fatal(ok, err)
		}
		l.Pack = blob.ID{9}
		run = append(run, index.BlobEntry{Type: blob.Data, ID: id, Location: l})
	}
	n := 0
	err := r.loadRun(ctx, run, func(id blob.ID, plain []byte) error {
		n++
		if !bytes.Equal(plain, want[id]) {
			t.Errorf("blob %s: wrong content", id.Short())
		}
		return nil
	})
	if err != nil || n != len(want) {
		t.Fatalf("loadRun: %d blobs, %v", n, err)
	}
}

func TestLoadRuns(t *testing.T) {
	at := func(pack byte, off, n uint32) index.BlobEntry {
		return index.BlobEntry{Location: index.Location{Pack: blob.ID{pack}, Offset: off, Length: n}}
	}
	tests := []struct {
		name  string
		blobs []index.BlobEntry
		want  []int // run lengths
	}{
		{"none", nil, nil},
		{"neighbours", []index.BlobEntry{at(1, 0, 100), at(1, 100, 100), at(1, 300, 50)}, []int{3}},
		{"other pack", []index.BlobEntry{at(1, 0, 100), at(2, 100, 100)}, []int{1, 1}},
		{"gap", []index.BlobEntry{at(1, 0, 100), at(1, 100+runGap, 10), at(1, 111+2*runGap, 10)}, []int{2, 1}},
		{"span", []index.BlobEntry{at(1, 0, runSpan-10), at(1, runSpan-10, 10), at(1, runSpan, 1)}, []int{2, 1}},
		{"large blob", []index.BlobEntry{at(1, 0, 2*runSpan), at(1, 2*runSpan, 1)}, []int{1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []int
			for _, run := range loadRuns(tt.blobs) {
				got = append(got, len(run))
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("run lengths %v, want %v", got, tt.want)
			}
		})
	}
}
