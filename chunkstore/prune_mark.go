package chunkstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
)

// Marker records the blobs snapshots reference, for Prune. The snapshot
// package walks the trees (this package does not read them) and reports
// what it finds. Its methods are safe for concurrent use.
type Marker struct {
	s *index.Scratch
}

// Tree marks a tree blob and reports whether it was unmarked before: only
// then need its entries be walked.
func (m *Marker) Tree(id blob.ID) (bool, error) { return m.s.MarkFirst(blob.Tree, id) }

// Data marks data blobs.
func (m *Marker) Data(ids []blob.ID) error {
	refs := make([]index.BlobRef, len(ids))
	for i, id := range ids {
		refs[i] = index.BlobRef{Type: blob.Data, ID: id}
	}
	return m.s.Mark(refs)
}

// markSnapshots marks every snapshot in the repository that this run has
// not marked yet.
func (p *pruner) markSnapshots(ctx context.Context) error {
	m := &Marker{s: p.scratch}
	return p.r.ListSnapshots(ctx, func(id blob.ID, rec []byte) error {
		done, err := p.scratch.SnapshotMarked(id)
		if err != nil || done {
			return err
		}
		err = p.o.Refs(ctx, rec, m)
		var missing *BlobMissingError
		if errors.As(err, &missing) && missing.Pack.IsZero() {
			// Written after the index was opened, by a process with
			// another index (a push to this remote): its segments are
			// in the repository, written before it.
			if err = p.r.mergeSegments(ctx); err == nil {
				err = p.o.Refs(ctx, rec, m)
			}
		}
		// A snapshot that cannot be walked could reference anything: the
		// run stops before it condemns or deletes.
		if err != nil {
			return fmt.Errorf("snapshot %s: %w", id.Short(), err)
		}
		p.st.Snapshots++
		return p.scratch.MarkSnapshot(id)
	})
}
