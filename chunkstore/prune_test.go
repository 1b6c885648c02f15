package chunkstore

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/codec"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
	"github.com/hindsight-backup/hindsight/chunkstore/lock"
	"github.com/hindsight-backup/hindsight/remote"
)

// These tests stand in for the snapshot package (which imports this one)
// with records that are plain lists of data blob IDs: testRefs marks
// exactly those.

func testRefs(_ context.Context, rec []byte, m *Marker) error {
	if len(rec)%blob.IDSize != 0 {
		return errors.New("bad test record")
	}
	var ids []blob.ID
	for ; len(rec) > 0; rec = rec[blob.IDSize:] {
		ids = append(ids, blob.ID(rec[:blob.IDSize]))
	}
	return m.Data(ids)
}

type pruneFixture struct {
	t   *testing.T
	r   *Repository
	dir string
	ctx context.Context
	n   int64 // seeds used so far
}

func newPruneFixture(t *testing.T) *pruneFixture {
	r, dir := TestRepository(t, InitOptions{PackSize: 1 << 20})
	return &pruneFixture{t: t, r: r, dir: dir, ctx: context.Background()}
}

// blobs stores n new 300 KiB blobs (about four a pack) and flushes.
func (f *pruneFixture) blobs(n int) []blob.ID {
	f.t.Helper()
	ids := make([]blob.ID, n)
	for i := range ids {
		f.n++
		data := randomData(f.n, 300<<10)
		ids[i] = f.r.BlobID(data)
		if _, err := f.r.SaveBlob(f.ctx, blob.Data, ids[i], data); err != nil {
			f.t.Fatal(err)
		}
	}
	if err := f.r.Flush(f.ctx); err != nil {
		f.t.Fatal(err)
	}
	return ids
}

// snapshot writes a record referencing ids.
func (f *pruneFixture) snapshot(ids []blob.ID) blob.ID {
	f.t.Helper()
	var rec []byte
	for _, id := range ids {
		rec = append(rec, id[:]...)
	}
	sid, err := NewSnapshotID()
	if err == nil {
		err = f.r.SaveSnapshot(f.ctx, sid, rec)
	}
	if err != nil {
		f.t.Fatal(err)
	}
	return sid
}

// lock takes a shared lock for purpose, released when the test ends.
func (f *pruneFixture) lock(purpose string) *lock.Lock {
	f.t.Helper()
	l, err := lock.Acquire(f.ctx, f.r.Backend(), false, purpose, lock.Options{})
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { l.Release() })
	return l
}

func (f *pruneFixture) prune(o PruneOptions) PruneStats {
	f.t.Helper()
	st, err := f.tryPrune(f.ctx, o)
	if err != nil {
		f.t.Fatal(err)
	}
	return st
}

func (f *pruneFixture) tryPrune(ctx context.Context, o PruneOptions) (PruneStats, error) {
	l := f.lock("prune")
	defer l.Release()
	o.Lock, o.Refs = l, testRefs
	return f.r.Prune(ctx, o)
}

func (f *pruneFixture) packFiles() []string {
	f.t.Helper()
	return listNames(f.t, f.r.Backend(), packsPrefix)
}

// loadable reports, for each blob, whether it loads intact.
func (f *pruneFixture) loadable(ids []blob.ID) []bool {
	out := make([]bool, len(ids))
	for i, id := range ids {
		_, err := f.r.LoadBlob(f.ctx, blob.Data, id, nil)
		out[i] = err == nil
	}
	return out
}

func allTrue(bs []bool) bool  { return !slices.Contains(bs, false) }
func allFalse(bs []bool) bool { return !slices.Contains(bs, true) }

// clean fails unless the packs agree with the index, nothing is condemned
// and a rebuilt index gives the same answers.
func (f *pruneFixture) clean() {
	f.t.Helper()
	var problems []string
	err := f.r.CheckPacks(f.ctx, CheckOptions{ReadData: Subset{All: true}}, func(p Problem) { problems = append(problems, p.String()) })
	if err != nil || len(problems) > 0 {
		f.t.Fatalf("check: %v %q", err, problems)
	}
	if recs := listNames(f.t, f.r.Backend(), condemnedPrefix); len(recs) > 0 {
		f.t.Fatalf("records left: %q", recs)
	}
	wantB, wantP := dumpIndex(f.t, f.r.Index())
	if _, err := f.r.RebuildIndex(f.ctx, nil); err != nil {
		f.t.Fatal(err)
	}
	gotB, gotP := dumpIndex(f.t, f.r.Index())
	if !reflect.DeepEqual(gotB, wantB) || !reflect.DeepEqual(gotP, wantP) {
		f.t.Fatalf("rebuilt index differs: %d blobs in %d packs, was %d in %d", len(gotB), len(gotP), len(wantB), len(wantP))
	}
}

