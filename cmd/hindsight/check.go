package main

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/remote/local"
	"github.com/hindsight-backup/hindsight/snapshot"
)

func (a *app) checkCommand() *cobra.Command {
	var readData, jsonOut bool
	var subset, remoteName string
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check the repository for damage",
		Long: `Check the repository's structure: every index segment is present and
opens, every pack the index knows is present with the right size and a
readable trailer that agrees with the index, every snapshot record opens,
and every snapshot's directory trees load and every file's content is in
the index and not in a damaged pack.

--read-data also reads every pack whole: every blob is decrypted and
hashed, and all of the pack's bytes hashed against its name. Slow (it
reads the whole repository), but the only way to find bit rot.
--read-data-subset n/m reads only the n-th of m parts of the packs, split
by pack ID, so that 1/7 to 7/7 on seven days read everything once;
--read-data-subset p% reads a random p percent of the packs.

--remote NAME checks a replica instead: the remote is opened as a
repository of its own, with its own index segments and snapshot records,
as a machine with only its URL would open it (--repo URL does the same).

Every problem is printed on its own line, naming the pack, blob, index
segment, snapshot and path it concerns. Damage that no snapshot uses
(a missing pack whose snapshots were forgotten) loses nothing: it is a
notice, as are packs left by an interrupted backup. Exit code 4 means
damage was found; 1 means the check itself could not run. 'hindsight
repair' heals what check finds.`,
		Example: `  hindsight check
  hindsight check --read-data
  hindsight check --read-data-subset "$(( $(date +%u) ))/7"
  hindsight check --read-data-subset 5% --remote offsite
  hindsight check --json | jq -r .message`,
		Args: cobra.NoArgs,
		RunE: a.action(func(cmd *cobra.Command, _ []string) error {
			o := checkOptions{remote: remoteName, json: jsonOut}
			if readData {
				o.read = chunkstore.Subset{All: true}
			}
			if subset != "" {
				if readData {
					return usagef("give --read-data or --read-data-subset, not both")
				}
				var err error
				if o.read, err = chunkstore.ParseSubset(subset); err != nil {
					return usageError{fmt.Errorf("--read-data-subset: %w", err)}
				}
			}
			return a.runCheck(cmd.Context(), o)
		}),
	}
	f := cmd.Flags()
	f.BoolVar(&readData, "read-data", false, "read every pack whole: decrypt and hash every blob")
	f.StringVar(&subset, "read-data-subset", "", "read the packs of part `n/m`, or a random `p%` of them")
	f.StringVar(&remoteName, "remote", "", "check the replica on remote `NAME` instead")
	f.BoolVar(&jsonOut, "json", false, "print one JSON object per problem and line")
	return cmd
}

type checkOptions struct {
	read   chunkstore.Subset
	remote string
	json   bool
}

// checkProgress is what the status line shows; the check's phases update
// it as they go.
type checkProgress struct {
	phase               atomic.Value // string
	done, total         atomic.Int64
	readDone, readTotal atomic.Int64
}

func (p *checkProgress) set(phase string, done, total int) {
	p.phase.Store(phase)
	p.done.Store(int64(done))
	p.total.Store(int64(total))
}

// line is the progress line; its bar and ETA follow the bytes read when
// packs are read whole (they take nearly all the time), else the items of
// the phase.
func (p *checkProgress) line(time.Duration) progressLine {
	l := progressLine{counts: fmt.Sprint(p.phase.Load())}
	if t := p.total.Load(); t > 0 {
		l.counts += fmt.Sprintf(": %d of %d", p.done.Load(), t)
		l.done, l.total = uint64(p.done.Load()), uint64(t)
	}
	if t := p.readTotal.Load(); t > 0 && p.phase.Load() == "packs" {
		l.counts += fmt.Sprintf(", %s of %s read", formatBytes(uint64(p.readDone.Load())), formatBytes(uint64(t)))
		l.done, l.total = uint64(p.readDone.Load()), uint64(t)
	}
	return l
}

