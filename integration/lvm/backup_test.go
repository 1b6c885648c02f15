package lvm

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hindsight-backup/hindsight/integration/testtree"
	"github.com/hindsight-backup/hindsight/integration/treecmp"
)

const mib = 1 << 20

// fillTree writes files of random and repeated content below dir.
func fillTree(t *testing.T, dir string, seed uint64) {
	t.Helper()
	rnd := rand.New(rand.NewPCG(seed, 7))
	for i := range 12 {
		sub := filepath.Join(dir, fmt.Sprintf("d%d", i%3))
		if err := os.MkdirAll(sub, 0o750); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, rnd.IntN(3*mib))
		for j := range b {
			b[j] = byte(rnd.Uint32() >> 24)
		}
		if i%4 == 0 {
			b = bytes.Repeat([]byte("hindsight "), len(b)/10)
		}
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%02d", i)), b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("d0/f00", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
}

func blkid(t *testing.T, dev, tag string) string {
	t.Helper()
	out, err := exec.Command("blkid", "-p", "-o", "value", "-s", tag, dev).Output()
	if err != nil {
		t.Fatalf("blkid %s %s: %v", tag, dev, err)
	}
	return strings.TrimSpace(string(out))
}

// TestFileBackupAndRestore backs up the files of a mounted ext4, XFS and
// btrfs volume through a snapshot, then restores them onto a fresh volume made
// with the same filesystem, UUID and label, fsck-clean and equal.
func TestFileBackupAndRestore(t *testing.T) {
	// mkfs.btrfs refuses a UUID in use, and the original is still here:
	// its copy gets a new one.
	for _, tt := range []struct {
		fstype  string
		newUUID bool
	}{{"ext4", false}, {"xfs", false}, {"btrfs", true}} {
		fstype := tt.fstype
		t.Run(fstype, func(t *testing.T) {
			_, err := exec.LookPath("mkfs." + fstype)
			testtree.Require(t, err == nil, "mkfs.%s", fstype)
			e := newEnv(t, 1<<30)
			dev := e.NewVolume("web", 320*mib, fstype)
			origin := e.MountAt(dev)
			fillTree(t, origin, 1)

			e.MustHS("lvm", "backup", "vg0/web")
			if l := e.Leftovers(); len(l) != 0 {
				t.Errorf("left behind after a backup: %v", l)
			}
			snaps := e.Snapshots()
			if len(snaps) != 1 || snaps[0].Source != "lvm:vg0/web" || snaps[0].Kind != "files" {
				t.Fatalf("snapshots %+v, want one of files from lvm:vg0/web", snaps)
			}

			args := []string{"lvm", "restore", snaps[0].ID, "vg0/web-new", "--size", "auto"}
			if tt.newUUID {
				args = append(args, "--new-uuid")
			}
			r := e.MustHS(args...)
			if !strings.Contains(r.Stdout, "fsck clean") {
				t.Errorf("restore did not report a clean fsck:\n%s", r)
			}
			newDev := e.LVs()["web-new"].Path
			for _, tag := range []string{"TYPE", "UUID", "LABEL"} {
				got, orig := blkid(t, newDev, tag), blkid(t, dev, tag)
				if same := tag == "TYPE" || !tt.newUUID; (got == orig) != same {
					t.Errorf("restored %s %q, original %q; want them equal: %v", tag, got, orig, same)
				}
			}
			fsckClean(t, newDev, fstype)
			restored := e.MountAt(newDev, "-o", map[string]string{"ext4": "ro", "xfs": "ro,nouuid", "btrfs": "ro"}[fstype])
			diffs, err := treecmp.Compare(origin, restored, treecmp.Options{SkipRootMeta: true,
				Exclude: func(p string, _ uint32) bool { return p == "lost+found" }})
			if err != nil || len(diffs) != 0 {
				t.Errorf("restored tree differs: %v %v", diffs, err)
			}
		})
	}
}

func fsckClean(t *testing.T, dev, fstype string) {
	t.Helper()
	cmd := map[string][]string{"ext4": {"e2fsck", "-f", "-n"}, "xfs": {"xfs_repair", "-n"}, "btrfs": {"btrfs", "check", "--readonly"}}[fstype]
	if out, err := exec.Command(cmd[0], append(cmd[1:], dev)...).CombinedOutput(); err != nil {
		t.Errorf("%s %s: %v\n%s", strings.Join(cmd, " "), dev, err, out)
	}
}

func sha(t *testing.T, path string, n int64) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, 0); err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return sha256.Sum256(b)
}

// TestImageBackupAndRestore backs up a volume as an image, restores it
// onto a fresh volume with lvm restore --image and into a file with
// restore-volume, and backs the file up again with backup-volume: every
// copy is bit-exact, and the second image stores little: the restored
// file is sparse, and chunking restarts at each of its data extents, so
// chunks next to the holes are cut differently.
func TestImageBackupAndRestore(t *testing.T) {
	e := newEnv(t, 1<<30)
	const size = 128 * mib
	dev := e.NewVolume("win10", size, "ext4")
	fillTree(t, e.MountAt(dev), 2)
	exec.Command("umount", dev).Run() // a stable image to compare against
	want := sha(t, dev, size)

	r := e.MustHS("lvm", "backup", "--image", "--json", "vg0/win10")
	var sum struct {
		ID       string `json:"snapshot_id"`
		Bytes    uint64 `json:"bytes"`
		NewBytes uint64 `json:"new_bytes"`
	}
	if err := jsonLine(r.Stdout, &sum); err != nil || sum.Bytes != size || sum.NewBytes >= size/2 {
		t.Errorf("summary %+v (%v): want %d bytes, under half stored (the rest is zeros)", sum, err, size)
	}
	if l := e.Leftovers(); len(l) != 0 {
		t.Errorf("left behind after an image backup: %v", l)
	}

	e.MustHS("lvm", "restore", "--image", sum.ID, "vg0/win10-new")
	if got := sha(t, e.LVs()["win10-new"].Path, size); got != want {
		t.Error("image restored onto a fresh volume differs from the origin")
	}
	img := filepath.Join(t.TempDir(), "win10.raw")
	e.MustHS("restore-volume", sum.ID, img)
	if got := sha(t, img, size); got != want {
		t.Error("image restored into a file differs from the origin")
	}
	r = e.MustHS("backup-volume", "--json", img)
	var again struct {
		Source   string `json:"source"`
		NewBytes uint64 `json:"new_bytes"`
	}
	if err := jsonLine(r.Stdout, &again); err != nil || again.Source != "image:"+img || again.NewBytes > size/16 {
		t.Errorf("backup-volume of the restored image: %+v (%v), want source image:%s and at most %d new bytes", again, err, img, size/16)
	}
}
