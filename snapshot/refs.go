package snapshot

import (
	"context"
	"fmt"

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

// treeBuffers hold tree blobs while they are read for marking: every
// snapshot's walk loads most of its directories, and a buffer each would
// be most of what prune allocates.
var treeBuffers = chunkstore.NewBufferPool(1 << 20)

// markBatch is how many data blob IDs tree collects before it marks them.
const markBatch = 256

// tree marks the data of one directory's files and walks the subtrees
// not marked yet: in another goroutine while the group has room, else in
// this one, so that the goroutines, and the trees decoded at once, stay
// bounded.
func (w *refWalker) tree(ctx context.Context, id blob.ID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	subtrees, err := w.markData(ctx, id)
	if err != nil {
		return err
	}
	for _, sub := range subtrees {
		first, err := w.m.Tree(sub)
		if err != nil {
			return err
		}
		if !first {
			continue
		}
		if !w.g.TryGo(func() error { return w.tree(ctx, sub) }) {
			if err := w.tree(ctx, sub); err != nil {
				return err
			}
		}
	}
	return nil
}

// markData marks the data of the files in tree id and returns its
// subdirectories' trees. The tree's buffer is returned before the caller
// descends, so that a deep walk holds one tree's IDs per level, not its
// blob.
func (w *refWalker) markData(ctx context.Context, id blob.ID) ([]blob.ID, error) {
	b, err := w.repo.LoadBlob(ctx, blob.Tree, id, treeBuffers.Get(0))
	if err != nil {
		return nil, err
	}
	defer treeBuffers.Put(b)
	var subtrees []blob.ID
	var data [markBatch]blob.ID
	n := 0
	err = eachNode(b, func(node *Node) error {
		if node.Type == TypeDir {
			subtrees = append(subtrees, node.Subtree)
		}
		for _, c := range node.Content {
			if c.IsHole() {
				continue
			}
			if n == len(data) {
				if err := w.m.Data(data[:]); err != nil {
					return err
				}
				n = 0
			}
			data[n] = c.ID
			n++
		}
		return nil
	})
	if err == nil {
		err = w.m.Data(data[:n])
	}
	if err != nil {
		return nil, fmt.Errorf("tree %s: %w", id.Short(), err)
	}
	return subtrees, nil
}
