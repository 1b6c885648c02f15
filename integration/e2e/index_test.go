package e2e

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/integration/testtree"
	"github.com/hindsight-backup/hindsight/snapshot"
)

// TestIndexIsACache deletes the local index of a repository with two
// snapshots: everything a restore needs comes back from the index segments
// when the repository is opened, and the history comes back, identical,
// from a history rebuild, and again from index rebuild followed by history
// rebuild.
func TestIndexIsACache(t *testing.T) {
	ctx := context.Background()
	tmp := t.TempDir()
	repoDir := filepath.Join(tmp, "repo")
	repo := initRepo(t, repoDir, chunkstore.InitOptions{PackSize: 4 << 20})
	src := filepath.Join(tmp, "src")
	testtree.Build(t, src)
	a := backup(t, repo, src, nil)
	changes := testtree.Mutate(t, src, 2)
	b := backup(t, repo, src, nil)

	source := snapshot.HistorySource(testHost, src)
	histories := func(r snapshot.Repo) map[string][]snapshot.Version {
		out := map[string][]snapshot.Version{}
		for _, c := range changes {
			v, err := snapshot.History(ctx, r, source, c.Path)
			if err != nil {
				t.Fatalf("history of %s: %v", short(c.Path), err)
			}
			out[c.Path] = v
		}
		return out
	}
	want := histories(repo)
	var multi int
	for _, v := range want {
		if len(v) > 1 {
			multi++
		}
	}
	if multi == 0 {
		t.Fatal("no mutated path has two versions; the history comparison below proves nothing")
	}

	repo.Close()
	if err := os.RemoveAll(filepath.Join(repoDir, "index")); err != nil {
		t.Fatal(err)
	}
	repo = openRepo(t, repoDir)
	if !repo.IndexCreated() {
		t.Error("IndexCreated is false after index/ was deleted: callers will not know to rebuild the history")
	}
	// What the CLI does on a new index: segments hold no history rows.
	if err := snapshot.RebuildHistory(ctx, repo); err != nil {
		t.Fatalf("history rebuild on a new index: %v", err)
	}
	got := histories(repo)
	for p, w := range want {
		if !reflect.DeepEqual(got[p], w) {
			t.Errorf("history of %s on a new index:\n got %+v\nwant %+v", short(p), got[p], w)
		}
	}
	snaps := listSnapshots(t, repo)
	if len(snaps) != 2 || snaps[0].ID != a.ID || snaps[1].ID != b.ID {
		t.Fatalf("after deleting the index, snapshots are %v, want A %s and B %s", snaps, a.ID.Short(), b.ID.Short())
	}
	dst := filepath.Join(tmp, "dst")
	restore(t, repo, snaps[1].Record, dst)
	sameTree(t, src, dst, exact)
	requireClean(t, repo)

	st, err := repo.RebuildIndex(ctx, nil)
	if err != nil {
		t.Fatalf("index rebuild: %v", err)
	}
	if st.BadSegments != 0 || len(st.BrokenPacks) != 0 || st.TrailerPacks != 0 {
		t.Errorf("index rebuild of an intact repository: %+v", st)
	}
	if err := snapshot.RebuildHistory(ctx, repo); err != nil {
		t.Fatalf("history rebuild: %v", err)
	}
	got = histories(repo)
	for p, w := range want {
		if !reflect.DeepEqual(got[p], w) {
			t.Errorf("history of %s after rebuild:\n got %+v\nwant %+v", short(p), got[p], w)
		}
	}
	// The rebuilt index must also serve a second backup, which finds its
	// parent and reuses everything.
	var prog snapshot.Progress
	c := backup(t, repo, src, &prog)
	if c.Record.Parent != b.ID || prog.NewBytes.Load() != 0 {
		t.Errorf("backup after rebuild: parent %s (want %s), %d new bytes", c.Record.Parent.Short(), b.ID.Short(), prog.NewBytes.Load())
	}
	requireClean(t, repo)
}
