package main

import (
	"context"
	"fmt"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/lock"
	"github.com/hindsight-backup/hindsight/remote"
	"github.com/hindsight-backup/hindsight/snapshot"
)

type pruneFlags struct {
	dryRun    bool
	maxUnused string
	remote    string
	json      bool
}

// pruneStepDelay names the variable tests set to make prune pause at each
// step, so that a SIGKILL can land inside any of them.
const pruneStepDelay = "HINDSIGHT_TEST_PRUNE_STEP_DELAY"

func (a *app) pruneCommand() *cobra.Command {
	var fl pruneFlags
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Remove data no snapshot references",
		Long: `Find the data that no snapshot references and free its space: packs that
hold nothing referenced are deleted; packs in which more than --max-unused
of the bytes are unreferenced have their referenced data copied into new
packs first.

Prune takes a shared lock: backups, pushes and restores go on while it
runs. So that none of them loses data it is about to use, prune deletes a
pack in two steps. First it condemns it (a record in the repository's
condemned/ directory): from then on no backup uses data in it. Then, once
every process that was running at that moment has ended, a prune deletes
it, unless a snapshot written meanwhile turned out to need it. When nothing
else runs, one prune does both steps; otherwise the next prune finishes
the job, and prune says what it is waiting for. Mounts, restores and other
commands that only read are not waited for.

Prune may be interrupted at any point, even killed: the repository stays
consistent, and the next prune finishes the work.

With --remote, the remote (a name given to 'hindsight remote add') is
pruned in the same way, by its own snapshots; packs the local repository
still has are kept there, since a push may rely on them. Prune a remote
that a repository pushes to this way, from that repository: pruning it as
a repository of its own (--repo s3:...) cannot know what the next push
relies on.`,
		Example: `  hindsight prune
  hindsight prune --dry-run
  hindsight prune --max-unused 20%
  hindsight prune --remote offsite`,
		Args: cobra.NoArgs,
		RunE: a.action(func(cmd *cobra.Command, _ []string) error {
			return a.runPrune(cmd.Context(), fl)
		}),
	}
	f := cmd.Flags()
	f.BoolVarP(&fl.dryRun, "dry-run", "n", false, "only report what would be removed")
	f.StringVar(&fl.maxUnused, "max-unused", "5%", "repack packs in which more than `SHARE` (a percentage) is unreferenced")
	f.StringVar(&fl.remote, "remote", "", "prune the remote `NAME` instead of the local repository")
	f.BoolVar(&fl.json, "json", false, "print the result as one JSON object")
	return cmd
}

// maintenanceMemoryLimit replaces the CLI's default heap limit for prune
// and forget. What they keep is small and fixed (prune: 5.2 MiB of marks
// not yet spilled, two 1 MiB Bloom filters; forget: 2 MiB of trees); the rest of
// their heap is trees, rows and buffers dead as soon as they are used,
// which the default limit let pile up to twice the live data. The limit
// must clear the live heap plus the runtime's own ~7 MiB: at 16 MiB prune's
// 10 MiB of live heap left the collector no headroom (some 900 cycles a
// prune, half its CPU); at 20 MiB, on the 30-snapshot benchmark, prune
// took 1.6-1.7 s instead of 2.7-3.4 s for the same peak RSS (47-49 MiB).
const maintenanceMemoryLimit = 20 << 20

// lowerMemoryLimit applies maintenanceMemoryLimit unless GOMEMLIMIT is set.
func (a *app) lowerMemoryLimit() {
	if a.getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(maintenanceMemoryLimit)
	}
}

func (a *app) runPrune(ctx context.Context, fl pruneFlags) error {
	a.lowerMemoryLimit()
	share, err := parseShare(fl.maxUnused)
	if err != nil {
		return usagef("--max-unused: %v", err)
	}
	var delay time.Duration
	if v := a.getenv(pruneStepDelay); v != "" {
		if delay, err = time.ParseDuration(v); err != nil {
			return fmt.Errorf("%s: %v", pruneStepDelay, err)
		}
	}
	o := chunkstore.PruneOptions{DryRun: fl.dryRun, MaxUnused: share, Ignore: readsOnly, Logger: a.log}
	var step atomic.Pointer[string]
	o.Step = func(name string) {
		step.Store(&name)
		time.Sleep(delay)
	}
	s, done, err := a.openPruned(ctx, fl.remote, &o)
	if err != nil {
		return err
	}
	defer done()
	o.Lock = s.lock
	// Marking what snapshots reference takes most of a prune: its bar
	// counts the snapshots walked.
	var walked atomic.Uint64
	// The bar's total comes from the index's copy of the records: no
	// listing of the repository, no record decoded, before prune's own.
	snaps := uint64(0)
	_ = s.repo.Index().Snapshots(func(blob.ID, []byte) error { snaps++; return nil })
	o.Refs = func(ctx context.Context, rec []byte, m *chunkstore.Marker) error {
		defer walked.Add(1)
		return snapshot.Refs(ctx, s.repo, rec, m, 4)
	}
	stop := a.startProgress(func(time.Duration) progressLine {
		l := progressLine{counts: "prune"}
		if p := step.Load(); p != nil {
			l.counts += ": " + *p
		}
		if n := walked.Load(); n > 0 {
			l.counts += fmt.Sprintf(", %d of %d snapshots marked", n, snaps)
			l.done, l.total = n, max(snaps, n)
		}
		return l
	})
	st, err := s.repo.Prune(s.ctx, o)
	stop()
	if err != nil {
		return s.err(fmt.Errorf("prune %s: %w", s.repo.Backend().Location(), err))
	}
	return a.printPrune(st, fl)
}

