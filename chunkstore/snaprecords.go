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
// it authenticates: src is a replica of this repository, made by push.
func (r *Repository) LoadSnapshotFrom(ctx context.Context, src remote.Backend, id blob.ID) ([]byte, error) {
	plain, _, err := r.snapshotFrom(ctx, src, id)
	return plain, err
}

// FetchSnapshot is LoadSnapshotFrom that also writes src's copy here, byte
// for byte, healing a record damaged here: a name holds the same bytes in
// every copy of a repository.
func (r *Repository) FetchSnapshot(ctx context.Context, src remote.Backend, id blob.ID) ([]byte, error) {
	plain, sealed, err := r.snapshotFrom(ctx, src, id)
	if err != nil {
		return nil, err
	}
	if err := saveBytes(ctx, r.be, snapshotsPrefix+id.String(), sealed); err != nil {
		return nil, fmt.Errorf("write snapshot record: %w", err)
	}
	return plain, r.idx.PutSnapshot(id, plain)
}

func (r *Repository) snapshotFrom(ctx context.Context, src remote.Backend, id blob.ID) (plain, sealed []byte, err error) {
	sealed, err = loadAll(ctx, src, snapshotsPrefix+id.String())
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot %s on %s: %w", id.Short(), src.Location(), err)
	}
	plain, err = r.codec.Open(nil, sealed, snapshotAD(id))
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot %s on %s: %w: %v", id.Short(), src.Location(), ErrCorrupt, err)
	}
	return plain, sealed, nil
}
