package chunkstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
	"github.com/hindsight-backup/hindsight/chunkstore/lock"
	"golang.org/x/sync/semaphore"
)

// Prune removes what no snapshot references, under a shared lock: backups
// and pushes keep running. It marks every blob the snapshots reference, in
// a scratch database; copies the referenced blobs of packs with more than
// MaxUnused unreferenced bytes into new packs; and condemns the packs that
// then hold nothing referenced: a condemnation record in the repository,
// and a "c" key in the index, after which no writer deduplicates against
// them. A condemned pack is deleted by this run or a later one, once it is
// ripe.
//
// Why deleting a ripe pack cannot lose a blob that a snapshot written now
// or later references. A pack P is deleted only when
//
//  1. a record R condemning P is durable, and every index has condemned
//     P: this process's index before the lock listing of step 2, and any
//     other index when it is opened, which every process does after
//     taking its lock (applyRecords);
//  2. every process whose lock was listed after (1), other than prune
//     itself and processes that never write snapshot records, has ended
//     (its lock is released or stale); and
//  3. a mark of every snapshot listed after (2) found no blob whose
//     indexed location is P (a blob indexed elsewhere needs no copy in P).
//
// A writer puts a blob ID into a snapshot record only after finding it in
// its index with LookupLive (SaveBlob, HasBlob), after storing it itself,
// or by reusing the content list of a file of its parent snapshot. Suppose
// some snapshot written after the mark of (3) references blob b whose
// only indexed copy is in P, and take the first such snapshot S, written
// by W. If W held a lock listed in (2), W ended before the mark, and so
// did its writing of S: contradiction. So W locked after that listing,
// hence after (1), and its index condemned P before W looked anything up:
// LookupLive never returned b in P, and W never stored b in P (a new pack
// has a new name). So W took b from its parent snapshot Q's content. It
// does that without a lookup only if its index condemned no pack when it
// checked (Condemning, after locking, so after (1)): P was then deleted
// already, and Q, which existed when W started, was written either before
// the mark (then it was marked, and b with it: P would not have been
// deleted) or after it (then Q, not S, was the first). Otherwise W looked
// b up and found it absent. Hence no such S exists; and a snapshot
// written before the mark is in the mark, or was deleted and needs
// nothing: P is pardoned, not deleted, whenever one references it.
//
// A lock is stale when its process is gone from this host, or has not
// refreshed it for StaleAfter: a process frozen for longer than that is
// the one case this, like any lock protocol, cannot cover.
//
// Pushes write the remote too, and a push skips the packs the remote's
// listing shows. Prune of a remote (the same code, on the remote opened as
// a repository, under the remote's lock) never condemns a pack the local
// index still knows (PruneOptions.Protect): a push sends snapshots whose
// blobs its local index places in its packs, and the local index forgets
// a pack only when local prune deletes it, which no local snapshot then
// needs; snapshots a push already sent are the remote's own, and the
// remote's mark sees them.
//
// Crashes: every step is redone or finished by the next run. Repacked
// copies are ordinary packs; a record without its locks object gets
// holders from the next run, listed later (so more, never fewer); a pack
// is dropped from the index before it is removed and its record goes last,
// and the index of any process learns of all of it from the records.
//
// Memory: marks and pack usage live in the scratch database; marks gather
// in sets of fixed size first (Marker), and usage in sums of at most 16Ki
// packs (index.UsageBatch). So memory does not grow with the repository's
// blobs; it grows by 32 bytes per pack this run condemns or finds
// condemned.
type PruneOptions struct {
	// DryRun reports what would be done and writes nothing.
	DryRun bool
	// MaxUnused is the share of a pack's bytes that may be unreferenced
	// before its referenced blobs are copied elsewhere and it is condemned;
	// 0 repacks every pack with anything unreferenced.
	MaxUnused float64
	// Refs marks every blob a snapshot record references (snapshot.Refs).
	Refs func(ctx context.Context, record []byte, m *Marker) error
	// Lock is the caller's shared lock on this repository, with purpose
	// "prune": its holder is never waited for, and another process holding
	// a lock with the same purpose makes Prune refuse to run.
	Lock *lock.Lock
	// LockOptions decide which locks are stale (lock.IsStale).
	LockOptions lock.Options
	// Ignore reports locks of processes that never write a snapshot
	// record (a mount, a restore): condemned packs do not wait for them.
	Ignore func(lock.Info) bool
	// Protect reports packs that must not be condemned.
	Protect func(pack blob.ID) (bool, error)
	// Jobs bounds parallel pack reads and tree loads. Default 4.
	Jobs int
	// Step, if set, is called as each step begins (progress, tests), from
	// one goroutine at a time.
	Step   func(step string)
	Logger *slog.Logger
}

// PruneStats say what one Prune did or, with DryRun, would do.
type PruneStats struct {
	Snapshots int
	// Packs and PackBytes are the packs examined: indexed, not condemned.
	Packs     int
	PackBytes int64
	// Unused packs hold nothing referenced; repacked ones too little.
	UnusedPacks int
	UnusedBytes int64
	RepackPacks int
	RepackBytes int64
	// RepackedBlobs are the referenced blobs copied out of them (not
	// counted by a dry run), RepackedBlobBytes their stored bytes.
	RepackedBlobs     int
	RepackedBlobBytes int64
	// Orphans are packs no index knows: left by interrupted backups.
	Orphans int
	// Condemned packs this run; deleted and pardoned ones, of this run's
	// condemnations and earlier ones; Waiting ones stay condemned until
	// the processes in WaitingFor end.
	Condemned    int
	Deleted      int
	DeletedBytes int64
	Pardoned     int
	Waiting      int
	WaitingFor   []string
}

