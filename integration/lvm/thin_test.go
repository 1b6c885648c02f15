package lvm

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// thinEnv is a volume group whose thin pool keeps its volumes on XFS made
// with reflink=1, where fakelvm's thin snapshots share the blocks of
// their origin as lvm2's do, and thin_delta tells which they still share.
func thinEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t, 2<<30)
	pool := reflinkFS(t, e, "xfs")
	e.Extra = append(e.Extra, "FAKELVM_POOL_DIR="+pool)
	// The thin volumes' loop devices go before the pool is unmounted.
	t.Cleanup(func() { e.Run("fakelvm", "teardown") })
	return e
}

// newThinVolume creates the thin volume vg0/name full of a guest's data
// and returns its device.
func newThinVolume(t *testing.T, e *env, name string, size int) string {
	t.Helper()
	e.Must("lvcreate", "-y", "-T", "-n", name, "-L", fmt.Sprintf("%db", size), "vg0")
	dev := e.LVs()[name].Path
	writeGuestImage(t, dev, size)
	return dev
}

// changeOnePercent writes 1% of a 256 MiB volume's blocks, most in one
// run as a guest writes a file, a few scattered.
func changeOnePercent(t *testing.T, dev string, seed uint64) {
	t.Helper()
	writeBlocks(t, dev, 40*mib+8192, 600, seed)
	for k := range 8 {
		writeBlocks(t, dev, int64(k)*30*mib+4096, 1, seed+uint64(k)+1)
	}
}

// TestThinImageChangedBlocks backs up a thin volume as an image twice with
// 1% of its blocks changed between: the snapshot of each backup is kept
// as the next one's base, so the second reads only around what changed,
// and restores bit-exact.
func TestThinImageChangedBlocks(t *testing.T) {
	e := thinEnv(t)
	const size = 256 * mib
	dev := newThinVolume(t, e, "vm", size)

	first, _ := readBytes(t, e, "lvm", "backup", "--image", "--json", "vg0/vm")
	base, ok := e.LVs()["hindsight-base-vm"]
	if !ok || base.Origin != "vm" {
		t.Fatalf("no base kept for vg0/vm: %v", e.LVs())
	}
	changeOnePercent(t, dev, 1)
	second, out := readBytes(t, e, "lvm", "backup", "--image", "--json", "vg0/vm")
	t.Logf("read %d bytes, then %d after changing 1%% of the blocks", first, second)
	if first < size*9/10 || second > size/4 {
		t.Errorf("read %d bytes, then %d: want the first to read the %d-byte volume, the second under a quarter\n%s", first, second, size, out)
	}
	if now := e.LVs()["hindsight-base-vm"]; now.UUID == base.UUID || now.UUID == "" {
		t.Errorf("base %q after the second backup, %q before: want it replaced by the snapshot just read", now.UUID, base.UUID)
	}
	if left := e.Leftovers(); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}

	img := filepath.Join(t.TempDir(), "restored.raw")
	e.MustHS("restore-volume", "latest", img)
	if sha(t, img, size) != sha(t, dev, size) {
		t.Error("the image restored from the changed-block backup differs from the volume")
	}

	// --no-keep-base reads it all and leaves the base as it was.
	base = e.LVs()["hindsight-base-vm"]
	if n, out := readBytes(t, e, "lvm", "backup", "--image", "--no-keep-base", "vg0/vm"); n < size*9/10 {
		t.Errorf("--no-keep-base read %d bytes, want all %d\n%s", n, size, out)
	}
	if now := e.LVs()["hindsight-base-vm"]; now.UUID != base.UUID || len(e.Leftovers()) > 0 {
		t.Errorf("--no-keep-base: base %q (was %q), leftovers %v", now.UUID, base.UUID, e.Leftovers())
	}
}

