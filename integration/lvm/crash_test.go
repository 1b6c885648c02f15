package lvm

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hindsight-backup/hindsight/integration/lvm/lvmenv"
)

// The lvm2 calls of one "hindsight lvm backup VG/LV", in order, which the
// fault points below are counted in: lvs VG (leftovers), lvs VG/LV
// (origin), vgs, lvcreate -s, lvs VG/SNAP (#3, its device), [blkid, mount,
// backup], lvs VG/SNAP (#4, the overflow check before the record),
// [umount], lvremove.

// TestSignals interrupts backups at each phase. SIGINT and SIGTERM leave
// nothing; neither do SIGKILL and SIGQUIT (a Go crash, which runs no
// deferred code, as a panic in a worker goroutine does not), because the
// backup's watchdog process removes what they leave. Only a kill of both
// (KILLALL) leaves the snapshot (and its mount) behind, which "lvm
// cleanup" then removes. No interrupted backup is recorded, and the next
// backup works.
func TestSignals(t *testing.T) {
	tests := []struct {
		name      string
		image     bool
		at        string // FAKELVM_SIGNAL_PARENT
		leftovers int    // volumes and mounts left behind
	}{
		{"KILL after lvcreate", false, "lvcreate#1:KILL", 0},
		{"KILL while mounted, before the record", false, "lvs#4:KILL", 0},
		{"QUIT while mounted, before the record", false, "lvs#4:QUIT", 0},
		{"KILL image before the record", true, "lvs#4:KILL", 0},
		{"KILL with its watchdog after lvcreate", false, "lvcreate#1:KILLALL", 1},
		{"KILL with its watchdog while mounted", false, "lvs#4:KILLALL", 2},
		{"KILL with its watchdog, image", true, "lvs#4:KILLALL", 1},
		{"TERM after lvcreate", false, "lvcreate#1:TERM", 0},
		{"INT while mounted, before the record", false, "lvs#4:INT", 0},
		{"TERM image before the record", true, "lvs#4:TERM", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, 512*mib)
			fillTree(t, e.MountAt(e.NewVolume("web", 128*mib, "ext4")), 3)
			args := []string{"lvm", "backup", "vg0/web"}
			if tt.image {
				args = []string{"lvm", "backup", "--image", "vg0/web"}
			}
			e.Must("fakelvm", "reset-counts")
			e.Extra = []string{"FAKELVM_SIGNAL_PARENT=" + tt.at}
			r := e.HS(args...)
			e.Extra = nil
			if r.Code == 0 {
				t.Fatalf("an interrupted backup exits 0: %s", r)
			}
			if n := len(e.Snapshots()); n != 0 {
				t.Errorf("%d snapshots recorded by an interrupted backup", n)
			}
			left := e.Leftovers()
			if len(left) != tt.leftovers {
				t.Errorf("left behind %v, want %d items\n%s", left, tt.leftovers, r)
			}
			if strings.HasSuffix(tt.at, ":KILL") || strings.HasSuffix(tt.at, ":QUIT") {
				if !strings.Contains(r.Stderr, "the backup process died; removed its snapshot vg0/"+lvmenv.SnapshotPrefix+"web-") {
					t.Errorf("the watchdog did not say what it removed:\n%s", r)
				}
			}
			if tt.leftovers > 0 {
				out := e.MustHS("lvm", "cleanup").Stdout
				if !strings.Contains(out, "removed vg0/"+lvmenv.SnapshotPrefix) {
					t.Errorf("cleanup says %q", out)
				}
				if left := e.Leftovers(); len(left) != 0 {
					t.Errorf("left behind after cleanup: %v", left)
				}
			}
			e.MustHS(args...)
			if n := len(e.Snapshots()); n != 1 {
				t.Errorf("%d snapshots after the next backup, want 1", n)
			}
		})
	}
}

// TestKillDuringRead kills an image backup and its watchdog while it
// reads, found by polling for its snapshot; the next backup removes the
// leftover itself.
func TestKillDuringRead(t *testing.T) {
	e := newEnv(t, 1<<30)
	dev := e.NewVolume("big", 384*mib, "")
	e.Must("dd", "if=/dev/urandom", "of="+dev, "bs=4M", "count=96", "status=none")
	cmd := exec.Command(hsBin, "lvm", "--state-dir", e.StateDir, "backup", "--image", "vg0/big")
	cmd.Env = e.CmdEnv()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for len(e.Leftovers()) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // into the read
	if out, err := exec.Command("pkill", "-KILL", "-P", strconv.Itoa(cmd.Process.Pid)).CombinedOutput(); err != nil {
		t.Fatalf("pkill the watchdog: %v: %s", err, out)
	}
	cmd.Process.Kill()
	err := cmd.Wait()
	if left := e.Leftovers(); len(left) != 1 || err == nil {
		t.Fatalf("after SIGKILL (%v): left %v, want the snapshot", err, left)
	}
	r := e.MustHS("lvm", "backup", "--image", "vg0/big")
	if !strings.Contains(r.Stderr, "removed leftover snapshot vg0/"+lvmenv.SnapshotPrefix+"big-") {
		t.Errorf("the next backup did not say it removed the leftover:\n%s", r)
	}
	if left := e.Leftovers(); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestOverflow: a snapshot invalidated during the backup fails it, in
// both modes, names the volume, records nothing and is removed.
func TestOverflow(t *testing.T) {
	for _, image := range []bool{false, true} {
		t.Run(fmt.Sprintf("image=%v", image), func(t *testing.T) {
			e := newEnv(t, 1<<30)
			fillTree(t, e.MountAt(e.NewVolume("web", 320*mib, "xfs")), 4)
			args := []string{"lvm", "backup", "vg0/web"}
			if image {
				args = []string{"lvm", "backup", "--image", "vg0/web"}
			}
			e.Extra = []string{"FAKELVM_INVALIDATE_ON_QUERY=2"}
			r := e.HS(args...)
			e.Extra = nil
			if r.Code != 1 || !strings.Contains(r.Stderr, "vg0/web") || !strings.Contains(r.Stderr, "invalidated") {
				t.Errorf("want exit 1 naming vg0/web and the invalidation: %s", r)
			}
			if n := len(e.Snapshots()); n != 0 {
				t.Errorf("%d snapshots recorded from an overflowed snapshot", n)
			}
			if left := e.Leftovers(); len(left) != 0 {
				t.Errorf("left behind: %v", left)
			}
		})
	}
}

func TestNoFreeSpace(t *testing.T) {
	e := newEnv(t, 64*mib)
	e.NewVolume("web", 64*mib, "ext4")
	r := e.HS("lvm", "backup", "vg0/web")
	if r.Code != 1 || !strings.Contains(r.Stderr, "vg0/web") || !strings.Contains(r.Stderr, "no free extents") {
		t.Errorf("want exit 1 naming vg0/web and the lack of free extents: %s", r)
	}
	r = e.HS("lvm", "backup", "--snapshot-size", "1G", "vg0/web")
	if r.Code != 1 || !strings.Contains(r.Stderr, "--snapshot-size needs 256 extents") {
		t.Errorf("want exit 1 explaining the size: %s", r)
	}
	r = e.HS("lvm", "backup", "vg0/nope")
	if r.Code != 1 || !strings.Contains(r.Stderr, "vg0/nope") || !strings.Contains(r.Stderr, "lvs") {
		t.Errorf("want exit 1 naming vg0/nope and the failed lvs: %s", r)
	}
}
