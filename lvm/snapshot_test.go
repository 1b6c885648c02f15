package lvm

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
)

const mib = 1 << 20

func TestSnapshotExtents(t *testing.T) {
	vg := &VG{Name: "vg0", Size: 1000 * 4 * mib, ExtentSize: 4 * mib, FreeCount: 100}
	tests := []struct {
		name    string
		vg      VG
		o       SnapshotOptions
		want    uint64
		wantErr error
	}{
		{"auto leaves the reserve", *vg, SnapshotOptions{ReservePercent: 10}, 90, nil},
		{"auto without reserve", *vg, SnapshotOptions{}, 100, nil},
		{"reserve capped below 100%", *vg, SnapshotOptions{ReservePercent: 100}, 1, nil},
		{"explicit size rounds up", *vg, SnapshotOptions{Size: 10*mib + 1}, 3, nil},
		{"explicit size too large", *vg, SnapshotOptions{Size: 101 * 4 * mib}, 0, ErrNoFreeSpace},
		{"no free extents", VG{Name: "vg0", ExtentSize: 4 * mib}, SnapshotOptions{}, 0, ErrNoFreeSpace},
		{"one free extent despite reserve", VG{Name: "vg0", ExtentSize: 4 * mib, FreeCount: 1}, SnapshotOptions{ReservePercent: 50}, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := snapshotExtents(&tt.vg, tt.o)
			if !errors.Is(err, tt.wantErr) || got != tt.want {
				t.Fatalf("got %d, %v; want %d, %v", got, err, tt.want, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "vg0") {
				t.Errorf("error %q does not name the volume group", err)
			}
		})
	}
}

func TestInvalid(t *testing.T) {
	tests := []struct {
		attr string
		pct  float64
		want bool
	}{
		{"swi-a-s---", 12.5, false},
		{"swi-I-s---", 100, true},
		{"swi-S-s---", 100, true},
		{"swi-a-s---", 100, true},  // full but not yet marked
		{"Vwi-a-tz--", 100, false}, // a thin volume's share of its pool
		{"Vwi-a-tzD-", 40, true},   // pool out of data space
		{"Vwi-a-tz--", 40, false},
	}
	for _, tt := range tests {
		lv := LV{Attr: tt.attr, DataPercent: tt.pct}
		if got := lv.Invalid(); got != tt.want {
			t.Errorf("%s at %v%%: Invalid() = %v, want %v", tt.attr, tt.pct, got, tt.want)
		}
	}
}

func newTestManager(t *testing.T, r Runner) *Manager {
	t.Helper()
	m := New(r, t.TempDir())
	m.Proc = t.TempDir() // no process runs lvm2 commands
	return m
}

func TestCreateSnapshot(t *testing.T) {
	tests := []struct {
		name     string
		origin   string // lvs row of vg0/web
		wantArgs string
		wantVGS  bool
	}{
		{"classic", lvRow("vg0", "web", "-wi-ao----", "", 2<<30, ""), "-s -n hindsight-snap-web-x -l 45 vg0/web", true},
		{"thin", lvRow("vg0", "web", "Vwi-aotz--", "", 2<<30, "3.00"), "-s -n hindsight-snap-web-x -kn vg0/web", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := (&recorder{}).
				on("lvs --reportformat json --units b --nosuffix -o "+lvFields+" vg0/web", lvsJSON(tt.origin), nil).
				on("vgs", vgsJSON("vg0", 1<<30, 200*mib, 4*mib), nil).
				on("lvcreate", "", nil).
				on("lvs --reportformat json --units b --nosuffix -o "+lvFields+" vg0/hindsight-snap-web-x",
					lvsJSON(lvRow("vg0", "hindsight-snap-web-x", "swi-a-s---", "web", 180*mib, "0.00")), nil)
			m := newTestManager(t, r)
			s, err := m.CreateSnapshot(context.Background(), "vg0/web", SnapshotOptions{ReservePercent: 10, Name: "hindsight-snap-web-x"})
			if err != nil {
				t.Fatal(err)
			}
			if got := r.calls[len(r.calls)-2]; got != "lvcreate "+tt.wantArgs {
				t.Errorf("ran %q, want lvcreate %s", got, tt.wantArgs)
			}
			if got := r.count("vgs") > 0; got != tt.wantVGS {
				t.Errorf("asked vgs: %v, want %v", got, tt.wantVGS)
			}
			if s.Path != "/dev/vg0/hindsight-snap-web-x" || s.Origin.Name != "web" {
				t.Errorf("snapshot %+v", s)
			}
			if !m.held(s.Name) {
				t.Error("a live snapshot's lock is not held")
			}
		})
	}
}

