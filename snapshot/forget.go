package snapshot

import (
	"context"
	"errors"
	"fmt"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
)

// EditRepo is what Forget and SetTags need of a repository: removing a
// record besides writing them.
type EditRepo interface {
	Repo
	RemoveSnapshot(ctx context.Context, id blob.ID) error
}

// ErrUnreadableRecords is wrapped by Forget's and SetTags's refusal to
// change history while some snapshot records cannot be read.
var ErrUnreadableRecords = errors.New("some snapshot records cannot be read")

// Forget removes the records of the snapshots ids (which must exist) and
// keeps the history rows right. Data stays: prune removes what no
// snapshot references any more.
//
// The history rows of a snapshot X are the paths where X differs from the
// snapshot before it of the same host and source (pred(X)); a reader finds
// X's state at a path in the newest row at or before X. Forgetting S
// changes pred of the snapshot N after it from S to P, the one before S.
// N's rows, a diff against S, lack every path where N still holds S's
// version: with S's rows gone, those versions would vanish from N too. So
// N's rows become the diff of N against P, which is what 'index rebuild'
// would write: rows(N) = diff(N, P) for every remaining N again. The diff
// skips subtrees whose tree IDs match, as a backup does.
//
// The steps are ordered so that a crash between any two leaves a history
// that reads right. Readers only take a row when its snapshot is listed,
// and collapse consecutive rows of equal content, so extra rows of N that
// repeat the state of the row before them are invisible:
//
//  1. add the rows of diff(N, P) to N's rows, keeping the old ones. With
//     S still listed, each added row repeats N's state where it equals
//     S's; where it differs, N had a row already.
//  2. remove the records. N's rows are now diff(N, S) ∪ diff(N, P):
//     every path where N differs from P has a row, and the others repeat
//     P's state there: a version, or a deletion, which readers skip when
//     no version comes before it (Versions).
//  3. delete the rows of snapshots no longer listed and N's rows outside
//     diff(N, P). Until this is done, a directory of the mount's history
//     view may list a name whose versions all went with S.
//
// Step 3's deletions are not synced one batch at a time
// (index.DB.DeleteHistoryRows), only when the index is closed: a crash
// before that may undo some of them, which leaves what a crash during
// step 3 leaves. 'index rebuild' rewrites every row, and so repairs any
// crash; so does the next forget of the same source, for the rows of
// step 3.
func Forget(ctx context.Context, repo EditRepo, ids []blob.ID) error {
	all, err := List(ctx, repo)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnreadableRecords, err)
	}
	gone := make(map[blob.ID]bool, len(ids))
	for _, id := range ids {
		gone[id] = true
	}
	listed := make(map[blob.ID]bool, len(all))
	for _, s := range all {
		listed[s.ID] = true
	}
	for _, id := range ids {
		if !listed[id] {
			return fmt.Errorf("%w: %s", ErrNoSnapshot, id)
		}
	}
	plans := planHistory(all, gone)
	for _, p := range plans {
		if err := p.addRows(ctx, repo); err != nil {
			return err
		}
	}
	for id := range gone {
		if err := repo.RemoveSnapshot(ctx, id); err != nil {
			return fmt.Errorf("remove snapshot %s: %w", id.Short(), err)
		}
	}
	keep := make(map[blob.ID]bool, len(all))
	for _, s := range all {
		keep[s.ID] = !gone[s.ID]
	}
	// Rows are checked in path order, so a directory's tree is looked up
	// again and again, then never: a few MiB of trees serve that.
	view := NewView(repo, ViewOptions{TreeCache: 2 << 20})
	for _, p := range plans {
		if err := p.trimRows(ctx, repo, view, keep); err != nil {
			return err
		}
	}
	return nil
}

// sourcePlan is what forgetting does to the history of one source whose
// snapshots lose some: the snapshots whose predecessor changes.
type sourcePlan struct {
	source string
	fixes  []predChange
}

// predChange is a remaining snapshot whose predecessor becomes pred
// (nil: it becomes the first).
type predChange struct {
	snap Snapshot
	pred *Snapshot
}

// planHistory finds, for each source that loses snapshots, the remaining
// snapshots whose predecessor changes. all is in List's order, which is
// the order RebuildHistory compares snapshots in.
func planHistory(all []Snapshot, gone map[blob.ID]bool) []*sourcePlan {
	type chain struct {
		plan     *sourcePlan
		prevGone bool      // the last snapshot seen was forgotten
		kept     *Snapshot // the last snapshot seen that stays
		touched  bool
	}
	chains := make(map[string]*chain)
	var order []*chain
	for i := range all {
		s := &all[i]
		if s.Record.Kind != KindFiles {
			continue
		}
		src := HistorySource(s.Record.Host, s.Record.Source)
		c := chains[src]
		if c == nil {
			c = &chain{plan: &sourcePlan{source: src}}
			chains[src] = c
			order = append(order, c)
		}
		if gone[s.ID] {
			c.prevGone, c.touched = true, true
			continue
		}
		if c.prevGone {
			c.plan.fixes = append(c.plan.fixes, predChange{snap: *s, pred: c.kept})
		}
		c.prevGone, c.kept = false, s
	}
	var plans []*sourcePlan
	for _, c := range order {
		if c.touched {
			plans = append(plans, c.plan)
		}
	}
	return plans
}

// addRows is step 1: the rows of each changed snapshot against its new
// predecessor, added to those it has.
func (p *sourcePlan) addRows(ctx context.Context, repo Repo) error {
	for _, f := range p.fixes {
		cur, err := LoadTree(ctx, repo, f.snap.Record.Tree)
		if err != nil {
			return fmt.Errorf("snapshot %s: %w", f.snap.ID.Short(), err)
		}
		var prev *Tree
		if f.pred != nil {
			if prev, err = LoadTree(ctx, repo, f.pred.Record.Tree); err != nil {
				return fmt.Errorf("snapshot %s: %w", f.pred.ID.Short(), err)
			}
		}
		if err := writeRows(ctx, repo, p.source, f.snap, cur, prev); err != nil {
			return fmt.Errorf("history of snapshot %s: %w", f.snap.ID.Short(), err)
		}
	}
	return nil
}

// trimRows is step 3, in one scan of the source's rows: rows of snapshots
// not kept go, and so do rows of a changed snapshot that its diff against
// the new predecessor does not have.
func (p *sourcePlan) trimRows(ctx context.Context, repo Repo, view *View, keep map[blob.ID]bool) error {
	checks := make(map[blob.ID]*rowCheck, len(p.fixes))
	for _, f := range p.fixes {
		c, err := newRowCheck(ctx, view, f.snap, f.pred)
		if err != nil {
			return err
		}
		checks[f.snap.ID] = c
	}
	return sweepRows(repo, p.source, func(r *index.HistoryRow) (bool, error) {
		if !keep[r.Snapshot] {
			return true, nil
		}
		if c := checks[r.Snapshot]; c != nil {
			need, err := c.needed(ctx, r.Path)
			return !need, err
		}
		return false, nil
	})
}
