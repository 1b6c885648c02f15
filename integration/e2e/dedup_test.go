package e2e

import (
	"path/filepath"
	"testing"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/integration/testtree"
	"github.com/hindsight-backup/hindsight/snapshot"
)

// TestUnchangedBackupDedups backs up the same tree twice. Nothing changed,
// so the second snapshot must reuse every tree (same root tree ID), read no
// file content, and add next to nothing to the repository. A backup run
// daily over a mostly static server must not grow the repository by its
// directory count every day, nor make every file look changed in history.
func TestUnchangedBackupDedups(t *testing.T) {
	repo, repoDir := chunkstore.TestRepository(t, chunkstore.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	testtree.Build(t, src)

	first := backup(t, repo, src, nil)
	before := sum(packFiles(t, repoDir))

	var prog snapshot.Progress
	second := backup(t, repo, src, &prog)
	if second.Record.Parent != first.ID {
		t.Errorf("second backup's parent is %s, want the first snapshot %s", second.Record.Parent, first.ID)
	}
	if n := prog.ReadBytes.Load(); n != 0 {
		t.Errorf("unchanged backup read %d bytes of content", n)
	}
	if n := prog.NewBytes.Load(); n != 0 {
		t.Errorf("unchanged backup stored %d new content bytes", n)
	}
	if second.Record.Tree != first.Record.Tree {
		t.Errorf("unchanged tree got a new root tree ID; nodes that differ:")
		for _, d := range nodeDiffs(t, repo, first.Record.Tree, second.Record.Tree) {
			t.Errorf("  %s", d)
		}
	}
	if grown := sum(packFiles(t, repoDir)) - before; grown >= 1<<20 {
		t.Errorf("packs grew by %d bytes after a backup without changes", grown)
	}
	requireClean(t, repo)
}

// TestUnchangedPlainTreeDedups is the same check on a tree of directories
// and regular files only, so that a failure of the richer test above can be
// told apart from a failure of tree reuse as such.
func TestUnchangedPlainTreeDedups(t *testing.T) {
	repo, _ := chunkstore.TestRepository(t, chunkstore.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	randomTree(t, src, 7, repeat(20, 100<<10)...)
	first := backup(t, repo, src, nil)
	second := backup(t, repo, src, nil)
	if second.Record.Tree != first.Record.Tree {
		t.Errorf("unchanged plain tree got a new root tree ID; nodes that differ:")
		for _, d := range nodeDiffs(t, repo, first.Record.Tree, second.Record.Tree) {
			t.Errorf("  %s", d)
		}
	}
}
