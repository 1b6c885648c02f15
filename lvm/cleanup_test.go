package lvm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestRemoveLeftoverRace: the watchdog of a killed backup and "lvm
// cleanup" (or the next backup) may find the same leftover at once. The
// one that comes second must neither fail nor run lvremove: the snapshot
// is being removed, or is gone already.
func TestRemoveLeftoverRace(t *testing.T) {
	dead := lvRow("vg0", "hindsight-snap-web-dead", "swi-a-s---", "web", 1<<30, "1.00")
	origin := lvRow("vg0", "web", "owi-aos---", "", 1<<30, "")
	lv := LV{VG: "vg0", Name: "hindsight-snap-web-dead", Path: "/dev/vg0/hindsight-snap-web-dead", Origin: "web"}
	tests := []struct {
		name        string
		lvs         string // what lvs reports once the lock is taken
		otherLocked bool
		removed     bool
	}{
		{"another is removing it", lvsJSON(origin, dead), true, false},
		{"another removed it", lvsJSON(origin), false, false},
		{"alone", lvsJSON(origin, dead), false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := (&recorder{}).on("lvs", tt.lvs, nil).on("lvremove", "", nil)
			m := newTestManager(t, r)
			if tt.otherLocked {
				other, err := m.takeLock(lv.Name)
				if err != nil {
					t.Fatal(err)
				}
				defer other.Close()
			}
			removed, err := m.removeLeftover(context.Background(), &lv)
			if err != nil || removed != tt.removed {
				t.Fatalf("removeLeftover: %v, %v; want %v, no error", removed, err, tt.removed)
			}
			ran := strings.Contains(strings.Join(r.calls, "\n"), "lvremove")
			if ran != tt.removed {
				t.Errorf("lvremove run: %v, want %v; calls %q", ran, tt.removed, r.calls)
			}
		})
	}
}

// TestRemoveUnmountsFirst: a mount of the snapshot that appeared after
// its user unmounted it (the mount command of a killed backup, still
// running when cleanup began) is unmounted before each lvremove.
func TestRemoveUnmountsFirst(t *testing.T) {
	var st unix.Stat_t
	if err := unix.Stat("/dev/null", &st); err != nil {
		t.Fatal(err)
	}
	r := (&recorder{}).on("umount", "", nil).on("lvremove", "", nil)
	m := newTestManager(t, r)
	m.MountInfo = filepath.Join(t.TempDir(), "mountinfo")
	line := fmt.Sprintf("36 25 %d:%d / /run/hindsight/lvm/mnt/vg0/web ro - ext4 /dev/vg0/s ro\n", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	if err := os.WriteFile(m.MountInfo, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &Snapshot{LV: LV{VG: "vg0", Name: "s", Path: "/dev/null"}, m: m}
	if err := s.Remove(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(r.calls, "; "), "umount /run/hindsight/lvm/mnt/vg0/web; lvremove -y vg0/s"; got != want {
		t.Errorf("calls %q, want %q", got, want)
	}
}

// TestCleanupWaitsForCommands: the lvcreate of a killed backup runs on,
// and its snapshot appears when it ends. Cleanup waits for it, so that
// it finds the snapshot.
func TestCleanupWaitsForCommands(t *testing.T) {
	snap := lvRow("vg0", "hindsight-snap-web-dead", "swi-a-s---", "web", 1<<30, "1.00")
	r := (&recorder{}).on("lvs", lvsJSON(snap), nil).on("lvremove", "", nil)
	m := newTestManager(t, r)
	proc := filepath.Join(m.Proc, "4242")
	if err := os.MkdirAll(proc, 0o700); err != nil {
		t.Fatal(err)
	}
	cmdline := "lvcreate\x00-s\x00-n\x00hindsight-snap-web-dead\x00-l\x0045\x00vg0/web\x00"
	if err := os.WriteFile(filepath.Join(proc, "cmdline"), []byte(cmdline), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := m.commandsInFlight(); len(got) != 1 || got[0] != 4242 {
		t.Fatalf("commands in flight %v, want the lvcreate, 4242", got)
	}
	ended := make(chan struct{})
	go func() {
		time.Sleep(300 * time.Millisecond)
		// The process ends: a zombie's command line is empty.
		os.WriteFile(filepath.Join(proc, "cmdline"), nil, 0o600)
		close(ended)
	}()
	removed, err := m.Cleanup(context.Background(), "vg0", Kinds{})
	select {
	case <-ended:
	default:
		t.Error("Cleanup did not wait for the lvcreate to end")
	}
	if err != nil || len(removed) != 1 {
		t.Errorf("Cleanup: removed %v, %v; want the snapshot", removed, err)
	}
}
