package index

import (
	"fmt"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
)

// The methods of backend over the socket, mirroring DB's; server.go has
// the other half of each.

func (c *client) Lookup(t blob.Type, id blob.ID) (Location, bool, error) {
	var l Location
	var ok bool
	err := c.call(opLookup, func(e *encoder) { e.u8(uint8(t)); e.id(id) }, func(d *decoder) {
		if ok = d.bool(); ok {
			l = d.location()
		}
	})
	if err != nil {
		return Location{}, false, err
	}
	return l, ok, nil
}

// LookupMany has the holder look refs up at once; fn runs once the whole
// answer is here, so that a connection that breaks never leaves some of
// refs answered.
func (c *client) LookupMany(refs []BlobRef, fn func(i int, l Location) error) error {
	var found []int
	var locs []Location
	err := c.call(opLookupMany, func(e *encoder) { e.blobRefs(refs) }, func(d *decoder) {
		found = make([]int, d.count(4+locationSize))
		locs = make([]Location, len(found))
		for k := range found {
			found[k], locs[k] = int(d.u32()), d.location()
		}
	})
	for k := 0; err == nil && k < len(found); k++ {
		if found[k] >= len(refs) {
			return fmt.Errorf("index protocol: lookup answer %d of %d blobs", found[k], len(refs))
		}
		err = fn(found[k], locs[k])
	}
	return err
}

func (c *client) AddPack(p PackInfo, entries []BlobEntry) error {
	return c.call(opAddPack, func(e *encoder) { e.packInfo(p); e.blobEntries(entries) }, nil)
}

func (c *client) AddSegment(segment blob.ID, packs []PackBlobs) error {
	return c.call(opAddSegment, func(e *encoder) {
		e.id(segment)
		e.u32(uint32(len(packs)))
		for _, p := range packs {
			e.packInfo(p.PackInfo)
			e.blobEntries(p.Blobs)
		}
	}, nil)
}

func (c *client) MarkListed(segment blob.ID, packs []blob.ID) error {
	return c.call(opMarkListed, func(e *encoder) {
		e.id(segment)
		e.u32(uint32(len(packs)))
		for _, p := range packs {
			e.id(p)
		}
	}, nil)
}

func (c *client) has(o byte, args func(*encoder)) (bool, error) {
	var ok bool
	err := c.call(o, args, func(d *decoder) { ok = d.bool() })
	return ok && err == nil, err
}

func (c *client) HasSegment(segment blob.ID) (bool, error) {
	return c.has(opHasSegment, func(e *encoder) { e.id(segment) })
}

func (c *client) HasPack(pack blob.ID) (bool, error) {
	return c.has(opHasPack, func(e *encoder) { e.id(pack) })
}

func (c *client) Pack(id blob.ID) (PackInfo, bool, error) {
	var p PackInfo
	var ok bool
	err := c.call(opPack, func(e *encoder) { e.id(id) }, func(d *decoder) { ok, p = d.bool(), d.packInfo() })
	if err != nil || !ok {
		return PackInfo{}, false, err
	}
	return p, true, nil
}

func (c *client) Packs(fn func(PackInfo) error) error {
	return c.scan(opPacks, nil, func(d *decoder) error {
		p := d.packInfo()
		return decoded(d, func() error { return fn(p) })
	})
}

func (c *client) scanIDs(o byte, fn func(blob.ID) error) error {
	return c.scan(o, nil, func(d *decoder) error {
		id := d.id()
		return decoded(d, func() error { return fn(id) })
	})
}

func (c *client) UnlistedPacks(fn func(blob.ID) error) error { return c.scanIDs(opUnlistedPacks, fn) }

func (c *client) Segments(fn func(blob.ID) error) error { return c.scanIDs(opSegments, fn) }

func (c *client) Blobs(fn func(BlobEntry) error) error {
	return c.scan(opBlobs, nil, func(d *decoder) error {
		b := d.blobEntry()
		return decoded(d, func() error { return fn(b) })
	})
}

func (c *client) SetRemote(remote string, pack blob.ID) error {
	return c.call(opSetRemote, func(e *encoder) { e.str(remote); e.id(pack) }, nil)
}

func (c *client) OnRemote(remote string, pack blob.ID) (bool, error) {
	return c.has(opOnRemote, func(e *encoder) { e.str(remote); e.id(pack) })
}

func (c *client) PutSnapshot(id blob.ID, record []byte) error {
	return c.call(opPutSnapshot, func(e *encoder) { e.id(id); e.bytes(record) }, nil)
}

func (c *client) DeleteSnapshot(id blob.ID) error {
	return c.call(opDeleteSnapshot, func(e *encoder) { e.id(id) }, nil)
}

func (c *client) Snapshots(fn func(id blob.ID, record []byte) error) error {
	return c.scan(opSnapshots, nil, func(d *decoder) error {
		id := d.id()
		// A copy: the frame is reused for the next item, and a caller that
		// kept a record would see it change under it.
		rec := append([]byte(nil), d.bytes()...)
		return decoded(d, func() error { return fn(id, rec) })
	})
}

func (c *client) putHistory(rows []HistoryRow, sync bool) error {
	return c.call(opPutHistory, func(e *encoder) {
		e.bool(sync)
		e.u32(uint32(len(rows)))
		for i := range rows {
			e.historyRow(&rows[i])
		}
	}, nil)
}

func (c *client) History(source, path string, fn func(*HistoryRow) error) error {
	return c.scan(opHistory, func(e *encoder) { e.str(source); e.str(path) }, func(d *decoder) error {
		r := d.historyRow()
		return decoded(d, func() error { return fn(r) })
	})
}

func (c *client) scanNames(o byte, args func(*encoder), fn func(string) error) error {
	return c.scan(o, args, func(d *decoder) error {
		s := d.str()
		return decoded(d, func() error { return fn(s) })
	})
}

func (c *client) HistoryChildren(source, dir string, fn func(name string) error) error {
	return c.scanNames(opHistoryChildren, func(e *encoder) { e.str(source); e.str(dir) }, fn)
}

func (c *client) HistorySources(fn func(source string) error) error {
	return c.scanNames(opHistorySources, nil, fn)
}

func (c *client) DeleteHistory(source string, snap blob.ID) error {
	return c.call(opDeleteHistory, func(e *encoder) { e.str(source); e.id(snap) }, nil)
}

func (c *client) HistoryRows(source string, fn func(*HistoryRow) error) error {
	return c.scan(opHistoryRows, func(e *encoder) { e.str(source) }, func(d *decoder) error {
		r := d.historyRow()
		return decoded(d, func() error { return fn(r) })
	})
}

func (c *client) DeleteHistoryRows(rows []HistoryRow) error {
	return c.call(opDeleteRows, func(e *encoder) {
		e.u32(uint32(len(rows)))
		for i := range rows {
			e.historyRow(&rows[i])
		}
	}, nil)
}
