package lvm

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hindsight-backup/hindsight/integration/testtree"
	"github.com/hindsight-backup/hindsight/integration/treecmp"
)

// TestImageInMount finds an image snapshot in "hindsight mount" as one
// file, loop-mounts it read-only and reads the volume's files from it.
func TestImageInMount(t *testing.T) {
	_, err := os.Stat("/dev/fuse")
	testtree.Require(t, err == nil, "/dev/fuse")
	_, err = exec.LookPath("fusermount3")
	testtree.Require(t, err == nil, "fusermount3")
	e := newEnv(t, 512*mib)
	dev := e.NewVolume("win10", 96*mib, "ext4")
	origin := e.MountAt(dev)
	fillTree(t, origin, 8)
	// A clean filesystem: an image of a mounted one would need
	// "-o loop,ro,noload", as its journal is not replayed.
	e.Must("umount", origin)
	e.MustHS("lvm", "backup", "--image", "vg0/win10")

	mnt := t.TempDir()
	pidFile := filepath.Join(t.TempDir(), "pid")
	e.MustHS("mount", "--daemon", "--pid-file", pidFile, mnt)
	t.Cleanup(func() {
		exec.Command("fusermount3", "-u", mnt).Run()
		if b, err := os.ReadFile(pidFile); err == nil {
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
				time.Sleep(50 * time.Millisecond)
			}
		}
	})
	imgs, _ := filepath.Glob(filepath.Join(mnt, "*", "latest", "win10.img"))
	if len(imgs) != 1 {
		out, _ := exec.Command("find", mnt, "-maxdepth", "3").CombinedOutput()
		t.Fatalf("want one latest/win10.img in the mount, found %v:\n%s", imgs, out)
	}
	if fi, err := os.Stat(imgs[0]); err != nil || fi.Size() != 96*mib {
		t.Fatalf("image file: %v, %v", fi, err)
	}
	inImage := e.MountAt(imgs[0], "-o", "loop,ro")
	defer exec.Command("umount", inImage).Run()
	again := e.MountAt(dev, "-o", "ro")
	diffs, err := treecmp.Compare(again, inImage, treecmp.Options{})
	if err != nil || len(diffs) != 0 {
		t.Errorf("files in the mounted image differ from the volume's: %v %v", diffs, err)
	}
}
