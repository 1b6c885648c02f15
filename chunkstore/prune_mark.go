package chunkstore

import (
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
// Marks gather in sets in memory: one of trees, which tells at once
// whether a tree was marked, and one of data blobs, which drops the blobs
// of unchanged files that every snapshot's new copy of their directory
// names again. When a set fills, and when a mark ends, its contents go to
// the scratch database sorted, as one table (Scratch.MarkSorted): no
// write, flush or compaction per blob, which point writes cost. Once the
// tree set has spilled, a tree it lacks is looked up there too, unless
// the filter of all marks shows it was never marked.
//
// Memory: treeSlots+dataSlots entries of 33 bytes and a bit each, and
// the 1 MiB filter, 6.2 MiB in all, whatever the repository's size.
type Marker struct {
	s *index.Scratch

	mu           sync.Mutex
	trees, data  markSet
	treesSpilled bool
	// rewalk makes Tree report every tree new: a walk that failed may
	// have marked trees it never walked (markSnapshots).
	rewalk bool
	// marks holds every blob marked, for the questions asked once the
	// sets are spilled (Tree, marked).
	marks blobFilter
}

// treeSlots and dataSlots size the sets: a directory's tree is named by
// its parent, while it lists the data of all its files. A data set that
// holds fewer blobs than the snapshots' changed directories name spills
// them again for each snapshot: more tables, which the scratch database
// compacts. The benchmark's 117,000 data blobs, named 1.3 million times
// by 15 snapshots, were spilled as 1.3 million marks in 22 tables with
// 2^16 slots, as 209,000 in 2 with 2^17.
const treeSlots, dataSlots = 1 << 15, 1 << 17

func newMarker(s *index.Scratch) *Marker {
	return &Marker{s: s, trees: newMarkSet(treeSlots), data: newMarkSet(dataSlots)}
}

// Tree marks a tree blob and reports whether it was unmarked before: only
// then need its entries be walked. Two callers racing on one tree may both
// be told it is new when the set spills between them: the tree is walked
// twice, never skipped.
func (m *Marker) Tree(id blob.ID) (bool, error) {
	r := index.BlobRef{Type: blob.Tree, ID: id}
	m.mu.Lock()
	held, spilled := m.trees.has(r), m.treesSpilled
	m.mu.Unlock()
	if held && !m.rewalk {
		return false, nil
	}
	if spilled && !m.rewalk && m.marks.mayHold(r) {
		if marked, err := m.s.Marked(blob.Tree, id); err != nil || marked {
			return false, err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.trees.full() {
		m.treesSpilled = true
		if err := m.spill(&m.trees); err != nil {
			return false, err
		}
	}
	m.marks.add(r)
	return m.trees.add(r) || m.rewalk, nil
}

// Data marks data blobs.
func (m *Marker) Data(ids []blob.ID) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range ids {
		if m.data.full() {
			if err := m.spill(&m.data); err != nil {
				return err
			}
		}
		r := index.BlobRef{Type: blob.Data, ID: id}
		if m.data.add(r) {
			m.marks.add(r)
		}
	}
	return nil
}

// spill moves a set's marks to the scratch database. The caller holds
// m.mu: a mark is in a set or in the database, never in neither.
func (m *Marker) spill(s *markSet) error {
	if s.n == 0 {
		return nil
	}
	err := m.s.MarkSorted(s.sorted())
	s.clear()
	return err
}

// flush spills both sets and frees them until the next mark: the steps
// after a mark read the marks from the scratch database.
func (m *Marker) flush() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.treesSpilled = true
	err := errors.Join(m.spill(&m.trees), m.spill(&m.data))
	m.trees, m.data = newMarkSet(treeSlots), newMarkSet(dataSlots)
	return err
}

// marked reports whether a blob is marked, once the marks are flushed.
func (m *Marker) marked(t blob.Type, id blob.ID) (bool, error) {
	if !m.marks.mayHold(index.BlobRef{Type: t, ID: id}) {
		return false, nil
	}
	return m.s.Marked(t, id)
}

// markSet is a set of blobs of a fixed size, open addressing with linear
// probing. Blob IDs are uniform hashes already: their first bytes pick
// the slot.
type markSet struct {
	slots int             // a power of two
	refs  []index.BlobRef // allocated by the first add
	used  []uint64        // a bit per slot of refs
	n     int
}

func newMarkSet(slots int) markSet { return markSet{slots: slots} }

// full reports whether the set holds as many blobs as it takes: probes
// stay short while a set is at most 7/8 full.
func (s *markSet) full() bool { return s.n >= s.slots/8*7 }

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
		s.refs, s.used = make([]index.BlobRef, s.slots), make([]uint64, (s.slots+63)/64)
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
	slices.SortFunc(out, index.BlobRef.Compare)
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
			// The walk that failed marked trees it may not have
			// walked: this one walks them all, whatever is marked.
			if err = p.r.mergeSegments(ctx); err == nil {
				m.rewalk = true
				err = p.o.Refs(ctx, rec, m)
				m.rewalk = false
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
