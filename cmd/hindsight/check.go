package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/snapshot"
)

func (a *app) checkCommand() *cobra.Command {
	var readData, jsonOut bool
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check the repository for damage",
		Long: `Check that every pack the index knows is present with the right size and
a readable trailer that agrees with the index, then that every snapshot's
directory trees load and every file's content is in the index and not in a
damaged pack.

--read-data also reads and authenticates every blob of every pack: slow
(it reads the whole repository), but the only way to find bit rot.

Every problem is printed on its own line. Exit code 4 means damage was
found; 1 means the check itself could not run. Packs that no index
segment lists, left by an interrupted backup, are reported but are not
damage.`,
		Example: `  hindsight check
  hindsight check --read-data
  hindsight check --json | jq -r .message`,
		Args: cobra.NoArgs,
		RunE: a.action(func(cmd *cobra.Command, _ []string) error {
			return a.runCheck(cmd.Context(), readData, jsonOut)
		}),
	}
	cmd.Flags().BoolVar(&readData, "read-data", false, "read and authenticate every blob")
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print one JSON object per problem and line")
	return cmd
}

// checkReport collects and prints problems as they are found.
type checkReport struct {
	a       *app
	json    bool
	damage  int
	notices int
}

func (r *checkReport) add(level, area, snap, pack, blobID, p, msg, text string) {
	if level == "damage" {
		r.damage++
	} else {
		r.notices++
	}
	if r.json {
		_ = writeJSON(r.a.stdout, struct {
			Level    string    `json:"level"`
			Area     string    `json:"area"`
			Snapshot string    `json:"snapshot,omitempty"`
			Pack     string    `json:"pack,omitempty"`
			Blob     string    `json:"blob,omitempty"`
			Path     rawString `json:"path,omitempty"`
			Message  string    `json:"message"`
		}{level, area, snap, pack, blobID, rawString(p), msg})
		return
	}
	fmt.Fprintf(r.a.stdout, "%s: %s\n", level, text)
}

func (a *app) runCheck(ctx context.Context, readData, jsonOut bool) error {
	s, err := a.openRepo(ctx, openOptions{lock: sharedLock, purpose: "check"})
	if err != nil {
		return err
	}
	defer s.close()
	rep := &checkReport{a: a, json: jsonOut}
	dmg := snapshot.Damage{Packs: map[blob.ID]bool{}, Blobs: map[blob.ID]bool{}}

	var done, total atomic.Int64
	stop := a.startStatus(func(time.Duration) (string, string) {
		return fmt.Sprintf("checking packs: %d of %d", done.Load(), total.Load()), ""
	})
	progress := func(d, t int) { done.Store(int64(d)); total.Store(int64(t)) }
	err = s.repo.CheckPacks(s.ctx, readData, progress, func(p chunkstore.Problem) {
		a.classifyPackProblem(s, rep, dmg, p)
	})
	stop()
	if err != nil {
		return s.err(fmt.Errorf("checking packs: %w", err))
	}

	snaps, listErr := snapshot.List(s.ctx, s.repo)
	if listErr != nil {
		// A record that does not decrypt or decode is damage, not a
		// reason to skip checking the others.
		rep.add("damage", "snapshot", "", "", "", "", listErr.Error(), listErr.Error())
	}
	err = snapshot.Check(s.ctx, s.repo, snaps, dmg, func(p snapshot.Problem) {
		rep.add("damage", "snapshot", p.Snapshot.String(), "", "", p.Path, p.Message, quote(p.String()))
	})
	if err != nil {
		return s.err(fmt.Errorf("checking snapshots: %w", err))
	}
	if !a.quiet && !jsonOut {
		fmt.Fprintf(a.stdout, "checked %d snapshots: %d problems, %d notices\n", len(snaps), rep.damage, rep.notices)
	}
	if rep.damage > 0 {
		return fmt.Errorf("%w: %d problems", errDamage, rep.damage)
	}
	return nil
}

// classifyPackProblem tells damage from leftovers. A pack the index does
// not know was written by a backup that never finished: nothing refers to
// it, so it harms nothing (prune removes it). Every other pack or blob
// problem is recorded so that snapshot.Check can name the files it hits.
func (a *app) classifyPackProblem(s *session, rep *checkReport, dmg snapshot.Damage, p chunkstore.Problem) {
	var pack, blobID string
	if !p.Pack.IsZero() {
		pack = p.Pack.String()
	}
	if !p.Blob.IsZero() {
		blobID = p.Blob.String()
	}
	switch {
	case p.Pack.IsZero():
		rep.add("notice", "pack", "", "", "", "", p.Message, p.String())
	case !p.Blob.IsZero():
		dmg.Blobs[p.Blob] = true
		rep.add("damage", "pack", "", pack, blobID, "", p.Message, p.String())
	case p.Harmless:
		rep.add("notice", "pack", "", pack, "", "", p.Message, p.String())
	default:
		dmg.Packs[p.Pack] = true
		rep.add("damage", "pack", "", pack, "", "", p.Message, p.String())
	}
}
