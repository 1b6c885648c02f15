package chunkstore

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
)

func checkSegments(t *testing.T, r *Repository) []Problem {
	t.Helper()
	var out []Problem
	if err := r.CheckSegments(t.Context(), func(p Problem) { out = append(out, p) }); err != nil {
		t.Fatal(err)
	}
	return out
}

func segmentIDs(t *testing.T, r *Repository) []blob.ID {
	t.Helper()
	var ids []blob.ID
	r.idx.Segments(func(id blob.ID) error { ids = append(ids, id); return nil })
	slices.SortFunc(ids, byID)
	if len(ids) < 2 {
		t.Fatalf("%d index segments; the test needs two", len(ids))
	}
	return ids
}

// A lost or damaged index segment is named; a rebuild lists its packs in
// a new segment and removes the damaged one, after which all is clean.
func TestCheckSegments(t *testing.T) {
	r, _ := pushRepo(t)
	if p := checkSegments(t, r); len(p) != 0 {
		t.Fatalf("sound repository: %v", p)
	}
	segs := segmentIDs(t, r)
	dir := r.be.Location()
	gone, flipped := segs[0], segs[1]
	if err := os.Remove(filepath.Join(dir, segmentsPrefix+gone.String())); err != nil {
		t.Fatal(err)
	}
	flipByte(t, filepath.Join(dir, segmentsPrefix+flipped.String()), 10)
	p := checkSegments(t, r)
	slices.SortFunc(p, func(a, b Problem) int { return byID(a.Segment, b.Segment) })
	if len(p) != 2 || p[0].Segment != gone || !strings.Contains(p[0].Message, "missing") ||
		p[1].Segment != flipped || !strings.Contains(p[1].Message, "unreadable") {
		t.Fatalf("check of a lost and a damaged segment: %v", p)
	}

	if _, err := r.RebuildIndex(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	removed, err := r.RemoveDamagedSegments(t.Context())
	if err != nil || !slices.Equal(removed, []blob.ID{flipped}) {
		t.Fatalf("RemoveDamagedSegments = %v, %v; want [%s]", removed, err, flipped.Short())
	}
	if p := checkSegments(t, r); len(p) != 0 {
		t.Errorf("after the rebuild: %v", p)
	}
	var unlisted int
	r.idx.UnlistedPacks(func(blob.ID) error { unlisted++; return nil })
	if unlisted != 0 {
		t.Errorf("%d packs are in no segment after the rebuild", unlisted)
	}
}

// StoredSnapshots reads records from the backend, so a record damaged
// after the index cached it is found.
func TestStoredSnapshotsBypassCache(t *testing.T) {
	r, _ := pushRepo(t)
	var ids []blob.ID
	r.ListSnapshots(t.Context(), func(id blob.ID, _ []byte) error { ids = append(ids, id); return nil })
	victim := ids[0]
	flipByte(t, filepath.Join(r.be.Location(), snapshotsPrefix+victim.String()), 30)
	var bad []blob.ID
	err := r.StoredSnapshots(t.Context(), func(id blob.ID, rec []byte, err error) error {
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("snapshot %s: %v does not wrap ErrCorrupt", id.Short(), err)
			}
			bad = append(bad, id)
		}
		return nil
	})
	if err != nil || !slices.Equal(bad, []blob.ID{victim}) {
		t.Fatalf("StoredSnapshots found %v damaged (%v); want [%s]", bad, err, victim.Short())
	}
	if rec, ok, err := r.CachedSnapshot(victim); !ok || err != nil || len(rec) == 0 {
		t.Errorf("the cached copy: %q, %v, %v", rec, ok, err)
	}
}
