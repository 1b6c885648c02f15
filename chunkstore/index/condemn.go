package index

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
)

// RecordID names a condemnation record (chunkstore/condemned.go).
type RecordID [16]byte

// Condemnation is one "c" key: a pack that a record condemns.
type Condemnation struct {
	Pack   blob.ID
	Record RecordID
	// Gone marks a tombstone: the pack was deleted, and "b" keys of this
	// index may still name it.
	Gone bool
}

func (c Condemnation) encode() []byte {
	v := make([]byte, 0, len(c.Record)+1)
	v = append(v, c.Record[:]...)
	if c.Gone {
		return append(v, 1)
	}
	return append(v, 0)
}

func decodeCondemnation(pack blob.ID, v []byte) (Condemnation, error) {
	c := Condemnation{Pack: pack}
	if len(v) != len(c.Record)+1 || v[len(c.Record)] > 1 {
		return c, fmt.Errorf("index: condemnation of %d bytes", len(v))
	}
	copy(c.Record[:], v)
	c.Gone = v[len(c.Record)] == 1
	return c, nil
}

// BlobRef names a blob without its location.
type BlobRef struct {
	Type blob.Type
	ID   blob.ID
}

// Compare orders blobs as their keys are: by type, then ID.
func (r BlobRef) Compare(o BlobRef) int {
	return cmp.Or(cmp.Compare(r.Type, o.Type), bytes.Compare(r.ID[:], o.ID[:]))
}

// condemnation returns the pack's "c" key, if it has one.
func (d *DB) condemnation(pack blob.ID) (Condemnation, bool, error) {
	v, closer, err := d.db.Get(idKey(prefixCondemn, pack))
	if errors.Is(err, pebble.ErrNotFound) {
		return Condemnation{}, false, nil
	}
	if err != nil {
		return Condemnation{}, false, err
	}
	defer closer.Close()
	c, err := decodeCondemnation(pack, v)
	return c, err == nil, err
}

func batchHas(b *pebble.Batch, key []byte) (bool, error) {
	_, closer, err := b.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, closer.Close()
}

// LookupLive is Lookup as writers deduplicate with: a blob whose pack is
// condemned counts as absent, so that a writer stores a new copy instead of
// referencing one that prune is going to delete.
func (d *DB) LookupLive(t blob.Type, id blob.ID) (Location, bool, error) {
	l, ok, err := d.Lookup(t, id)
	if err != nil || !ok {
		return Location{}, false, err
	}
	if condemned, err := d.has(idKey(prefixCondemn, l.Pack)); err != nil || condemned {
		return Location{}, false, err
	}
	return l, true, nil
}

// Condemn records, with a sync, that record condemns packs, and takes them
// off the list of packs a segment must still list. It is the moment after
// which no writer of this index deduplicates against their blobs.
func (d *DB) Condemn(record RecordID, packs []blob.ID) error {
	d.rmw.Lock()
	defer d.rmw.Unlock()
	b := d.db.NewBatch()
	defer b.Close()
	v := Condemnation{Record: record}.encode()
	for _, p := range packs {
		if err := b.Set(idKey(prefixCondemn, p), v, nil); err != nil {
			return err
		}
		if err := b.Delete(idKey(prefixUnlisted, p), nil); err != nil {
			return err
		}
	}
	return d.guard.write(func() error { return b.Commit(pebble.Sync) })
}

// Uncondemn lifts the condemnation of pack unless another record than
// record condemned it since; the pack's blobs count again for writers.
func (d *DB) Uncondemn(record RecordID, pack blob.ID) error {
	d.rmw.Lock()
	defer d.rmw.Unlock()
	c, ok, err := d.condemnation(pack)
	if err != nil || !ok || c.Record != record || c.Gone {
		return err
	}
	return d.guard.write(func() error { return d.db.Delete(idKey(prefixCondemn, pack), pebble.Sync) })
}

// Bury records that pack, condemned by record, was deleted by a process
// that did not tell this index (another host's prune of a shared remote).
// Its blobs cannot be found without reading every "b" key, so the "c" key
// stays as a tombstone that keeps writers from referencing them.
func (d *DB) Bury(record RecordID, pack blob.ID) error {
	d.rmw.Lock()
	defer d.rmw.Unlock()
	c, ok, err := d.condemnation(pack)
	if err != nil || !ok || c.Record != record || c.Gone {
		return err
	}
	c.Gone = true
	b := d.db.NewBatch()
	defer b.Close()
	if err := b.Set(idKey(prefixCondemn, pack), c.encode(), nil); err != nil {
		return err
	}
	if err := deletePackRows(b, pack, nil); err != nil {
		return err
	}
	return d.guard.write(func() error { return b.Commit(pebble.Sync) })
}

// DropPack forgets a pack that prune is deleting: every key about the pack
// itself, including the named remotes' records of holding it, and the
// location of each of blobs that still points into it. Where moved has
// another location for such a blob (a copy in a pack that stays), the blob
// points there instead, so that no copy in a remaining pack goes unindexed.
func (d *DB) DropPack(pack blob.ID, blobs []BlobRef, moved []BlobEntry, remotes []string) error {
	d.rmw.Lock()
	defer d.rmw.Unlock()
	b := d.db.NewBatch()
	defer b.Close()
	elsewhere := make(map[BlobRef]Location, len(moved))
	for _, e := range moved {
		elsewhere[BlobRef{e.Type, e.ID}] = e.Location
	}
	err := d.LookupMany(blobs, func(i int, l Location) error {
		r := blobs[i]
		if l.Pack != pack {
			return nil
		}
		if nl, ok := elsewhere[r]; ok {
			return b.Set(blobKey(r.Type, r.ID), nl.encode(), nil)
		}
		return b.Delete(blobKey(r.Type, r.ID), nil)
	})
	if err != nil {
		return err
	}
	if err := b.Delete(idKey(prefixCondemn, pack), nil); err != nil {
		return err
	}
	if err := deletePackRows(b, pack, remotes); err != nil {
		return err
	}
	return d.guard.write(func() error { return b.Commit(pebble.Sync) })
}

func deletePackRows(b *pebble.Batch, pack blob.ID, remotes []string) error {
	for _, k := range [][]byte{idKey(prefixPack, pack), idKey(prefixUnlisted, pack)} {
		if err := b.Delete(k, nil); err != nil {
			return err
		}
	}
	for _, r := range remotes {
		if err := b.Delete(remoteKey(r, pack), nil); err != nil {
			return err
		}
	}
	return nil
}

// Condemned calls fn for every "c" key, ordered by pack ID.
func (d *DB) Condemned(fn func(Condemnation) error) error {
	return d.scan([]byte{prefixCondemn}, func(k, v []byte) error {
		c, err := decodeCondemnation(idFrom(k, 1), v)
		if err != nil {
			return err
		}
		return fn(c)
	})
}
