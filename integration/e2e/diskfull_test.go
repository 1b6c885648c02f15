package e2e

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/integration/damage"
	"github.com/hindsight-backup/hindsight/integration/testtree"
	"github.com/hindsight-backup/hindsight/remote/local"
	"github.com/hindsight-backup/hindsight/snapshot"
)

// smallFS mounts a fresh ext4 filesystem of size bytes, unmounted when the
// test ends. Under CI a machine that cannot do it fails the test.
func smallFS(t *testing.T, size int64) string {
	t.Helper()
	testtree.Require(t, os.Geteuid() == 0, "mounting a loop device needs root")
	_, err := exec.LookPath("mkfs.ext4")
	testtree.Require(t, err == nil, "mkfs.ext4 not found: %v", err)
	tmp := t.TempDir()
	img, mnt := filepath.Join(tmp, "fs.img"), filepath.Join(tmp, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	err = f.Truncate(size)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	// -m 0: root's reserved blocks would hide the point where writes fail.
	if out, err := exec.Command("mkfs.ext4", "-q", "-m", "0", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
	out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput()
	testtree.Require(t, err == nil, "mount -o loop: %v: %s", err, out)
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
			exec.Command("umount", "-l", mnt).Run()
		}
	})
	return mnt
}

// fullSource writes, in walk order, 10 MiB of small files and then 140 MiB
// of large ones: more than the 64 MiB filesystem can take.
func fullSource(t *testing.T, dir string) {
	t.Helper()
	randomTree(t, filepath.Join(dir, "a-small"), 11, repeat(5, 2<<20)...)
	randomTree(t, filepath.Join(dir, "z-big"), 12, repeat(7, 20<<20)...)
}

func requireNoSpace(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("backup of 150 MB onto a 64 MiB filesystem succeeded")
	}
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "no space") {
		t.Errorf("backup failed with %q, which does not say the disk is full (want errors.Is ENOSPC)", err)
	}
}

func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

// diskFullChildEnv makes the disk-full tests' children run their backups;
// its value is the mount point of the small filesystem.
const diskFullChildEnv = "HINDSIGHT_E2E_DISK_FULL_CHILD"

// inChild runs the current test again in a child process, with the small
// filesystem mnt handed over in diskFullChildEnv, so that a backup that
// crashes or hangs fails this test, with its stack, instead of ending or
// stalling the test binary (and leaving the filesystem mounted).
func inChild(t *testing.T, mnt string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v")
	cmd.Env = append(os.Environ(), diskFullChildEnv+"="+mnt)
	// A hung child is asked for its goroutines before it is killed.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGQUIT) }
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	switch {
	case ctx.Err() != nil:
		t.Fatalf("the backup process hung on a full disk; its goroutines in our code:\n%s", ourFrames(out))
	case strings.Contains(string(out), "panic:"):
		t.Fatalf("the backup process crashed on a full disk:\n%s", ourFrames(out))
	case err != nil:
		t.Fatalf("child: %v\n%s", err, out)
	}
}

