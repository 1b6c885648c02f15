package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// packsInProgress counts pack files a backup is writing (REPO/tmp) or has
// finished (REPO/packs): from outside, the surest sign it is doing work.
func packsInProgress(t testing.TB, repo string) int {
	t.Helper()
	n := 0
	for _, f := range filesIn(t, filepath.Join(repo, "tmp")) {
		if strings.HasSuffix(f, ".tmp") {
			n++
		}
	}
	return n + len(packFiles(t, repo))
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// TestConcurrentBackups runs two backups of different trees into one
// repository at the same time. The first serves the index on
// REPO/index.sock and the second is its client; the first finishes first,
// so the second must take the index over to finish its own backup.
func TestConcurrentBackups(t *testing.T) {
	root, _ := bigTree(t)
	srcA, srcB := filepath.Join(root, "a"), filepath.Join(root, "b")
	repo := filepath.Join(t.TempDir(), "repo")
	initRepo(t, repo)
	sock := filepath.Join(repo, "index.sock")

	// Each backup takes about a second here; a minute means a hang.
	a := startTimeout(t, time.Minute, hsEnv(testPassword), "backup", "--repo", repo, "--json", srcA)
	// The second starts as soon as the first serves the index, which it
	// does from the moment it starts reading files. The second's own
	// start (deriving the key takes a few hundred milliseconds) then
	// overlaps the first's reading, and it ends after the first.
	waitFor(t, time.Minute, "the first backup to serve the index on REPO/index.sock", func() bool {
		return a.exited() || exists(sock)
	})
	if a.exited() {
		t.Fatalf("the first backup ended without ever serving the index on %s: %s", sock, a.wait(t))
	}
	b := startTimeout(t, time.Minute, hsEnv(testPassword), "backup", "--repo", repo, "--json", srcB)

	ra := a.wait(t)
	bOutlivedA := !b.exited()
	rb := b.wait(t)
	t.Logf("backup A %s (%s..%s), backup B %s (%s..%s)", ra.took.Round(time.Millisecond),
		a.start.Format("15:04:05.000"), a.end.Format("15:04:05.000"), rb.took.Round(time.Millisecond),
		b.start.Format("15:04:05.000"), b.end.Format("15:04:05.000"))
	if ra.code != 0 {
		t.Errorf("first backup: %s", ra)
	}
	if rb.code != 0 {
		t.Errorf("second backup: %s", rb)
	}
	if t.Failed() {
		t.FailNow()
	}
	if !bOutlivedA {
		t.Errorf("the second backup ended before the first: the index handover was not exercised")
	}
	if exists(sock) {
		t.Errorf("%s is left behind after every process exited", sock)
	}
	ja, jb := parseBackup(t, ra), parseBackup(t, rb)

	snaps := listSnapshots(t, repo)
	byID := map[string]snapshotJSON{}
	for _, s := range snaps {
		byID[s.ID] = s
	}
	sa, okA := byID[ja.Snapshot]
	sb, okB := byID[jb.Snapshot]
	if len(snaps) != 2 || !okA || !okB {
		t.Fatalf("snapshots --json lists %d snapshots %v; want exactly %s and %s", len(snaps), snaps, ja.Snapshot, jb.Snapshot)
	}
	if sa.Source != srcA || sb.Source != srcB {
		t.Errorf("snapshot sources are %q and %q, want %q and %q", sa.Source, sb.Source, srcA, srcB)
	}
	// The records' own times prove the two backups' work overlapped, not
	// only the processes' lifetimes.
	endA := sa.Time.Add(time.Duration(sa.Stats.DurationSec * float64(time.Second)))
	endB := sb.Time.Add(time.Duration(sb.Stats.DurationSec * float64(time.Second)))
	if !sb.Time.Before(endA) || !sa.Time.Before(endB) {
		t.Errorf("backups did not overlap: A %s..%s, B %s..%s", sa.Time, endA, sb.Time, endB)
	}

	if r := hs(t, "check", "--repo", repo, "--read-data"); r.code != 0 || !strings.Contains(r.stdout, "0 problems") {
		t.Errorf("check --read-data after concurrent backups: %s", r)
	}
	for _, c := range []struct{ id, src string }{{ja.Snapshot, srcA}, {jb.Snapshot, srcB}} {
		dst := filepath.Join(t.TempDir(), "restore")
		mustHS(t, "restore", "--repo", repo, c.id, "--target", dst)
		compareTree(t, c.src, dst)
	}
}

// TestReadsDuringBackup: listing snapshots and files takes a shared lock
// and reads the index through the backup's socket; it must answer at once,
// not queue behind a backup that may run for hours.
func TestReadsDuringBackup(t *testing.T) {
	root, _ := bigTree(t)
	repo := filepath.Join(t.TempDir(), "repo")
	initRepo(t, repo)
	small := t.TempDir()
	if err := os.WriteFile(filepath.Join(small, "hello.txt"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	first := parseBackup(t, mustHS(t, "backup", "--repo", repo, "--json", small))
	packsBefore := packsInProgress(t, repo)

	long := start(t, "backup", "--repo", repo, root)
	waitFor(t, time.Minute, "the long backup to start writing packs", func() bool {
		return long.exited() || packsInProgress(t, repo) > packsBefore
	})

	const prompt = 10 * time.Second
	snaps := hs(t, "snapshots", "--repo", repo, "--json")
	ls := hs(t, "ls", "--repo", repo, "latest")
	if long.exited() {
		t.Fatalf("inconclusive: the backup ended before the reads did (snapshots took %s, ls %s): %s",
			snaps.took, ls.took, long.wait(t))
	}
	for _, r := range []result{snaps, ls} {
		if r.code != 0 {
			t.Errorf("during a backup: %s", r)
		} else if r.took > prompt {
			t.Errorf("took %s during a backup (limit %s): %s", r.took, prompt, r)
		}
	}
	if !strings.Contains(snaps.stdout, first.Snapshot) || strings.Count(snaps.stdout, "\n") != 1 {
		t.Errorf("snapshots during the backup should list exactly the finished snapshot %s: %s", first.Snapshot, snaps)
	}
	if !strings.Contains(ls.stdout, "hello.txt") {
		t.Errorf("ls latest during the backup should list hello.txt: %s", ls)
	}
	t.Logf("during the backup: snapshots took %s, ls latest %s", snaps.took.Round(time.Millisecond), ls.took.Round(time.Millisecond))

	if r := long.wait(t); r.code != 0 {
		t.Fatalf("the long backup: %s", r)
	}
	if n := len(listSnapshots(t, repo)); n != 2 {
		t.Errorf("%d snapshots after both backups, want 2", n)
	}
}
