package index

import (
	"bytes"
	"cmp"
	"strings"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
)

// Shared's methods: each is the DB method of the same name, on whichever
// role this process has when it runs. Their documentation is on DB.

func (s *Shared) Lookup(t blob.Type, id blob.ID) (l Location, ok bool, err error) {
	err = s.do(func(b backend) (err error) {
		l, ok, err = b.Lookup(t, id)
		return err
	})
	return l, ok, err
}

func (s *Shared) LookupMany(refs []BlobRef, fn func(i int, l Location) error) error {
	return s.do(func(b backend) error { return b.LookupMany(refs, fn) })
}

func (s *Shared) AddPack(p PackInfo, entries []BlobEntry) error {
	return s.do(func(b backend) error { return b.AddPack(p, entries) })
}

func (s *Shared) AddSegment(segment blob.ID, packs []PackBlobs) error {
	return s.do(func(b backend) error { return b.AddSegment(segment, packs) })
}

func (s *Shared) MarkListed(segment blob.ID, packs []blob.ID) error {
	return s.do(func(b backend) error { return b.MarkListed(segment, packs) })
}

func (s *Shared) HasSegment(segment blob.ID) (ok bool, err error) {
	err = s.do(func(b backend) (err error) { ok, err = b.HasSegment(segment); return err })
	return ok, err
}

func (s *Shared) HasPack(pack blob.ID) (ok bool, err error) {
	err = s.do(func(b backend) (err error) { ok, err = b.HasPack(pack); return err })
	return ok, err
}

func (s *Shared) Pack(id blob.ID) (p PackInfo, ok bool, err error) {
	err = s.do(func(b backend) (err error) { p, ok, err = b.Pack(id); return err })
	return p, ok, err
}

func (s *Shared) SetRemote(remote string, pack blob.ID) error {
	return s.do(func(b backend) error { return b.SetRemote(remote, pack) })
}

func (s *Shared) OnRemote(remote string, pack blob.ID) (ok bool, err error) {
	err = s.do(func(b backend) (err error) { ok, err = b.OnRemote(remote, pack); return err })
	return ok, err
}

func (s *Shared) PutSnapshot(id blob.ID, record []byte) error {
	return s.do(func(b backend) error { return b.PutSnapshot(id, record) })
}

func (s *Shared) DeleteSnapshot(id blob.ID) error {
	return s.do(func(b backend) error { return b.DeleteSnapshot(id) })
}

func (s *Shared) DeleteHistory(source string, snap blob.ID) error {
	return s.do(func(b backend) error { return b.DeleteHistory(source, snap) })
}

func (s *Shared) DeleteHistoryRows(rows []HistoryRow) error {
	return s.do(func(b backend) error { return b.DeleteHistoryRows(rows) })
}

// cursor remembers how far a scan got. A scan retried after a handover
// starts again from the beginning; scans yield in key order, so skipping
// what is not after the last item delivered gives each item to the
// callback once.
type cursor[T any] struct {
	cmp  func(a, b T) int
	last T
	ok   bool
}

// fresh reports whether v was not delivered yet, and records it.
func (c *cursor[T]) fresh(v T) bool {
	if c.ok && c.cmp(v, c.last) <= 0 {
		return false
	}
	c.last, c.ok = v, true
	return true
}

func compareID(a, b blob.ID) int { return bytes.Compare(a[:], b[:]) }

func (s *Shared) Packs(fn func(PackInfo) error) error {
	c := cursor[blob.ID]{cmp: compareID}
	return s.do(func(b backend) error {
		return b.Packs(func(p PackInfo) error {
			if !c.fresh(p.ID) {
				return nil
			}
			return fn(p)
		})
	})
}

func (s *Shared) scanIDs(scan func(backend, func(blob.ID) error) error, fn func(blob.ID) error) error {
	c := cursor[blob.ID]{cmp: compareID}
	return s.do(func(b backend) error {
		return scan(b, func(id blob.ID) error {
			if !c.fresh(id) {
				return nil
			}
			return fn(id)
		})
	})
}

func (s *Shared) UnlistedPacks(fn func(blob.ID) error) error {
	return s.scanIDs(backend.UnlistedPacks, fn)
}

