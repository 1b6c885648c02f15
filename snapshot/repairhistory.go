package snapshot

import (
	"context"
	"maps"
	"slices"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
)

// fixHistory rewrites the history rows a repair made wrong. A snapshot's
// rows are its differences from the one before it of the same source, so
// they change for a rewritten snapshot and for the snapshot after each
// rewritten or removed one; the rows of the old records go.
func fixHistory(ctx context.Context, repo Repo, before []Snapshot, changes []change) error {
	repl := make(map[blob.ID]*Snapshot, len(changes))
	for _, c := range changes {
		repl[c.old.ID] = c.new
	}
	bySource := make(map[string][]Snapshot)
	touched := make(map[string]bool)
	for _, s := range before {
		if s.Record.Kind != KindFiles {
			continue
		}
		k := HistorySource(s.Record.Host, s.Record.Source)
		bySource[k] = append(bySource[k], s)
		if _, ok := repl[s.ID]; ok {
			touched[k] = true
		}
	}
	for _, k := range slices.Sorted(maps.Keys(touched)) {
		if err := fixSourceHistory(ctx, repo, k, bySource[k], repl); err != nil {
			return err
		}
	}
	return nil
}

// fixSourceHistory walks one source's snapshots, oldest first, as they
// were before the repair.
func fixSourceHistory(ctx context.Context, repo Repo, source string, before []Snapshot, repl map[blob.ID]*Snapshot) error {
	var prev *Snapshot // the snapshot before, as it is after the repair
	prevChanged := false
	for _, s := range before {
		n, changed := repl[s.ID]
		if changed || prevChanged {
			if err := repo.Index().DeleteHistory(source, s.ID); err != nil {
				return err
			}
		}
		if changed && n == nil {
			prevChanged = true
			continue
		}
		cur := s
		if changed {
			cur = *n
		}
		if changed || prevChanged {
			if err := writeRows(ctx, repo, source, cur, prev); err != nil {
				return err
			}
		}
		prev, prevChanged = &cur, changed
	}
	return nil
}

// writeRows writes the rows of cur relative to prev (nil for the first
// snapshot of its source), as RebuildHistory does.
func writeRows(ctx context.Context, repo Repo, source string, cur Snapshot, prev *Snapshot) error {
	curTree, err := LoadTree(ctx, repo, cur.Record.Tree)
	if err != nil {
		return err
	}
	var prevTree *Tree
	if prev != nil {
		if prevTree, err = LoadTree(ctx, repo, prev.Record.Tree); err != nil {
			return err
		}
	}
	leftOut, err := leftOutBy(cur.Record)
	if err != nil {
		return err
	}
	h := newHistoryWriter(repo, source, cur.Record.Time.UnixNano(), cur.ID)
	if err := rebuildRows(ctx, h, "", curTree, prevTree, true, leftOut); err != nil {
		h.abort()
		return err
	}
	return h.commit()
}
