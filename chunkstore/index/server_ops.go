package index

import (
	"errors"
	"fmt"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
)

// The holder's half of each request; client_ops.go has the other half.
// Every request is decoded completely, and checked, before it touches the
// DB, so that a garbled write is never applied.

// dispatch executes one request. It returns an error only when the
// connection is unusable; errors of the request itself go to the client.
func (s *server) dispatch(w *wire, op byte, d *decoder) error {
	switch op {
	case opPacks, opUnlistedPacks, opSegments, opBlobs, opSnapshots, opHistory, opHistoryChildren, opHistorySources, opHistoryRows, opCondemned:
		return s.scan(w, op, d)
	}
	e := w.start(stOK)
	err := s.read(op, d, e)
	if err == errNotRead {
		err = s.write(op, d)
	}
	if err != nil {
		w.start(stErr).str(err.Error())
	}
	return w.send(true)
}

var errNotRead = errors.New("not a read")

// read executes a request that answers with a value.
func (s *server) read(op byte, d *decoder, e *encoder) error {
	db := s.db
	switch op {
	case opLookup:
		t, id := blob.Type(d.u8()), d.id()
		if err := d.end(); err != nil {
			return err
		}
		l, ok, err := db.Lookup(t, id)
		e.bool(ok)
		if ok {
			e.location(l)
		}
		return err
	case opLookupMany:
		refs := d.blobRefs()
		if err := d.end(); err != nil {
			return err
		}
		var found []uint32
		var locs []Location
		err := db.LookupMany(refs, func(i int, l Location) error {
			found, locs = append(found, uint32(i)), append(locs, l)
			return nil
		})
		e.u32(uint32(len(found)))
		for k, i := range found {
			e.u32(i)
			e.location(locs[k])
		}
		return err
	case opHasSegment, opHasPack:
		id := d.id()
		if err := d.end(); err != nil {
			return err
		}
		has := db.HasPack
		if op == opHasSegment {
			has = db.HasSegment
		}
		ok, err := has(id)
		e.bool(ok)
		return err
	case opPack:
		id := d.id()
		if err := d.end(); err != nil {
			return err
		}
		p, ok, err := db.Pack(id)
		e.bool(ok)
		e.packInfo(p)
		return err
	case opOnRemote:
		remote, pack := d.str(), d.id()
		if err := d.end(); err != nil {
			return err
		}
		ok, err := db.OnRemote(remote, pack)
		e.bool(ok)
		return err
	}
	return s.readCondemn(op, d, e)
}

// write executes a request that answers only with success or an error.
func (s *server) write(op byte, d *decoder) error {
	db := s.db
	switch op {
	case opAddPack:
		p, entries := d.packInfo(), d.blobEntries()
		return decoded(d, func() error { return db.AddPack(p, entries) })
	case opAddSegment:
		seg := d.id()
		packs := make([]PackBlobs, d.count(blob.IDSize+12+4))
		for i := range packs {
			packs[i] = PackBlobs{PackInfo: d.packInfo(), Blobs: d.blobEntries()}
		}
		return decoded(d, func() error { return db.AddSegment(seg, packs) })
	case opMarkListed:
		seg := d.id()
		packs := make([]blob.ID, d.count(blob.IDSize))
		for i := range packs {
			packs[i] = d.id()
		}
		return decoded(d, func() error { return db.MarkListed(seg, packs) })
	case opSetRemote:
		remote, pack := d.str(), d.id()
		return decoded(d, func() error { return db.SetRemote(remote, pack) })
	case opPutSnapshot:
		id, rec := d.id(), d.bytes()
		return decoded(d, func() error { return db.PutSnapshot(id, rec) })
	case opDeleteSnapshot:
		id := d.id()
		return decoded(d, func() error { return db.DeleteSnapshot(id) })
	case opPutHistory:
		sync := d.bool()
		rows := make([]HistoryRow, d.count(4+4+8+blob.IDSize+historyValueSize))
		for i := range rows {
			rows[i] = *d.historyRow()
		}
		return decoded(d, func() error { return db.putHistory(rows, sync) })
	case opDeleteHistory:
		source, snap := d.str(), d.id()
		return decoded(d, func() error { return db.DeleteHistory(source, snap) })
	case opDeleteRows:
		rows := make([]HistoryRow, d.count(4+4+8+blob.IDSize+historyValueSize))
		for i := range rows {
			rows[i] = *d.historyRow()
		}
		return decoded(d, func() error { return db.DeleteHistoryRows(rows) })
	}
	return s.writeCondemn(op, d)
}

// scan streams one item per frame as the DB's iterator yields it. The
// writer flushes whenever its buffer fills, and blocks while the client is
// busy in its callback, so memory stays flat however large the scan.
func (s *server) scan(w *wire, op byte, d *decoder) error {
	var broken error
	item := func(fill func(e *encoder)) error {
		if s.stopping.Load() {
			broken = errStopping
		} else {
			fill(w.start(stItem))
			broken = w.send(false)
		}
		return broken
	}
	err := s.runScan(op, d, item)
	if broken != nil {
		return broken
	}
	if err != nil {
		w.start(stErr).str(err.Error())
	} else {
		w.start(stOK)
	}
	return w.send(true)
}

func (s *server) runScan(op byte, d *decoder, item func(func(*encoder)) error) error {
	db := s.db
	var source, path string
	switch op {
	case opHistory, opHistoryChildren:
		source, path = d.str(), d.str()
	case opHistoryRows:
		source = d.str()
	}
	if err := d.end(); err != nil {
		return err
	}
	switch op {
	case opPacks:
		return db.Packs(func(p PackInfo) error { return item(func(e *encoder) { e.packInfo(p) }) })
	case opUnlistedPacks:
		return db.UnlistedPacks(func(id blob.ID) error { return item(func(e *encoder) { e.id(id) }) })
	case opSegments:
		return db.Segments(func(id blob.ID) error { return item(func(e *encoder) { e.id(id) }) })
	case opBlobs:
		return db.Blobs(func(b BlobEntry) error { return item(func(e *encoder) { e.blobEntry(b) }) })
	case opSnapshots:
		return db.Snapshots(func(id blob.ID, rec []byte) error {
			return item(func(e *encoder) { e.id(id); e.bytes(rec) })
		})
	case opHistory:
		return db.History(source, path, func(r *HistoryRow) error { return item(func(e *encoder) { e.historyRow(r) }) })
	case opHistoryChildren:
		return db.HistoryChildren(source, path, func(n string) error { return item(func(e *encoder) { e.str(n) }) })
	case opHistorySources:
		return db.HistorySources(func(src string) error { return item(func(e *encoder) { e.str(src) }) })
	case opHistoryRows:
		return db.HistoryRows(source, func(r *HistoryRow) error { return item(func(e *encoder) { e.historyRow(r) }) })
	case opCondemned:
		return db.Condemned(func(c Condemnation) error { return item(func(e *encoder) { e.condemnation(c) }) })
	}
	return fmt.Errorf("index protocol: unknown scan %d", op)
}