func (s *Shared) Segments(fn func(blob.ID) error) error {
	return s.scanIDs(backend.Segments, fn)
}

func (s *Shared) Blobs(fn func(BlobEntry) error) error {
	c := cursor[BlobEntry]{cmp: func(a, b BlobEntry) int {
		return cmp.Or(cmp.Compare(a.Type, b.Type), compareID(a.ID, b.ID))
	}}
	return s.do(func(b backend) error {
		return b.Blobs(func(e BlobEntry) error {
			if !c.fresh(e) {
				return nil
			}
			return fn(e)
		})
	})
}

func (s *Shared) Snapshots(fn func(id blob.ID, record []byte) error) error {
	c := cursor[blob.ID]{cmp: compareID}
	return s.do(func(b backend) error {
		return b.Snapshots(func(id blob.ID, rec []byte) error {
			if !c.fresh(id) {
				return nil
			}
			return fn(id, rec)
		})
	})
}

// historyPos orders history rows of one path as their keys do.
type historyPos struct {
	time int64
	snap blob.ID
}

func (s *Shared) History(source, path string, fn func(*HistoryRow) error) error {
	c := cursor[historyPos]{cmp: func(a, b historyPos) int {
		return cmp.Or(cmp.Compare(a.time, b.time), compareID(a.snap, b.snap))
	}}
	return s.do(func(b backend) error {
		return b.History(source, path, func(r *HistoryRow) error {
			if !c.fresh(historyPos{r.Time, r.Snapshot}) {
				return nil
			}
			return fn(r)
		})
	})
}

// HistoryRows resumes by key: a row's key orders rows as the scan yields
// them.
func (s *Shared) HistoryRows(source string, fn func(*HistoryRow) error) error {
	// Keys are built in the buffer the cursor does not hold: forget scans
	// every row of a source, and a key allocated per row cost a tenth of
	// its CPU.
	c := cursor[[]byte]{cmp: bytes.Compare}
	var spare []byte
	return s.do(func(b backend) error {
		return b.HistoryRows(source, func(r *HistoryRow) error {
			k, held := appendHistoryKey(spare[:0], r.Source, r.Path, r.Time, r.Snapshot), c.last
			if !c.fresh(k) {
				spare = k
				return nil
			}
			spare = held
			return fn(r)
		})
	})
}

// scanNames resumes scans of names. Names contain no 0x00, which ends them
// in keys, so their key order is their byte order.
func (s *Shared) scanNames(scan func(backend, func(string) error) error, fn func(string) error) error {
	c := cursor[string]{cmp: strings.Compare}
	return s.do(func(b backend) error {
		return scan(b, func(n string) error {
			if !c.fresh(n) {
				return nil
			}
			return fn(n)
		})
	})
}

func (s *Shared) HistoryChildren(source, dir string, fn func(name string) error) error {
	return s.scanNames(func(b backend, fn func(string) error) error {
		return b.HistoryChildren(source, dir, fn)
	}, fn)
}

func (s *Shared) HistorySources(fn func(source string) error) error {
	return s.scanNames(backend.HistorySources, fn)
}

// NewHistoryBatch starts a batch of history rows. Rows are kept here and
// sent as one unit every historyBatchRows rows and at Commit, so that a
// unit interrupted by a handover is simply sent again.
func (s *Shared) NewHistoryBatch() HistoryWriter { return &sharedHistory{s: s} }

type sharedHistory struct {
	s    *Shared
	rows []HistoryRow
}

func (h *sharedHistory) Put(r *HistoryRow) error {
	h.rows = append(h.rows, *r)
	if len(h.rows) < historyBatchRows {
		return nil
	}
	return h.flush(false)
}

func (h *sharedHistory) flush(sync bool) error {
	rows := h.rows
	h.rows = h.rows[:0]
	return h.s.do(func(b backend) error { return b.putHistory(rows, sync) })
}

// Commit sends the remaining rows and syncs, as HistoryBatch.Commit does.
func (h *sharedHistory) Commit() error {
	err := h.flush(true)
	h.rows = nil
	return err
}

// Abort discards rows not yet sent.
func (h *sharedHistory) Abort() { h.rows = nil }