// TestDiskFull fills the repository's filesystem during a backup. The
// backup must fail saying so and record no snapshot; once the source has
// shrunk to what fits, a new run (a new process: the repository reopened)
// succeeds, restores exactly, and leaves a clean repository.
func TestDiskFull(t *testing.T) {
	mnt := os.Getenv(diskFullChildEnv)
	if mnt == "" {
		inChild(t, smallFS(t, 64<<20))
		return
	}
	repoDir := filepath.Join(mnt, "repo")
	repo := initRepo(t, repoDir, chunkstore.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	fullSource(t, src)

	_, err := snapshot.Backup(context.Background(), repo, src, snapshot.BackupOptions{Host: testHost}, nil)
	t.Logf("backup onto the full disk: %v", err)
	requireNoSpace(t, err)
	if snaps := listSnapshots(t, repo); len(snaps) != 0 {
		t.Fatalf("%d snapshots after a failed backup", len(snaps))
	}
	if err := repo.Close(); err != nil {
		t.Errorf("close after disk full: %v", err)
	}
	if s := dirEntries(t, filepath.Join(repoDir, "snapshots")); len(s) != 0 {
		t.Errorf("snapshot records after a failed backup: %v", s)
	}

	if err := os.RemoveAll(filepath.Join(src, "z-big")); err != nil {
		t.Fatal(err)
	}
	repo = openRepo(t, repoDir)
	res := backup(t, repo, src, nil)
	dst := filepath.Join(t.TempDir(), "dst")
	restore(t, repo, res.Record, dst)
	sameTree(t, src, dst, exact)
	requireClean(t, repo)
	if s := dirEntries(t, filepath.Join(repoDir, "tmp")); len(s) != 0 {
		t.Errorf("scratch files left behind: %v", s)
	}
}

// packsOnSmallFS opens a repository whose packs and scratch space are on a
// small filesystem and whose index is elsewhere, as for a remote repository
// with a local cache: the disk that fills is the one packs are written to.
func packsOnSmallFS(t *testing.T) (repo *chunkstore.Repository, mnt string) {
	t.Helper()
	mnt = smallFS(t, 32<<20)
	repoDir := filepath.Join(mnt, "repo")
	initRepo(t, repoDir, chunkstore.InitOptions{}).Close()
	be, err := local.OpenDir(repoDir)
	if err != nil {
		t.Fatal(err)
	}
	o := chunkstore.LocalOptions(repoDir, []byte(chunkstore.TestPassword))
	o.IndexDir = filepath.Join(t.TempDir(), "index")
	repo, err = chunkstore.Open(context.Background(), be, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { repo.Close() })
	return repo, mnt
}

// TestDiskFullAtFlushNeverDangles fills the disk so that a backup small
// enough to stay in the pack writer's buffer fails only when its last pack
// is finished, at the end. After space is freed, a retry on the same open
// repository (a long-running process: a daemon, a hypervisor hook backing
// up guest after guest) must either fail or write a snapshot whose every
// blob exists. A snapshot that points at data never stored is the one
// outcome the durability order exists to rule out.
func TestDiskFullAtFlushNeverDangles(t *testing.T) {
	ctx := context.Background()
	repo, mnt := packsOnSmallFS(t)
	src := filepath.Join(t.TempDir(), "src")
	randomTree(t, src, 21, repeat(4, 100<<10)...)

	free := damage.Fill(t, filepath.Join(mnt, "filler"), 0)
	_, err := snapshot.Backup(ctx, repo, src, snapshot.BackupOptions{Host: testHost}, nil)
	requireNoSpace(t, err)
	free()

	res, err := snapshot.Backup(ctx, repo, src, snapshot.BackupOptions{Host: testHost}, nil)
	t.Logf("retry on the same repository: %v", err)
	if err != nil {
		return
	}
	for _, f := range checkRepo(t, repo) {
		t.Errorf("the retry wrote snapshot %s, and check finds: %s", res.ID.Short(), f.msg)
	}
	dst := filepath.Join(t.TempDir(), "dst")
	if _, err := snapshot.Restore(ctx, repo, res.Record, "", dst, snapshot.RestoreOptions{Verify: true}, nil); err != nil {
		t.Errorf("restore of the snapshot the retry wrote: %v", err)
	}
}

// TestDiskFullRecoversWithoutReopen fills the disk while a pack is being
// written. Once space is free again, a process that keeps its repository
// open must be able to back up without restarting.
func TestDiskFullRecoversWithoutReopen(t *testing.T) {
	ctx := context.Background()
	repo, mnt := packsOnSmallFS(t)
	src := filepath.Join(t.TempDir(), "src")
	randomTree(t, src, 22, repeat(2, 3<<20)...)

	free := damage.Fill(t, filepath.Join(mnt, "filler"), 0)
	_, err := snapshot.Backup(ctx, repo, src, snapshot.BackupOptions{Host: testHost}, nil)
	requireNoSpace(t, err)
	free()

	res, err := snapshot.Backup(ctx, repo, src, snapshot.BackupOptions{Host: testHost}, nil)
	if err != nil {
		t.Fatalf("backup after space was freed, on the same repository: %v", err)
	}
	requireClean(t, repo)
	dst := filepath.Join(t.TempDir(), "dst")
	restore(t, repo, res.Record, dst)
	sameTree(t, src, dst, exact)
}

// TestOneFileSystem mounts a filesystem inside the source: with
// OneFileSystem the mount point is kept as an empty directory, without it
// the mounted files are backed up.
func TestOneFileSystem(t *testing.T) {
	repo, _ := chunkstore.TestRepository(t, chunkstore.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	randomTree(t, src, 15, 1000)
	inner := smallFS(t, 16<<20)
	randomTree(t, inner, 16, 2000)
	mp := filepath.Join(src, "mnt")
	if err := os.Mkdir(mp, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "--bind", inner, mp).CombinedOutput(); err != nil {
		testtree.Require(t, false, "mount --bind: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", mp).Run() })

	for _, one := range []bool{false, true} {
		res, err := snapshot.Backup(context.Background(), repo, src, snapshot.BackupOptions{Host: testHost, OneFileSystem: one}, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, found := fileNodes(t, repo, res.Record)["mnt/d0/f000"]
		if found == one {
			t.Errorf("OneFileSystem=%v: file on the inner filesystem backed up: %v", one, found)
		}
	}
}

// TestDiskFullUnderIndex fills the filesystem that holds a local
// repository together with its index (REPO/index), then backs up many small
// files: their history rows are what the index must write while the disk is
// full. The backup must fail with an error saying the disk is full, in an
// orderly way: a process that crashes or hangs instead skips or stalls
// every cleanup, such as removing the LVM snapshot a hypervisor hook made.
func TestDiskFullUnderIndex(t *testing.T) {
	mnt := os.Getenv(diskFullChildEnv)
	if mnt == "" {
		inChild(t, smallFS(t, 32<<20))
		return
	}
	ctx := context.Background()
	repo := initRepo(t, filepath.Join(mnt, "repo"), chunkstore.InitOptions{})
	tmp := t.TempDir()
	first, second := filepath.Join(tmp, "first"), filepath.Join(tmp, "second")
	randomTree(t, first, 31, repeat(4, 100<<10)...)
	randomTree(t, second, 32, repeat(2000, 64)...)
	backup(t, repo, first, nil)
	damage.Fill(t, filepath.Join(mnt, "filler"), 0)
	_, err := snapshot.Backup(ctx, repo, second, snapshot.BackupOptions{Host: testHost}, nil)
	requireNoSpace(t, err)
}

// ourFrames keeps, of a panic or goroutine dump, the message and the
// goroutines that run code of this module, with those frames only.
func ourFrames(dump []byte) string {
	var keep []string
	for _, g := range strings.Split(string(dump), "\n\n") {
		lines := strings.Split(g, "\n")
		var ours []string
		for _, l := range lines[1:] {
			if strings.Contains(l, "hindsight-backup/hindsight/") || strings.Contains(l, "semaphore.(*Weighted)") ||
				strings.Contains(l, "pebble") && strings.Contains(l, "Commit") {
				ours = append(ours, l)
			}
		}
		if strings.HasPrefix(lines[0], "panic:") || len(ours) > 0 {
			keep = append(keep, lines[0])
			keep = append(keep, ours...)
		}
	}
	return strings.Join(keep, "\n")
}

// useInodes creates empty files in dir until only keep inodes are free.
func useInodes(t *testing.T, dir string, keep uint64) {
	t.Helper()
	d := filepath.Join(dir, "inodes")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		var st unix.Statfs_t
		if err := unix.Statfs(dir, &st); err != nil {
			t.Fatal(err)
		}
		if st.Ffree <= keep {
			return
		}
		f, err := os.Create(filepath.Join(d, strconv.Itoa(i)))
		if err != nil {
			t.Fatalf("using up inodes: %v", err)
		}
		f.Close()
	}
}

// TestStoreFailureLeavesNoScratch makes storing a finished pack fail: the
// filesystem has inodes left for the scratch files of the packs, but none
// for the directory packs/xx a new pack is renamed into. The failed backup
// must not leave its scratch pack behind: nothing ever removes REPO/tmp.
func TestStoreFailureLeavesNoScratch(t *testing.T) {
	repo, mnt := packsOnSmallFS(t)
	if s := dirEntries(t, filepath.Join(mnt, "repo", "packs")); len(s) != 0 {
		t.Fatalf("a new repository has pack directories: %v", s)
	}
	src := filepath.Join(t.TempDir(), "src")
	randomTree(t, src, 34, 1000)
	// Inodes for the scratch directory, the writer's claim on it
	// (owner-*.lock) and a scratch pack each for data and trees; none for
	// packs/ and packs/xx.
	useInodes(t, mnt, 4)
	_, err := snapshot.Backup(context.Background(), repo, src, snapshot.BackupOptions{Host: testHost}, nil)
	requireNoSpace(t, err)
	t.Logf("backup without inodes: %v", err)
	if err := repo.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if s := dirEntries(t, filepath.Join(mnt, "repo", "tmp")); len(s) != 0 {
		t.Errorf("scratch files left behind by the failed backup: %v", s)
	}
}