// TestThinBaseFallback: a base thin_delta cannot compare with costs a
// full read, not the backup, and the base is replaced all the same; the
// pool's metadata snapshot is released, so the next backup compares again.
func TestThinBaseFallback(t *testing.T) {
	e := thinEnv(t)
	const size = 256 * mib
	dev := newThinVolume(t, e, "vm", size)
	e.MustHS("lvm", "backup", "--image", "vg0/vm")
	changeOnePercent(t, dev, 1)

	e.Extra = append(e.Extra, "FAKELVM_THIN_DELTA_FAIL=1")
	n, out := readBytes(t, e, "lvm", "backup", "--image", "vg0/vm")
	e.Extra = e.Extra[:len(e.Extra)-1]
	if n < size*9/10 || !strings.Contains(out, "thin_delta") || !strings.Contains(out, "reading all of vg0/vm") {
		t.Errorf("thin_delta failing: read %d bytes of %d, want all, and the failure named:\n%s", n, size, out)
	}
	changeOnePercent(t, dev, 20)
	if n, out := readBytes(t, e, "lvm", "backup", "--image", "vg0/vm"); n > size/4 {
		t.Errorf("after the fallback: read %d bytes of %d, want under a quarter\n%s", n, size, out)
	}

	// A base that is not the snapshot the last backup read (made by hand
	// here) is compared, but the last snapshot's record does not name it.
	e.MustHS("lvm", "cleanup", "--bases")
	e.Must("lvcreate", "-y", "-s", "-kn", "-n", "hindsight-base-vm", "vg0/vm")
	changeOnePercent(t, dev, 40)
	if n, out := readBytes(t, e, "lvm", "backup", "--image", "vg0/vm"); n < size*9/10 {
		t.Errorf("a base the last backup did not read: read %d bytes of %d, want all\n%s", n, size, out)
	}
	img := filepath.Join(t.TempDir(), "restored.raw")
	e.MustHS("restore-volume", "latest", img)
	if sha(t, img, size) != sha(t, dev, size) {
		t.Error("the image restored after a foreign base differs from the volume")
	}
}

// TestThinCleanupKeepsBase: lvm cleanup removes a dead backup's snapshot
// but leaves the base, which only --bases removes.
func TestThinCleanupKeepsBase(t *testing.T) {
	e := thinEnv(t)
	newThinVolume(t, e, "vm", 64*mib)
	e.MustHS("lvm", "backup", "--image", "vg0/vm")
	e.Must("lvcreate", "-y", "-s", "-kn", "-n", "hindsight-snap-vm-dead", "vg0/vm")

	r := e.MustHS("lvm", "cleanup")
	lvs := e.LVs()
	if _, ok := lvs["hindsight-snap-vm-dead"]; ok || !strings.Contains(r.Stdout, "hindsight-snap-vm-dead") {
		t.Errorf("lvm cleanup left the dead backup's snapshot: %s", r)
	}
	if _, ok := lvs["hindsight-base-vm"]; !ok {
		t.Fatalf("lvm cleanup removed the base: %s", r)
	}
	// --all backs up neither the base nor the snapshots.
	if r := e.MustHS("lvm", "backup", "--all", "vg0", "--exclude", "images-*", "--image", "--json"); strings.Contains(r.Stdout, "hindsight-") {
		t.Errorf("--all backed up hindsight's own volumes: %s", r)
	}
	r = e.MustHS("lvm", "cleanup", "--bases")
	if _, ok := e.LVs()["hindsight-base-vm"]; ok || !strings.Contains(r.Stdout, "vg0/hindsight-base-vm") {
		t.Errorf("lvm cleanup --bases left the base: %s", r)
	}
}

// TestThinBackupKilled kills an image backup of a thin volume, and its
// watchdog, as the host going down would, right after it removed the old
// base and right after it renamed its snapshot to be the new one. After
// lvm cleanup no snapshot is left, and at most the base: one the killed
// backup recorded, which the next backup trusts, or none, which costs it
// a full read. Either restores bit-exact.
func TestThinBackupKilled(t *testing.T) {
	e := thinEnv(t)
	const size = 256 * mib
	dev := newThinVolume(t, e, "vm", size)
	e.MustHS("lvm", "backup", "--image", "vg0/vm")
	for i, at := range []string{"lvremove#1", "lvrename#1"} {
		changeOnePercent(t, dev, uint64(10*i))
		e.Must("fakelvm", "reset-counts")
		e.Extra = append(e.Extra, "FAKELVM_SIGNAL_PARENT="+at+":KILLALL")
		r := e.HS("lvm", "backup", "--image", "vg0/vm")
		e.Extra = e.Extra[:len(e.Extra)-1]
		if r.Code != -1 {
			t.Fatalf("killed at %s: %s", at, r)
		}
		e.MustHS("lvm", "cleanup")
		if left := e.Leftovers(); len(left) > 0 {
			t.Errorf("killed at %s: left behind after lvm cleanup: %v", at, left)
		}
		_, kept := e.LVs()["hindsight-base-vm"]
		if kept != (at == "lvrename#1") {
			t.Errorf("killed at %s: base kept %v", at, kept)
		}
		changeOnePercent(t, dev, uint64(10*i+5))
		n, out := readBytes(t, e, "lvm", "backup", "--image", "vg0/vm")
		if cheap := n < size/4; cheap != kept {
			t.Errorf("killed at %s, base kept %v: the next backup read %d bytes of %d\n%s", at, kept, n, size, out)
		}
		img := filepath.Join(t.TempDir(), "restored.raw")
		e.MustHS("restore-volume", "latest", img)
		if sha(t, img, size) != sha(t, dev, size) {
			t.Errorf("killed at %s: the image restored from the next backup differs from the volume", at)
		}
	}
}