func (a *app) runCheck(ctx context.Context, o checkOptions) error {
	open := openOptions{lock: sharedLock, purpose: "check", readOnly: true}
	var s *session
	var err error
	if o.remote != "" {
		s, err = a.openReplica(ctx, o.remote, open)
	} else {
		s, err = a.openRepo(ctx, open)
	}
	if err != nil {
		return err
	}
	defer s.close()
	prog := &checkProgress{}
	prog.set("index segments", 0, 0)
	stop, above := a.startProgressAbove(prog.line)
	defer stop()
	rep := &checkReport{a: a, json: o.json, above: above}
	// A remote repository's index is a cache on this machine, which a new
	// machine builds as a matter of course; a local one's is part of the
	// repository, and gone only if something removed it, unless the
	// repository is read-only and the index in the cache too.
	if _, inside := s.repo.Backend().(*local.Backend); inside && !s.readOnly && s.repo.IndexCreated() {
		rep.add(checkLine{level: "notice", area: "index", msg: "the local index was missing or outdated: built again from the index segments"})
	}
	if err := s.repo.CheckSegments(s.ctx, rep.segmentProblem); err != nil {
		return s.err(fmt.Errorf("checking index segments: %w", err))
	}
	packs, err := a.checkPacks(s, o.read, prog)
	if err != nil {
		return s.err(fmt.Errorf("checking packs: %w", err))
	}
	prog.set("snapshot records", 0, 0)
	snaps, unreadable, err := checkRecords(s, rep)
	if err != nil {
		return s.err(fmt.Errorf("reading snapshot records: %w", err))
	}
	c := snapshot.NewChecker(s.repo, packs.damage, rep.snapshotProblem)
	for i, sn := range snaps {
		prog.set("snapshots", i, len(snaps))
		if err := c.Check(s.ctx, sn); err != nil {
			return s.err(fmt.Errorf("checking snapshots: %w", err))
		}
	}
	stop()
	// Damage is known to lose nothing only when every snapshot could be
	// walked.
	for _, p := range packs.problems {
		rep.packProblem(p, unreadable == 0 && !c.Uses(p.Blob) && !c.Uses(p.Pack))
	}
	if !a.quiet && !o.json {
		fmt.Fprintf(a.stdout, "checked %d snapshots and %d packs (data of %d, %s): %d problems, %d notices\n",
			len(snaps), packs.total, packs.read, o.read, rep.damage, rep.notices)
	}
	if rep.damage > 0 {
		return fmt.Errorf("%w: %d problems", errDamage, rep.damage)
	}
	return nil
}

// packCheck is what the pack check found: the problems, printed once the
// snapshots tell whether anything uses them, and the damage the snapshot
// check looks for.
type packCheck struct {
	problems    []chunkstore.Problem
	damage      snapshot.Damage
	total, read int
}

func (a *app) checkPacks(s *session, read chunkstore.Subset, prog *checkProgress) (*packCheck, error) {
	pc := &packCheck{damage: snapshot.Damage{Packs: map[blob.ID]bool{}, Blobs: map[blob.ID]bool{}}}
	prog.set("packs", 0, 0)
	o := chunkstore.CheckOptions{ReadData: read, Progress: func(p chunkstore.CheckProgress) {
		prog.set("packs", p.Packs, p.PacksTotal)
		prog.readDone.Store(p.Read)
		prog.readTotal.Store(p.ReadTotal)
		pc.total, pc.read = p.PacksTotal, p.PacksRead
	}}
	err := s.repo.CheckPacks(s.ctx, o, func(p chunkstore.Problem) {
		pc.problems = append(pc.problems, p)
		switch {
		case p.Harmless:
		case !p.Blob.IsZero():
			pc.damage.Blobs[p.Blob] = true
		case !p.Pack.IsZero():
			pc.damage.Packs[p.Pack] = true
		}
	})
	return pc, err
}

// checkRecords reads every snapshot record from the repository itself and
// reports those that do not open. It returns the others, oldest first.
func checkRecords(s *session, rep *checkReport) (snaps []snapshot.Snapshot, unreadable int, err error) {
	err = s.repo.StoredSnapshots(s.ctx, func(id blob.ID, b []byte, err error) error {
		if err != nil && !errors.Is(err, chunkstore.ErrCorrupt) {
			return err
		}
		var rec *snapshot.Record
		if err == nil {
			rec, err = snapshot.DecodeRecord(b)
		}
		switch {
		case errors.Is(err, snapshot.ErrFormatVersion):
			rep.add(checkLine{level: "notice", area: "snapshot", snap: id.String(), msg: err.Error() + ": not checked"})
		case err != nil:
			unreadable++
			rep.add(checkLine{level: "damage", area: "snapshot", snap: id.String(),
				msg: fmt.Sprintf("record unreadable: %v ('hindsight repair snapshots' writes it again from a replica or removes it)", err)})
		default:
			snaps = append(snaps, snapshot.Snapshot{ID: id, Record: rec})
		}
		return nil
	})
	snapshot.Sort(snaps)
	return snaps, unreadable, err
}