// scratchCache and scratchMemTable size the scratch database's cache and
// memtable. Marks are written once and read about once each, and the
// files they live in stay in the operating system's page cache, which a
// read from it costs a system call, not the process's memory: a larger
// cache only adds to the peak (measured on the benchmark's small dataset:
// 72 MiB peak RSS with 8+4 MiB, 64 MiB with 2+2 MiB). The memtable takes
// the marks as they come: at 1 MiB it was flushed twice as often, and the
// compactions that followed took a fifth more CPU.
const scratchCache, scratchMemTable = 1 << 20, 2 << 20

// MaintenanceIndexOptions are the index's memory bounds for prune and forget
// where they open the index themselves. Prune scans the index in key order
// (the usage step) and looks blobs up where it repacks or settles, each
// about once; forget scans and rewrites history rows in key order: the
// page cache serves both nearly as well as the index's own cache, which
// counts toward the process's memory. Measured on a repository of
// 110,000 files and 30 snapshots, forgetting 15: with the index's cache at
// 8 MiB as for backups, the scratch's at 2+2 MiB and the CLI's heap limit,
// prune peaked at 78 MiB; with these bounds and prune's heap limit, at 57
// MiB, in no more CPU time. The memtable is half the default: forget,
// which deletes and rewrites a snapshot's history rows, peaked 5 MiB
// lower with it, prune 1–2 MiB, for more flushes of what the index replays
// from its write-ahead log at open. A backup that starts while prune or
// forget serves the index shares these bounds.
//
// Flushed memtables are compacted 16 at a time instead of 4: the index
// of a few hundred thousand blobs fits in its last level, which every
// compaction of newly flushed tables rewrites whole, and forget, which
// writes and deletes a snapshot's worth of history rows, flushed 25
// times and rewrote that level 14 times (92 MB written for 31 MB of
// rows, a third of its CPU). The next process that opens the index with
// the default compacts what is left, in one compaction.
var MaintenanceIndexOptions = index.Options{CacheSize: 1 << 20, MemTableSize: 2 << 20, L0Tables: 16}

// ErrPruneRunning says another prune holds a lock on the repository.
var ErrPruneRunning = errors.New("another prune is running")

type pruner struct {
	r       *Repository
	o       PruneOptions
	mu      sync.Mutex // guards st where workers run in parallel
	stepMu  sync.Mutex // one Step call at a time
	st      PruneStats
	scratch *index.Scratch
	marker  *Marker
	copying *semaphore.Weighted // repackBudget
	doomed  blobFilter
	remotes []string // names whose "r" keys go with deleted packs
}

// Prune runs one prune. See PruneOptions for what it guarantees.
func (r *Repository) Prune(ctx context.Context, o PruneOptions) (PruneStats, error) {
	if o.Refs == nil || o.Lock == nil {
		return PruneStats{}, errors.New("prune: Refs and Lock are required")
	}
	if o.MaxUnused < 0 || o.MaxUnused > 1 {
		return PruneStats{}, fmt.Errorf("prune: unused share %v is not between 0 and 1", o.MaxUnused)
	}
	if o.Jobs <= 0 {
		o.Jobs = 4
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	scratch, err := index.OpenScratch(r.fs, r.opts.IndexDir+".prune", index.Options{CacheSize: scratchCache, MemTableSize: scratchMemTable})
	if err != nil {
		return PruneStats{}, err
	}
	p := &pruner{r: r, o: o, scratch: scratch, marker: newMarker(scratch), copying: semaphore.NewWeighted(repackBudget)}
	err = p.run(ctx)
	if cerr := scratch.Close(); err == nil {
		err = cerr
	}
	return p.st, err
}

func (p *pruner) step(name string) {
	p.o.Logger.Debug("prune", "step", name)
	if p.o.Step != nil {
		p.stepMu.Lock()
		defer p.stepMu.Unlock()
		p.o.Step(name)
	}
}

func (p *pruner) run(ctx context.Context) error {
	remotes, err := p.r.Remotes(ctx)
	if err != nil {
		return err
	}
	for name := range remotes {
		p.remotes = append(p.remotes, name)
	}
	p.step("locks")
	ripe, err := p.ripeRecords(ctx)
	if err != nil {
		return err
	}
	p.step("candidates")
	if err := p.listCandidates(); err != nil {
		return err
	}
	p.step("mark")
	if err := p.markSnapshots(ctx); err != nil {
		return err
	}
	p.step("settle")
	if err := p.settle(ctx, ripe); err != nil {
		return err
	}
	p.step("usage")
	unused, repack, err := p.selectPacks(ctx)
	if err != nil {
		return err
	}
	if p.o.DryRun {
		return nil
	}
	p.step("repack")
	if err := p.repack(ctx, repack); err != nil {
		return err
	}
	return p.condemn(ctx, append(unused, repack...))
}
