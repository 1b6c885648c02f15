package inputs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hindsight-backup/hindsight/integration/hsrun"
	"github.com/hindsight-backup/hindsight/integration/treecmp"
)

// emptyFiles creates n empty files in dir, named by name(i).
func emptyFiles(t testing.TB, dir string, n int, name func(int) string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	for i := range n {
		f, err := unix.Openat(fd, name(i), unix.O_CREAT|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
		if err != nil {
			t.Fatalf("file %d of %d: %v", i, n, err)
		}
		unix.Close(f)
	}
}

func mib(n int64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }

// TestMillionFiles backs up and restores one directory of a million empty
// files, on tmpfs so that the filesystem is not what is measured, and
// reports the time and peak memory of each step. The restore must be
// exact.
func TestMillionFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("creates, backs up and restores a million files")
	}
	const n = 1_000_000
	root := tmpfs(t, "2g", 2*n+1000)
	src := filepath.Join(root, "src")
	start := time.Now()
	emptyFiles(t, filepath.Join(src, "many"), n, func(i int) string { return fmt.Sprintf("file-%07d", i) })
	t.Logf("created %d files in %s", n, time.Since(start).Round(time.Millisecond))

	hs := newRepo(t, filepath.Join(t.TempDir(), "repo"))
	// A machine shared with other test runs may be slow; a hang must
	// still end the test.
	hs.Timeout = 20 * time.Minute
	r := hs.Must(t, "backup", "--json", src)
	b := parseBackup(t, r)
	t.Logf("backup: %s, peak RSS %s", r.Took.Round(time.Millisecond), mib(r.MaxRSS))
	if b.Files != n || len(b.Incomplete) > 0 {
		t.Fatalf("backup saw %d files (incomplete: %q), want %d", b.Files, b.Incomplete, n)
	}

	target := filepath.Join(root, "restore")
	r = hs.Must(t, "restore", b.ID, "--target", target)
	t.Logf("restore: %s, peak RSS %s", r.Took.Round(time.Millisecond), mib(r.MaxRSS))
	sameTree(t, src, target, treecmp.Options{SkipRootMeta: true})
}

// TestDirectoryTooLargeForOneTree backs up a directory whose entries do
// not fit the largest blob (64 MiB): a quarter of a million files with
// 250-byte names, as a mail spool may hold. A tree blob holds one whole
// directory, so the backup cannot store it; it must then fail naming the
// directory, and leave no snapshot. (Should directories be split across
// blobs one day, the backup must instead restore exactly.)
func TestDirectoryTooLargeForOneTree(t *testing.T) {
	if testing.Short() {
		t.Skip("creates a quarter of a million files")
	}
	const n = 250_000
	root := tmpfs(t, "1g", n+1000)
	src := filepath.Join(root, "src")
	pad := strings.Repeat("m", 243)
	emptyFiles(t, filepath.Join(src, "spool", "cur"), n, func(i int) string { return fmt.Sprintf("%07d%s", i, pad) })
	write(t, filepath.Join(src, "other.txt"), "a file beside the spool\n")

	hs := newRepo(t, filepath.Join(t.TempDir(), "repo"))
	hs.Timeout = 20 * time.Minute
	r := hs.Run(t, "backup", "--json", src)
	t.Logf("backup: exit %d, %s, peak RSS %s", r.Code, r.Took.Round(time.Millisecond), mib(r.MaxRSS))
	if r.Code == 0 {
		target := filepath.Join(root, "restore")
		hs.Must(t, "restore", "latest", "--target", target)
		sameTree(t, src, target, treecmp.Options{SkipRootMeta: true})
		return
	}
	if r.Code != exitFailure || !strings.Contains(r.Stderr, "spool/cur") {
		t.Errorf("want exit %d and an error naming spool/cur: %s", exitFailure, r)
	}
	if s := snapshots(t, hs); len(s) != 0 {
		t.Errorf("a failed backup left snapshots %v", s)
	}
}

// snapshots lists the repository's snapshot IDs.
func snapshots(t testing.TB, hs hsrun.Runner) []string {
	t.Helper()
	r := hs.Must(t, "snapshots", "--json")
	var ids []string
	for line := range strings.SplitSeq(strings.TrimSpace(r.Stdout), "\n") {
		if line != "" {
			ids = append(ids, line)
		}
	}
	return ids
}

func write(t testing.TB, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
