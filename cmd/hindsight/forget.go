package main

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/snapshot"
)

type forgetFlags struct {
	policy       snapshot.Policy
	host, source string
	dryRun, json bool
}

func (a *app) forgetCommand() *cobra.Command {
	var fl forgetFlags
	cmd := &cobra.Command{
		Use:   "forget [SNAP...]",
		Short: "Remove snapshots, by ID or by a retention policy",
		Long: `Remove the snapshots named, or those a retention policy does not keep.
Only the snapshot records go: the data they alone referenced stays in the
repository until 'hindsight prune' removes it. Each file's history loses
the versions that only forgotten snapshots held, and keeps every version a
remaining snapshot holds.

The policy applies to each host's snapshots of each source on its own
(--host and --source narrow which of these groups are looked at). A
snapshot is kept when any rule keeps it:

  --keep-last N       the N newest snapshots
  --keep-hourly N     the newest snapshot of each of the N newest hours,
  --keep-daily N        days, ISO weeks (Monday to Sunday), months and years
  --keep-weekly N       that hold a snapshot; periods without one are not
  --keep-monthly N      counted
  --keep-yearly N
  --keep-within DUR   every snapshot at most DUR older than the newest
                      snapshot of the group (not than now: a host that
                      stopped backing up keeps its last snapshots)
  --keep-tag TAG      every snapshot tagged TAG (repeatable: any of them)

A period is a calendar hour, day, week, month or year in the time zone the
snapshot was taken in (its host's local time): a day is a date there,
whatever its length across a daylight-saving change, and the hour that
happens twice when clocks go back is one hour. Each rule counts a period
once, for its newest snapshot, even when another rule keeps that snapshot
too; two snapshots of the same instant count the greater ID as the newer.
DUR is a duration such as 48h, 90m, 7d or 2w (d is 24 hours, w 7 days).

The table says for each snapshot whether it is kept, and by which rules.
With --dry-run nothing is removed. Either snapshots or a policy must be
given, not both, and not neither (exit code 2).

Runs beside commands that only read (mount, restore, ls, find, ...): a
mount drops forgotten snapshots at its next refresh. Commands that write
(backup, prune, another forget or tag) must not run meanwhile: forget
fails with exit code 12 while one does.`,
		Example: `  hindsight forget 3fa8c1d2 77e0b4a9
  hindsight forget --keep-daily 7 --keep-weekly 4 --keep-monthly 12 --dry-run
  hindsight forget --keep-last 3 --keep-within 48h --keep-tag keep --source /home
  hindsight forget --keep-yearly 3 --json | jq -r 'select(.keep == false) | .id'`,
		RunE: a.action(func(cmd *cobra.Command, args []string) error {
			if err := fl.check(args); err != nil {
				return err
			}
			return a.runForget(cmd.Context(), args, fl)
		}),
	}
	f := cmd.Flags()
	p := &fl.policy
	f.IntVar(&p.Last, "keep-last", 0, "keep the `N` newest snapshots")
	f.IntVar(&p.Hourly, "keep-hourly", 0, "keep the newest snapshot of each of the last `N` hours with one")
	f.IntVar(&p.Daily, "keep-daily", 0, "keep the newest snapshot of each of the last `N` days with one")
	f.IntVar(&p.Weekly, "keep-weekly", 0, "keep the newest snapshot of each of the last `N` weeks with one")
	f.IntVar(&p.Monthly, "keep-monthly", 0, "keep the newest snapshot of each of the last `N` months with one")
	f.IntVar(&p.Yearly, "keep-yearly", 0, "keep the newest snapshot of each of the last `N` years with one")
	f.Var((*withinValue)(&p.Within), "keep-within", "keep snapshots at most `DUR` older than the newest (48h, 7d, 2w)")
	f.StringArrayVar(&p.Tags, "keep-tag", nil, "keep snapshots tagged `TAG` (repeatable)")
	f.StringVar(&fl.host, "host", "", "apply the policy only to snapshots of `HOST`")
	f.StringVar(&fl.source, "source", "", "apply the policy only to snapshots of `SOURCE`")
	f.BoolVarP(&fl.dryRun, "dry-run", "n", false, "print what would be kept and removed; remove nothing")
	f.BoolVar(&fl.json, "json", false, "print one JSON object per snapshot and line")
	return cmd
}

func (fl *forgetFlags) check(args []string) error {
	p := fl.policy
	for _, n := range []int{p.Last, p.Hourly, p.Daily, p.Weekly, p.Monthly, p.Yearly} {
		if n < 0 {
			return usagef("--keep-* counts cannot be negative")
		}
	}
	switch {
	case len(args) == 0 && p.Empty():
		return usagef("nothing to forget: name snapshots, or give a policy (--keep-last, --keep-daily, ...)")
	case len(args) > 0 && !p.Empty():
		return usagef("give snapshots or a policy, not both")
	case len(args) > 0 && (fl.host != "" || fl.source != ""):
		return usagef("--host and --source narrow a policy; they do not apply to named snapshots")
	}
	return nil
}

