package lvm

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hindsight-backup/hindsight/integration/testtree"
)

// reflinkFS mounts a fresh filesystem of fstype (xfs with reflink=1, or
// btrfs) on a volume of vg0 and returns its mount point.
func reflinkFS(t *testing.T, e *env, fstype string) string {
	t.Helper()
	_, err := exec.LookPath("mkfs." + fstype)
	testtree.Require(t, err == nil, "mkfs.%s on PATH", fstype)
	dev := e.NewVolume("images-"+fstype, 640*mib, "")
	args := []string{"-q", dev}
	if fstype == "xfs" {
		args = []string{"-q", "-m", "reflink=1", dev}
	}
	e.Must("mkfs."+fstype, args...)
	return e.MountAt(dev)
}

// writeGuestImage writes size bytes of random data, as a guest's disk.
func writeGuestImage(t *testing.T, path string, size int) {
	t.Helper()
	b := make([]byte, size)
	rnd := rand.New(rand.NewPCG(7, 7))
	for i := 0; i+8 <= len(b); i += 8 {
		v := rnd.Uint64()
		for k := range 8 {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// writeBlocks writes n random blocks of 4 KiB at off, as a guest does,
// and syncs them.
func writeBlocks(t *testing.T, path string, off int64, n int, seed uint64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n*4096)
	rnd := rand.New(rand.NewPCG(seed, 1))
	for i := range b {
		b[i] = byte(rnd.Uint32())
	}
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

// backupReadBytes runs backup-volume --reflink on img and returns what it
// read from block devices.
func backupReadBytes(t *testing.T, e *env, img string) int64 {
	t.Helper()
	n, _ := readBytes(t, e, "backup-volume", "--reflink", "--json", img)
	return n
}

// readBytes runs hindsight with args and returns what it read from block
// devices (the kernel's count, rusage inblock) and its output.
func readBytes(t *testing.T, e *env, args ...string) (int64, string) {
	t.Helper()
	cmd := e.Command(t.Context(), "hindsight", e.HSArgs(args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", args, err, out)
	}
	return cmd.ProcessState.SysUsage().(*syscall.Rusage).Inblock * 512, string(out)
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// TestReflinkChangedBlocks backs up a guest's image file through reflink
// clones on XFS and btrfs: after 1% of its blocks changed, the second
// backup reads little more than what changed, restores bit-exact, and
// replaces the base it compares with.
func TestReflinkChangedBlocks(t *testing.T) {
	for _, fstype := range []string{"xfs", "btrfs"} {
		t.Run(fstype, func(t *testing.T) {
			e := newEnv(t, 1<<30)
			dir := reflinkFS(t, e, fstype)
			// Large enough that the chunks around the changes (1 MiB
			// on average, up to 8) stay well under a quarter of it.
			const size = 256 * mib
			img := filepath.Join(dir, "guest.raw")
			writeGuestImage(t, img, size)
			base, next := filepath.Join(dir, ".guest.raw.hindsight-base"), filepath.Join(dir, ".guest.raw.hindsight-new")

			first := backupReadBytes(t, e, img)
			oldBase := inode(t, base)
			// 1% of the blocks, most in one run as a guest writes a file,
			// a few scattered.
			writeBlocks(t, img, 40*mib+8192, 600, 1)
			for k := range 8 {
				writeBlocks(t, img, int64(k)*30*mib+4096, 1, uint64(k+2))
			}
			second := backupReadBytes(t, e, img)
			t.Logf("read %d bytes, then %d after changing 1%% of the blocks", first, second)
			if first < size*9/10 || second > size/4 {
				t.Errorf("read %d bytes, then %d: want the first to read the %d-byte image, the second under a quarter", first, second, size)
			}
			if _, err := os.Stat(next); !os.IsNotExist(err) {
				t.Errorf("the new clone is left: %v", err)
			}
			if inode(t, base) == oldBase {
				t.Error("the base was not replaced by the clone just read")
			}

			out := filepath.Join(t.TempDir(), "restored.raw")
			e.MustHS("restore-volume", "latest", out)
			if sha(t, out, size) != sha(t, img, size) {
				t.Error("the image restored from the changed-block backup differs from the image")
			}
		})
	}
}

// TestReflinkNeverLeavesItsClone: a backup that fails, or is stopped by
// SIGINT or SIGTERM, removes the clone it made; one SIGKILL left is taken
// over by the next backup, unless a backup still holds it. None records a
// snapshot.
func TestReflinkNeverLeavesItsClone(t *testing.T) {
	e := newEnv(t, 1<<30)
	dir := reflinkFS(t, e, "xfs")
	img := filepath.Join(dir, "guest.raw")
	writeGuestImage(t, img, 256*mib)
	next := filepath.Join(dir, ".guest.raw.hindsight-new")
	snapshots := func() int { return len(e.Snapshots()) }

	// Another filesystem cannot share the image's extents.
	r := e.HS("backup-volume", "--reflink", "--clone-dir", t.TempDir(), img)
	if r.Code == 0 || snapshots() != 0 {
		t.Errorf("a clone in another filesystem: %s", r)
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGKILL} {
		cmd := e.Command(t.Context(), "hindsight", "backup-volume", "--reflink", img)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(time.Minute)
		for _, err := os.Stat(next); err != nil && time.Now().Before(deadline); _, err = os.Stat(next) {
			time.Sleep(time.Millisecond)
		}
		cmd.Process.Signal(sig)
		if err := cmd.Wait(); err == nil {
			t.Fatalf("%v: the backup exits 0", sig)
		}
		_, err := os.Stat(next)
		if left := err == nil; left != (sig == syscall.SIGKILL) {
			t.Errorf("%v: new clone left behind: %v", sig, left)
		}
	}
	if n := snapshots(); n != 0 {
		t.Errorf("%d snapshots recorded by stopped backups", n)
	}
	// A running backup's clone is locked: a second backup leaves it be.
	f, err := os.Open(next)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	r = e.HS("backup-volume", "--reflink", img)
	if _, err := os.Stat(next); r.Code == 0 || err != nil || !strings.Contains(r.Stderr, "another backup") {
		t.Errorf("a backup while another's clone is locked: clone %v\n%s", err, r)
	}
	f.Close()
	e.MustHS("backup-volume", "--reflink", img)
	if _, err := os.Stat(next); !os.IsNotExist(err) || snapshots() != 1 {
		t.Errorf("after the next backup: new clone %v, %d snapshots", err, snapshots())
	}
}
