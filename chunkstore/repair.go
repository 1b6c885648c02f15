package chunkstore

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
	"github.com/hindsight-backup/hindsight/remote"
)

// RepairOptions tune RepairPacks.
type RepairOptions struct {
	Jobs   int  // packs examined at once; default 1
	DryRun bool // examine, fetch nothing
	// Packs limits the repair to these packs (as check names them); nil
	// means every pack the index knows.
	Packs []blob.ID
	// Progress, if set, is called after each pack, from one goroutine at
	// a time.
	Progress func(done, total int)
}

// RepairStats say what RepairPacks found and did.
type RepairStats struct {
	Packs   int   // packs examined
	Missing int   // of those, absent here or of the wrong size
	Damaged int   // present, but their bytes do not hash to their name
	Fetched int   // copied from the source
	Bytes   int64 // of the recoverable packs
	// Recoverable lists the missing and damaged packs the source holds
	// whole; with DryRun nothing was fetched, so these are what a real run
	// would fetch.
	Recoverable []blob.ID
	// Lost lists the missing and damaged packs the source cannot give
	// back either.
	Lost []PackLoss
}

// PackLoss is a pack that could not be repaired, and why.
type PackLoss struct {
	Pack   blob.ID
	Reason string
}

// RepairPacks heals the packs of this repository from src, a replica made
// by push: every pack that is missing here, has the wrong size, or whose
// bytes do not hash to its name (which reads every pack whole) is
// replaced by src's copy, once that copy hashes to the pack's name. A
// damaged copy here is replaced only by a good one, never removed.
func (r *Repository) RepairPacks(ctx context.Context, src remote.Backend, o RepairOptions) (RepairStats, error) {
	packs, err := r.packsToRepair(ctx, o.Packs)
	if err != nil {
		return RepairStats{}, err
	}
	var (
		mu   sync.Mutex
		st   = RepairStats{Packs: len(packs)}
		done int
	)
	err = parallel(ctx, max(o.Jobs, 1), packs, func(ctx context.Context, p index.PackInfo) error {
		res, err := r.repairPack(ctx, src, p, o.DryRun)
		if err != nil {
			return fmt.Errorf("pack %s: %w", p.ID, err)
		}
		mu.Lock()
		defer mu.Unlock()
		st.add(p, res)
		done++
		if o.Progress != nil {
			o.Progress(done, len(packs))
		}
		return nil
	})
	slices.SortFunc(st.Recoverable, byID)
	slices.SortFunc(st.Lost, func(a, b PackLoss) int { return bytes.Compare(a.Pack[:], b.Pack[:]) })
	return st, err
}

func (r *Repository) packsToRepair(ctx context.Context, only []blob.ID) ([]index.PackInfo, error) {
	if only == nil {
		var packs []index.PackInfo
		err := r.idx.Packs(func(p index.PackInfo) error { packs = append(packs, p); return nil })
		if err != nil {
			return nil, err
		}
		lost, err := r.unindexedPacks(ctx)
		return append(packs, lost...), err
	}
	packs := make([]index.PackInfo, 0, len(only))
	for _, id := range only {
		p, ok, err := r.idx.Pack(id)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("pack %s is not in the index", id)
		}
		packs = append(packs, p)
	}
	return packs, nil
}

// packRepair is what became of one pack.
type packRepair struct {
	missing, damaged bool
	fetched          bool
	lost             string // why src could not help, when it could not
}

func (st *RepairStats) add(p index.PackInfo, res packRepair) {
	switch {
	case res.missing:
		st.Missing++
	case res.damaged:
		st.Damaged++
	default:
		return
	}
	if res.lost != "" {
		st.Lost = append(st.Lost, PackLoss{p.ID, res.lost})
		return
	}
	st.Recoverable = append(st.Recoverable, p.ID)
	st.Bytes += p.Size
	if res.fetched {
		st.Fetched++
	}
}

func (r *Repository) repairPack(ctx context.Context, src remote.Backend, p index.PackInfo, dryRun bool) (packRepair, error) {
	var res packRepair
	here, err := holds(ctx, r.be, packName(p.ID), p.Size)
	if err != nil {
		return res, err
	}
	if here {
		if _, intact, err := readPack(ctx, r.be, p.ID, nil, nil); err == nil && intact {
			return res, nil
		} else if ctx.Err() != nil {
			return res, ctx.Err()
		}
		// A pack that cannot be read to its end (an I/O error on a bad
		// sector) is as damaged as one that reads wrong.
		res.damaged = true
	} else {
		res.missing = true
	}
	there, err := holds(ctx, src, packName(p.ID), p.Size)
	switch {
	case err != nil:
		return res, err
	case !there:
		res.lost = "not on " + src.Location() + " either"
	case !dryRun:
		ok, err := r.fetchPack(ctx, src, p)
		if err == nil && ok {
			err = r.indexFetched(ctx, p)
		}
		if err != nil {
			return res, err
		}
		res.fetched = ok
		if !ok {
			res.lost = "the copy on " + src.Location() + " is damaged too"
		}
	}
	return res, nil
}

// holds reports whether be has name whole: present with the given size.
// An object of another size is not ours (a foreign file, or a store that
// kept a torn upload), and is replaced.
func holds(ctx context.Context, be remote.Backend, name string, size int64) (bool, error) {
	fi, err := be.Stat(ctx, name)
	if remote.IsNotExist(err) {
		return false, nil
	}
	return err == nil && fi.Size == size, err
}
