package snapshot

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
)

// Policy is a retention policy: which snapshots forget keeps. A snapshot
// is kept when any rule keeps it; a policy without rules keeps nothing,
// and callers refuse it rather than forget everything.
//
// Each count N keeps the newest snapshot of each of the N newest calendar
// periods (hours, days, ISO weeks, months, years) that hold a snapshot;
// periods without one are not counted, so a week without backups costs no
// daily slot. Periods are read in the time zone the snapshot's time was
// recorded in, the backed-up host's local time: a day is a calendar date
// there, 23 or 25 hours long across a daylight-saving change, and the
// hour repeated when clocks go back is one hourly period. Last keeps the
// N newest snapshots. Within keeps every snapshot no older than the
// group's newest snapshot minus Within: measured from the newest snapshot
// rather than from now, so that a host that stopped backing up does not
// see its snapshots expire one by one. Tags keeps every snapshot that
// carries any of them.
type Policy struct {
	Last, Hourly, Daily, Weekly, Monthly, Yearly int
	Within                                       time.Duration
	Tags                                         []string
}

// Empty reports whether the policy has no rule at all.
func (p Policy) Empty() bool {
	return p.Last <= 0 && p.Hourly <= 0 && p.Daily <= 0 && p.Weekly <= 0 && p.Monthly <= 0 &&
		p.Yearly <= 0 && p.Within <= 0 && len(p.Tags) == 0
}

// Summary is what a policy looks at of a snapshot.
type Summary struct {
	ID           blob.ID
	Time         time.Time
	Host, Source string
	Tags         []string
}

// SummaryOf returns the summary of a listed snapshot.
func SummaryOf(s Snapshot) Summary {
	r := s.Record
	return Summary{ID: s.ID, Time: r.Time, Host: r.Host, Source: r.Source, Tags: r.Tags}
}

// Decision is the policy's verdict on one snapshot.
type Decision struct {
	Summary
	Keep bool
	// Reasons names every rule that keeps the snapshot, with the period
	// it stands for: "last 1", "daily 2026-03-29", "weekly 2026-W13",
	// "within 48h0m0s", "tag keep".
	Reasons []string
}

// Group is the decisions on one host's snapshots of one source, oldest
// first. Rules apply to each group on its own: a source backed up daily
// never crowds out another backed up weekly.
type Group struct {
	Host, Source string
	Decisions    []Decision
}

// ApplyPolicy decides which snapshots p keeps. It reads no clock: the
// result depends on the snapshots alone. Two snapshots of the same
// instant are ordered by ID, the greater counting as the newer, as List
// orders them.
func ApplyPolicy(snaps []Summary, p Policy) []Group {
	var groups []Group
	idx := make(map[[2]string]int)
	for _, s := range snaps {
		k := [2]string{s.Host, s.Source}
		i, ok := idx[k]
		if !ok {
			i = len(groups)
			idx[k] = i
			groups = append(groups, Group{Host: s.Host, Source: s.Source})
		}
		groups[i].Decisions = append(groups[i].Decisions, Decision{Summary: s})
	}
	for i := range groups {
		p.apply(groups[i].Decisions)
	}
	slices.SortFunc(groups, func(a, b Group) int {
		return strings.Compare(a.Host+"\x00"+a.Source, b.Host+"\x00"+b.Source)
	})
	return groups
}

// bucketRule is one counting rule: how many periods it keeps and how a
// snapshot's period is named.
type bucketRule struct {
	name   string
	count  int
	bucket func(s *Summary) string
}

func (p Policy) rules() []bucketRule {
	return []bucketRule{
		{"last", p.Last, nil},
		{"hourly", p.Hourly, func(s *Summary) string { return s.Time.Format("2006-01-02 15h") }},
		{"daily", p.Daily, func(s *Summary) string { return s.Time.Format("2006-01-02") }},
		{"weekly", p.Weekly, func(s *Summary) string {
			y, w := s.Time.ISOWeek()
			return fmt.Sprintf("%04d-W%02d", y, w)
		}},
		{"monthly", p.Monthly, func(s *Summary) string { return s.Time.Format("2006-01") }},
		{"yearly", p.Yearly, func(s *Summary) string { return s.Time.Format("2006") }},
	}
}

// apply decides on one group, sorting it oldest first.
func (p Policy) apply(ds []Decision) {
	slices.SortFunc(ds, func(a, b Decision) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return strings.Compare(a.ID.String(), b.ID.String())
	})
	if len(ds) == 0 {
		return
	}
	rules := p.rules()
	last := make([]string, len(rules))
	cutoff := ds[len(ds)-1].Time.Add(-p.Within)
	for i := len(ds) - 1; i >= 0; i-- { // newest first
		d := &ds[i]
		for r := range rules {
			rule := &rules[r]
			if rule.count <= 0 {
				continue
			}
			if rule.bucket == nil {
				rule.count--
				d.keep(fmt.Sprintf("last %d", len(ds)-i))
				continue
			}
			// A period counts once, for its newest snapshot, whether or
			// not another rule keeps that snapshot too.
			if b := rule.bucket(&d.Summary); b != last[r] {
				last[r] = b
				rule.count--
				d.keep(rule.name + " " + b)
			}
		}
		if p.Within > 0 && !d.Time.Before(cutoff) {
			d.keep("within " + p.Within.String())
		}
		for _, t := range p.Tags {
			if slices.Contains(d.Tags, t) {
				d.keep("tag " + t)
			}
		}
	}
}

func (d *Decision) keep(reason string) {
	d.Keep = true
	d.Reasons = append(d.Reasons, reason)
}