// openPruned opens the repository to prune under a shared "prune" lock:
// the local one, or the remote called name, with its own cache index and
// with the packs of the local index protected. done closes everything.
func (a *app) openPruned(ctx context.Context, name string, o *chunkstore.PruneOptions) (s *session, done func(), err error) {
	if name == "" {
		s, err := a.openRepo(ctx, openOptions{lock: sharedLock, purpose: "prune", index: chunkstore.MaintenanceIndexOptions, removeTemp: true})
		if err != nil {
			return nil, nil, err
		}
		return s, s.close, nil
	}
	local, be, err := a.openWithRemote(ctx, "prune --remote", name, remote.WrapOptions{Connections: 8})
	if err != nil {
		return nil, nil, err
	}
	closeLocal := func() {
		be.Close()
		local.close()
	}
	cfg, err := a.loadConfig()
	if err == nil {
		s, err = a.openSession(local.ctx, cfg, be, openOptions{lock: sharedLock, purpose: "prune", cacheName: "prune-" + name, index: chunkstore.MaintenanceIndexOptions, removeTemp: true})
	}
	if err != nil {
		closeLocal()
		return nil, nil, err
	}
	o.Protect = func(pack blob.ID) (bool, error) { return local.repo.Index().HasPack(pack) }
	return s, func() { s.close(); closeLocal() }, nil
}

// readsOnly reports locks of commands that never write a snapshot record:
// condemned packs need not wait for them to end. Any other purpose, one
// this version does not know included, is waited for. check is waited
// for: a pack deleted under it would look lost.
//
// forget removes records and writes history rows in its index, never a
// record: a pack's deletion waits only for processes that could name its
// blobs in a new record (see chunkstore.PruneOptions), and a record
// removed makes fewer blobs referenced, never more. Its lock is exclusive,
// so it holds none while prune runs; but a forget waiting for prune's lock
// writes one on each try, which prune's listing may catch. (tag is not
// here: it writes a record.)
func readsOnly(l lock.Info) bool { return l.Purpose == "forget" || unguardedReader(l.Purpose) }

// parseShare reads a percentage such as 5% or 12.5 (percent either way).
func parseShare(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s), "%"), 64)
	if err != nil || v < 0 || v > 100 {
		return 0, fmt.Errorf("%q is not a percentage between 0 and 100", s)
	}
	return v / 100, nil
}

func (a *app) printPrune(st chunkstore.PruneStats, fl pruneFlags) error {
	if fl.json {
		return writeJSON(a.stdout, struct {
			DryRun        bool     `json:"dry_run"`
			Snapshots     int      `json:"snapshots"`
			Packs         int      `json:"packs"`
			PackBytes     int64    `json:"pack_bytes"`
			UnusedPacks   int      `json:"unused_packs"`
			UnusedBytes   int64    `json:"unused_bytes"`
			Orphans       int      `json:"orphan_packs"`
			RepackPacks   int      `json:"repacked_packs"`
			RepackBytes   int64    `json:"repacked_pack_bytes"`
			RepackedBlobs int      `json:"repacked_blobs"`
			RepackedBytes int64    `json:"repacked_blob_bytes"`
			Condemned     int      `json:"condemned_packs"`
			Deleted       int      `json:"deleted_packs"`
			DeletedBytes  int64    `json:"deleted_bytes"`
			Pardoned      int      `json:"pardoned_packs"`
			Waiting       int      `json:"waiting_packs"`
			WaitingFor    []string `json:"waiting_for"`
		}{fl.dryRun, st.Snapshots, st.Packs, st.PackBytes, st.UnusedPacks, st.UnusedBytes, st.Orphans,
			st.RepackPacks, st.RepackBytes, st.RepackedBlobs, st.RepackedBlobBytes, st.Condemned,
			st.Deleted, st.DeletedBytes, st.Pardoned, st.Waiting, nonNil(st.WaitingFor)})
	}
	if a.quiet {
		return nil
	}
	verb := "deleted"
	if fl.dryRun {
		verb = "would delete"
	}
	fmt.Fprintf(a.stdout, "%d snapshots reference data in %d packs (%s)\n", st.Snapshots, st.Packs, formatBytes(uint64(st.PackBytes)))
	fmt.Fprintf(a.stdout, "  unreferenced: %d packs (%s), %d of them left by interrupted backups\n",
		st.UnusedPacks+st.Orphans, formatBytes(uint64(st.UnusedBytes)), st.Orphans)
	fmt.Fprintf(a.stdout, "  repack: %d packs (%s), copying %s of referenced blobs out of them\n",
		st.RepackPacks, formatBytes(uint64(st.RepackBytes)), formatBytes(uint64(st.RepackedBlobBytes)))
	fmt.Fprintf(a.stdout, "  %s %d packs (%s); %d condemned packs were needed again and kept\n",
		verb, st.Deleted, formatBytes(uint64(st.DeletedBytes)), st.Pardoned)
	if st.Waiting > 0 {
		fmt.Fprintf(a.stdout, "  %d condemned packs wait for processes that were running when they were condemned; the next prune deletes them once these end:\n", st.Waiting)
		for _, w := range st.WaitingFor {
			fmt.Fprintf(a.stdout, "    %s\n", w)
		}
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
