package e2e

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/snapshot"
)

// TestInterruptedBackup cancels a backup of 200 MB once 50 MB have been
// read. No snapshot may appear; after reopening, a new backup succeeds,
// reuses what the first run had already packed, and leaves a repository
// that both checks find clean and that restores exactly.
func TestInterruptedBackup(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and backs up 200 MB")
	}
	tmp := t.TempDir()
	repoDir := filepath.Join(tmp, "repo")
	// Small packs, so that most of what the first run read is in finished
	// packs when it is cancelled.
	repo := initRepo(t, repoDir, chunkstore.InitOptions{PackSize: 4 << 20})
	src := filepath.Join(tmp, "src")
	const total = 200 << 20
	randomTree(t, src, 3, repeat(50, total/50)...)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var prog snapshot.Progress
	go func() {
		for prog.ReadBytes.Load() < 50<<20 && ctx.Err() == nil {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	res, err := snapshot.Backup(ctx, repo, src, snapshot.BackupOptions{Host: testHost}, &prog)
	if err == nil {
		t.Fatalf("cancelled backup succeeded: snapshot %s", res.ID.Short())
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled backup failed with %v, want context.Canceled", err)
	}
	readFirst := prog.ReadBytes.Load()
	t.Logf("first run: read %d, new %d bytes before cancel", readFirst, prog.NewBytes.Load())
	if n := len(listSnapshots(t, repo)); n != 0 {
		t.Fatalf("%d snapshots after a cancelled backup", n)
	}
	if err := repo.Close(); err != nil {
		t.Fatalf("close after cancel: %v", err)
	}

	repo = openRepo(t, repoDir)
	if n := len(listSnapshots(t, repo)); n != 0 {
		t.Fatalf("%d snapshots after reopening", n)
	}
	prog = snapshot.Progress{}
	res = backup(t, repo, src, &prog)
	newBytes := prog.NewBytes.Load()
	t.Logf("second run: %d new bytes of %d", newBytes, total)
	if res.Record.Parent != ([32]byte{}) {
		t.Errorf("second backup has parent %s, but no snapshot was ever written", res.Record.Parent.Short())
	}
	// Everything but the open packs (at most a few packs' worth) and what
	// was still in flight must have been kept.
	if newBytes > total-32<<20 {
		t.Errorf("second run stored %d new bytes of %d: what the cancelled run packed was not reused", newBytes, total)
	}
	requireClean(t, repo)
	if left, _ := os.ReadDir(filepath.Join(repoDir, "tmp")); len(left) != 0 {
		t.Errorf("scratch files left behind: %v", left)
	}
	dst := filepath.Join(tmp, "dst")
	restore(t, repo, res.Record, dst)
	sameTree(t, src, dst, exact)

	// The packs the cancelled run finished are referenced now; an index
	// segment must list them, or a machine rebuilding its index from the
	// segments alone would not know where those blobs are.
	var unlisted int
	if err := repo.Index().UnlistedPacks(func(blob.ID) error { unlisted++; return nil }); err != nil {
		t.Fatal(err)
	}
	if unlisted != 0 {
		t.Errorf("%d packs are in no index segment after a successful backup", unlisted)
	}
	repo.Close()
	if err := os.RemoveAll(filepath.Join(repoDir, "index")); err != nil {
		t.Fatal(err)
	}
	repo = openRepo(t, repoDir)
	requireClean(t, repo)
}