func (a *app) runForget(ctx context.Context, args []string, fl forgetFlags) error {
	a.lowerMemoryLimit()
	// Forget deletes the rows of the snapshots it removes and reads them
	// no more. Compacting those deletions away as they came took a third
	// of its CPU on the benchmark (30 snapshots of 100,000 files, 15
	// forgotten: 7 to 9 compactions, 78 to 88 MB of tables written with
	// the flushes for 31 MB of rows). Left alone, they go with the next
	// compaction of the tables they were flushed to, which folds them all
	// into the level below at once: prune's, right after, wrote 26 MB.
	opts := chunkstore.MaintenanceIndexOptions
	opts.KeepTombstones = true
	s, err := a.openRepo(ctx, openOptions{lock: recordsLock, purpose: "forget", index: opts})
	if err != nil {
		return err
	}
	defer s.close()
	var groups []snapshot.Group
	if len(args) > 0 {
		groups, err = s.namedForForget(args)
	} else {
		groups, err = s.policyGroups(fl)
	}
	if err != nil {
		return err
	}
	var gone []blob.ID
	for _, g := range groups {
		for _, d := range g.Decisions {
			if !d.Keep {
				gone = append(gone, d.ID)
			}
		}
	}
	if err := a.printForget(groups, fl); err != nil {
		return err
	}
	if fl.dryRun || len(gone) == 0 {
		return nil
	}
	if err := snapshot.Forget(s.ctx, s.repo, gone); err != nil {
		return s.err(err)
	}
	if !a.quiet && !fl.json {
		fmt.Fprintf(a.stdout, "removed %d %s; 'hindsight prune' frees the data only they referenced\n", len(gone), plural(len(gone), "snapshot"))
	}
	return nil
}

// namedForForget resolves the snapshots named, each once, as decisions to
// remove them.
func (s *session) namedForForget(args []string) ([]snapshot.Group, error) {
	seen := make(map[blob.ID]bool)
	var sums []snapshot.Summary
	for _, ref := range args {
		sn, err := s.resolve(ref)
		if err != nil {
			return nil, err
		}
		if !seen[sn.ID] {
			seen[sn.ID] = true
			sums = append(sums, snapshot.SummaryOf(sn))
		}
	}
	return snapshot.ApplyPolicy(sums, snapshot.Policy{}), nil
}

func (s *session) policyGroups(fl forgetFlags) ([]snapshot.Group, error) {
	snaps, err := snapshot.List(s.ctx, s.repo)
	if err != nil {
		// A record that cannot be read could be one the policy would keep.
		return nil, s.err(fmt.Errorf("%w: %w", snapshot.ErrUnreadableRecords, err))
	}
	var sums []snapshot.Summary
	for _, sn := range snaps {
		if (fl.host == "" || fl.host == sn.Record.Host) && (fl.source == "" || fl.source == sn.Record.Source) {
			sums = append(sums, snapshot.SummaryOf(sn))
		}
	}
	return snapshot.ApplyPolicy(sums, fl.policy), nil
}

type forgetJSON struct {
	ID      string      `json:"id"`
	Time    time.Time   `json:"time"`
	Host    rawString   `json:"host"`
	Source  rawString   `json:"source"`
	Tags    []rawString `json:"tags"`
	Keep    bool        `json:"keep"`
	Reasons []string    `json:"reasons"`
	DryRun  bool        `json:"dry_run"`
}

func (a *app) printForget(groups []snapshot.Group, fl forgetFlags) error {
	if fl.json {
		for _, g := range groups {
			for _, d := range g.Decisions {
				j := forgetJSON{ID: d.ID.String(), Time: d.Time, Host: rawString(d.Host), Source: rawString(d.Source),
					Tags: rawStrings(d.Tags), Keep: d.Keep, Reasons: append([]string{}, d.Reasons...), DryRun: fl.dryRun}
				if err := writeJSON(a.stdout, j); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if a.quiet {
		return nil
	}
	kept, removed := 0, 0
	for i, g := range groups {
		if i > 0 {
			fmt.Fprintln(a.stdout)
		}
		fmt.Fprintf(a.stdout, "host %s, source %s:\n", quote(g.Host), quote(g.Source))
		tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tTime\tTags\tAction\tReasons")
		for _, d := range g.Decisions {
			action := "remove"
			if d.Keep {
				action = "keep"
				kept++
			} else {
				removed++
			}
			tags := make([]string, len(d.Tags))
			for i, t := range d.Tags {
				tags[i] = quote(t)
			}
			reasons := make([]string, len(d.Reasons))
			for i, r := range d.Reasons {
				reasons[i] = quote(r)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", d.ID.Short(), d.Time.Local().Format(timeLayout),
				strings.Join(tags, ","), action, strings.Join(reasons, ", "))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	verb := "remove"
	if fl.dryRun {
		verb = "would remove"
	}
	_, err := fmt.Fprintf(a.stdout, "\nkeep %d, %s %d %s\n", kept, verb, removed, plural(removed, "snapshot"))
	return err
}

func plural(n int, noun string) string {
	if n == 1 {
		return noun
	}
	return noun + "s"
}

// withinValue is --keep-within: a Go duration that may also count days
// (d, 24 hours) and weeks (w, 7 days).
type withinValue time.Duration

var dayUnits = regexp.MustCompile(`([0-9]*\.?[0-9]+)([dw])`)

func (v *withinValue) Set(s string) error {
	if s == "" { // the default, as a config file may spell it out
		*v = 0
		return nil
	}
	var bad error
	expanded := dayUnits.ReplaceAllStringFunc(s, func(m string) string {
		sub := dayUnits.FindStringSubmatch(m)
		n, err := strconv.ParseFloat(sub[1], 64)
		if err != nil {
			bad = err
		}
		hours := 24 * n
		if sub[2] == "w" {
			hours *= 7
		}
		return strconv.FormatFloat(hours, 'f', -1, 64) + "h"
	})
	d, err := time.ParseDuration(expanded)
	if err == nil {
		err = bad
	}
	if err != nil || d <= 0 {
		return fmt.Errorf("%q is not a positive duration like 48h, 7d or 2w", s)
	}
	*v = withinValue(d)
	return nil
}

func (v *withinValue) String() string {
	if *v == 0 {
		return ""
	}
	return time.Duration(*v).String()
}

func (v *withinValue) Type() string { return "duration" }
