package lvm

import (
	"context"
	"strings"
	"testing"
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
