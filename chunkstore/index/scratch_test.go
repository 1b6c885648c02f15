package index

import (
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
)

// TestUsageBatchSums adds usage through a batch that writes its sums every
// two packs: the sums of all writes are each candidate's usage.
func TestUsageBatchSums(t *testing.T) {
	s, err := OpenScratch(vfs.Default, filepath.Join(t.TempDir(), "scratch"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	packs := []blob.ID{{1}, {2}, {3}}
	for _, p := range packs {
		if err := s.AddCandidate(p, 1000); err != nil {
			t.Fatal(err)
		}
	}
	u := s.NewUsageBatch()
	u.max = 2
	want := map[blob.ID]PackUsage{}
	for i := range 50 {
		p := packs[i%len(packs)]
		length, used := uint32(i+1), i%4 == 0
		if err := u.Add(p, length, used); err != nil {
			t.Fatal(err)
		}
		w := want[p]
		w.Total += uint64(length)
		if used {
			w.Used += uint64(length)
		}
		want[p] = w
	}
	if err := u.Commit(); err != nil {
		t.Fatal(err)
	}
	// Dropped: added after the last Commit.
	if err := u.Add(packs[0], 7, true); err != nil {
		t.Fatal(err)
	}
	u.Close()
	n := 0
	err = s.Candidates(func(got PackUsage) error {
		n++
		w := want[got.Pack]
		if got.Size != 1000 || got.Used != w.Used || got.Total != w.Total {
			t.Errorf("pack %x: %+v, want used %d of %d", got.Pack[:1], got, w.Used, w.Total)
		}
		return nil
	})
	if err != nil || n != len(packs) {
		t.Fatalf("%d candidates, %v", n, err)
	}
}
