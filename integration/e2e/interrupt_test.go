package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
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

// crashChildEnv makes TestCrashedBackup's child run the backup to be killed.
const crashChildEnv = "HINDSIGHT_E2E_CRASH_CHILD"

// TestCrashedBackup kills (SIGKILL) a process in the middle of a backup:
// no cleanup runs, unlike cancellation. The durability order promises that
// what remains is at most unreferenced packs: no snapshot, an index that
// opens, and a next backup that succeeds, reuses the packs the index
// recorded, and checks clean apart from packs the index never learnt of.
func TestCrashedBackup(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(t, dir)
		return
	}
	if testing.Short() {
		t.Skip("writes and backs up 200 MB")
	}
	tmp := t.TempDir()
	repoDir := filepath.Join(tmp, "repo")
	repo := initRepo(t, repoDir, chunkstore.InitOptions{PackSize: 4 << 20})
	repo.Close()
	src := filepath.Join(tmp, "src")
	const total = 200 << 20
	randomTree(t, src, 8, repeat(50, total/50)...)

	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashedBackup$", "-test.v")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+tmp)
	out := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.After(2 * time.Minute)
	killed := false
	for !killed {
		select {
		case err := <-done:
			t.Fatalf("child ended before it was killed (%v):\n%s", err, out)
		case <-deadline:
			cmd.Process.Kill()
			t.Fatalf("child stored under 50 MB of packs in 2 minutes:\n%s", out)
		case <-time.After(2 * time.Millisecond):
			if sum(packFiles(t, repoDir)) >= 50<<20 {
				cmd.Process.Kill()
				killed = true
			}
		}
	}
	<-done
	packsAtCrash := packFiles(t, repoDir)
	t.Logf("killed with %d packs (%d bytes) stored", len(packsAtCrash), sum(packsAtCrash))

	repo = openRepo(t, repoDir)
	if n := len(listSnapshots(t, repo)); n != 0 {
		t.Fatalf("%d snapshots after a crashed backup", n)
	}
	var prog snapshot.Progress
	res := backup(t, repo, src, &prog)
	t.Logf("after the crash: %d new bytes of %d", prog.NewBytes.Load(), total)
	if prog.NewBytes.Load() > total-40<<20 {
		t.Errorf("backup after the crash stored %d new bytes of %d: the %d bytes of packs the crashed run left were not reused",
			prog.NewBytes.Load(), total, sum(packsAtCrash))
	}
	for _, f := range checkRepo(t, repo) {
		// A pack stored but not yet indexed when the process died is the
		// one kind of leftover the durability order allows.
		if f.harmless {
			t.Logf("tolerated: %s", f.msg)
		} else {
			t.Errorf("check: %s", f.msg)
		}
	}
	if left, _ := os.ReadDir(filepath.Join(repoDir, "tmp")); len(left) != 0 {
		t.Logf("scratch files the crash left behind: %d", len(left))
	}
	dst := filepath.Join(tmp, "dst")
	restore(t, repo, res.Record, dst)
	sameTree(t, src, dst, exact)
}

// crashChild backs up tmp/src into tmp/repo until its parent kills it.
func crashChild(t *testing.T, tmp string) {
	repo := openRepo(t, filepath.Join(tmp, "repo"))
	_, err := snapshot.Backup(context.Background(), repo, filepath.Join(tmp, "src"), snapshot.BackupOptions{Host: testHost}, nil)
	t.Fatalf("backup ran to the end (%v) before the parent killed it", err)
}
