package chunkstore

import (
	"cmp"
	"context"
	"slices"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
	"github.com/hindsight-backup/hindsight/remote"
)

// Blobs a run reads with one load: neighbours in a pack at most runGap
// bytes apart, in a span of at most runSpan bytes (or one larger blob).
// Trees a backup wrote together sit side by side in its tree packs, a few
// KiB each: a run of them costs one open and one read instead of one per
// tree, and the bytes between them are few.
const runGap, runSpan = 32 << 10, 256 << 10

// LoadBlobs loads the blobs ids of type t and calls fn with each one's
// plaintext, which fn must not keep: at most jobs calls run at once, in no
// particular order. It looks them all up in one index call and reads each
// pack's blobs in the order of their offsets, neighbours together. A blob
// the index does not know fails it with a *BlobMissingError, as LoadBlob.
func (r *Repository) LoadBlobs(ctx context.Context, t blob.Type, ids []blob.ID, jobs int, fn func(id blob.ID, plain []byte) error) error {
	refs := make([]index.BlobRef, len(ids))
	for i, id := range ids {
		refs[i] = index.BlobRef{Type: t, ID: id}
	}
	locs, err := r.locate(refs)
	if err != nil {
		return err
	}
	blobs := make([]index.BlobEntry, len(ids))
	for i, l := range locs {
		if l.Pack.IsZero() {
			return &BlobMissingError{Type: t, ID: ids[i]}
		}
		blobs[i] = index.BlobEntry{Type: t, ID: ids[i], Location: l}
	}
	slices.SortFunc(blobs, func(a, b index.BlobEntry) int {
		return cmp.Or(byID(a.Pack, b.Pack), cmp.Compare(a.Offset, b.Offset))
	})
	return parallel(ctx, max(jobs, 1), loadRuns(blobs), func(ctx context.Context, run []index.BlobEntry) error {
		return r.loadRun(ctx, run, fn)
	})
}

// locate looks refs up in one index call: locs[i] is where the index
// places refs[i], with a zero pack where it places it nowhere.
func (r *Repository) locate(refs []index.BlobRef) ([]index.Location, error) {
	locs := make([]index.Location, len(refs))
	err := r.idx.LookupMany(refs, func(i int, l index.Location) error {
		locs[i] = l
		return nil
	})
	return locs, err
}

// loadRuns cuts blobs, sorted by pack and offset, into the runs that
// loadRun reads with one load each.
func loadRuns(blobs []index.BlobEntry) [][]index.BlobEntry {
	var runs [][]index.BlobEntry
	for start, i := 0, 1; i <= len(blobs); i++ {
		if i < len(blobs) {
			first, prev, b := blobs[start], blobs[i-1], blobs[i]
			end := int64(prev.Offset) + int64(prev.Length)
			if b.Pack == first.Pack && int64(b.Offset)-end <= runGap && int64(b.Offset)+int64(b.Length)-int64(first.Offset) <= runSpan {
				continue
			}
		}
		runs = append(runs, blobs[start:i])
		start = i
	}
	return runs
}

// loadRun reads a run of one pack's blobs, sorted by offset, with one load,
// and calls fn with each one's plaintext. A pack that is gone may have been
// repacked by a prune since the lookup: each blob is then loaded alone,
// which looks it up again.
func (r *Repository) loadRun(ctx context.Context, run []index.BlobEntry, fn func(id blob.ID, plain []byte) error) error {
	first, last := run[0], run[len(run)-1]
	start := int64(first.Offset)
	stored, release, err := r.readRange(ctx, first.Pack, start, int64(last.Offset)+int64(last.Length)-start)
	gone := remote.IsNotExist(err)
	if err != nil && !gone {
		return err
	}
	if !gone {
		defer release()
	}
	raw := 0
	for _, b := range run {
		raw = max(raw, int(b.RawLength))
	}
	buf := treeBuffers.Get(raw)
	defer func() { treeBuffers.Put(buf) }()
	for _, b := range run {
		var plain []byte
		if gone {
			plain, err = r.LoadBlob(ctx, b.Type, b.ID, buf)
		} else {
			at := int64(b.Offset) - start
			plain, err = r.decodeAt(b, stored[at:at+int64(b.Length)], buf)
		}
		if err != nil {
			return err
		}
		if err := fn(b.ID, plain); err != nil {
			return err
		}
		buf = plain
	}
	return nil
}

// treeBuffers hold the plaintext of blobs LoadBlobs hands out, trees
// mostly: a buffer per blob would be most of what a walk allocates.
var treeBuffers = NewBufferPool(1 << 20)
