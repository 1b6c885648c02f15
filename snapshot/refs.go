package snapshot

import (
	"context"
	"fmt"
	"sync"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/chunkstore/blob"
)

// TreeLoader loads trees many at a time; *chunkstore.Repository
// implements it (see its LoadBlobs).
type TreeLoader interface {
	LoadBlobs(ctx context.Context, t blob.Type, ids []blob.ID, jobs int, fn func(id blob.ID, plain []byte) error) error
}

// Refs marks every blob a snapshot record references, its trees and the
// data of its files, for chunkstore's Prune. A subtree marked already, by
// this snapshot or another, is not walked again: unchanged directories
// cost nothing after the first snapshot that has them. At most jobs trees
// are loaded at once.
func Refs(ctx context.Context, repo TreeLoader, record []byte, m *chunkstore.Marker, jobs int) error {
	rec, err := DecodeRecord(record)
	if err != nil {
		return err
	}
	first, err := m.Tree(rec.Tree)
	if err != nil || !first {
		return err
	}
	w := &refWalker{repo: repo, m: m, jobs: jobs}
	return w.walk(ctx, []blob.ID{rec.Tree})
}

type refWalker struct {
	repo TreeLoader
	m    *chunkstore.Marker
	jobs int
}

// walkBatch bounds the trees one LoadBlobs call loads, and so the walk's
// memory: the new subtrees of walkBatch trees per level it descends, 32
// bytes each. Larger batches saved no measurable CPU on the benchmark.
const walkBatch = 256

// markBatch is how many data blob IDs markData collects before it marks
// them.
const markBatch = 256

// walk marks the data of the trees ids, which the marker reported new,
// and walks their subtrees not marked yet: depth first, a batch of trees
// at a time, so that a batch's trees are looked up in one index call and
// read, where a backup wrote them side by side, with one load per pack,
// while memory holds a batch's new subtrees per level of the walk.
func (w *refWalker) walk(ctx context.Context, ids []blob.ID) error {
	for len(ids) > 0 {
		batch := ids[:min(len(ids), walkBatch)]
		ids = ids[len(batch):]
		var mu sync.Mutex
		var next []blob.ID
		err := w.repo.LoadBlobs(ctx, blob.Tree, batch, w.jobs, func(id blob.ID, b []byte) error {
			subtrees, err := w.markData(b)
			if err != nil {
				return fmt.Errorf("tree %s: %w", id.Short(), err)
			}
			mu.Lock()
			next = append(next, subtrees...)
			mu.Unlock()
			return nil
		})
		if err == nil {
			err = w.walk(ctx, next)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// markData marks the data of the files in tree b and returns its
// subdirectories' trees that were not marked yet, marking them.
func (w *refWalker) markData(b []byte) ([]blob.ID, error) {
	var subtrees []blob.ID
	var data [markBatch]blob.ID
	n := 0
	err := eachNode(b, func(node *Node) error {
		if node.Type == TypeDir {
			first, err := w.m.Tree(node.Subtree)
			if err != nil {
				return err
			}
			if first {
				subtrees = append(subtrees, node.Subtree)
			}
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
	return subtrees, err
}
