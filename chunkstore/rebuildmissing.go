package chunkstore

import (
	"context"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
	"github.com/hindsight-backup/hindsight/remote"
)

// mergePresent merges index segment id into idx without the packs the
// repository lacks, and returns those. An index that lists a lost pack
// would have every backup take the pack's blobs as stored and reference
// them again, lost; left out, they are stored anew. A pack missing from
// the listing is asked for once more before it counts as lost, for
// stores whose listings lag behind.
func (r *Repository) mergePresent(ctx context.Context, idx index.Store, id blob.ID, present map[blob.ID]bool) ([]blob.ID, error) {
	packs, err := r.LoadSegment(ctx, id)
	if err != nil {
		return nil, err
	}
	var missing []blob.ID
	pb := make([]index.PackBlobs, 0, len(packs))
	for _, p := range packs {
		if !present[p.ID] {
			_, err := r.be.Stat(ctx, packName(p.ID))
			if remote.IsNotExist(err) {
				missing = append(missing, p.ID)
				continue
			}
			if err != nil {
				return nil, err
			}
		}
		pb = append(pb, index.PackBlobs{PackInfo: index.PackInfo{ID: p.ID, Size: p.Size, Count: uint32(len(p.Blobs))}, Blobs: segmentEntries(p)})
	}
	return missing, idx.AddSegment(id, pb)
}

// unindexedPacks are the packs index segments list but the index lacks:
// those a rebuild left out because the repository lacked them, which a
// replica may still hold.
func (r *Repository) unindexedPacks(ctx context.Context) ([]index.PackInfo, error) {
	objs, err := listObjects(ctx, r.be, segmentsPrefix)
	if err != nil {
		return nil, err
	}
	seen := make(map[blob.ID]bool)
	var out []index.PackInfo
	for _, fi := range objs {
		id, err := idFromName(fi.Name)
		if err != nil {
			continue
		}
		packs, err := r.LoadSegment(ctx, id)
		if err != nil {
			continue // check reports it; repair index replaces it
		}
		for _, p := range packs {
			if seen[p.ID] {
				continue
			}
			seen[p.ID] = true
			if ok, err := r.idx.HasPack(p.ID); err != nil {
				return nil, err
			} else if !ok {
				out = append(out, index.PackInfo{ID: p.ID, Size: p.Size, Count: uint32(len(p.Blobs))})
			}
		}
	}
	return out, nil
}

// indexFetched adds a pack fetched from a replica to the index if a
// rebuild had left it out, from its trailer; the next flush lists it in a
// segment again.
func (r *Repository) indexFetched(ctx context.Context, p index.PackInfo) error {
	if ok, err := r.idx.HasPack(p.ID); err != nil || ok {
		return err
	}
	sp, err := r.readPackSegment(ctx, p.ID)
	if err != nil {
		return err
	}
	return r.idx.AddPack(p, segmentEntries(sp))
}
