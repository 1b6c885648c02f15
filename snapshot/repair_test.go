package snapshot_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/snapshot"
)

// repairRepo is a repository with three backups of one source: a.bin and
// dir/c.bin unchanged throughout, b.txt changed in the second, e.txt new
// in the third.
func repairRepo(t *testing.T) (*chunkstore.Repository, string, []*snapshot.Result) {
	repo, dir := chunkstore.TestRepository(t, chunkstore.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	writeFile(t, filepath.Join(src, "a.bin"), random(1, 6<<20))
	writeFile(t, filepath.Join(src, "b.txt"), []byte("one\n"))
	writeFile(t, filepath.Join(src, "dir/c.bin"), random(2, 100<<10))
	var res []*snapshot.Result
	res = append(res, backup(t, repo, src, snapshot.BackupOptions{}, nil))
	writeFile(t, filepath.Join(src, "b.txt"), []byte("two\n"))
	res = append(res, backup(t, repo, src, snapshot.BackupOptions{}, nil))
	writeFile(t, filepath.Join(src, "e.txt"), []byte("new\n"))
	res = append(res, backup(t, repo, src, snapshot.BackupOptions{}, nil))
	return repo, dir, res
}

func repair(t *testing.T, repo *chunkstore.Repository, o snapshot.RepairOptions) []snapshot.Repair {
	t.Helper()
	var out []snapshot.Repair
	o.Report = func(r snapshot.Repair) { out = append(out, r) }
	if err := snapshot.RepairSnapshots(context.Background(), repo, o); err != nil {
		t.Fatalf("RepairSnapshots: %v", err)
	}
	return out
}

// allHistory is every version of every path of the source, as the
// history view shows them.
func allHistory(t *testing.T, repo *chunkstore.Repository, source string, paths ...string) map[string][]snapshot.Version {
	t.Helper()
	out := map[string][]snapshot.Version{}
	for _, p := range paths {
		v, err := snapshot.History(context.Background(), repo, source, p)
		if err != nil {
			t.Fatal(err)
		}
		out[p] = v
	}
	return out
}

func TestRepairSnapshotsZeroFillsLostChunks(t *testing.T) {
	ctx := context.Background()
	repo, _, res := repairRepo(t)
	a, err := snapshot.Lookup(ctx, repo, res[0].Record, "a.bin")
	if err != nil || len(a.Content) < 2 {
		t.Fatalf("a.bin: %v, %d chunks; the test needs two", err, len(a.Content))
	}
	lost := a.Content[1].ID
	dmg := snapshot.Damage{Blobs: map[blob.ID]bool{lost: true}}

	before, _ := snapshot.List(ctx, repo)
	if r := repair(t, repo, snapshot.RepairOptions{Damage: dmg, DryRun: true}); len(r) != 3 {
		t.Errorf("dry run reports %+v; want 3 rewrites", r)
	}
	if after, _ := snapshot.List(ctx, repo); !slices.EqualFunc(before, after, func(x, y snapshot.Snapshot) bool { return x.ID == y.ID }) {
		t.Fatalf("the dry run changed the snapshots")
	}

	reps := repair(t, repo, snapshot.RepairOptions{Damage: dmg})
	if len(reps) != 3 {
		t.Fatalf("repairs %+v; want every snapshot rewritten", reps)
	}
	for _, r := range reps {
		if r.Action != snapshot.RepairRewritten || len(r.Lost) != 1 || r.Lost[0].Path != "a.bin" {
			t.Errorf("repair %+v; want a.bin lost", r)
		}
	}
	snaps, err := snapshot.List(ctx, repo)
	if err != nil || len(snaps) != 3 {
		t.Fatalf("after repair: %d snapshots, %v", len(snaps), err)
	}
	for i, s := range snaps {
		if s.ID == res[i].ID || !slices.Contains(s.Record.Tags, snapshot.RepairedTag) || !s.Record.Time.Equal(res[i].Record.Time) {
			t.Errorf("snapshot %d after repair: %s %+v", i, s.ID.Short(), s.Record)
		}
		if len(s.Record.Incomplete) != 1 || !strings.HasPrefix(s.Record.Incomplete[0], "a.bin: lost in repair") {
			t.Errorf("incomplete list %q; want a.bin", s.Record.Incomplete)
		}
		n, err := snapshot.Lookup(ctx, repo, s.Record, "a.bin")
		if err != nil || n.Size != a.Size || !n.Content[1].IsHole() || n.Content[1].Size != a.Content[1].Size || n.Content[0] != a.Content[0] || n.Ctime != 0 {
			t.Errorf("a.bin after repair: %+v, %v", n, err)
		}
	}
	var problems []snapshot.Problem
	if err := snapshot.Check(ctx, repo, snaps, dmg, func(p snapshot.Problem) { problems = append(problems, p) }); err != nil || len(problems) != 0 {
		t.Errorf("check after repair: %v, %v", problems, err)
	}
	if again := repair(t, repo, snapshot.RepairOptions{Damage: dmg}); len(again) != 0 {
		t.Errorf("a second repair did %+v", again)
	}

	// The history rows are those a rebuild from scratch writes.
	source := snapshot.HistorySource(res[0].Record.Host, res[0].Record.Source)
	paths := []string{"a.bin", "b.txt", "dir", "dir/c.bin", "e.txt"}
	fixed := allHistory(t, repo, source, paths...)
	if len(fixed["b.txt"]) != 2 || fixed["b.txt"][1].Snapshot != snaps[1].ID || len(fixed["a.bin"]) != 1 || fixed["a.bin"][0].Snapshot != snaps[0].ID {
		t.Errorf("history after repair: %+v", fixed)
	}
	for _, s := range append(snaps, before...) {
		repo.Index().DeleteHistory(source, s.ID)
	}
	if err := snapshot.RebuildHistory(ctx, repo); err != nil {
		t.Fatal(err)
	}
	if rebuilt := allHistory(t, repo, source, paths...); !equalHistory(fixed, rebuilt) {
		t.Errorf("history after repair\n%+v\nafter a rebuild\n%+v", fixed, rebuilt)
	}
}

func equalHistory(a, b map[string][]snapshot.Version) bool {
	for p, va := range a {
		if !slices.EqualFunc(va, b[p], func(x, y snapshot.Version) bool {
			return x.Snapshot == y.Snapshot && x.Kind == y.Kind && x.Content == y.Content && x.Size == y.Size
		}) {
			return false
		}
	}
	return len(a) == len(b)
}

// A directory whose tree is damaged becomes empty; a snapshot whose top
// tree is damaged is removed, and the next one's history is then written
// against the one before.
func TestRepairSnapshotsLostTrees(t *testing.T) {
	ctx := context.Background()
	repo, dir, res := repairRepo(t)
	d, err := snapshot.Lookup(ctx, repo, res[2].Record, "dir")
	if err != nil {
		t.Fatal(err)
	}
	flipBlob(t, repo, dir, blob.Tree, d.Subtree)
	top := res[1].Record.Tree
	flipBlob(t, repo, dir, blob.Tree, top)

	reps := repair(t, repo, snapshot.RepairOptions{})
	var removed, rewritten int
	for _, r := range reps {
		switch r.Action {
		case snapshot.RepairRemoved:
			removed++
			if r.Snapshot != res[1].ID {
				t.Errorf("removed %s, want %s (its top tree is damaged)", r.Snapshot.Short(), res[1].ID.Short())
			}
		case snapshot.RepairRewritten:
			rewritten++
			if len(r.Lost) != 1 || r.Lost[0].Path != "dir" || !strings.Contains(r.Lost[0].Reason, "directory lost") {
				t.Errorf("rewrite lost %+v; want dir", r.Lost)
			}
		}
	}
	if removed != 1 || rewritten != 2 {
		t.Fatalf("repairs %+v; want one removal, two rewrites", reps)
	}
	snaps, _ := snapshot.List(ctx, repo)
	for _, s := range snaps {
		n, err := snapshot.Lookup(ctx, repo, s.Record, "dir")
		if err != nil || n.Type != snapshot.TypeDir {
			t.Fatalf("dir after repair: %v", err)
		}
		if _, err := snapshot.Lookup(ctx, repo, s.Record, "dir/c.bin"); err == nil {
			t.Errorf("dir/c.bin survived the loss of its directory")
		}
	}
	source := snapshot.HistorySource(res[0].Record.Host, res[0].Record.Source)
	v := allHistory(t, repo, source, "b.txt")["b.txt"]
	if len(v) != 2 || v[0].Snapshot != snaps[0].ID || v[1].Snapshot != snaps[1].ID {
		t.Errorf("b.txt history after its second version's snapshot was removed: %+v (snapshots %v)", v, snaps)
	}
}

// flipBlob damages one stored blob in its pack.
func flipBlob(t *testing.T, repo *chunkstore.Repository, dir string, typ blob.Type, id blob.ID) {
	t.Helper()
	loc, ok, err := repo.Index().Lookup(typ, id)
	if !ok || err != nil {
		t.Fatalf("lookup %s: %v %v", id.Short(), ok, err)
	}
	s := loc.Pack.String()
	p := filepath.Join(dir, "packs", s[:2], s)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[loc.Offset+loc.Length/2] ^= 0xff
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// A record that does not open is written again from the index's cache or
// a replica, and removed when neither has it.
func TestRepairSnapshotsRecords(t *testing.T) {
	ctx := context.Background()
	repo, dir, res := repairRepo(t)
	name := filepath.Join(dir, "snapshots", res[1].ID.String())
	good, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	corrupt := func() {
		b := slices.Clone(good)
		b[len(b)/2] ^= 0xff
		if err := os.WriteFile(name, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	corrupt()
	reps := repair(t, repo, snapshot.RepairOptions{})
	if len(reps) != 1 || reps[0].Action != snapshot.RepairRestored || !strings.Contains(reps[0].Message, "cache") {
		t.Fatalf("repairs %+v; want the record restored from the cache", reps)
	}
	if _, err := repo.LoadSnapshot(ctx, res[1].ID); err != nil {
		t.Fatalf("restored record: %v", err)
	}

	// Without the cached copy, the replica's.
	corrupt()
	if err := repo.Index().DeleteSnapshot(res[1].ID); err != nil {
		t.Fatal(err)
	}
	replica := func(ctx context.Context, id blob.ID) ([]byte, error) {
		b, err := snapshot.EncodeRecord(res[1].Record)
		if err == nil {
			err = repo.SaveSnapshot(ctx, id, b)
		}
		return b, err
	}
	reps = repair(t, repo, snapshot.RepairOptions{Fetch: replica, FetchFrom: "remote offsite"})
	if len(reps) != 1 || reps[0].Action != snapshot.RepairRestored || !strings.Contains(reps[0].Message, "offsite") {
		t.Fatalf("repairs %+v; want the record restored from the replica", reps)
	}
	if _, err := repo.LoadSnapshot(ctx, res[1].ID); err != nil {
		t.Fatalf("record restored from the replica: %v", err)
	}

	// With neither, the record goes, and the history of the snapshot after
	// it is written against the one before.
	corrupt()
	if err := repo.Index().DeleteSnapshot(res[1].ID); err != nil {
		t.Fatal(err)
	}
	reps = repair(t, repo, snapshot.RepairOptions{})
	if len(reps) != 1 || reps[0].Action != snapshot.RepairRemoved {
		t.Fatalf("repairs %+v; want the record removed", reps)
	}
	snaps, err := snapshot.List(ctx, repo)
	if err != nil || len(snaps) != 2 {
		t.Fatalf("snapshots after the removal: %v, %v", snaps, err)
	}
	source := snapshot.HistorySource(res[0].Record.Host, res[0].Record.Source)
	if v := allHistory(t, repo, source, "b.txt")["b.txt"]; len(v) != 2 || v[1].Snapshot != res[2].ID {
		t.Errorf("b.txt history: %+v; want its second version in %s", v, res[2].ID.Short())
	}
}
