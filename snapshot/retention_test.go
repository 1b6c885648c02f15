package snapshot_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/snapshot"
)

func loadZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("time zone %s: %v (Debian package tzdata)", name, err)
	}
	return loc
}

// at is an instant given in UTC, shown in loc: the way a record decodes,
// with the offset the backed-up host had. Building times from UTC keeps
// the hour that happens twice when clocks go back unambiguous.
func at(loc *time.Location, utc string) time.Time {
	t, err := time.Parse("2006-01-02 15:04:05", utc)
	if err != nil {
		panic(err)
	}
	return t.In(loc)
}

// snap is a snapshot of host "h", source "/src" unless changed.
type snap struct {
	id     byte
	time   time.Time
	source string
	tags   []string
}

func summaries(list []snap) []snapshot.Summary {
	out := make([]snapshot.Summary, len(list))
	for i, s := range list {
		src := s.source
		if src == "" {
			src = "/src"
		}
		out[i] = snapshot.Summary{ID: blob.ID{s.id}, Time: s.time, Host: "h", Source: src, Tags: s.tags}
	}
	return out
}

// verdicts renders a policy's result as "id: reasons" for each kept
// snapshot, oldest first within each group, groups in order.
func verdicts(groups []snapshot.Group) []string {
	var out []string
	for _, g := range groups {
		for _, d := range g.Decisions {
			if d.Keep {
				out = append(out, fmt.Sprintf("%d: %s", d.ID[0], strings.Join(d.Reasons, ", ")))
			}
		}
	}
	return out
}

