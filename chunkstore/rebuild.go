package chunkstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
	"github.com/hindsight-backup/hindsight/remote"
)

// RebuildStats says where a rebuilt index's entries came from.
type RebuildStats struct {
	Segments     int // index segments merged
	SegmentPacks int // packs known from segments
	TrailerPacks int // packs whose trailers had to be read (no segment lists them)
	BadSegments  int // unreadable segments, skipped (their packs' trailers are read instead)
	BrokenPacks  []blob.ID
	// MissingPacks are listed in segments but not in the repository: left
	// out, so that the next backup stores their data again.
	MissingPacks []blob.ID
	Blobs        int
}

// RebuildIndex builds a new index from the backend alone — index segments
// first, then the trailers of packs no segment lists — and replaces the
// current index with it. History rows and cached snapshot records are not
// in the new index; the snapshot package rebuilds history afterwards.
func (r *Repository) RebuildIndex(ctx context.Context, progress func(done, total int)) (RebuildStats, error) {
	var st RebuildStats
	tmpDir := r.opts.IndexDir + ".rebuild"
	if err := r.fs.RemoveAll(tmpDir); err != nil {
		return st, err
	}
	idx, err := index.Open(r.fs, tmpDir, r.opts.Index)
	if err != nil {
		return st, err
	}
	defer func() {
		if idx != nil {
			idx.Close()
			r.fs.RemoveAll(tmpDir)
		}
	}()

	var segs []blob.ID
	err = r.be.List(ctx, segmentsPrefix, func(fi remote.FileInfo) error {
		if id, err := idFromName(fi.Name); err == nil {
			segs = append(segs, id)
		}
		return nil
	})
	if err != nil {
		return st, err
	}
	var packs []blob.ID
	present := make(map[blob.ID]bool)
	err = r.be.List(ctx, packsPrefix, func(fi remote.FileInfo) error {
		if id, err := idFromName(fi.Name); err == nil {
			packs = append(packs, id)
			present[id] = true
		}
		return nil
	})
	if err != nil {
		return st, err
	}
	// Condemned packs are known before any segment is merged, so that they
	// displace no other copy of a blob. Prune rewrites the segments that
	// list a pack before it deletes it; a pack a segment lists but the
	// repository lacks is lost (mergePresent).
	if err := r.applyRecords(ctx, idx); err != nil {
		return st, err
	}
	total := len(segs) + len(packs)
	for i, id := range segs {
		missing, err := r.mergePresent(ctx, idx, id, present)
		if err != nil {
			st.BadSegments++
			continue
		}
		st.MissingPacks = append(st.MissingPacks, missing...)
		st.Segments++
		if progress != nil {
			progress(i+1, total)
		}
	}
	for i, id := range packs {
		known, err := idx.HasPack(id)
		if err != nil {
			return st, err
		}
		if known {
			st.SegmentPacks++
		} else {
			p, err := r.readPackSegment(ctx, id)
			if err != nil {
				st.BrokenPacks = append(st.BrokenPacks, id)
				continue
			}
			if err := idx.AddPack(index.PackInfo{ID: id, Size: p.Size, Count: uint32(len(p.Blobs))}, segmentEntries(p)); err != nil {
				return st, err
			}
			st.TrailerPacks++
		}
		if progress != nil {
			progress(len(segs)+i+1, total)
		}
	}
	if err := idx.Blobs(func(index.BlobEntry) error { st.Blobs++; return nil }); err != nil {
		return st, err
	}
	if err := idx.Close(); err != nil {
		return st, err
	}
	idx = nil
	return st, r.swapIndex(tmpDir)
}

// swapIndex replaces the open index with the one in dir. The caller holds
// the repository's exclusive lock, so no other process has the index open.
func (r *Repository) swapIndex(dir string) error {
	if r.idx != nil { // nil when opened with NoIndex, e.g. because the index is broken
		if err := r.idx.Close(); err != nil {
			return err
		}
	}
	old := r.opts.IndexDir + ".old"
	if err := r.fs.RemoveAll(old); err != nil {
		return err
	}
	if err := r.fs.Rename(r.opts.IndexDir, old); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("replace index: %w", err)
	}
	if err := r.fs.Rename(dir, r.opts.IndexDir); err != nil {
		return fmt.Errorf("replace index: %w", err)
	}
	idx, err := openIndex(r.fs, r.opts.IndexDir, r.opts.Index)
	if err != nil {
		return err
	}
	r.idx = idx
	return r.fs.RemoveAll(old)
}

// byID orders pack IDs as listings and the index do.
func byID(a, b blob.ID) int { return bytes.Compare(a[:], b[:]) }
