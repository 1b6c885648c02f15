package chunkstore

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
)

// Marker records the blobs snapshots reference, for Prune. The snapshot
// package walks the trees (this package does not read them) and reports
// what it finds. Its methods are safe for concurrent use.
//
// Marks gather in a set in memory: it tells at once whether a tree was
// marked, and drops the blobs of unchanged files that every snapshot's
// new copy of their directory names again. When the set fills, and when a
// mark ends, its contents go to the scratch database sorted, as one table
// (Scratch.MarkSorted): no write, flush or compaction per blob, which
// point writes cost. Once it has, a tree the set lacks is looked up there.
//
// Memory: the set is markSlots entries of 33 bytes and a bit each, 4.1
// MiB, whatever the repository's size.
type Marker struct {
	s *index.Scratch

	mu      sync.Mutex
	set     markSet
	spilled bool // the scratch holds marks: one the set lacks may be there
}

func newMarker(s *index.Scratch) *Marker { return &Marker{s: s} }

// Tree marks a tree blob and reports whether it was unmarked before: only
// then need its entries be walked. Two callers racing on one tree may both
// be told it is new when the set is spilled between them: the tree is
// walked twice, never skipped.
func (m *Marker) Tree(id blob.ID) (bool, error) {
	r := index.BlobRef{Type: blob.Tree, ID: id}
	m.mu.Lock()
	held, spilled := m.set.has(r), m.spilled
	m.mu.Unlock()
	if held {
		return false, nil
	}
	if spilled {
		if marked, err := m.s.Marked(blob.Tree, id); err != nil || marked {
			return false, err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.add(r)
}

// Data marks data blobs.
func (m *Marker) Data(ids []blob.ID) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range ids {
		if _, err := m.add(index.BlobRef{Type: blob.Data, ID: id}); err != nil {
			return err
		}
	}
	return nil
}

// add puts r in the set, spilling it first if it is full, and reports
// whether r was absent. The caller holds m.mu.
func (m *Marker) add(r index.BlobRef) (bool, error) {
	if m.set.full() {
		if err := m.spill(); err != nil {
			return false, err
		}
	}
	return m.set.add(r), nil
}

// spill moves the set's marks to the scratch database. The caller holds
// m.mu: a mark is in the set or in the database, never in neither.
func (m *Marker) spill() error {
	if m.set.n == 0 {
		return nil
	}
	m.spilled = true
	err := m.s.MarkSorted(m.set.sorted())
	m.set.clear()
	return err
}

// flush spills the set and frees it: the steps after a mark read the
// marks from the scratch database.
func (m *Marker) flush() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	err := m.spill()
	m.set = markSet{}
	return err
}

// markSlots is the size of a markSet, a power of two; markLoad is how
// many marks it takes before it spills, so that probes stay short.
const (
	markSlots = 1 << 17
	markLoad  = markSlots / 8 * 7
)

// markSet is a set of blobs, open addressing with linear probing. Blob
// IDs are uniform hashes already: their first bytes pick the slot.
type markSet struct {
	refs []index.BlobRef // allocated by the first add
	used []uint64        // a bit per slot of refs
	n    int
}

func (s *markSet) full() bool { return s.n >= markLoad }

// find returns r's slot, or the free slot where it would go.
func (s *markSet) find(r index.BlobRef) (slot int, ok bool) {
	mask := uint64(len(s.refs) - 1)
	for i := (binary.LittleEndian.Uint64(r.ID[:8]) ^ uint64(r.Type)) & mask; ; i = (i + 1) & mask {
		if s.used[i/64]&(1<<(i%64)) == 0 {
			return int(i), false
		}
		if s.refs[i] == r {
			return int(i), true
		}
	}
}

func (s *markSet) has(r index.BlobRef) bool {
	if s.n == 0 {
		return false
	}
	_, ok := s.find(r)
	return ok
}

// add inserts r and reports whether it was absent. The set must not be
// full.
func (s *markSet) add(r index.BlobRef) bool {
	if s.refs == nil {
		s.refs, s.used = make([]index.BlobRef, markSlots), make([]uint64, markSlots/64)
	}
	i, ok := s.find(r)
	if ok {
		return false
	}
	s.refs[i] = r
	s.used[i/64] |= 1 << (i % 64)
	s.n++
	return true
}

// sorted returns the set's blobs in key order (type, then ID). It reorders
// the slots: the set must be cleared before it is used again.
func (s *markSet) sorted() []index.BlobRef {
	n := 0
	for i := range s.refs {
		if s.used[i/64]&(1<<(i%64)) != 0 {
			s.refs[n] = s.refs[i]
			n++
		}
	}
	out := s.refs[:n]
	slices.SortFunc(out, func(a, b index.BlobRef) int {
		return cmp.Or(cmp.Compare(a.Type, b.Type), bytes.Compare(a.ID[:], b.ID[:]))
	})
	return out
}

func (s *markSet) clear() {
	clear(s.used)
	s.n = 0
}

// markSnapshots marks every snapshot in the repository that this run has
// not marked yet.
func (p *pruner) markSnapshots(ctx context.Context) error {
	m := p.marker
	err := p.r.ListSnapshots(ctx, func(id blob.ID, rec []byte) error {
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
	if err != nil {
		return err
	}
	return m.flush()
}