func TestCreateSnapshotNoFreeSpace(t *testing.T) {
	r := (&recorder{}).
		on("lvs --reportformat json --units b --nosuffix -o "+lvFields+" vg0/web", lvsJSON(lvRow("vg0", "web", "-wi-ao----", "", 1<<30, "")), nil).
		on("vgs", vgsJSON("vg0", 1<<30, 0, 4*mib), nil)
	_, err := newTestManager(t, r).CreateSnapshot(context.Background(), "vg0/web", SnapshotOptions{})
	if !errors.Is(err, ErrNoFreeSpace) {
		t.Fatalf("got %v, want ErrNoFreeSpace", err)
	}
	if !strings.HasPrefix(err.Error(), "vg0/web: ") || r.count("lvcreate") != 0 {
		t.Errorf("error %q (after %v) should name vg0/web and come before any lvcreate", err, r.calls)
	}
}

func TestCreateSnapshotFails(t *testing.T) {
	r := (&recorder{}).
		once("lvs --reportformat json --units b --nosuffix -o "+lvFields+" vg0/web", lvsJSON(lvRow("vg0", "web", "-wi-ao----", "", 1<<30, "")), nil).
		on("vgs", vgsJSON("vg0", 1<<30, 100*mib, 4*mib), nil).
		on("lvcreate", "", failed("  Snapshot origin LV web not found in Volume group vg0.")).
		// The failed snapshot does not exist: lvs fails when asked for it,
		// as lvm2's does (exit 5), and the group's listing lacks it.
		on("lvs --reportformat json --units b --nosuffix -o "+lvFields+" vg0/"+SnapshotPrefix+"web-1", "",
			failed(`  Failed to find logical volume "vg0/`+SnapshotPrefix+`web-1"`)).
		on("lvs", lvsJSON(lvRow("vg0", "web", "-wi-ao----", "", 1<<30, "")), nil)
	m := newTestManager(t, r)
	_, err := m.CreateSnapshot(context.Background(), "vg0/web", SnapshotOptions{Name: SnapshotPrefix + "web-1"})
	for _, want := range []string{"vg0/web", "lvcreate -s -n hindsight-snap-web-1", "Snapshot origin LV web not found"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
	if r.count("lvremove") != 0 {
		t.Errorf("removed a snapshot that does not exist: %v", r.calls)
	}
	if _, serr := os.Stat(m.lockPath(SnapshotPrefix + "web-1")); !os.IsNotExist(serr) {
		t.Errorf("lock file left behind: %v", serr)
	}
}

// TestWithSnapshotRemoves checks that every way out of the callback
// removes the snapshot exactly once and frees its lock.
func TestWithSnapshotRemoves(t *testing.T) {
	boom := errors.New("backup failed")
	tests := []struct {
		name    string
		fn      func(*Snapshot) error
		wantErr error
		panics  bool
	}{
		{"success", func(*Snapshot) error { return nil }, nil, false},
		{"error", func(*Snapshot) error { return boom }, boom, false},
		{"cancelled", func(*Snapshot) error { return context.Canceled }, context.Canceled, false},
		{"panic", func(*Snapshot) error { panic("bug") }, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := (&recorder{}).
				on("lvs --reportformat json --units b --nosuffix -o "+lvFields+" vg0/web", lvsJSON(lvRow("vg0", "web", "-wi-ao----", "", 1<<30, "")), nil).
				on("vgs", vgsJSON("vg0", 1<<30, 100*mib, 4*mib), nil).
				on("lvcreate", "", nil).
				on("lvs", lvsJSON(lvRow("vg0", "s", "swi-a-s---", "web", 1<<30, "0.00")), nil).
				on("lvremove -y vg0/s", "", nil)
			m := newTestManager(t, r)
			var err error
			panicked := func() (p bool) {
				defer func() { p = recover() != nil }()
				err = m.WithSnapshot(context.Background(), "vg0/web", SnapshotOptions{Name: "s"}, tt.fn)
				return false
			}()
			if panicked != tt.panics || !errors.Is(err, tt.wantErr) {
				t.Fatalf("panicked %v, err %v; want %v, %v", panicked, err, tt.panics, tt.wantErr)
			}
			if n := r.count("lvremove -y vg0/s"); n != 1 {
				t.Errorf("lvremove ran %d times: %v", n, r.calls)
			}
			if m.held("s") {
				t.Error("lock still held after removal")
			}
		})
	}
}

