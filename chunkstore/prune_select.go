package chunkstore

import (
	"context"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
	"github.com/hindsight-backup/hindsight/remote"
)

// listCandidates records the packs this run may condemn, before the mark:
// indexed, listed in a segment (an unlisted pack most likely belongs to a
// backup still running, whose snapshot is not written yet), not condemned
// already, not protected.
func (p *pruner) listCandidates() error {
	skip, err := p.condemnedOrUnlisted()
	if err != nil {
		return err
	}
	return p.r.idx.Packs(func(pi index.PackInfo) error {
		if skip[pi.ID] {
			return nil
		}
		if protected, err := p.protected(pi.ID); err != nil || protected {
			return err
		}
		return p.scratch.AddCandidate(pi.ID, pi.Size)
	})
}

// condemnedOrUnlisted is a set bounded by what backups in flight and
// earlier prunes left, not by the repository's size.
func (p *pruner) condemnedOrUnlisted() (map[blob.ID]bool, error) {
	skip := map[blob.ID]bool{}
	err := p.r.idx.Condemned(func(c index.Condemnation) error { skip[c.Pack] = true; return nil })
	if err != nil {
		return nil, err
	}
	err = p.r.idx.UnlistedPacks(func(id blob.ID) error { skip[id] = true; return nil })
	return skip, err
}

func (p *pruner) protected(pack blob.ID) (bool, error) {
	if p.o.Protect == nil {
		return false, nil
	}
	return p.o.Protect(pack)
}

// selectPacks sums, for every candidate pack, the bytes of the blobs the
// index places in it and of those the mark reached, in one scan of the
// index; then picks the packs that hold nothing referenced (unused), those
// with more than MaxUnused unreferenced (repack), and the packs in the
// backend that no index knows (unused too).
func (p *pruner) selectPacks(ctx context.Context) (unused, repack []blob.ID, err error) {
	ub := p.scratch.NewUsageBatch()
	defer ub.Close()
	marks, err := p.scratch.NewMarkCursor()
	if err != nil {
		return nil, nil, err
	}
	err = p.r.idx.Blobs(func(e index.BlobEntry) error {
		used, err := marks.Marked(e.Type, e.ID)
		if err != nil {
			return err
		}
		return ub.Add(e.Pack, e.Length, used)
	})
	if cerr := marks.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = ub.Commit()
	}
	if err != nil {
		return nil, nil, err
	}
	err = p.scratch.Candidates(func(u index.PackUsage) error {
		p.st.Packs++
		p.st.PackBytes += u.Size
		switch {
		case u.Used == 0:
			unused = append(unused, u.Pack)
			p.st.UnusedPacks++
			p.st.UnusedBytes += u.Size
		// Shares of the blobs' bytes: a pack's header and trailer are
		// overhead that a copy would carry too.
		case float64(u.Total-u.Used) > p.o.MaxUnused*float64(u.Total):
			repack = append(repack, u.Pack)
			p.st.RepackPacks++
			p.st.RepackBytes += u.Size
			p.st.RepackedBlobBytes += int64(u.Used)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	orphans, err := p.orphans(ctx)
	return append(unused, orphans...), repack, err
}

// orphans lists packs in the backend that the index does not know and no
// record condemns: what a backup stored before it was killed.
func (p *pruner) orphans(ctx context.Context) ([]blob.ID, error) {
	skip, err := p.condemnedOrUnlisted()
	if err != nil {
		return nil, err
	}
	var out []blob.ID
	err = p.r.be.List(ctx, packsPrefix, func(fi remote.FileInfo) error {
		id, err := idFromName(fi.Name)
		if err != nil || skip[id] {
			return nil // not ours (check reports it), or condemned already
		}
		if known, err := p.r.idx.HasPack(id); err != nil || known {
			return err
		}
		if protected, err := p.protected(id); err != nil || protected {
			return err
		}
		out = append(out, id)
		p.st.Orphans++
		p.st.UnusedBytes += fi.Size
		return nil
	})
	return out, err
}
