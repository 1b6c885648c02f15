package chunkstore

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
	"github.com/hindsight-backup/hindsight/remote"
)

func TestRepairPacks(t *testing.T) {
	r, blobs := pushRepo(t)
	dir := r.be.Location()
	dst := newRecorder(t)
	push(t, r, dst)
	var packs []blob.ID
	r.idx.Packs(func(p index.PackInfo) error { packs = append(packs, p.ID); return nil })
	slices.SortFunc(packs, func(a, b blob.ID) int { return compareIDs(a, b) })
	lost, gone, torn := packs[0], packs[1], packs[2]
	for _, id := range []blob.ID{lost, gone} {
		if err := os.Remove(filepath.Join(dir, packName(id))); err != nil {
			t.Fatal(err)
		}
	}
	// A truncated local copy is as good as missing.
	if err := os.Truncate(filepath.Join(dir, packName(torn)), 100); err != nil {
		t.Fatal(err)
	}
	if err := dst.Remove(t.Context(), packName(gone)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		dryRun      bool
		fetched     int
		recoverable []blob.ID
	}{
		{"dry run", true, 0, []blob.ID{lost, torn}},
		{"repair", false, 2, []blob.ID{lost, torn}},
		{"nothing left to fetch", false, 0, nil},
	}
	for _, tt := range tests {
		st, err := r.RepairPacks(t.Context(), dst, 2, tt.dryRun)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if st.Fetched != tt.fetched || !slices.Equal(sorted(st.Recoverable), sorted(tt.recoverable)) ||
			!slices.Equal(st.Unrecoverable, []blob.ID{gone}) || st.Packs != len(packs) {
			t.Errorf("%s: %+v; want %d fetched, recoverable %v, unrecoverable [%s]", tt.name, st, tt.fetched, tt.recoverable, gone.Short())
		}
	}
	// Every blob outside the unrecoverable pack reads back.
	for id, want := range blobs {
		loc, _, _ := r.idx.Lookup(blob.Data, id)
		if loc.Pack == gone {
			continue
		}
		got, err := r.LoadBlob(t.Context(), blob.Data, id, nil)
		if err != nil || string(got) != string(want) {
			t.Fatalf("blob %s after repair: %v", id.Short(), err)
		}
	}
}

func compareIDs(a, b blob.ID) int { return slices.Compare(a[:], b[:]) }

func sorted(ids []blob.ID) []blob.ID {
	ids = slices.Clone(ids)
	slices.SortFunc(ids, compareIDs)
	return ids
}

// A pack the source holds damaged is not kept: the repository is left as
// it was, and the error names the pack.
func TestRepairRefusesDamagedCopy(t *testing.T) {
	r, _ := pushRepo(t)
	dst := newRecorder(t)
	push(t, r, dst)
	var p index.PackInfo
	r.idx.Packs(func(pi index.PackInfo) error { p = pi; return nil })
	name := packName(p.ID)
	good := load(t, r.be, name)
	bad := slices.Clone(good)
	bad[len(bad)-10] ^= 0xff // in the sealed trailer
	if err := dst.Save(t.Context(), name, bytes.NewReader(bad), int64(len(bad))); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(r.be.Location(), name)); err != nil {
		t.Fatal(err)
	}
	_, err := r.RepairPacks(t.Context(), dst, 1, false)
	if err == nil || !strings.Contains(err.Error(), name) {
		t.Fatalf("RepairPacks from a damaged copy = %v; want an error naming %s", err, name)
	}
	if _, err := r.be.Stat(t.Context(), name); !remote.IsNotExist(err) {
		t.Errorf("the damaged copy was kept (Stat = %v)", err)
	}
}

func load(t *testing.T, be remote.Backend, name string) []byte {
	t.Helper()
	b, err := loadAll(t.Context(), be, name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
