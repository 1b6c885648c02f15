package chunkstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
)

// Marker records the blobs snapshots reference, for Prune. The snapshot
// package walks the trees (this package does not read them) and reports
// what it finds. Its methods are safe for concurrent use.
type Marker struct {
	s *index.Scratch

	// recent remembers blobs marked lately, one per slot, so that the
	// blobs of unchanged files, named again by every snapshot's new copy
	// of their directory, are not written to the scratch database again
	// and again. A fixed size: memory does not grow with the repository.
	mu     sync.Mutex
	recent []index.BlobRef
}

// recentSlots is the size of Marker.recent (33 bytes a slot).
const recentSlots = 1 << 17

func newMarker(s *index.Scratch) *Marker {
	return &Marker{s: s, recent: make([]index.BlobRef, recentSlots)}
}

// seen reports whether r was marked lately; if not, it records it as
// marked, which the caller must then do.
func (m *Marker) seen(r index.BlobRef) bool {
	slot := &m.recent[binary.LittleEndian.Uint64(r.ID[:8])%recentSlots]
	m.mu.Lock()
	defer m.mu.Unlock()
	if *slot == r {
		return true
	}
	*slot = r
	return false
}

// Tree marks a tree blob and reports whether it was unmarked before: only
// then need its entries be walked.
func (m *Marker) Tree(id blob.ID) (bool, error) {
	if m.seen(index.BlobRef{Type: blob.Tree, ID: id}) {
		return false, nil
	}
	return m.s.MarkFirst(blob.Tree, id)
}

// Data marks data blobs. It overwrites ids: the caller's buffer holds the
// ones still to mark, so that marking allocates nothing.
func (m *Marker) Data(ids []blob.ID) error {
	fresh := ids[:0]
	for _, id := range ids {
		if !m.seen(index.BlobRef{Type: blob.Data, ID: id}) {
			fresh = append(fresh, id)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	return m.s.Mark(blob.Data, fresh)
}

// markSnapshots marks every snapshot in the repository that this run has
// not marked yet.
func (p *pruner) markSnapshots(ctx context.Context) error {
	m := newMarker(p.scratch)
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
