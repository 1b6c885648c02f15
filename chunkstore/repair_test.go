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
	slices.SortFunc(packs, func(a, b blob.ID) int { return byID(a, b) })
	if len(packs) < 4 {
		t.Fatalf("%d packs; the test needs 4", len(packs))
	}
	lost, gone, torn, flipped := packs[0], packs[1], packs[2], packs[3]
	for _, id := range []blob.ID{lost, gone} {
		if err := os.Remove(filepath.Join(dir, packName(id))); err != nil {
			t.Fatal(err)
		}
	}
	// A truncated local copy is as good as missing.
	if err := os.Truncate(filepath.Join(dir, packName(torn)), 100); err != nil {
		t.Fatal(err)
	}
	// A copy of the right size whose bytes are wrong is damaged.
	flipByte(t, filepath.Join(dir, packName(flipped)), 1000)
	if err := dst.Remove(t.Context(), packName(gone)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		dryRun      bool
		fetched     int
		missing     int
		damaged     int
		recoverable []blob.ID
	}{
		{"dry run", true, 0, 3, 1, []blob.ID{lost, torn, flipped}},
		{"repair", false, 3, 3, 1, []blob.ID{lost, torn, flipped}},
		{"nothing left to fetch", false, 0, 1, 0, nil},
	}
	for _, tt := range tests {
		st, err := r.RepairPacks(t.Context(), dst, RepairOptions{Jobs: 2, DryRun: tt.dryRun})
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if st.Fetched != tt.fetched || st.Missing != tt.missing || st.Damaged != tt.damaged ||
			!slices.Equal(sorted(st.Recoverable), sorted(tt.recoverable)) ||
			len(st.Lost) != 1 || st.Lost[0].Pack != gone || st.Packs != len(packs) {
			t.Errorf("%s: %+v; want %d fetched, %d missing, %d damaged, recoverable %v, lost [%s]",
				tt.name, st, tt.fetched, tt.missing, tt.damaged, tt.recoverable, gone.Short())
		}
	}
	// Every blob outside the lost pack reads back.
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
	// Named packs limit the repair to them.
	st, err := r.RepairPacks(t.Context(), dst, RepairOptions{Packs: []blob.ID{lost}})
	if err != nil || st.Packs != 1 || st.Missing != 0 {
		t.Errorf("repair of one sound pack: %+v, %v", st, err)
	}
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 0xff
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func sorted(ids []blob.ID) []blob.ID {
	ids = slices.Clone(ids)
	slices.SortFunc(ids, byID)
	return ids
}

// A pack the source holds damaged is not kept, and a damaged copy here is
// not swapped for it: the repair names the pack as lost.
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
	local := filepath.Join(r.be.Location(), name)
	for _, damage := range []string{"missing", "damaged"} {
		if damage == "missing" {
			if err := os.Remove(local); err != nil {
				t.Fatal(err)
			}
		} else {
			here := slices.Clone(good)
			here[20] ^= 0xff
			if err := os.WriteFile(local, here, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		st, err := r.RepairPacks(t.Context(), dst, RepairOptions{})
		if err != nil || len(st.Lost) != 1 || st.Lost[0].Pack != p.ID || !strings.Contains(st.Lost[0].Reason, "damaged too") {
			t.Fatalf("%s here, damaged there: %+v, %v; want pack %s lost", damage, st, err, p.ID.Short())
		}
		got, err := os.ReadFile(local)
		switch {
		case damage == "missing" && !os.IsNotExist(err):
			t.Errorf("the damaged copy was kept (%v)", err)
		case damage == "damaged" && (err != nil || bytes.Equal(got, bad) || bytes.Equal(got, good)):
			t.Errorf("the damaged copy here was replaced by another damaged one (%v)", err)
		}
	}
	// The open repository's claim (owner-*.lock) stays until Close.
	packs, _ := filepath.Glob(filepath.Join(r.be.Location(), "tmp", "pack-*"))
	if len(packs) != 0 {
		t.Errorf("scratch packs left: %v", packs)
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

// A rebuild leaves out a pack the repository lost, so that backups store
// its blobs anew; a repair from a replica still finds it through the
// segments, and puts it back into the index.
func TestRepairAfterRebuildLeftPackOut(t *testing.T) {
	r, blobs := pushRepo(t)
	dst := newRecorder(t)
	push(t, r, dst)
	var lost index.PackInfo
	r.idx.Packs(func(p index.PackInfo) error { lost = p; return nil })
	if err := os.Remove(filepath.Join(r.be.Location(), packName(lost.ID))); err != nil {
		t.Fatal(err)
	}
	st, err := r.RebuildIndex(t.Context(), nil)
	if err != nil || !slices.Equal(st.MissingPacks, []blob.ID{lost.ID}) {
		t.Fatalf("rebuild: %+v, %v; want pack %s missing", st, err, lost.ID.Short())
	}
	if ok, _ := r.idx.HasPack(lost.ID); ok {
		t.Fatal("the rebuilt index lists the lost pack")
	}
	rs, err := r.RepairPacks(t.Context(), dst, RepairOptions{})
	if err != nil || rs.Fetched != 1 || rs.Missing != 1 {
		t.Fatalf("repair after the rebuild: %+v, %v", rs, err)
	}
	for id, want := range blobs {
		if got, err := r.LoadBlob(t.Context(), blob.Data, id, nil); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("blob %s: %v", id.Short(), err)
		}
	}
}