func TestPruneDeletesUnreferenced(t *testing.T) {
	f := newPruneFixture(t)
	keep, drop := f.blobs(12), f.blobs(12)
	f.snapshot(keep)
	gone := f.snapshot(drop)
	before := len(f.packFiles())
	if err := f.r.RemoveSnapshot(f.ctx, gone); err != nil {
		t.Fatal(err)
	}
	st := f.prune(PruneOptions{MaxUnused: 0.05})
	if st.Snapshots != 1 || st.UnusedPacks != 3 || st.Condemned != 3 || st.Deleted != 3 || st.Waiting != 0 {
		t.Fatalf("stats %+v", st)
	}
	if after := len(f.packFiles()); after != before-3 {
		t.Fatalf("%d packs left of %d, want 3 fewer", after, before)
	}
	if !allTrue(f.loadable(keep)) || !allFalse(f.loadable(drop)) {
		t.Fatalf("loadable: kept %v, dropped %v", f.loadable(keep), f.loadable(drop))
	}
	f.clean()
	if st := f.prune(PruneOptions{MaxUnused: 0.05}); st.Condemned != 0 || st.Deleted != 0 {
		t.Fatalf("a second prune found work: %+v", st)
	}
}

func TestPruneDryRun(t *testing.T) {
	f := newPruneFixture(t)
	f.snapshot(f.blobs(8))
	drop := f.blobs(8)
	half := f.blobs(8)
	f.snapshot(half[:4:4]) // the first of two packs, whole
	f.snapshot([]blob.ID{half[4], half[6]})
	files := repoFilesOf(t, f.r.Backend())
	st := f.prune(PruneOptions{DryRun: true, MaxUnused: 0.05})
	if st.UnusedPacks != 2 || st.RepackPacks != 1 || st.Condemned != 0 || st.Deleted != 0 {
		t.Fatalf("stats %+v", st)
	}
	if st.RepackedBlobBytes == 0 || st.UnusedBytes == 0 {
		t.Fatalf("dry run reports no bytes: %+v", st)
	}
	if got := repoFilesOf(t, f.r.Backend()); !reflect.DeepEqual(got, files) {
		t.Fatalf("dry run changed the repository:\n%q\n%q", files, got)
	}
	if !allTrue(f.loadable(drop)) {
		t.Fatal("dry run made blobs unreadable")
	}
	if _, live, _ := f.r.Index().LookupLive(blob.Data, drop[0]); !live {
		t.Fatal("dry run condemned a pack in the index")
	}
}

// repoFilesOf lists the repository's objects other than locks, which the
// test's own prune lock changes.
func repoFilesOf(t *testing.T, be remote.Backend) []string {
	var out []string
	for _, p := range []string{packsPrefix, segmentsPrefix, snapshotsPrefix, condemnedPrefix} {
		out = append(out, listNames(t, be, p)...)
	}
	return out
}

func TestPruneRepackThreshold(t *testing.T) {
	f := newPruneFixture(t)
	ids := f.blobs(12) // three packs of four
	var used, unused []blob.ID
	for i, id := range ids {
		if i%4 == 0 { // a quarter of each pack
			used = append(used, id)
		} else {
			unused = append(unused, id)
		}
	}
	f.snapshot(used)
	if st := f.prune(PruneOptions{MaxUnused: 0.8}); st.RepackPacks != 0 || st.Condemned != 0 {
		t.Fatalf("75%% unused under an 80%% threshold was repacked: %+v", st)
	}
	before := f.packFiles()
	st := f.prune(PruneOptions{MaxUnused: 0.5})
	if st.RepackPacks != 3 || st.RepackedBlobs != 3 || st.Deleted != 3 {
		t.Fatalf("stats %+v", st)
	}
	after := f.packFiles()
	for _, p := range before {
		if slices.Contains(after, p) {
			t.Fatalf("repacked pack %s still there", p)
		}
	}
	if !allTrue(f.loadable(used)) || !allFalse(f.loadable(unused)) {
		t.Fatalf("loadable: used %v, unused %v", f.loadable(used), f.loadable(unused))
	}
	f.clean()
	if st := f.prune(PruneOptions{}); st.RepackPacks != 0 || st.Condemned != 0 {
		t.Fatalf("fresh copies repacked again: %+v", st)
	}
}

