package snapshot_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/lock"
	"github.com/hindsight-backup/hindsight/snapshot"
)

func prune(t *testing.T, repo *chunkstore.Repository) chunkstore.PruneStats {
	t.Helper()
	ctx := context.Background()
	l, err := lock.Acquire(ctx, repo.Backend(), false, "prune", lock.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	st, err := repo.Prune(ctx, chunkstore.PruneOptions{Lock: l, Refs: func(ctx context.Context, rec []byte, m *chunkstore.Marker) error {
		return snapshot.Refs(ctx, repo, rec, m, 2)
	}})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// contentOf returns the data blobs of a file in a snapshot.
func contentOf(t *testing.T, repo snapshot.Repo, rec *snapshot.Record, p string) []blob.ID {
	t.Helper()
	n, err := snapshot.Lookup(context.Background(), repo, rec, p)
	if err != nil {
		t.Fatal(err)
	}
	var ids []blob.ID
	for _, c := range n.Content {
		ids = append(ids, c.ID)
	}
	return ids
}

func restoreSame(t *testing.T, repo snapshot.Repo, rec *snapshot.Record, src string, names ...string) {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "dst")
	if _, err := snapshot.Restore(context.Background(), repo, rec, "", dst, snapshot.RestoreOptions{Verify: true}, nil); err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		sameFile(t, filepath.Join(src, name), filepath.Join(dst, name))
	}
}

func TestPruneKeepsReferencedTrees(t *testing.T) {
	ctx := context.Background()
	repo, _ := chunkstore.TestRepository(t, chunkstore.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	writeFile(t, filepath.Join(src, "keep.bin"), random(1, 3<<20))
	writeFile(t, filepath.Join(src, "dir/sub/gone.bin"), random(2, 2<<20))
	first := backup(t, repo, src, snapshot.BackupOptions{}, nil)
	gone := contentOf(t, repo, first.Record, "dir/sub/gone.bin")
	os.Remove(filepath.Join(src, "dir/sub/gone.bin"))
	writeFile(t, filepath.Join(src, "dir/new.bin"), random(3, 1<<20))
	second := backup(t, repo, src, snapshot.BackupOptions{}, nil)

	if err := repo.RemoveSnapshot(ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	if st := prune(t, repo); st.Snapshots != 1 || st.Deleted == 0 {
		t.Fatalf("stats %+v", st)
	}
	for _, id := range gone {
		if _, err := repo.LoadBlob(ctx, blob.Data, id, nil); err == nil {
			t.Fatal("a blob only the forgotten snapshot referenced survived")
		}
	}
	restoreSame(t, repo, second.Record, src, "keep.bin", "dir/new.bin")
}

// A level of more directories than the walk loads in one batch: every
// file below it stays.
func TestPruneWalksWideLevels(t *testing.T) {
	ctx := context.Background()
	repo, _ := chunkstore.TestRepository(t, chunkstore.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	var names []string
	for i := range 300 {
		name := fmt.Sprintf("d%03d/sub/f", i)
		writeFile(t, filepath.Join(src, name), random(int64(i), 1000))
		names = append(names, name)
	}
	kept := backup(t, repo, src, snapshot.BackupOptions{}, nil)
	writeFile(t, filepath.Join(src, "extra.bin"), random(1000, 1000))
	forgotten := backup(t, repo, src, snapshot.BackupOptions{}, nil)
	extra := contentOf(t, repo, forgotten.Record, "extra.bin")
	if err := repo.RemoveSnapshot(ctx, forgotten.ID); err != nil {
		t.Fatal(err)
	}
	if st := prune(t, repo); st.Snapshots != 1 {
		t.Fatalf("stats %+v", st)
	}
	if _, err := repo.LoadBlob(ctx, blob.Data, extra[0], nil); err == nil {
		t.Fatal("a blob only the forgotten snapshot referenced survived")
	}
	restoreSame(t, repo, kept.Record, src, names...)
}

// TestBackupRereadsCondemnedContent reuses a parent whose unchanged file's
// blobs prune condemned meanwhile (the parent had been forgotten when
// prune marked, and came back as a snapshot written after the mark would):
// the backup must store the file again instead of naming blobs that prune
// is going to delete.
func TestBackupRereadsCondemnedContent(t *testing.T) {
	ctx := context.Background()
	repo, dir := chunkstore.TestRepository(t, chunkstore.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	writeFile(t, filepath.Join(src, "f.bin"), random(4, 2<<20))
	parent := backup(t, repo, src, snapshot.BackupOptions{}, nil)
	recPath := filepath.Join(dir, "snapshots", parent.ID.String())
	sealed, err := os.ReadFile(recPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.RemoveSnapshot(ctx, parent.ID); err != nil {
		t.Fatal(err)
	}
	backupLock, err := lock.Acquire(ctx, repo.Backend(), false, "backup", lock.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if st := prune(t, repo); st.Condemned == 0 || st.Waiting == 0 {
		t.Fatalf("stats %+v", st)
	}
	if err := os.WriteFile(recPath, sealed, 0o600); err != nil {
		t.Fatal(err)
	}

	var prog snapshot.Progress
	child := backup(t, repo, src, snapshot.BackupOptions{}, &prog)
	if child.Record.Parent != parent.ID || prog.ReadBytes.Load() != 2<<20 {
		t.Fatalf("parent %s, read %d bytes: the condemned content was reused", child.Record.Parent.Short(), prog.ReadBytes.Load())
	}
	for _, id := range contentOf(t, repo, child.Record, "f.bin") {
		if ok, err := repo.HasBlob(blob.Data, id); err != nil || !ok {
			t.Fatalf("the new snapshot names blob %s of a condemned pack", id.Short())
		}
	}
	if err := repo.RemoveSnapshot(ctx, parent.ID); err != nil {
		t.Fatal(err)
	}
	backupLock.Release()
	if st := prune(t, repo); st.Deleted == 0 {
		t.Fatalf("stats %+v", st)
	}
	restoreSame(t, repo, child.Record, src, "f.bin")
}
