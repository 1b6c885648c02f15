package chunkstore

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/codec"
	"github.com/hindsight-backup/hindsight/remote"
)

// NewSnapshotID returns a random snapshot ID. Snapshot IDs are chosen when
// a backup starts, not derived from the record, so that history rows
// written during the backup can already name their snapshot.
func NewSnapshotID() (blob.ID, error) {
	var id blob.ID
	_, err := rand.Read(id[:])
	return id, err
}

// snapshotAD binds a sealed record to its name, so that a record cannot be
// passed off under another snapshot's ID.
func snapshotAD(id blob.ID) string { return codec.ADSnapshot + " " + id.String() }

// SaveSnapshot stores a snapshot record (opaque bytes to this package) under
// id. It flushes first: the record is the last step of the durability order
// and may only exist once everything it references does.
func (r *Repository) SaveSnapshot(ctx context.Context, id blob.ID, record []byte) error {
	if err := r.Flush(ctx); err != nil {
		return err
	}
	sealed, err := r.codec.Seal(nil, record, snapshotAD(id))
	if err != nil {
		return err
	}
	if err := saveBytes(ctx, r.be, snapshotsPrefix+id.String(), sealed); err != nil {
		return fmt.Errorf("write snapshot record: %w", err)
	}
	if r.idx != nil {
		return r.idx.PutSnapshot(id, record)
	}
	return nil
}

// LoadSnapshot returns a snapshot record's plaintext.
func (r *Repository) LoadSnapshot(ctx context.Context, id blob.ID) ([]byte, error) {
	b, err := loadAll(ctx, r.be, snapshotsPrefix+id.String())
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", id.Short(), err)
	}
	plain, err := r.codec.Open(nil, b, snapshotAD(id))
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w: %v", id.Short(), ErrCorrupt, err)
	}
	return plain, nil
}

// ListSnapshots calls fn for every snapshot record in the backend. Records
// already in the index's cache are not downloaded again; cache rows of
// records no longer in the backend are dropped.
func (r *Repository) ListSnapshots(ctx context.Context, fn func(id blob.ID, record []byte) error) error {
	present := make(map[blob.ID]bool)
	err := r.be.List(ctx, snapshotsPrefix, func(fi remote.FileInfo) error {
		if id, err := idFromName(fi.Name); err == nil {
			present[id] = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	var stale []blob.ID
	err = r.idx.Snapshots(func(id blob.ID, rec []byte) error {
		if !present[id] {
			stale = append(stale, id)
			return nil
		}
		delete(present, id)
		return fn(id, rec)
	})
	if err != nil {
		return err
	}
	for _, id := range stale {
		if err := r.idx.DeleteSnapshot(id); err != nil {
			return err
		}
	}
	for id := range present {
		rec, err := r.LoadSnapshot(ctx, id)
		if err != nil {
			return err
		}
		if err := r.idx.PutSnapshot(id, rec); err != nil {
			return err
		}
		if err := fn(id, rec); err != nil {
			return err
		}
	}
	return nil
}

// RemoveSnapshot deletes a snapshot record.
func (r *Repository) RemoveSnapshot(ctx context.Context, id blob.ID) error {
	if err := r.be.Remove(ctx, snapshotsPrefix+id.String()); err != nil {
		return err
	}
	return r.idx.DeleteSnapshot(id)
}
