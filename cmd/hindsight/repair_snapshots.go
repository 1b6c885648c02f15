package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/remote"
	"github.com/hindsight-backup/hindsight/snapshot"
)

type repairSnapshotsOptions struct {
	from                          string
	readData, dryRun, force, json bool
}

func (a *app) repairSnapshotsCommand() *cobra.Command {
	var o repairSnapshotsOptions
	cmd := &cobra.Command{
		Use:   "snapshots",
		Short: "Make every snapshot readable, giving up what is lost",
		Long: `Make every snapshot readable again.

A snapshot record that does not open is written again from the copy on
--from REMOTE, else from the copy this machine's index cached; with
neither, it is removed.

Then the packs are checked as 'hindsight check' does (with --read-data,
reading every pack whole), and every snapshot that uses lost data is
recorded anew: a new snapshot of the same time, host, source and tags,
tagged "repaired", in which each file's lost chunks are zeros (the rest of
the file keeps its place and bytes) and each unreadable directory is
empty, all listed as incomplete with the reason. The next backup reads
those files again. The old record is removed once the new one is
durable, and the file history of its source is fixed. A snapshot whose
top directory is lost is removed.

Lost data that a remote holds is not given up: run 'hindsight repair
packs' first (--force gives it up all the same). --dry-run only reports.
Takes an exclusive lock.`,
		Example: `  hindsight repair snapshots --dry-run
  hindsight repair snapshots --from offsite`,
		Args: cobra.NoArgs,
		RunE: a.action(func(cmd *cobra.Command, _ []string) error {
			return a.runRepairSnapshots(cmd.Context(), o)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&o.from, "from", "", "fetch unreadable snapshot records from `REMOTE`")
	f.BoolVar(&o.readData, "read-data", false, "read every pack whole to find damaged blobs")
	f.BoolVar(&o.dryRun, "dry-run", false, "report what would be done; write nothing")
	f.BoolVar(&o.force, "force", false, "give up lost data even where a remote holds it")
	f.BoolVar(&o.json, "json", false, "print one JSON object per snapshot repaired")
	return cmd
}

func (a *app) runRepairSnapshots(ctx context.Context, o repairSnapshotsOptions) error {
	s, err := a.openRepo(ctx, openOptions{lock: exclusiveLock, purpose: "repair snapshots"})
	if err != nil {
		return err
	}
	defer s.close()
	dmg, err := a.lostData(s, o)
	if err != nil {
		return s.err(err)
	}
	ro := snapshot.RepairOptions{Damage: dmg, DryRun: o.dryRun}
	if o.from != "" {
		url, err := s.repo.Remote(s.ctx, o.from)
		if err != nil {
			return usageError{err}
		}
		src, err := a.remoteBackend(s.ctx, url, remote.WrapOptions{})
		if err != nil {
			return err
		}
		defer src.Close()
		ro.FetchFrom = "remote " + o.from
		ro.Fetch = func(ctx context.Context, id blob.ID) ([]byte, error) { return s.repo.FetchSnapshot(ctx, src, id) }
		if o.dryRun {
			ro.Fetch = func(ctx context.Context, id blob.ID) ([]byte, error) { return s.repo.LoadSnapshotFrom(ctx, src, id) }
		}
	}
	var done, total atomic.Int64
	ro.Progress = func(d, t int) { done.Store(int64(d)); total.Store(int64(t)) }
	stop, above := a.startStatusAbove(func(time.Duration) (string, string) {
		return fmt.Sprintf("walking snapshots: %d of %d", done.Load(), total.Load()), ""
	})
	defer stop()
	counts := map[snapshot.RepairAction]int{}
	ro.Report = func(r snapshot.Repair) {
		counts[r.Action]++
		above(func() { a.printRepair(r, o) })
	}
	err = snapshot.RepairSnapshots(s.ctx, s.repo, ro)
	stop()
	if err != nil {
		return s.err(err)
	}
	if !a.quiet && !o.json {
		would := ""
		if o.dryRun {
			would = "would be "
		}
		fmt.Fprintf(a.stdout, "snapshots %srestored: %d, rewritten: %d, removed: %d\n", would,
			counts[snapshot.RepairRestored], counts[snapshot.RepairRewritten], counts[snapshot.RepairRemoved])
	}
	return nil
}

// lostData checks the packs as check does and returns what is lost. It
// refuses while the index disagrees with a pack, which repair index
// fixes, and while a remote holds what would be given up.
func (a *app) lostData(s *session, o repairSnapshotsOptions) (snapshot.Damage, error) {
	dmg := snapshot.Damage{Packs: map[blob.ID]bool{}, Blobs: map[blob.ID]bool{}}
	var done, total atomic.Int64
	stop := a.startStatus(func(time.Duration) (string, string) {
		return fmt.Sprintf("checking packs: %d of %d", done.Load(), total.Load()), ""
	})
	defer stop()
	co := chunkstore.CheckOptions{Progress: func(p chunkstore.CheckProgress) {
		done.Store(int64(p.Packs))
		total.Store(int64(p.PacksTotal))
	}}
	if o.readData {
		co.ReadData = chunkstore.Subset{All: true}
	}
	var inconsistent, held []string
	err := s.repo.CheckPacks(s.ctx, co, func(p chunkstore.Problem) {
		switch {
		case p.Harmless:
		case p.IndexOnly:
			inconsistent = append(inconsistent, p.String())
		case len(p.Remotes) > 0 && !o.force:
			held = append(held, fmt.Sprintf("pack %s (on %s)", p.Pack, strings.Join(p.Remotes, ", ")))
		case !p.Blob.IsZero():
			dmg.Blobs[p.Blob] = true
		default:
			dmg.Packs[p.Pack] = true
		}
	})
	switch {
	case err != nil:
		return dmg, fmt.Errorf("checking packs: %w", err)
	case len(inconsistent) > 0:
		return dmg, fmt.Errorf("the index disagrees with the packs (%s): run 'hindsight repair index' first", inconsistent[0])
	case len(held) > 0:
		slices.Sort(held)
		held = slices.Compact(held)
		return dmg, fmt.Errorf("%d damaged packs are held by a remote, e.g. %s: run 'hindsight repair packs' first, or give --force to give them up", len(held), held[0])
	}
	return dmg, nil
}

func (a *app) printRepair(r snapshot.Repair, o repairSnapshotsOptions) {
	lost := make([]string, len(r.Lost))
	for i, l := range r.Lost {
		lost[i] = l.String()
	}
	if o.json {
		var newID string
		if !r.New.IsZero() && !o.dryRun {
			newID = r.New.String()
		}
		_ = writeJSON(a.stdout, struct {
			Snapshot string   `json:"snapshot"`
			Action   string   `json:"action"`
			DryRun   bool     `json:"dry_run"`
			New      string   `json:"new,omitempty"`
			Lost     []string `json:"lost,omitempty"`
			Message  string   `json:"message,omitempty"`
		}{r.Snapshot.String(), string(r.Action), o.dryRun, newID, lost, r.Message})
		return
	}
	verb := string(r.Action)
	if o.dryRun {
		verb = "would be " + verb
	}
	switch {
	case r.Action == snapshot.RepairRewritten && !o.dryRun:
		fmt.Fprintf(a.stdout, "snapshot %s: %s as %s\n", r.Snapshot.Short(), verb, r.New.Short())
	case r.Action == snapshot.RepairRewritten:
		fmt.Fprintf(a.stdout, "snapshot %s: %s\n", r.Snapshot.Short(), verb)
	default:
		fmt.Fprintf(a.stdout, "snapshot %s: %s: %s\n", r.Snapshot.Short(), verb, r.Message)
	}
	printCapped(a.stdout, "  lost", lost, 0, 50)
}
