package chunkstore

import (
	"context"
	"fmt"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/codec"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
	"github.com/hindsight-backup/hindsight/chunkstore/pack"
)

// repack copies the referenced blobs of packs into new packs and makes
// them durable: once it returns, the index places every referenced blob of
// those packs elsewhere, and the packs hold nothing a snapshot needs.
func (p *pruner) repack(ctx context.Context, packs []blob.ID) error {
	if len(packs) == 0 {
		return nil
	}
	if err := parallel(ctx, p.o.Jobs, packs, p.repackPack); err != nil {
		return err
	}
	return p.r.Flush(ctx)
}

func (p *pruner) repackPack(ctx context.Context, id blob.ID) error {
	entries, _, err := p.r.PackEntries(ctx, id)
	if err != nil {
		return fmt.Errorf("repack %s: %w", id, err)
	}
	locs, err := p.r.locate(entryRefs(entries))
	if err != nil {
		return err
	}
	copied := 0
	for i, e := range entries {
		if live, err := p.placedIn(id, e, locs[i]); err != nil || !live {
			if err != nil {
				return err
			}
			continue
		}
		if err := p.copyBlob(ctx, id, e); err != nil {
			return err
		}
		copied++
	}
	p.mu.Lock()
	p.st.RepackedBlobs += copied
	p.mu.Unlock()
	return nil
}

// placedIn reports whether a referenced blob of pack id has its indexed copy
// there (or none at all), so that the pack's copy is the one in use; loc
// is its indexed location (locate).
func (p *pruner) placedIn(id blob.ID, e pack.Entry, loc index.Location) (bool, error) {
	marked, err := p.marker.marked(e.Type, e.ID)
	if err != nil || !marked {
		return false, err
	}
	if loc.Pack.IsZero() || loc.Pack == id {
		return true, nil
	}
	known, err := p.r.idx.HasPack(loc.Pack)
	return !known, err
}

// entryRefs names a pack's blobs.
func entryRefs(entries []pack.Entry) []index.BlobRef {
	refs := make([]index.BlobRef, len(entries))
	for i, e := range entries {
		refs[i] = index.BlobRef{Type: e.Type, ID: e.ID}
	}
	return refs
}

// repackBudget bounds the bytes that repack's workers hold at once: a
// blob's stored form and its plaintext, up to 8 MiB each for the largest
// chunks (one such blob is copied alone, holding twice the budget). Four
// workers copying large blobs were prune's peak memory.
const repackBudget = 8 << 20

// copyBlob stores a blob's bytes, as they are, in a new pack: a blob's
// seal binds its ID, type and compression, not its place. It decodes them
// first, so that damage is not copied into a pack that looks sound.
func (p *pruner) copyBlob(ctx context.Context, src blob.ID, e pack.Entry) error {
	held := min(int64(e.Length)+int64(e.RawLength), repackBudget)
	if err := p.copying.Acquire(ctx, held); err != nil {
		return err
	}
	defer p.copying.Release(held)
	stored, _, err := p.r.readRange(ctx, src, int64(e.Offset), int64(e.Length))
	if err != nil {
		return err
	}
	// Not put back in the pool: pooled, the largest blobs copied would
	// stay alive beside those in flight, for loads that in prune are few
	// and small.
	plain, err := p.r.codec.Decode(nil, e.Type, e.ID, e.Compression, int(e.RawLength), stored)
	if err == nil && p.r.key.BlobID(plain) != e.ID {
		err = fmt.Errorf("content does not hash to its ID")
	}
	if err != nil {
		return &CorruptPackError{Pack: src, Blob: e.ID, Err: err}
	}
	return p.r.addStored(ctx, e.Type, e.ID, e.Compression, int(e.RawLength), stored)
}

// addStored adds a blob in its stored form to the pack being written,
// unless this process is writing it already. Unlike SaveBlob it does not
// look the blob up: the index knows it, in the pack being emptied.
func (r *Repository) addStored(ctx context.Context, t blob.Type, id blob.ID, comp codec.Compression, rawLen int, stored []byte) error {
	w := r.writer()
	k := blobKey{t, id}
	if !w.claim(k) {
		return nil
	}
	if err := w.add(ctx, t, id, comp, rawLen, stored); err != nil {
		w.release([]blobKey{k})
		return err
	}
	return nil
}
