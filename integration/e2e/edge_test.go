package e2e

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
	"github.com/hindsight-backup/hindsight/integration/testtree"
	"github.com/hindsight-backup/hindsight/integration/treecmp"
	"github.com/hindsight-backup/hindsight/snapshot"
)

// TestHistoryRebuildKeepsExcludes: a file excluded from one backup is not
// reported as deleted in it. Rebuilding the history (after index/ was lost)
// must give the same answer, or the history view changes under the user's
// feet after an index rebuild.
func TestHistoryRebuildKeepsExcludes(t *testing.T) {
	ctx := context.Background()
	repo, _ := chunkstore.TestRepository(t, chunkstore.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	randomTree(t, src, 9, repeat(3, 10<<10)...)
	if err := os.WriteFile(filepath.Join(src, "app.log"), []byte("log line\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := snapshot.Backup(ctx, repo, src, snapshot.BackupOptions{Host: testHost}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := snapshot.Backup(ctx, repo, src, snapshot.BackupOptions{Host: testHost, Excludes: []string{"*.log"}}, nil); err != nil {
		t.Fatal(err)
	}
	source := snapshot.HistorySource(testHost, src)
	before, err := snapshot.History(ctx, repo, source, "app.log")
	if err != nil {
		t.Fatal(err)
	}
	if len(before) != 1 || before[0].Kind != index.KindFile {
		t.Fatalf("history of an excluded file at backup time: %+v, want one file version", before)
	}
	if _, err := repo.RebuildIndex(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := snapshot.RebuildHistory(ctx, repo); err != nil {
		t.Fatal(err)
	}
	after, err := snapshot.History(ctx, repo, source, "app.log")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(after, before) {
		t.Errorf("history of the excluded file changed on rebuild:\nbefore %+v\n after %+v", before, after)
	}
}

// TestRestoreOverOlderRestore rolls a directory back and forth: restoring
// B into a directory that holds a restore of A must give B wherever B has
// an entry, even where an entry changed type. (Entries B lacks may stay: a
// restore adds and replaces, it does not delete.)
func TestRestoreOverOlderRestore(t *testing.T) {
	repo, _ := chunkstore.TestRepository(t, chunkstore.InitOptions{})
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	testtree.Build(t, src)
	a := backup(t, repo, src, nil)
	changes := testtree.Mutate(t, src, 3)
	b := backup(t, repo, src, nil)

	dst := filepath.Join(tmp, "dst")
	restore(t, repo, a.Record, dst)
	warnings, err := snapshot.Restore(context.Background(), repo, b.Record, "", dst, snapshot.RestoreOptions{Verify: true}, nil)
	if err != nil {
		t.Fatalf("restore of B over a restore of A: %v", err)
	}
	for _, w := range warnings {
		t.Errorf("restore warning: %s: %v", short(w.Path), w.Err)
	}
	deleted := map[string]bool{}
	for _, c := range changes {
		if c.Op == testtree.OpDelete {
			deleted[c.Path] = true
		}
	}
	o := exact
	o.Exclude = func(p string, mode uint32) bool { return deleted[p] || treecmp.SkipSockets(p, mode) }
	sameTree(t, src, dst, o)
}

// TestBackupSingleFile backs up a path that is a regular file, not a
// directory: the restore puts that file into the target.
func TestBackupSingleFile(t *testing.T) {
	repo, _ := chunkstore.TestRepository(t, chunkstore.InitOptions{})
	dir := filepath.Join(t.TempDir(), "src")
	randomTree(t, dir, 10, 3<<20)
	file := filepath.Join(dir, "d0", fileName(0))
	res := backup(t, repo, file, nil)
	dst := filepath.Join(t.TempDir(), "dst")
	restore(t, repo, res.Record, dst)
	got, err := os.ReadFile(filepath.Join(dst, fileName(0)))
	if err != nil {
		t.Fatalf("restored single file: %v", err)
	}
	want, _ := os.ReadFile(file)
	if !slices.Equal(got, want) {
		t.Error("restored single file differs")
	}
	// Back up the same file again: unchanged, not read.
	var prog snapshot.Progress
	backup(t, repo, file, &prog)
	if prog.ReadBytes.Load() != 0 {
		t.Errorf("unchanged single file read again: %d bytes", prog.ReadBytes.Load())
	}
}

// TestFileChangingDuringBackup appends to a file while it is backed up: the
// snapshot is written but says the file is incomplete, and the next backup
// reads it again rather than trusting the torn copy.
func TestFileChangingDuringBackup(t *testing.T) {
	ctx := context.Background()
	repo, _ := chunkstore.TestRepository(t, chunkstore.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	randomTree(t, src, 13, repeat(4, 1<<20)...)
	growing := filepath.Join(src, "growing")
	if err := os.WriteFile(growing, make([]byte, 64<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(growing, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		line := []byte(strings.Repeat("x", 4095) + "\n")
		for {
			select {
			case <-stop:
				return
			default:
				f.Write(line)
				time.Sleep(100 * time.Microsecond)
			}
		}
	}()
	res, err := snapshot.Backup(ctx, repo, src, snapshot.BackupOptions{Host: testHost}, nil)
	close(stop)
	wg.Wait()
	if !errors.Is(err, snapshot.ErrIncomplete) || res == nil {
		t.Fatalf("backup of a growing file: %v (result %v), want ErrIncomplete with a result", err, res)
	}
	if !slices.ContainsFunc(res.Record.Incomplete, func(s string) bool { return strings.HasPrefix(s, "growing:") }) {
		t.Errorf("incomplete list %q does not name the growing file", res.Record.Incomplete)
	}
	if got := len(listSnapshots(t, repo)); got != 1 {
		t.Errorf("%d snapshots after an incomplete backup, want 1", got)
	}
	var prog snapshot.Progress
	backup(t, repo, src, &prog)
	fi, _ := os.Stat(growing)
	if prog.ReadBytes.Load() != uint64(fi.Size()) {
		t.Errorf("next backup read %d bytes, want the whole grown file, %d", prog.ReadBytes.Load(), fi.Size())
	}
}

// TestSmallInFlightBound sets the in-flight byte bound below the largest
// chunk: the backup must still finish, not wait for ever on a semaphore
// that can never grant a chunk's weight.
func TestSmallInFlightBound(t *testing.T) {
	repo, _ := chunkstore.TestRepository(t, chunkstore.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	randomTree(t, src, 14, 4<<20)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := snapshot.Backup(ctx, repo, src, snapshot.BackupOptions{Host: testHost, InFlight: 256 << 10}, nil)
	if err != nil {
		t.Errorf("backup with InFlight below the chunk size: %v", err)
	}
}

// TestConcurrentBackupCancelled runs two backups on one open repository
// (its methods are documented safe for concurrent use; a daemon backing up
// several guests does this) and cancels one midway. They share open packs,
// so the cancelled one must not throw away blobs the other was told are
// stored: the surviving snapshot must check clean and restore.
func TestConcurrentBackupCancelled(t *testing.T) {
	if testing.Short() {
		t.Skip("backs up 2 × 48 MB, several times")
	}
	// Whether the cancelled backup is waiting for a pack slot at the moment
	// of cancellation is up to the scheduler; several rounds make it likely.
	for round := range 8 {
		repo, _ := chunkstore.TestRepository(t, chunkstore.InitOptions{PackSize: 1 << 20})
		tmp := t.TempDir()
		srcX, srcY := filepath.Join(tmp, "x"), filepath.Join(tmp, "y")
		randomTree(t, srcX, uint64(100+round), repeat(24, 2<<20)...)
		randomTree(t, srcY, uint64(200+round), repeat(24, 2<<20)...)

		ctxX, cancelX := context.WithCancel(context.Background())
		var progX snapshot.Progress
		var wg sync.WaitGroup
		var errX, errY error
		var resY *snapshot.Result
		wg.Add(3)
		go func() {
			defer wg.Done()
			for progX.ReadBytes.Load() < 16<<20 && ctxX.Err() == nil {
				time.Sleep(time.Millisecond)
			}
			cancelX()
		}()
		go func() {
			defer wg.Done()
			_, errX = snapshot.Backup(ctxX, repo, srcX, snapshot.BackupOptions{Host: testHost}, &progX)
		}()
		go func() {
			defer wg.Done()
			resY, errY = snapshot.Backup(context.Background(), repo, srcY, snapshot.BackupOptions{Host: testHost}, nil)
		}()
		wg.Wait()
		cancelX()
		if errX == nil {
			t.Logf("round %d: X finished before it was cancelled", round)
		}
		if errY != nil {
			t.Fatalf("round %d: backup Y, not cancelled, failed: %v", round, errY)
		}
		for _, f := range checkRepo(t, repo) {
			t.Errorf("round %d: check after X was cancelled: %s", round, f.msg)
		}
		dst := filepath.Join(tmp, "dst")
		if _, err := snapshot.Restore(context.Background(), repo, resY.Record, "", dst, snapshot.RestoreOptions{Verify: true}, nil); err != nil {
			t.Errorf("round %d: restore of Y: %v", round, err)
		}
		if t.Failed() {
			return
		}
	}
}
