package index

import (
	"fmt"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
)

// The condemnation methods (condemn.go) over the socket: the holder's half,
// the client's half, and Shared's wrappers.

func (e *encoder) recordID(r RecordID) { e.b = append(e.b, r[:]...) }

func (d *decoder) recordID() (r RecordID) {
	copy(r[:], d.take(len(r)))
	return r
}

func (e *encoder) condemnation(c Condemnation) {
	e.id(c.Pack)
	e.b = append(e.b, c.encode()...)
}

func (d *decoder) condemnation() Condemnation {
	pack := d.id()
	c, err := decodeCondemnation(pack, d.take(len(RecordID{})+1))
	d.fail(err)
	return c
}

func (e *encoder) ids(ids []blob.ID) {
	e.u32(uint32(len(ids)))
	for _, id := range ids {
		e.id(id)
	}
}

func (d *decoder) ids() []blob.ID {
	out := make([]blob.ID, d.count(blob.IDSize))
	for i := range out {
		out[i] = d.id()
	}
	return out
}

func (e *encoder) strs(ss []string) {
	e.u32(uint32(len(ss)))
	for _, s := range ss {
		e.str(s)
	}
}

func (d *decoder) strs() []string {
	out := make([]string, d.count(4))
	for i := range out {
		out[i] = d.str()
	}
	return out
}

func (e *encoder) blobRefs(rs []BlobRef) {
	e.u32(uint32(len(rs)))
	for _, r := range rs {
		e.u8(uint8(r.Type))
		e.id(r.ID)
	}
}

func (d *decoder) blobRefs() []BlobRef {
	out := make([]BlobRef, d.count(1+blob.IDSize))
	for i := range out {
		out[i] = BlobRef{Type: blob.Type(d.u8()), ID: d.id()}
	}
	return out
}

func (s *server) readCondemn(op byte, d *decoder, e *encoder) error {
	if op != opLookupLive {
		return errNotRead
	}
	t, id := blob.Type(d.u8()), d.id()
	if err := d.end(); err != nil {
		return err
	}
	l, ok, err := s.db.LookupLive(t, id)
	e.bool(ok)
	if ok {
		e.location(l)
	}
	return err
}

func (s *server) writeCondemn(op byte, d *decoder) error {
	db := s.db
	switch op {
	case opCondemn:
		rec, packs := d.recordID(), d.ids()
		return decoded(d, func() error { return db.Condemn(rec, packs) })
	case opUncondemn, opBury:
		rec, pack := d.recordID(), d.id()
		f := db.Uncondemn
		if op == opBury {
			f = db.Bury
		}
		return decoded(d, func() error { return f(rec, pack) })
	case opDropPack:
		pack, blobs, moved, remotes := d.id(), d.blobRefs(), d.blobEntries(), d.strs()
		return decoded(d, func() error { return db.DropPack(pack, blobs, moved, remotes) })
	}
	return fmt.Errorf("index protocol: unknown operation %d", op)
}

func (c *client) LookupLive(t blob.Type, id blob.ID) (Location, bool, error) {
	var l Location
	var ok bool
	err := c.call(opLookupLive, func(e *encoder) { e.u8(uint8(t)); e.id(id) }, func(d *decoder) {
		if ok = d.bool(); ok {
			l = d.location()
		}
	})
	if err != nil {
		return Location{}, false, err
	}
	return l, ok, nil
}

func (c *client) Condemn(record RecordID, packs []blob.ID) error {
	return c.call(opCondemn, func(e *encoder) { e.recordID(record); e.ids(packs) }, nil)
}

func (c *client) Uncondemn(record RecordID, pack blob.ID) error {
	return c.call(opUncondemn, func(e *encoder) { e.recordID(record); e.id(pack) }, nil)
}

func (c *client) Bury(record RecordID, pack blob.ID) error {
	return c.call(opBury, func(e *encoder) { e.recordID(record); e.id(pack) }, nil)
}

func (c *client) DropPack(pack blob.ID, blobs []BlobRef, moved []BlobEntry, remotes []string) error {
	return c.call(opDropPack, func(e *encoder) {
		e.id(pack)
		e.blobRefs(blobs)
		e.blobEntries(moved)
		e.strs(remotes)
	}, nil)
}

func (c *client) Condemned(fn func(Condemnation) error) error {
	return c.scan(opCondemned, nil, func(d *decoder) error {
		cd := d.condemnation()
		return decoded(d, func() error { return fn(cd) })
	})
}

func (s *Shared) LookupLive(t blob.Type, id blob.ID) (l Location, ok bool, err error) {
	err = s.do(func(b backend) (err error) {
		l, ok, err = b.LookupLive(t, id)
		return err
	})
	return l, ok, err
}

func (s *Shared) Condemn(record RecordID, packs []blob.ID) error {
	return s.do(func(b backend) error { return b.Condemn(record, packs) })
}

func (s *Shared) Uncondemn(record RecordID, pack blob.ID) error {
	return s.do(func(b backend) error { return b.Uncondemn(record, pack) })
}

func (s *Shared) Bury(record RecordID, pack blob.ID) error {
	return s.do(func(b backend) error { return b.Bury(record, pack) })
}

func (s *Shared) DropPack(pack blob.ID, blobs []BlobRef, moved []BlobEntry, remotes []string) error {
	return s.do(func(b backend) error { return b.DropPack(pack, blobs, moved, remotes) })
}

func (s *Shared) Condemned(fn func(Condemnation) error) error {
	c := cursor[blob.ID]{cmp: compareID}
	return s.do(func(b backend) error {
		return b.Condemned(func(cd Condemnation) error {
			if !c.fresh(cd.Pack) {
				return nil
			}
			return fn(cd)
		})
	})
}