// TestPruneWaitsForWriters condemns while a backup holds a lock, and a
// snapshot written meanwhile references a condemned blob, as a backup
// that found it before the condemnation would write it.
func TestPruneWaitsForWriters(t *testing.T) {
	f := newPruneFixture(t)
	keep, drop := f.blobs(4), f.blobs(8)
	f.snapshot(keep)
	backup := f.lock("backup")
	f.lock("mount") // ignored: it never writes a snapshot
	ignore := func(l lock.Info) bool { return l.Purpose == "mount" }

	st := f.prune(PruneOptions{Ignore: ignore})
	if st.Condemned != 2 || st.Deleted != 0 || st.Waiting != 2 || len(st.WaitingFor) != 1 {
		t.Fatalf("stats %+v", st)
	}
	if !allTrue(f.loadable(drop)) {
		t.Fatal("condemned blobs are unreadable before their deletion")
	}
	if known, err := f.r.HasBlob(blob.Data, drop[0]); err != nil || known {
		t.Fatalf("a writer may still deduplicate against a condemned blob: %v %v", known, err)
	}
	f.snapshot(drop[:1]) // the pardon: its pack must stay

	st = f.prune(PruneOptions{Ignore: ignore})
	if st.Deleted != 0 || st.Waiting != 2 {
		t.Fatalf("deleted while the backup runs: %+v", st)
	}
	if err := backup.Release(); err != nil {
		t.Fatal(err)
	}
	st = f.prune(PruneOptions{Ignore: ignore})
	if st.Pardoned != 1 || st.Deleted != 1 || st.Waiting != 0 {
		t.Fatalf("stats after the backup ended: %+v", st)
	}
	if got := f.loadable(drop); !got[0] || !allFalse(got[4:]) {
		t.Fatalf("loadable after the pardon: %v", got)
	}
	if known, _ := f.r.HasBlob(blob.Data, drop[0]); !known {
		t.Fatal("a pardoned blob is still hidden from writers")
	}
	f.clean()
}

// A condemned pack whose protection cannot be told stays.
func TestPruneKeepsPackWhenProtectFails(t *testing.T) {
	f := newPruneFixture(t)
	keep, drop := f.blobs(4), f.blobs(8)
	f.snapshot(keep)
	backup := f.lock("backup")
	if st := f.prune(PruneOptions{}); st.Condemned != 2 || st.Waiting != 2 {
		t.Fatalf("stats %+v", st)
	}
	if err := backup.Release(); err != nil {
		t.Fatal(err)
	}
	condemned := map[blob.ID]bool{}
	for _, id := range drop {
		l, _, err := f.r.Index().Lookup(blob.Data, id)
		if err != nil {
			t.Fatal(err)
		}
		condemned[l.Pack] = true
	}
	broken := errors.New("protection unknown")
	protect := func(pack blob.ID) (bool, error) {
		if condemned[pack] {
			return false, broken
		}
		return false, nil
	}
	_, err := f.tryPrune(f.ctx, PruneOptions{Protect: protect})
	if !errors.Is(err, broken) {
		t.Fatalf("prune with a failing Protect: %v", err)
	}
	if !allTrue(f.loadable(drop)) {
		t.Fatal("a pack was deleted although its protection was unknown")
	}
}

func TestPruneRefusesSecondPrune(t *testing.T) {
	f := newPruneFixture(t)
	f.lock("prune")
	if _, err := f.tryPrune(f.ctx, PruneOptions{}); !errors.Is(err, ErrPruneRunning) {
		t.Fatalf("prune beside another prune: %v", err)
	}
}

// TestPruneCondemnedSurvivesRebuild rebuilds the index while packs wait:
// they must stay condemned, readable, and be deleted later.
func TestPruneCondemnedSurvivesRebuild(t *testing.T) {
	f := newPruneFixture(t)
	keep, drop := f.blobs(4), f.blobs(4)
	f.snapshot(keep)
	backup := f.lock("backup")
	if st := f.prune(PruneOptions{}); st.Waiting != 1 {
		t.Fatalf("stats %+v", st)
	}
	wantB, wantP := dumpIndex(t, f.r.Index())
	if _, err := f.r.RebuildIndex(f.ctx, nil); err != nil {
		t.Fatal(err)
	}
	gotB, gotP := dumpIndex(t, f.r.Index())
	if !reflect.DeepEqual(gotB, wantB) || !reflect.DeepEqual(gotP, wantP) {
		t.Fatal("rebuilt index differs")
	}
	if known, _ := f.r.HasBlob(blob.Data, drop[0]); known || !allTrue(f.loadable(drop)) {
		t.Fatal("rebuild lost the condemnation, or the condemned blobs")
	}
	backup.Release()
	if st := f.prune(PruneOptions{}); st.Deleted != 1 {
		t.Fatalf("stats %+v", st)
	}
	f.clean()
}

