package chunkstore

import (
	"bytes"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
)

func randomRefs(rng *rand.Rand, n int, t blob.Type) []index.BlobRef {
	refs := make([]index.BlobRef, n)
	for i := range refs {
		refs[i].Type = t
		for j := range refs[i].ID {
			refs[i].ID[j] = byte(rng.Uint32())
		}
	}
	return refs
}

func TestMarkSetSorted(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	refs := append(randomRefs(rng, 300, blob.Data), randomRefs(rng, 100, blob.Tree)...)
	// IDs that share their first bytes, which pick the slot, probe.
	for i := range 20 {
		r := refs[0]
		r.ID[31] = byte(i + 1)
		refs = append(refs, r)
	}
	s := newMarkSet(1024)
	for _, r := range refs {
		if !s.add(r) {
			t.Fatalf("%x: added once, reported present", r.ID)
		}
	}
	for _, r := range refs {
		if !s.has(r) || s.add(r) {
			t.Fatalf("%x: added, reported absent", r.ID)
		}
	}
	if s.n != len(refs) {
		t.Fatalf("set holds %d, want %d", s.n, len(refs))
	}
	if s.has(randomRefs(rng, 1, blob.Data)[0]) {
		t.Fatal("a blob never added is reported present")
	}
	got := s.sorted()
	if len(got) != len(refs) {
		t.Fatalf("sorted gave %d, want %d", len(got), len(refs))
	}
	for i := 1; i < len(got); i++ {
		a, b := got[i-1], got[i]
		if a.Type > b.Type || a.Type == b.Type && bytes.Compare(a.ID[:], b.ID[:]) >= 0 {
			t.Fatalf("sorted: %v before %v", a, b)
		}
	}
	s.clear()
	if s.n != 0 || s.has(refs[0]) || !s.add(refs[0]) {
		t.Fatal("a cleared set still holds blobs")
	}
}

// TestMarkerSpills marks with sets small enough to spill many times, blobs
// again and again in between: every tree is reported new exactly once, and
// the scratch database ends with exactly the marked blobs.
func TestMarkerSpills(t *testing.T) {
	scratch, err := index.OpenScratch(vfs.Default, filepath.Join(t.TempDir(), "scratch"), index.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer scratch.Close()
	m := &Marker{s: scratch, trees: newMarkSet(64), data: newMarkSet(128)}
	rng := rand.New(rand.NewPCG(3, 4))
	data, trees := randomRefs(rng, 1000, blob.Data), randomRefs(rng, 300, blob.Tree)
	marked := map[index.BlobRef]bool{}
	for round := range 3 {
		for i, r := range trees {
			first, err := m.Tree(r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if first == marked[r] {
				t.Fatalf("round %d, tree %d: new %v, marked before %v", round, i, first, marked[r])
			}
			marked[r] = true
		}
		rng.Shuffle(len(data), func(i, j int) { data[i], data[j] = data[j], data[i] })
		for i := 0; i < len(data); i += 50 {
			var ids []blob.ID
			for _, r := range data[i:min(i+50, len(data))] {
				ids = append(ids, r.ID)
				marked[r] = true
			}
			if err := m.Data(ids); err != nil {
				t.Fatal(err)
			}
		}
		if err := m.flush(); err != nil {
			t.Fatal(err)
		}
	}
	unmarked := append(randomRefs(rng, 100, blob.Data), randomRefs(rng, 100, blob.Tree)...)
	for _, r := range unmarked {
		if ok, err := m.marked(r.Type, r.ID); err != nil || ok {
			t.Fatalf("never marked %v: marked %v, %v", r, ok, err)
		}
	}
	for r := range marked {
		if ok, err := m.marked(r.Type, r.ID); err != nil || !ok {
			t.Fatalf("marked %v: marked %v, %v", r, ok, err)
		}
	}
	// The cursor prune's usage step reads them with sees the same.
	c, err := scratch.NewMarkCursor()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	all := append(append(append([]index.BlobRef{}, data...), trees...), unmarked...)
	s := newMarkSet(4096)
	for _, r := range all {
		s.add(r)
	}
	for _, r := range s.sorted() {
		if ok, err := c.Marked(r.Type, r.ID); err != nil || ok != marked[r] {
			t.Fatalf("cursor: %v marked %v (%v), want %v", r, ok, err, marked[r])
		}
	}
}
