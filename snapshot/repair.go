package snapshot

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/chunkstore/blob"
)

// RepairRepo is what RepairSnapshots needs of a repository;
// *chunkstore.Repository implements it.
type RepairRepo interface {
	EditRepo
	StoredSnapshots(ctx context.Context, fn func(id blob.ID, record []byte, err error) error) error
	CachedSnapshot(id blob.ID) ([]byte, bool, error)
}

// RepairOptions tune RepairSnapshots.
type RepairOptions struct {
	// Damage is what a pack check found; blobs the index lacks are lost
	// too.
	Damage Damage
	// DryRun reports what would be done and writes nothing.
	DryRun bool
	// Fetch, if set, returns the plaintext of record id from a replica,
	// named FetchFrom in reports, once the replica's copy authenticates;
	// unless DryRun, it has then written that copy here, byte for byte.
	Fetch     func(ctx context.Context, id blob.ID) ([]byte, error)
	FetchFrom string
	// Report is told of every snapshot repaired (or, with DryRun, that
	// would be).
	Report func(Repair)
	// Progress, if set, is called after each snapshot is walked.
	Progress func(done, total int)
}

// RepairAction is what happened to one snapshot.
type RepairAction string

const (
	RepairRestored  RepairAction = "restored"  // unreadable record written again from a replica or the index's cache
	RepairRewritten RepairAction = "rewritten" // recorded anew without what is lost; the old record removed
	RepairRemoved   RepairAction = "removed"   // nothing of it can be read: record removed
	RepairSkipped   RepairAction = "skipped"   // written by a newer hindsight: left alone
)

// Repair is what RepairSnapshots did to one snapshot.
type Repair struct {
	Snapshot blob.ID
	Action   RepairAction
	New      blob.ID // the rewritten snapshot
	Lost     []LostPath
	Message  string
}

// RepairedTag marks a snapshot rewritten by a repair.
const RepairedTag = "repaired"

// RepairSnapshots makes every snapshot readable again. A record that does
// not authenticate is written again from a replica (opts.Fetch) or the
// copy the index cached, else removed. A snapshot some of whose data is
// lost is recorded anew, as a new snapshot of the same time, source and
// tags plus RepairedTag, whose lost files hold zeros where their lost
// chunks were and whose unreadable directories are empty, each listed as
// incomplete; the old record is removed after the new one is durable.
// History rows are then fixed for the sources it touched.
func RepairSnapshots(ctx context.Context, repo RepairRepo, o RepairOptions) error {
	snaps, unknownGone, err := repairRecords(ctx, repo, o)
	if err != nil {
		return err
	}
	Sort(snaps)
	w := newRewriter(repo, o.Damage, o.DryRun)
	var changes []change
	for i, s := range snaps {
		c, err := w.snapshot(ctx, s)
		if err != nil {
			return fmt.Errorf("snapshot %s: %w", s.ID.Short(), err)
		}
		if o.Progress != nil {
			o.Progress(i+1, len(snaps))
		}
		if c == nil {
			continue
		}
		changes = append(changes, *c)
		if !o.DryRun {
			if err := c.apply(ctx, repo); err != nil {
				return err
			}
		}
		o.Report(c.report())
	}
	if o.DryRun {
		return nil
	}
	if err := fixHistory(ctx, repo, snaps, changes); err != nil {
		return fmt.Errorf("history: %w", err)
	}
	if unknownGone {
		// A record that could not be read was removed, and with it the
		// source whose history rows needed fixing: fix them all.
		return RebuildHistory(ctx, repo)
	}
	return nil
}

// Sort orders snapshots as List returns them: oldest first, then by ID.
func Sort(snaps []Snapshot) {
	sort.Slice(snaps, func(i, j int) bool {
		a, b := snaps[i], snaps[j]
		if !a.Record.Time.Equal(b.Record.Time) {
			return a.Record.Time.Before(b.Record.Time)
		}
		return a.ID.String() < b.ID.String()
	})
}

// change is one snapshot rewritten (new set) or removed (new nil).
type change struct {
	old  Snapshot
	new  *Snapshot
	lost []LostPath
	why  string // for a removal
}

func (c *change) report() Repair {
	r := Repair{Snapshot: c.old.ID, Action: RepairRemoved, Lost: c.lost, Message: c.why}
	if c.new != nil {
		r.Action, r.New = RepairRewritten, c.new.ID
	}
	return r
}