// TestPruneKeepsOtherCopies deletes a pack whose blob the index places
// there while a pack that stays holds another copy: the index must point
// at that copy, not lose the blob.
func TestPruneKeepsOtherCopies(t *testing.T) {
	f := newPruneFixture(t)
	garbage := f.blobs(4) // pack K
	var kpack blob.ID
	var kinfo index.PackInfo
	var kentries []index.BlobEntry
	if err := f.r.Index().Blobs(func(e index.BlobEntry) error {
		if e.ID == garbage[0] {
			kpack = e.Pack
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := f.r.Index().Blobs(func(e index.BlobEntry) error {
		if e.Pack == kpack {
			kentries = append(kentries, e)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	kinfo, _, _ = f.r.Index().Pack(kpack)
	// Pack J: a copy of garbage[0] and a referenced blob.
	data, err := f.r.LoadBlob(f.ctx, blob.Data, garbage[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	loc, _, _ := f.r.Index().Lookup(blob.Data, garbage[0])
	stored, _, err := f.r.readRange(f.ctx, kpack, int64(loc.Offset), int64(loc.Length))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.r.addStored(f.ctx, blob.Data, garbage[0], codec.Compression(loc.Compression), len(data), stored); err != nil {
		t.Fatal(err)
	}
	f.snapshot(f.blobs(1))
	// K indexed last: the index places garbage[0] in K again.
	if err := f.r.Index().AddPack(kinfo, kentries); err != nil {
		t.Fatal(err)
	}
	if err := f.r.Flush(f.ctx); err != nil { // lists K again
		t.Fatal(err)
	}
	if l, _, _ := f.r.Index().Lookup(blob.Data, garbage[0]); l.Pack != kpack {
		t.Fatal("setup: the blob is not placed in K")
	}
	if st := f.prune(PruneOptions{MaxUnused: 0.99}); st.Deleted != 1 {
		t.Fatalf("stats %+v", st)
	}
	if got := f.loadable(garbage); !got[0] || !allFalse(got[1:]) {
		t.Fatalf("loadable: %v; want only the blob with a copy in J", got)
	}
	f.clean()
}

// TestPruneInterrupted stops a prune at each of its steps, then lets the
// next run finish: the end state is as if nothing had stopped it.
func TestPruneInterrupted(t *testing.T) {
	steps := []string{"locks", "candidates", "mark", "settle", "usage", "repack", "record", "condemn",
		"holders", "remark", "segments", "drop", "remove", "records"}
	for i, stop := range steps {
		t.Run(fmt.Sprintf("%02d-%s", i, stop), func(t *testing.T) {
			f := newPruneFixture(t)
			ids := f.blobs(12)
			used := []blob.ID{ids[0], ids[4], ids[5], ids[6]}
			f.snapshot(used)
			ctx, cancel := context.WithCancel(f.ctx)
			reached := false
			_, err := f.tryPrune(ctx, PruneOptions{MaxUnused: 0.2, Step: func(s string) {
				if s == stop {
					reached = true
					cancel()
				}
			}})
			if !reached || err == nil {
				t.Fatalf("prune not stopped at %s: reached %v, err %v", stop, reached, err)
			}
			f.r = reopen(t, f.r, f.dir)
			f.prune(PruneOptions{MaxUnused: 0.2})
			if !allTrue(f.loadable(used)) {
				t.Fatal("a referenced blob was lost")
			}
			f.clean()
			var unused int
			if err := f.r.Index().Blobs(func(e index.BlobEntry) error {
				if !slices.Contains(used, e.ID) {
					unused++
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if unused != 0 {
				t.Fatalf("%d unreferenced blobs left", unused)
			}
		})
	}
}

// TestPruneRewalksAfterMissingBlob: a walk stopped by a blob the index did
// not know yet is redone after the segments are merged, and the trees the
// stopped walk marked are walked again, not taken as walked.
func TestPruneRewalksAfterMissingBlob(t *testing.T) {
	f := newPruneFixture(t)
	ids := f.blobs(4)
	f.snapshot(ids)
	root := blob.ID{1}
	calls := 0
	refs := func(_ context.Context, _ []byte, m *Marker) error {
		calls++
		first, err := m.Tree(root)
		if err != nil || !first {
			return err // as snapshot.Refs does: a marked tree was walked
		}
		if calls == 1 {
			return &BlobMissingError{Type: blob.Tree, ID: root}
		}
		return m.Data(slices.Clone(ids))
	}
	l := f.lock("prune")
	if _, err := f.r.Prune(f.ctx, PruneOptions{Lock: l, Refs: refs}); err != nil {
		t.Fatal(err)
	}
	l.Release()
	if calls != 2 || !allTrue(f.loadable(ids)) {
		t.Fatalf("after %d walks, loadable %v", calls, f.loadable(ids))
	}
}