// TestWithSnapshotExplainsOverflow: reads from an overflowed snapshot fail
// with EIO; the error then says the snapshot overflowed.
func TestWithSnapshotExplainsOverflow(t *testing.T) {
	r := (&recorder{}).
		on("lvs --reportformat json --units b --nosuffix -o "+lvFields+" vg0/web", lvsJSON(lvRow("vg0", "web", "-wi-ao----", "", 1<<30, "")), nil).
		on("vgs", vgsJSON("vg0", 1<<30, 100*mib, 4*mib), nil).
		on("lvcreate", "", nil).
		once("lvs", lvsJSON(lvRow("vg0", "s", "swi-a-s---", "web", 1<<30, "0.00")), nil).
		on("lvs", lvsJSON(lvRow("vg0", "s", "swi-I-s---", "web", 1<<30, "100.00")), nil).
		on("lvremove -y vg0/s", "", nil)
	eio := errors.New("read /dev/vg0/s: input/output error")
	err := newTestManager(t, r).WithSnapshot(context.Background(), "vg0/web", SnapshotOptions{Name: "s"}, func(*Snapshot) error { return eio })
	if !errors.Is(err, ErrInvalidated) || !errors.Is(err, eio) || !strings.Contains(err.Error(), "vg0/web") {
		t.Errorf("got %v, want the overflow named and the read error kept", err)
	}
}

func TestRemoveFailureNamesCommand(t *testing.T) {
	r := (&recorder{}).on("lvremove", "", failed(`  Logical volume vg0/s contains a filesystem in use.`))
	s := &Snapshot{LV: LV{VG: "vg0", Name: "s"}, m: newTestManager(t, r)}
	err := s.Remove(context.Background())
	for _, want := range []string{"vg0/s: remove snapshot", "lvremove -y vg0/s", "contains a filesystem in use"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
	if n := r.count("lvremove"); n != removeTries {
		t.Errorf("tried %d times, want %d", n, removeTries)
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		attr, pct string
		wantErr   error
	}{
		{"swi-a-s---", "40.00", nil},
		{"swi-I-s---", "100.00", ErrInvalidated},
	}
	for _, tt := range tests {
		r := (&recorder{}).on("lvs", lvsJSON(lvRow("vg0", "s", tt.attr, "web", 1<<30, tt.pct)), nil)
		s := &Snapshot{LV: LV{VG: "vg0", Name: "s"}, Origin: &LV{VG: "vg0", Name: "web"}, m: newTestManager(t, r)}
		err := s.Check(context.Background())
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: got %v, want %v", tt.attr, err, tt.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), "vg0/web") {
			t.Errorf("error %q does not name the origin", err)
		}
	}
}

func TestLeftovers(t *testing.T) {
	r := (&recorder{}).on("lvs", lvsJSON(
		lvRow("vg0", "web", "owi-aos---", "", 1<<30, ""),
		lvRow("vg0", "hindsight-snap-web-dead", "swi-a-s---", "web", 1<<30, "1.00"),
		lvRow("vg0", "hindsight-snap-web-live", "swi-a-s---", "web", 1<<30, "1.00"),
		lvRow("vg0", "hindsight-hook-1234", "swi-a-s---", "web", 1<<30, "1.00"),
		lvRow("vg0", "my-own-snap", "swi-a-s---", "web", 1<<30, "1.00"),
		lvRow("vg0", "hindsight-snap-not-a-snapshot", "-wi-a-----", "", 1<<30, ""),
		lvRow("vg0", "hindsight-base-thin", "Vwi---tz-k", "thin", 1<<30, "3.00"),
		lvRow("vg0", "hindsight-base-of-removed", "Vwi---tz-k", "", 1<<30, "3.00"),
		lvRow("vg0", "hindsight-base-not-thin", "-wi-a-----", "", 1<<30, ""),
	), nil)
	m := newTestManager(t, r)
	live, err := m.takeLock("hindsight-snap-web-live")
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	for _, tt := range []struct {
		k    Kinds
		want string
	}{
		{Kinds{}, "vg0/hindsight-snap-web-dead"},
		{Kinds{Hooks: true}, "vg0/hindsight-snap-web-dead vg0/hindsight-hook-1234"},
		{Kinds{Bases: true}, "vg0/hindsight-snap-web-dead vg0/hindsight-base-thin vg0/hindsight-base-of-removed"},
	} {
		lvs, err := m.Leftovers(context.Background(), "vg0", tt.k)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, lv := range lvs {
			names = append(names, lv.FullName())
		}
		if got := strings.Join(names, " "); got != tt.want {
			t.Errorf("%+v: leftovers %q, want %q", tt.k, got, tt.want)
		}
	}
}