// apply writes the new record before removing the old: a crash in between
// leaves both, never neither.
func (c *change) apply(ctx context.Context, repo RepairRepo) error {
	if c.new != nil {
		b, err := EncodeRecord(c.new.Record)
		if err != nil {
			return err
		}
		if err := repo.SaveSnapshot(ctx, c.new.ID, b); err != nil {
			return err
		}
	}
	return repo.RemoveSnapshot(ctx, c.old.ID)
}

// snapshot returns how s changes, or nil when nothing of it is lost.
func (w *rewriter) snapshot(ctx context.Context, s Snapshot) (*change, error) {
	f, err := w.tree(ctx, s.Record.Tree, true)
	switch {
	case err != nil:
		return nil, err
	case f.gone != "":
		return &change{old: s, why: "its top directory is lost: " + f.gone}, nil
	case f.id == s.Record.Tree:
		return nil, nil
	}
	id, err := newSnapshotID()
	if err != nil {
		return nil, err
	}
	rec := *s.Record
	rec.Tree = f.id
	if !slices.Contains(rec.Tags, RepairedTag) {
		rec.Tags = append(slices.Clone(rec.Tags), RepairedTag)
	}
	rec.Incomplete = slices.Clone(rec.Incomplete)
	for _, l := range f.lost {
		rec.AddIncomplete(l.Path + ": lost in repair: " + l.Reason)
	}
	return &change{old: s, new: &Snapshot{ID: id, Record: &rec}, lost: f.lost}, nil
}

// repairRecords reads every record from the repository itself and heals
// those that do not authenticate. It returns the readable snapshots, and
// whether a record was removed without its source being known.
func repairRecords(ctx context.Context, repo RepairRepo, o RepairOptions) (snaps []Snapshot, unknownGone bool, err error) {
	err = repo.StoredSnapshots(ctx, func(id blob.ID, b []byte, err error) error {
		if err != nil && !errors.Is(err, chunkstore.ErrCorrupt) {
			return err
		}
		var rec *Record
		if err == nil {
			if rec, err = DecodeRecord(b); errors.Is(err, ErrFormatVersion) {
				o.Report(Repair{Snapshot: id, Action: RepairSkipped, Message: err.Error()})
				return nil
			}
		}
		if err == nil {
			snaps = append(snaps, Snapshot{ID: id, Record: rec})
			return nil
		}
		s, r, err := healRecord(ctx, repo, o, id, err)
		if err != nil {
			return err
		}
		if s != nil {
			snaps = append(snaps, *s)
		} else {
			unknownGone = true
		}
		o.Report(r)
		return nil
	})
	return snaps, unknownGone, err
}

// healRecord writes record id again from the first copy that decodes: the
// replica's, then the index's cache. With none, the record is removed.
func healRecord(ctx context.Context, repo RepairRepo, o RepairOptions, id blob.ID, damage error) (*Snapshot, Repair, error) {
	type source struct {
		name   string
		load   func() ([]byte, error)
		writes bool // load wrote the copy it read
	}
	var sources []source
	if o.Fetch != nil {
		// The replica's bytes, not a new sealing of the same record: a
		// name holds the same bytes in every copy of a repository.
		sources = append(sources, source{o.FetchFrom, func() ([]byte, error) { return o.Fetch(ctx, id) }, true})
	}
	sources = append(sources, source{"the index's cache", func() ([]byte, error) {
		b, ok, err := repo.CachedSnapshot(id)
		if err == nil && !ok {
			err = errors.New("not cached")
		}
		return b, err
	}, false})
	why := fmt.Sprintf("record unreadable (%v)", damage)
	for _, src := range sources {
		b, err := src.load()
		if ctx.Err() != nil {
			return nil, Repair{}, ctx.Err()
		}
		var rec *Record
		if err == nil {
			rec, err = DecodeRecord(b)
		}
		if err != nil {
			why += fmt.Sprintf("; %s: %v", src.name, err)
			continue
		}
		if !o.DryRun && !src.writes {
			if err := repo.SaveSnapshot(ctx, id, b); err != nil {
				return nil, Repair{}, err
			}
		}
		return &Snapshot{ID: id, Record: rec}, Repair{Snapshot: id, Action: RepairRestored, Message: why + "; written again from " + src.name}, nil
	}
	if !o.DryRun {
		if err := repo.RemoveSnapshot(ctx, id); err != nil {
			return nil, Repair{}, err
		}
	}
	return nil, Repair{Snapshot: id, Action: RepairRemoved, Message: why + "; no copy left"}, nil
}
