package chunkstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
	"github.com/hindsight-backup/hindsight/chunkstore/pack"
	"github.com/hindsight-backup/hindsight/chunkstore/segment"
	"github.com/hindsight-backup/hindsight/remote"
)

// settle deletes or pardons the packs of ripe records (step 3 of the
// argument in prune.go: the caller marked after listing the locks), then
// removes the records. Records are taken in batches of at most
// maxRecordPacks packs, which bounds the sets kept in memory.
func (p *pruner) settle(ctx context.Context, ripe []*record) error {
	for len(ripe) > 0 {
		n, packs := 0, len(ripe[0].Packs)
		for n++; n < len(ripe) && packs+len(ripe[n].Packs) <= maxRecordPacks; n++ {
			packs += len(ripe[n].Packs)
		}
		if err := p.settleBatch(ctx, ripe[:n]); err != nil {
			return err
		}
		ripe = ripe[n:]
	}
	return nil
}

// verdict is judge's decision on one condemned pack.
type verdict struct {
	rec    index.RecordID
	pack   blob.ID
	needed bool
	size   int64
}

func (p *pruner) settleBatch(ctx context.Context, recs []*record) error {
	var vs []*verdict
	for _, rec := range recs {
		for _, id := range rec.Packs {
			vs = append(vs, &verdict{rec: rec.ID, pack: id})
		}
	}
	err := parallel(ctx, p.o.Jobs, vs, func(ctx context.Context, v *verdict) (err error) {
		v.needed, v.size, err = p.judge(ctx, v.rec, v.pack)
		return err
	})
	if err != nil {
		return err
	}
	doomed := map[blob.ID]int64{} // pack → size
	for _, v := range vs {
		if v.needed {
			p.st.Pardoned++
		} else {
			doomed[v.pack] = v.size
		}
	}
	if !p.o.DryRun {
		p.step("segments")
		if err := p.rewriteSegments(ctx, doomed); err != nil {
			return err
		}
		ids := make([]blob.ID, 0, len(doomed))
		for id := range doomed {
			ids = append(ids, id)
		}
		if err := parallel(ctx, p.o.Jobs, ids, p.deletePack); err != nil {
			return err
		}
	}
	for _, size := range doomed {
		p.st.Deleted++
		p.st.DeletedBytes += size
	}
	if p.o.DryRun {
		return nil
	}
	p.step("records")
	for _, rec := range recs {
		if err := p.r.removeRecord(ctx, rec.ID); err != nil {
			return err
		}
	}
	return nil
}

// judge decides one condemned pack: needed (and then pardoned, unless this
// is a dry run) when a referenced blob's indexed copy is in it, or has no
// usable copy anywhere else. Otherwise the blobs whose indexed copy is in
// it are recorded as doomed, so that other copies can be looked for.
func (p *pruner) judge(ctx context.Context, rec index.RecordID, id blob.ID) (needed bool, size int64, err error) {
	entries, size, err := p.r.PackEntries(ctx, id)
	var corrupt *CorruptPackError
	switch {
	case remote.IsNotExist(err):
		return false, 0, nil // deleted by an interrupted run: forget it
	case errors.As(err, &corrupt):
		// Its contents cannot be told: keep it, and let check report it.
		p.o.Logger.Warn("prune: keeping a condemned pack whose trailer is unreadable", "pack", id.String(), "err", err)
		needed = true
	case err != nil:
		return false, 0, err
	}
	if !needed {
		if needed, err = p.protected(id); err != nil {
			return false, 0, err
		}
	}
	locs, err := p.r.locate(entryRefs(entries))
	if err != nil {
		return false, 0, err
	}
	reindex := false
	for i, e := range entries {
		use, err := p.placedIn(id, e, locs[i])
		if err != nil {
			return false, 0, err
		}
		if !use {
			// Unused, and indexed here: doomed, so that another copy
			// is looked for before the pack goes.
			if !needed && locs[i].Pack == id {
				err = p.doom(index.BlobRef{Type: e.Type, ID: e.ID}, id)
			}
			if err != nil {
				return false, 0, err
			}
			continue
		}
		needed = true
		// Indexed nowhere, or in a pack that is gone: this copy is the
		// one to index again.
		reindex = reindex || locs[i].Pack != id
	}
	if !needed || p.o.DryRun {
		return needed, size, nil
	}
	return true, size, p.pardon(rec, id, size, entries, reindex)
}

// pardon lifts a condemnation; with reindex, the pack's blobs are indexed
// here again, where they had no usable location.
func (p *pruner) pardon(rec index.RecordID, id blob.ID, size int64, entries []pack.Entry, reindex bool) error {
	p.o.Logger.Info("prune: a snapshot references a condemned pack; keeping it", "pack", id.String())
	if err := p.r.idx.Uncondemn(rec, id); err != nil || !reindex {
		return err
	}
	sp := segment.Pack{ID: id, Size: size, Blobs: make([]segment.Blob, len(entries))}
	for i, e := range entries {
		sp.Blobs[i] = segment.Blob{Type: e.Type, ID: e.ID, Offset: e.Offset, Length: e.Length, RawLength: e.RawLength, Compression: uint8(e.Compression)}
	}
	return p.r.idx.AddPack(index.PackInfo{ID: id, Size: size, Count: uint32(len(entries))}, segmentEntries(sp))
}

