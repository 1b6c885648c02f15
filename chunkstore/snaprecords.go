package chunkstore

import (
	"context"
	"fmt"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/remote"
)

// StoredSnapshots calls fn for every snapshot record in the backend, read
// from there rather than from the index's cache (which would hide a record
// damaged since it was cached), with its plaintext or why it could not be
// read. A record that fails authentication has an error wrapping
// ErrCorrupt.
func (r *Repository) StoredSnapshots(ctx context.Context, fn func(id blob.ID, record []byte, err error) error) error {
	objs, err := listObjects(ctx, r.be, snapshotsPrefix)
	if err != nil {
		return err
	}
	for _, fi := range objs {
		id, err := idFromName(fi.Name)
		if err != nil {
			continue
		}
		rec, err := r.LoadSnapshot(ctx, id)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := fn(id, rec, err); err != nil {
			return err
		}
	}
	return nil
}

// CachedSnapshot returns the record the index cached when it last read
// snapshot id intact: a second copy of a record damaged since.
func (r *Repository) CachedSnapshot(id blob.ID) ([]byte, bool, error) {
	var rec []byte
	err := r.idx.Snapshots(func(sid blob.ID, b []byte) error {
		if sid == id {
			rec = append([]byte(nil), b...)
		}
		return nil
	})
	return rec, rec != nil, err
}

// LoadSnapshotFrom returns the plaintext of record id as src holds it, once
// it authenticates: src is a replica of this repository, made by push,
// whose copy heals a record damaged here.
func (r *Repository) LoadSnapshotFrom(ctx context.Context, src remote.Backend, id blob.ID) ([]byte, error) {
	b, err := loadAll(ctx, src, snapshotsPrefix+id.String())
	if err != nil {
		return nil, fmt.Errorf("snapshot %s on %s: %w", id.Short(), src.Location(), err)
	}
	plain, err := r.codec.Open(nil, b, snapshotAD(id))
	if err != nil {
		return nil, fmt.Errorf("snapshot %s on %s: %w: %v", id.Short(), src.Location(), ErrCorrupt, err)
	}
	return plain, nil
}