func TestRetentionPolicy(t *testing.T) {
	berlin := loadZone(t, "Europe/Berlin")
	newYork := loadZone(t, "America/New_York")
	utc := time.UTC
	tests := []struct {
		name   string
		policy snapshot.Policy
		snaps  []snap
		want   []string // kept snapshots with their reasons
	}{{
		// Berlin springs forward on 2026-03-29: that day has 23 hours.
		// Snapshots 2 and 3 are on the same local day (the 29th); in
		// UTC, 3 and 4 share a day instead.
		name:   "daily across spring forward, Berlin",
		policy: snapshot.Policy{Daily: 2},
		snaps: []snap{
			{id: 1, time: at(berlin, "2026-03-28 22:30:00")}, // 03-28 23:30 CET
			{id: 2, time: at(berlin, "2026-03-28 23:30:00")}, // 03-29 00:30 CET
			{id: 3, time: at(berlin, "2026-03-29 21:30:00")}, // 03-29 23:30 CEST
			{id: 4, time: at(berlin, "2026-03-29 22:10:00")}, // 03-30 00:10 CEST
		},
		want: []string{"3: daily 2026-03-29", "4: daily 2026-03-30"},
	}, {
		// Berlin falls back on 2026-10-25: 02:00-03:00 happens twice, and
		// the day has 25 hours.
		name:   "hourly and daily across fall back, Berlin",
		policy: snapshot.Policy{Hourly: 3, Daily: 2},
		snaps: []snap{
			{id: 1, time: at(berlin, "2026-10-24 21:59:00")}, // 10-24 23:59 CEST
			{id: 2, time: at(berlin, "2026-10-24 22:00:00")}, // 10-25 00:00 CEST
			{id: 3, time: at(berlin, "2026-10-25 00:30:00")}, // 10-25 02:30 CEST
			{id: 4, time: at(berlin, "2026-10-25 01:30:00")}, // 10-25 02:30 CET
			{id: 5, time: at(berlin, "2026-10-25 22:59:00")}, // 10-25 23:59 CET
		},
		want: []string{"1: daily 2026-10-24", "2: hourly 2026-10-25 00h", "4: hourly 2026-10-25 02h",
			"5: hourly 2026-10-25 23h, daily 2026-10-25"},
	}, {
		// New York falls back on 2026-11-01: 01:30 EDT and 01:30 EST are
		// an hour apart but in the same local hour.
		name:   "repeated hour, New York",
		policy: snapshot.Policy{Hourly: 2},
		snaps: []snap{
			{id: 1, time: at(newYork, "2026-11-01 04:45:00")}, // 00:45 EDT
			{id: 2, time: at(newYork, "2026-11-01 05:30:00")}, // 01:30 EDT
			{id: 3, time: at(newYork, "2026-11-01 06:30:00")}, // 01:30 EST
		},
		want: []string{"1: hourly 2026-11-01 00h", "3: hourly 2026-11-01 01h"},
	}, {
		// The same instants in UTC are three different hours.
		name:   "same instants in UTC",
		policy: snapshot.Policy{Hourly: 2},
		snaps: []snap{
			{id: 1, time: at(utc, "2026-11-01 04:45:00")},
			{id: 2, time: at(utc, "2026-11-01 05:30:00")},
			{id: 3, time: at(utc, "2026-11-01 06:30:00")},
		},
		want: []string{"2: hourly 2026-11-01 05h", "3: hourly 2026-11-01 06h"},
	}, {
		// New York springs forward on 2026-03-08, 02:00 EST → 03:00 EDT.
		name:   "daily across spring forward, New York",
		policy: snapshot.Policy{Daily: 1, Weekly: 2},
		snaps: []snap{
			{id: 1, time: at(newYork, "2026-03-08 06:59:00")}, // 03-08 01:59 EST (Sunday)
			{id: 2, time: at(newYork, "2026-03-08 07:00:00")}, // 03-08 03:00 EDT
			{id: 3, time: at(newYork, "2026-03-09 03:59:00")}, // 03-08 23:59 EDT
		},
		want: []string{"3: daily 2026-03-08, weekly 2026-W10"},
	}, {
		name:   "leap day",
		policy: snapshot.Policy{Daily: 3, Monthly: 2},
		snaps: []snap{
			{id: 1, time: at(utc, "2024-02-27 12:00:00")},
			{id: 2, time: at(utc, "2024-02-28 12:00:00")},
			{id: 3, time: at(utc, "2024-02-29 12:00:00")},
			{id: 4, time: at(utc, "2024-03-01 12:00:00")},
		},
		want: []string{"2: daily 2024-02-28", "3: daily 2024-02-29, monthly 2024-02", "4: daily 2024-03-01, monthly 2024-03"},
	}, {
		name:   "no leap day",
		policy: snapshot.Policy{Daily: 2},
		snaps: []snap{
			{id: 1, time: at(utc, "2023-02-27 12:00:00")},
			{id: 2, time: at(utc, "2023-02-28 12:00:00")},
			{id: 3, time: at(utc, "2023-03-01 12:00:00")},
		},
		want: []string{"2: daily 2023-02-28", "3: daily 2023-03-01"},
	}, {
		// Half an hour after the leap day ends in Berlin it is still
		// February 29th in UTC.
		name:   "leap day late evening, Berlin",
		policy: snapshot.Policy{Monthly: 2, Yearly: 1},
		snaps: []snap{
			{id: 1, time: at(berlin, "2024-02-29 22:30:00")}, // 02-29 23:30 CET
			{id: 2, time: at(berlin, "2024-02-29 23:30:00")}, // 03-01 00:30 CET
		},
		want: []string{"1: monthly 2024-02", "2: monthly 2024-03, yearly 2024"},
	}, {
		// ISO weeks: 2026-W01 starts on Monday 2025-12-29.
		name:   "weekly across the new year",
		policy: snapshot.Policy{Weekly: 2, Yearly: 2},
		snaps: []snap{
			{id: 1, time: at(utc, "2025-12-28 12:00:00")}, // Sunday, 2025-W52
			{id: 2, time: at(utc, "2025-12-29 12:00:00")}, // Monday, 2026-W01
			{id: 3, time: at(utc, "2026-01-02 12:00:00")}, // 2026-W01
		},
		want: []string{"1: weekly 2025-W52", "2: yearly 2025", "3: weekly 2026-W01, yearly 2026"},
	}, {
		// Periods without snapshots are not counted: the two newest days
		// that have one are a week apart.
		name:   "gaps are not counted",
		policy: snapshot.Policy{Daily: 2},
		snaps: []snap{
			{id: 1, time: at(utc, "2026-01-01 12:00:00")},
			{id: 2, time: at(utc, "2026-01-02 12:00:00")},
			{id: 3, time: at(utc, "2026-01-09 12:00:00")},
		},
		want: []string{"2: daily 2026-01-02", "3: daily 2026-01-09"},
	}, {
		// Two snapshots in the same second (and nanosecond): the greater
		// ID is the newer, and each counts for last.
		name:   "same second",
		policy: snapshot.Policy{Last: 1, Daily: 1},
		snaps: []snap{
			{id: 9, time: at(utc, "2026-05-01 03:00:00")},
			{id: 7, time: at(utc, "2026-05-01 03:00:00")},
		},
		want: []string{"9: last 1, daily 2026-05-01"},
	}, {
		name:   "same second, both last",
		policy: snapshot.Policy{Last: 2},
		snaps: []snap{
			{id: 9, time: at(utc, "2026-05-01 03:00:00")},
			{id: 7, time: at(utc, "2026-05-01 03:00:00")},
		},
		want: []string{"7: last 2", "9: last 1"},
	}, {
		name:   "several sources kept apart",
		policy: snapshot.Policy{Last: 1},
		snaps: []snap{
			{id: 1, time: at(utc, "2026-05-01 03:00:00"), source: "/home"},
			{id: 2, time: at(utc, "2026-05-02 03:00:00"), source: "/home"},
			{id: 3, time: at(utc, "2026-05-01 04:00:00"), source: "/etc"},
			{id: 4, time: at(utc, "2026-04-01 04:00:00"), source: "/etc"},
			{id: 5, time: at(utc, "2026-05-03 04:00:00"), source: "/var"},
		},
		want: []string{"3: last 1", "2: last 1", "5: last 1"},
	}, {
		// Within counts back from the newest snapshot, not from now: these
		// are years old and still kept. The boundary is inclusive.
		name:   "within",
		policy: snapshot.Policy{Within: 48 * time.Hour},
		snaps: []snap{
			{id: 1, time: at(utc, "2020-01-01 11:59:59")},
			{id: 2, time: at(utc, "2020-01-01 12:00:00")},
			{id: 3, time: at(utc, "2020-01-03 12:00:00")},
		},
		want: []string{"2: within 48h0m0s", "3: within 48h0m0s"},
	}, {
		// 48 hours back from 03-30 12:00 CEST is 03-28 11:00 CET: one day
		// of the two is 23 hours long.
		name:   "within across spring forward",
		policy: snapshot.Policy{Within: 48 * time.Hour},
		snaps: []snap{
			{id: 1, time: at(berlin, "2026-03-28 09:59:00")}, // 03-28 10:59 CET
			{id: 2, time: at(berlin, "2026-03-28 10:00:00")}, // 03-28 11:00 CET
			{id: 3, time: at(berlin, "2026-03-30 10:00:00")}, // 03-30 12:00 CEST
		},
		want: []string{"2: within 48h0m0s", "3: within 48h0m0s"},
	}, {
		name:   "tags",
		policy: snapshot.Policy{Last: 1, Tags: []string{"keep", "release"}},
		snaps: []snap{
			{id: 1, time: at(utc, "2026-01-01 00:00:00"), tags: []string{"release", "keep"}},
			{id: 2, time: at(utc, "2026-01-02 00:00:00"), tags: []string{"keeper"}},
			{id: 3, time: at(utc, "2026-01-03 00:00:00"), tags: []string{"keep"}},
		},
		want: []string{"1: tag keep, tag release", "3: last 1, tag keep"},
	}, {
		// A period is used up by its newest snapshot even when another
		// rule keeps that snapshot too (restic's semantics).
		name:   "rules count independently",
		policy: snapshot.Policy{Last: 2, Daily: 2, Monthly: 3},
		snaps: []snap{
			{id: 1, time: at(utc, "2026-01-31 00:00:00")},
			{id: 2, time: at(utc, "2026-02-27 00:00:00")},
			{id: 3, time: at(utc, "2026-03-01 00:00:00")},
			{id: 4, time: at(utc, "2026-03-01 06:00:00")},
		},
		want: []string{"1: monthly 2026-01", "2: daily 2026-02-27, monthly 2026-02", "3: last 2",
			"4: last 1, daily 2026-03-01, monthly 2026-03"},
	}, {
		name:   "empty policy keeps nothing",
		policy: snapshot.Policy{},
		snaps:  []snap{{id: 1, time: at(utc, "2026-01-01 00:00:00")}},
		want:   nil,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			groups := snapshot.ApplyPolicy(summaries(tt.snaps), tt.policy)
			if got := verdicts(groups); !slices.Equal(got, tt.want) {
				t.Errorf("kept:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
			n := 0
			for _, g := range groups {
				n += len(g.Decisions)
				for i := 1; i < len(g.Decisions); i++ {
					if g.Decisions[i].Time.Before(g.Decisions[i-1].Time) {
						t.Errorf("group %s not oldest first", g.Source)
					}
				}
			}
			if n != len(tt.snaps) {
				t.Errorf("%d decisions for %d snapshots", n, len(tt.snaps))
			}
		})
	}
}

func TestPolicyEmpty(t *testing.T) {
	if !(snapshot.Policy{}).Empty() {
		t.Error("zero policy not empty")
	}
	for _, p := range []snapshot.Policy{{Last: 1}, {Yearly: 1}, {Within: time.Second}, {Tags: []string{"x"}}} {
		if p.Empty() {
			t.Errorf("%+v reported empty", p)
		}
	}
}
