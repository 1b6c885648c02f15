package snapshot

import (
	"context"
	"slices"
	"sort"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
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
	sources, bySource := historySources(before)
	sort.Strings(sources)
	for _, k := range sources {
		touched := slices.ContainsFunc(bySource[k], func(s Snapshot) bool { _, ok := repl[s.ID]; return ok })
		if !touched {
			continue
		}
		if err := fixSourceHistory(ctx, repo, k, bySource[k], repl); err != nil {
			return err
		}
	}
	return nil
}

// fixSourceHistory walks one source's snapshots, oldest first, as they
// were before the repair: the rows of replaced and removed snapshots go,
// in one scan, and so do those of the snapshot after each, whose rows are
// then written against its new predecessor, as RebuildHistory would. A
// crash in between leaves rows missing, which 'repair index' writes.
func fixSourceHistory(ctx context.Context, repo Repo, source string, before []Snapshot, repl map[blob.ID]*Snapshot) error {
	type rows struct {
		cur  Snapshot
		prev *Snapshot
	}
	var todo []rows
	drop := make(map[blob.ID]bool)
	var prev *Snapshot // the snapshot before, as it is after the repair
	prevChanged := false
	for _, s := range before {
		n, changed := repl[s.ID]
		if changed || prevChanged {
			drop[s.ID] = true
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
			todo = append(todo, rows{cur, prev})
		}
		prev, prevChanged = &cur, changed
	}
	if err := sweepRows(repo, source, func(r *index.HistoryRow) (bool, error) { return drop[r.Snapshot], nil }); err != nil {
		return err
	}
	for _, r := range todo {
		cur, err := LoadTree(ctx, repo, r.cur.Record.Tree)
		if err != nil {
			return err
		}
		var prev *Tree
		if r.prev != nil {
			if prev, err = LoadTree(ctx, repo, r.prev.Record.Tree); err != nil {
				return err
			}
		}
		if err := writeRows(ctx, repo, source, r.cur, cur, prev); err != nil {
			return err
		}
	}
	return nil
}
