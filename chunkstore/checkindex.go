package chunkstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
	"github.com/hindsight-backup/hindsight/remote"
)

// CheckSegments checks the index segments, the durable copy of the index
// from which a new machine builds its own: every segment this index merged
// must still be there, and every segment must open and decode.
func (r *Repository) CheckSegments(ctx context.Context, report func(Problem)) error {
	present := make(map[blob.ID]bool)
	err := r.be.List(ctx, segmentsPrefix, func(fi remote.FileInfo) error {
		if id, err := idFromName(fi.Name); err == nil {
			present[id] = true
		} else {
			report(Problem{Harmless: true, Message: fmt.Sprintf("unexpected object %s", fi.Name)})
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Every pack the index has must be listed by a segment (or be waiting
	// for the next one). A segment this index merged and the repository
	// no longer has is damage only then: prune replaces the segments that
	// list a pack it deletes, and this index keeps the old one's name.
	listed := make(map[blob.ID]bool)
	for id := range present {
		packs, err := r.LoadSegment(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			report(Problem{Segment: id, Message: fmt.Sprintf("unreadable: %v ('hindsight repair index' writes a new segment)", err)})
			continue
		}
		for _, p := range packs {
			listed[p.ID] = true
		}
	}
	if err := r.idx.UnlistedPacks(func(id blob.ID) error { listed[id] = true; return nil }); err != nil {
		return err
	}
	// A condemned pack leaves the segments before it leaves the index.
	if err := r.idx.Condemned(func(c index.Condemnation) error { listed[c.Pack] = true; return nil }); err != nil {
		return err
	}
	uncovered := false
	err = r.idx.Packs(func(p index.PackInfo) error {
		uncovered = uncovered || !listed[p.ID]
		return nil
	})
	if err != nil || !uncovered {
		return err
	}
	return r.idx.Segments(func(id blob.ID) error {
		if !present[id] {
			report(Problem{Segment: id, Message: "missing from the repository (the index still has what it listed: 'hindsight repair index' writes a new segment)"})
		}
		return nil
	})
}

// RemoveDamagedSegments removes the index segments whose bytes are
// damaged. Call it only once the packs they listed are listed again: after
// RebuildIndex, which reads those packs' trailers, and a Flush, which
// writes them into a new segment.
func (r *Repository) RemoveDamagedSegments(ctx context.Context) ([]blob.ID, error) {
	objs, err := listObjects(ctx, r.be, segmentsPrefix)
	if err != nil {
		return nil, err
	}
	var removed []blob.ID
	for _, fi := range objs {
		id, err := idFromName(fi.Name)
		if err != nil {
			continue
		}
		if _, err := r.LoadSegment(ctx, id); !errors.Is(err, ErrCorrupt) {
			if ctx.Err() != nil {
				return removed, ctx.Err()
			}
			continue
		}
		if err := r.be.Remove(ctx, fi.Name); err != nil {
			return removed, err
		}
		removed = append(removed, id)
	}
	return removed, nil
}
