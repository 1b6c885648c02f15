package cli

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hindsight-backup/hindsight/integration/damage"
)

const noSpace = "no space left on device"

// promptLimit is how long a command on a full disk may take to answer:
// each one here needs well under a second when it works.
const promptLimit = 30 * time.Second

// TestDiskFullRepository backs up 95 MiB into a repository on a 64 MiB
// filesystem. The backup must fail saying why and record nothing. The
// small files alone (5 MiB) must then fit in what the failed backup
// leaves free whether or not the pack it finished holds them (with two
// readers, the big file's chunks share packs with theirs): removing the
// big source file frees nothing on the repository's disk, and nothing (no
// prune) can remove the unreferenced pack. A pack closes at 32 MiB plus
// its last chunk (8 MiB at most), so about 15 MiB stay free; on a 48 MiB
// filesystem a pack of big-file chunks left 4.3 MiB, too little.
func TestDiskFullRepository(t *testing.T) {
	mnt, _ := loopMount(t, "ext4", 64*mib, "-q")
	repo := filepath.Join(mnt, "repo")
	initRepo(t, repo)
	src := t.TempDir()
	for i := range 10 {
		writeRandomFile(t, filepath.Join(src, "a-small", fmt.Sprintf("s%d.bin", i)), mib/2, 700+uint64(i))
	}
	biggest := filepath.Join(src, "z-big.bin")
	writeRandomFile(t, biggest, 90*mib, 7)

	r := hs(t, "backup", "--repo", repo, src)
	wantCode(t, r, 1, noSpace)
	t.Logf("after the failed backup: %s, %d packs kept", df(mnt), len(packFiles(t, repo)))
	if got := filesIn(t, filepath.Join(repo, "locks")); len(got) != 0 {
		t.Errorf("lock objects left after running out of space: %v", got)
	}
	if got := leftovers(t, repo); len(got) != 0 {
		t.Errorf("temporary files left after running out of space: %v", got)
	}
	r = hsPrompt(t, promptLimit, "snapshots", "--repo", repo, "--json")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "" {
		t.Errorf("snapshots after a backup ran out of space should list none: %s", r)
	}

	if err := os.Remove(biggest); err != nil {
		t.Fatal(err)
	}
	r = hsPrompt(t, promptLimit, "backup", "--repo", repo, "--json", src)
	if r.code != 0 {
		t.Fatalf("backup of the 5 MiB left after the 90 MiB file was removed: %s\n%s", r, df(mnt))
	}
	if r := hs(t, "check", "--repo", repo, "--read-data"); r.code != 0 {
		t.Errorf("check after running out of space and a successful backup: %s", r)
	}
	dst := filepath.Join(t.TempDir(), "restore")
	mustHS(t, "restore", "--repo", repo, "latest", "--target", dst)
	compareTree(t, src, dst)
}

// TestDiskFullIndexOpen: a repository whose disk has filled up since its
// last backup. Every command opens the index; the index must then either
// work or fail at once with "no space left", never hang. The free space
// is swept over the first few blocks because what fails depends on it: at
// 0 the lock object cannot be written (a prompt, clean error), a little
// more lets the lock through and fails the index's first write.
func TestDiskFullIndexOpen(t *testing.T) {
	// The pristine repository: one backup, so the index's write-ahead log
	// holds entries that opening the index replays and flushes.
	pristine := filepath.Join(t.TempDir(), "repo")
	initRepo(t, pristine)
	src := t.TempDir()
	writeRandomFile(t, filepath.Join(src, "data.bin"), 3*mib, 9)
	mustHS(t, "backup", "--repo", pristine, src)

	mnt, _ := loopMount(t, "ext4", 16*mib, "-q")
	var st syscall.Statfs_t
	if err := syscall.Statfs(mnt, &st); err != nil {
		t.Fatal(err)
	}
	bsize := int64(st.Bsize)
	for free := int64(0); free <= 8; free++ {
		repo := filepath.Join(mnt, "repo")
		filler := filepath.Join(mnt, "filler")
		for _, p := range []string{repo, filler} {
			if err := os.RemoveAll(p); err != nil {
				t.Fatal(err)
			}
		}
		copyTree(t, pristine, repo)
		damage.Fill(t, filler, free*bsize)
		before := df(mnt)
		t.Logf("%d blocks free: %s", free, before)
		// Listing one snapshot takes a fraction of a second.
		r := hsPrompt(t, 15*time.Second, "snapshots", "--repo", repo)
		switch {
		case r.code == 0 && strings.Contains(r.stdout, "1 snapshot"):
		case r.code != 0 && strings.Contains(r.stderr, noSpace):
		default:
			t.Errorf("with %d blocks free (%s): want the snapshot listed or a %q error: %s", free, before, noSpace, r)
		}
	}
}

// copyTree copies the directories and regular files below src (a
// repository: there is nothing else in one) to dst.
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(out, fi.Mode().Perm())
		case d.Type().IsRegular():
			return copyFile(p, out, fi.Mode().Perm())
		}
		return fmt.Errorf("copyTree: %s is neither a directory nor a regular file (%v)", p, fi.Mode())
	})
	if err != nil {
		t.Fatal(err)
	}
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// TestDiskFullRestoreTarget restores 30 MiB onto a 16 MiB filesystem: the
// restore must fail and name the file it could not write.
func TestDiskFullRestoreTarget(t *testing.T) {
	src := t.TempDir()
	writeRandomFile(t, filepath.Join(src, "dir", "big.bin"), 30*mib, 8)
	if err := os.WriteFile(filepath.Join(src, "small.txt"), []byte("fits\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	repo := filepath.Join(t.TempDir(), "repo")
	initRepo(t, repo)
	mustHS(t, "backup", "--repo", repo, src)

	mnt, _ := loopMount(t, "ext4", 16*mib, "-q")
	r := hsPrompt(t, promptLimit, "restore", "--repo", repo, "latest", "--target", filepath.Join(mnt, "restore"))
	if r.code == 0 {
		t.Fatalf("a restore of 30 MiB onto 16 MiB succeeded: %s\n%s", r, df(mnt))
	}
	for _, want := range []string{noSpace, "big.bin"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("restore's error should contain %q: %s", want, r)
		}
	}
	if got := filesIn(t, filepath.Join(repo, "locks")); len(got) != 0 {
		t.Errorf("a failed restore left lock objects: %v", got)
	}
}

// df describes a filesystem's free space, for failure messages.
func df(dir string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return err.Error()
	}
	return fmt.Sprintf("%s: %d of %d KiB free (%d for non-root)", dir,
		st.Bfree*uint64(st.Bsize)/1024, st.Blocks*uint64(st.Bsize)/1024, st.Bavail*uint64(st.Bsize)/1024)
}
