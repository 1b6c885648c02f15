package snapshot

import (
	"context"
	"fmt"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
)

// TagEdit is a snapshot and the tags it is to carry.
type TagEdit struct {
	Snapshot Snapshot
	Tags     []string
}

// SetTags gives snapshots new tags, and returns their new IDs in the
// order of edits.
//
// A record is never rewritten: the snapshot is saved again, with the new
// tags, under a new ID, and the old record is removed (restic does the
// same). Every copy of the repository then holds, under a given name,
// only ever the same bytes. Push sends what a replica lacks by name, so
// a record changed in place would never reach a replica that has the old
// one, and the index caches records by ID; a new ID reaches both. Until
// push also removes what was removed here, a replica lists the old record
// beside the new one: a duplicate, never a stale one. Records naming the
// old ID as their parent keep it; the parent only records what a backup
// was compared with.
//
// The order is that of a backup, then that of a forget: the new
// snapshot's history rows (copies of the old one's), its record, removal
// of the old record, removal of its rows. A crash leaves at most both
// records, which hold the same tree, or rows nobody lists.
func SetTags(ctx context.Context, repo EditRepo, edits []TagEdit) ([]blob.ID, error) {
	renamed := make(map[blob.ID]blob.ID, len(edits))
	ids := make([]blob.ID, len(edits))
	sources := make(map[string]bool)
	var order []string
	for i, e := range edits {
		id, err := newSnapshotID()
		if err != nil {
			return nil, err
		}
		ids[i], renamed[e.Snapshot.ID] = id, id
		if r := e.Snapshot.Record; r.Kind == KindFiles && !sources[HistorySource(r.Host, r.Source)] {
			sources[HistorySource(r.Host, r.Source)] = true
			order = append(order, HistorySource(r.Host, r.Source))
		}
	}
	for _, src := range order {
		if err := copyRows(repo, src, renamed); err != nil {
			return nil, fmt.Errorf("history rows of %s: %w", src, err)
		}
	}
	for i, e := range edits {
		rec := *e.Snapshot.Record
		rec.Tags = e.Tags
		b, err := EncodeRecord(&rec)
		if err != nil {
			return nil, err
		}
		if err := repo.SaveSnapshot(ctx, ids[i], b); err != nil {
			return nil, err
		}
		if err := repo.RemoveSnapshot(ctx, e.Snapshot.ID); err != nil {
			return nil, fmt.Errorf("remove snapshot %s: %w", e.Snapshot.ID.Short(), err)
		}
	}
	for _, src := range order {
		err := sweepRows(repo, src, func(r *index.HistoryRow) (bool, error) {
			_, old := renamed[r.Snapshot]
			return old, nil
		})
		if err != nil {
			return nil, fmt.Errorf("history rows of %s: %w", src, err)
		}
	}
	return ids, nil
}

// copyRows gives each renamed snapshot of source a copy of its rows under
// its new ID.
func copyRows(repo Repo, source string, renamed map[blob.ID]blob.ID) error {
	h := repo.Index().NewHistoryBatch()
	err := repo.Index().HistoryRows(source, func(r *index.HistoryRow) error {
		id, ok := renamed[r.Snapshot]
		if !ok {
			return nil
		}
		c := *r
		c.Snapshot = id
		return h.Put(&c)
	})
	if err != nil {
		h.Abort()
		return err
	}
	return h.Commit()
}