// rewriteSegments replaces every segment that lists a doomed pack by one
// without it (no segment lists a pack once it is deleted, so that no
// index merging segments later adds it back), and on the way records, for
// each doomed blob, a copy in a pack that stays, if the segments or the
// packs no segment lists yet show one.
func (p *pruner) rewriteSegments(ctx context.Context, doomed map[blob.ID]int64) error {
	segs, err := listObjects(ctx, p.r.be, segmentsPrefix)
	if err != nil {
		return err
	}
	for _, fi := range segs {
		id, err := idFromName(fi.Name)
		if err != nil {
			continue
		}
		// Packs one at a time, rewritten in place: segments written
		// before writers closed them at 16Ki blobs list 64Ki, which
		// decoded all at once, re-encoded and sealed were prune's peak.
		plain, err := p.r.openSegment(ctx, id, fi.Size)
		var out []byte
		var kept int
		var findErr error
		if err == nil {
			out, kept, err = segment.Filter(plain, func(sp *segment.Pack) (bool, error) {
				if _, ok := doomed[sp.ID]; ok {
					return false, nil
				}
				findErr = p.findCopies(sp)
				return true, findErr
			})
		}
		if findErr != nil {
			return findErr
		}
		if err != nil {
			// Index rebuild skips it too; check reports it.
			p.o.Logger.Warn("prune: skipping an unreadable index segment", "segment", id.String(), "err", err)
			continue
		}
		if out != nil {
			if err := p.replaceSegment(ctx, id, out, kept); err != nil {
				return err
			}
		}
	}
	return p.r.idx.UnlistedPacks(func(id blob.ID) error {
		if _, ok := doomed[id]; ok {
			return nil
		}
		sp, err := p.r.readPackSegment(ctx, id)
		if err != nil {
			return nil // a pack gone or damaged holds no copy to point at
		}
		return p.findCopies(&sp)
	})
}

// findCopies records sp's copies of doomed blobs, if the index knows sp.
func (p *pruner) findCopies(sp *segment.Pack) error {
	known := false
	for _, b := range sp.Blobs {
		ref := index.BlobRef{Type: b.Type, ID: b.ID}
		if !p.doomed.mayHold(ref) {
			continue
		}
		if _, ok, err := p.scratch.Doomed(ref); err != nil || !ok {
			if err != nil {
				return err
			}
			continue
		}
		if !known {
			ok, err := p.r.idx.HasPack(sp.ID)
			if err != nil || !ok {
				return err
			}
			known = true
		}
		loc := index.Location{Pack: sp.ID, Offset: b.Offset, Length: b.Length, RawLength: b.RawLength, Compression: b.Compression}
		if err := p.scratch.SetElsewhere(index.BlobEntry{Type: b.Type, ID: b.ID, Location: loc}); err != nil {
			return err
		}
	}
	return nil
}

// replaceSegment stores plain, the plaintext of a segment listing kept
// packs, in place of the segment old.
func (p *pruner) replaceSegment(ctx context.Context, old blob.ID, plain []byte, kept int) error {
	if kept > 0 {
		id, err := p.r.saveSegment(ctx, plain)
		if err != nil {
			return err
		}
		if err := p.r.idx.MarkListed(id, nil); err != nil {
			return err
		}
	}
	if err := p.r.be.Remove(ctx, segmentsPrefix+old.String()); err != nil && !remote.IsNotExist(err) {
		return fmt.Errorf("remove index segment %s: %w", old, err)
	}
	return nil
}

// deletePack drops a doomed pack from the index, pointing its doomed blobs
// at their other copies, and then deletes it.
func (p *pruner) deletePack(ctx context.Context, id blob.ID) error {
	entries, _, err := p.r.PackEntries(ctx, id)
	if err != nil && !remote.IsNotExist(err) {
		var corrupt *CorruptPackError
		if !errors.As(err, &corrupt) {
			return err
		}
	}
	refs := make([]index.BlobRef, len(entries))
	var moved []index.BlobEntry
	for i, e := range entries {
		refs[i] = index.BlobRef{Type: e.Type, ID: e.ID}
		if !p.doomed.mayHold(refs[i]) {
			continue // only doomed blobs have copies recorded
		}
		loc, ok, err := p.scratch.Elsewhere(refs[i])
		if err != nil {
			return err
		}
		if ok {
			moved = append(moved, index.BlobEntry{Type: e.Type, ID: e.ID, Location: loc})
		}
	}
	p.step("drop")
	if err := p.r.idx.DropPack(id, refs, moved, p.remotes); err != nil {
		return err
	}
	p.step("remove")
	if err := p.r.be.Remove(ctx, packName(id)); err != nil && !remote.IsNotExist(err) {
		return fmt.Errorf("remove pack %s: %w", id, err)
	}
	return nil
}
