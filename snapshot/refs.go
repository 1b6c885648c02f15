package snapshot

import (
	"context"

	"golang.org/x/sync/errgroup"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/chunkstore/blob"
)

// Refs marks every blob a snapshot record references, its trees and the
// data of its files, for chunkstore's Prune. A subtree marked already, by
// this snapshot or another, is not walked again: unchanged directories
// cost nothing after the first snapshot that has them. At most jobs trees
// are loaded at once.
func Refs(ctx context.Context, repo Repo, record []byte, m *chunkstore.Marker, jobs int) error {
	rec, err := DecodeRecord(record)
	if err != nil {
		return err
	}
	first, err := m.Tree(rec.Tree)
	if err != nil || !first {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(max(jobs, 1))
	w := &refWalker{repo: repo, m: m, g: g}
	g.Go(func() error { return w.tree(ctx, rec.Tree) })
	return g.Wait()
}

type refWalker struct {
	repo Repo
	m    *chunkstore.Marker
	g    *errgroup.Group
}

// tree marks the data of one directory's files and walks the subtrees
// not marked yet: in another goroutine while the group has room, else in
// this one, so that the goroutines, and the trees decoded at once, stay
// bounded.
func (w *refWalker) tree(ctx context.Context, id blob.ID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t, err := LoadTree(ctx, w.repo, id)
	if err != nil {
		return err
	}
	var data []blob.ID
	for i := range t.Nodes {
		n := &t.Nodes[i]
		for _, c := range n.Content {
			if !c.IsHole() {
				data = append(data, c.ID)
			}
		}
	}
	if err := w.m.Data(data); err != nil {
		return err
	}
	for i := range t.Nodes {
		n := &t.Nodes[i]
		if n.Type != TypeDir {
			continue
		}
		first, err := w.m.Tree(n.Subtree)
		if err != nil {
			return err
		}
		if !first {
			continue
		}
		sub := n.Subtree
		if !w.g.TryGo(func() error { return w.tree(ctx, sub) }) {
			if err := w.tree(ctx, sub); err != nil {
				return err
			}
		}
	}
	return nil
}
