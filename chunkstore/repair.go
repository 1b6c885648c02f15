package chunkstore

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
	"github.com/hindsight-backup/hindsight/remote"
)

// RepairStats say what RepairPacks found and did.
type RepairStats struct {
	Packs   int // packs the index knows
	Missing int // of those, absent here (or of the wrong size)
	Fetched int // copied back from the source
	Bytes   int64
	// Recoverable lists missing packs the source holds; with dryRun
	// nothing was fetched, so these are what a real run would fetch.
	Recoverable []blob.ID
	// Unrecoverable lists missing packs the source lacks too.
	Unrecoverable []blob.ID
}

// RepairPacks heals a repository that lost packs (a disk died, a file was
// deleted) from src, a remote the repository was pushed to: every pack the
// index knows that is missing here, or has the wrong size, is copied back
// when src holds it whole. A fetched pack's trailer is authenticated
// before it counts as repaired. With dryRun nothing is written.
func (r *Repository) RepairPacks(ctx context.Context, src remote.Backend, jobs int, dryRun bool) (RepairStats, error) {
	var packs []index.PackInfo
	if err := r.idx.Packs(func(p index.PackInfo) error {
		packs = append(packs, p)
		return nil
	}); err != nil {
		return RepairStats{}, err
	}
	var (
		mu      sync.Mutex
		st      = RepairStats{Packs: len(packs)}
		missing atomic.Int64
	)
	err := parallel(ctx, max(jobs, 1), packs, func(ctx context.Context, p index.PackInfo) error {
		here, err := holds(ctx, r.be, packName(p.ID), p.Size)
		if err != nil || here {
			return err
		}
		missing.Add(1)
		there, err := holds(ctx, src, packName(p.ID), p.Size)
		if err != nil {
			return err
		}
		if there && !dryRun {
			if err := r.fetchPack(ctx, src, p); err != nil {
				return err
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if !there {
			st.Unrecoverable = append(st.Unrecoverable, p.ID)
			return nil
		}
		st.Recoverable = append(st.Recoverable, p.ID)
		if !dryRun {
			st.Fetched++
			st.Bytes += p.Size
		}
		return nil
	})
	st.Missing = int(missing.Load())
	for _, l := range [][]blob.ID{st.Recoverable, st.Unrecoverable} {
		slices.SortFunc(l, func(a, b blob.ID) int { return bytes.Compare(a[:], b[:]) })
	}
	return st, err
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

func (r *Repository) fetchPack(ctx context.Context, src remote.Backend, p index.PackInfo) error {
	name := packName(p.ID)
	if err := r.be.Save(ctx, name, backendReaderAt{ctx, src, name}, p.Size); err != nil {
		return fmt.Errorf("fetch %s from %s: %w", name, src.Location(), err)
	}
	if _, _, err := r.PackEntries(ctx, p.ID); err != nil {
		// Keep no damaged copy: the pack is as missing as before.
		if rmErr := r.be.Remove(ctx, name); rmErr != nil {
			return fmt.Errorf("fetched %s is damaged (%w), and removing it failed: %v", name, err, rmErr)
		}
		return fmt.Errorf("fetched %s is damaged: %w", name, err)
	}
	return nil
}
