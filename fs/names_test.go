package fs

import (
	"slices"
	"strconv"
	"testing"
	"time"
)

func TestSourceName(t *testing.T) {
	tests := []struct {
		src  Source
		want string
	}{
		{Source{"web01", "/home"}, "web01-home"},
		{Source{"web01", "/var/www/"}, "web01-var-www"},
		{Source{"web01", "lvm:vg0/data"}, "web01-lvm-vg0-data"},
		{Source{"web01", "/"}, "web01"},
		{Source{"", "/srv"}, "srv"},
		{Source{"", "/"}, "_"},
		{Source{"db", `/odd\name*?"<>|`}, "db-odd_name______"},
		{Source{"db", "/tab\there"}, "db-tab_here"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			if got := sourceName(tc.src); got != tc.want {
				t.Errorf("sourceName(%+v) = %q, want %q", tc.src, got, tc.want)
			}
		})
	}
}

func TestTimeNamesSortChronologically(t *testing.T) {
	times := []time.Time{
		time.Date(999, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC),
		time.Date(2026, 11, 1, 3, 0, 1, 0, time.UTC),
		time.Date(2026, 11, 1, 4, 0, 2, 0, time.FixedZone("CET", 3600)), // 03:00:02Z
		time.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC),
	}
	var names []string
	for _, tm := range times {
		names = append(names, timeName(tm))
	}
	if names[1] != "2026-11-01T030000Z" {
		t.Errorf("timeName = %q", names[1])
	}
	if names[3] != "2026-11-01T030002Z" {
		t.Errorf("a time in another zone is named %q", names[3])
	}
	if !slices.IsSorted(names) {
		t.Errorf("not sorted: %q", names)
	}
}

func TestUniqueNames(t *testing.T) {
	tests := []struct {
		in, want []string
	}{
		{[]string{"a", "b"}, []string{"a", "b"}},
		{[]string{"a", "a", "a"}, []string{"a", "a_1", "a_2"}},
		{[]string{"a", "a_1", "a"}, []string{"a", "a_1", "a_2"}},
		{[]string{"a", "a", "a_1"}, []string{"a", "a_1", "a_1_2"}},
	}
	for _, tc := range tests {
		got := uniqueNames(tc.in, strconv.Itoa)
		if !slices.Equal(got, tc.want) {
			t.Errorf("uniqueNames(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCatalogNames(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC)
	snaps := []Snapshot{
		{ID: "aaaaaaaaaaaa", Time: t0, Source: Source{"web01", "/home"}},
		{ID: "bbbbbbbbbbbb", Time: t0, Source: Source{"web01", "/home"}},
		{ID: "cccccccccccc", Time: t0.Add(time.Hour), Source: Source{"web01", "/home"}},
		{ID: "dddddddddddd", Time: t0, Source: Source{"web01", "/home/"}},
	}
	c := newCatalog(snaps)
	var got []string
	for _, s := range c.sources {
		got = append(got, s.name+":"+s.names[s.latest()])
		for _, n := range s.names {
			got = append(got, n)
		}
	}
	want := []string{
		"web01-home:2026-11-01T040000Z", "2026-11-01T030000Z", "2026-11-01T030000Z_bbbbbbbb", "2026-11-01T040000Z",
		"web01-home_2:2026-11-01T030000Z", "2026-11-01T030000Z",
	}
	if !slices.Equal(got, want) {
		t.Errorf("catalog:\n got %q\nwant %q", got, want)
	}
}

func TestInodeNumbers(t *testing.T) {
	snap := snapshotIno("aaaa")
	tests := []struct {
		name string
		a, b uint64
		same bool
	}{
		{"stable", childIno(snap, "x"), childIno(snap, "x"), true},
		{"names differ", childIno(snap, "x"), childIno(snap, "y"), false},
		{"parents differ", childIno(snap, "x"), childIno(snapshotIno("bbbb"), "x"), false},
		{"hardlinks share", entryIno(snap, 7, &Entry{Name: "a", Link: 5}), entryIno(snap, 9, &Entry{Name: "b", Link: 5}), true},
		{"link groups differ", entryIno(snap, 7, &Entry{Name: "a", Link: 5}), entryIno(snap, 7, &Entry{Name: "a", Link: 6}), false},
		{"snapshots do not share links", linkIno(snap, 5), linkIno(snapshotIno("bbbb"), 5), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if (tc.a == tc.b) != tc.same {
				t.Errorf("%d vs %d, want same=%v", tc.a, tc.b, tc.same)
			}
			if tc.a <= rootIno || tc.b <= rootIno {
				t.Errorf("reserved number")
			}
		})
	}
}
