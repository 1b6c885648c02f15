package index

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/cockroachdb/pebble/v2"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
)

// Kind is what a path was in one snapshot. Deleted marks the snapshot in
// which a path stopped existing. The values are stored and never change.
type Kind uint8

const (
	KindDeleted Kind = 0
	KindFile    Kind = 1
	KindDir     Kind = 2
	KindSymlink Kind = 3
	KindOther   Kind = 4 // FIFO, device
)

// HistoryRow records that a path was new, changed or deleted in a snapshot
// relative to the snapshot's parent.
type HistoryRow struct {
	Source   string
	Path     string // slash-separated, relative to the source root; "" is the root
	Time     int64  // the snapshot's time, ns since the epoch
	Snapshot blob.ID

	Kind    Kind
	Size    uint64
	Mtime   int64
	Content blob.ID // hash of the content (files: of the chunk list); equal content, equal hash
}

const historyValueSize = 1 + 8 + 8 + blob.IDSize

// appendValue appends the row's value, historyValueSize bytes, to v.
func (r *HistoryRow) appendValue(v []byte) []byte {
	v = append(v, byte(r.Kind))
	v = binary.BigEndian.AppendUint64(v, r.Size)
	v = binary.BigEndian.AppendUint64(v, uint64(r.Mtime))
	return append(v, r.Content[:]...)
}

func (r *HistoryRow) decodeValue(v []byte) error {
	if len(v) != historyValueSize {
		return fmt.Errorf("index: history value of %d bytes, want %d", len(v), historyValueSize)
	}
	r.Kind = Kind(v[0])
	r.Size = binary.BigEndian.Uint64(v[1:])
	r.Mtime = int64(binary.BigEndian.Uint64(v[9:]))
	copy(r.Content[:], v[17:])
	return nil
}

// HistoryBatch collects history rows of one snapshot. Rows are written in
// bounded batches so that a backup of millions of files never holds them all.
type HistoryBatch struct {
	d    *DB
	b    *pebble.Batch
	n    int
	k, v []byte // the last row's key and value: the batch copies them
}

// NewHistoryBatch starts a batch of history rows. It returns the interface
// so that *DB and *Shared satisfy Store; the value is a *HistoryBatch.
func (d *DB) NewHistoryBatch() HistoryWriter { return &HistoryBatch{d: d, b: d.db.NewBatch()} }

// historyBatchRows bounds a batch of history rows: a row's key and value
// take ~200 bytes, and Pebble's batch buffer doubles as it grows, so 2500
// rows hold at most 1 MiB (10,000 held 2 MiB and more of forget's heap).
const historyBatchRows = 2500

// Put adds a row, committing (without sync) every historyBatchRows rows.
func (h *HistoryBatch) Put(r *HistoryRow) error {
	h.k = appendHistoryKey(h.k[:0], r.Source, r.Path, r.Time, r.Snapshot)
	h.v = r.appendValue(h.v[:0])
	if err := h.b.Set(h.k, h.v, nil); err != nil {
		return err
	}
	h.n++
	if h.n < historyBatchRows {
		return nil
	}
	if err := h.d.guard.write(func() error { return h.b.Commit(pebble.NoSync) }); err != nil {
		return err
	}
	h.b.Close()
	h.b, h.n = h.d.db.NewBatch(), 0
	return nil
}

// Commit writes the remaining rows and syncs: history rows are rebuildable
// from snapshots, but a snapshot whose rows are lost would show a gap in
// the history view until the next rebuild.
func (h *HistoryBatch) Commit() error {
	defer h.b.Close()
	return h.d.guard.write(func() error { return h.b.Commit(pebble.Sync) })
}

// Abort discards rows not yet committed.
func (h *HistoryBatch) Abort() { h.b.Close() }

// History calls fn for every row of exactly this path, oldest first.
func (d *DB) History(source, path string, fn func(*HistoryRow) error) error {
	prefix := historyPathKey(nil, source, path)
	return d.scan(prefix, func(k, v []byte) error {
		rest := k[len(prefix):]
		if len(rest) != 8+blob.IDSize {
			return fmt.Errorf("index: history key of unexpected length")
		}
		r := &HistoryRow{Source: source, Path: path}
		r.Time = int64(binary.BigEndian.Uint64(rest) ^ (1 << 63))
		copy(r.Snapshot[:], rest[8:])
		if err := r.decodeValue(v); err != nil {
			return err
		}
		return fn(r)
	})
}

// HistoryChildren calls fn once for each name that was ever a direct child
// of dir in source, in byte order. It visits one key per child: after a
// child it seeks past that child's whole subtree.
func (d *DB) HistoryChildren(source, dir string, fn func(name string) error) error {
	prefix := []byte{prefixHistory}
	prefix = append(prefix, source...)
	prefix = append(prefix, 0)
	prefix = appendComponents(prefix, dir)
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; {
		rest := it.Key()[len(prefix):]
		end := bytes.IndexByte(rest, 0)
		if end <= 0 { // a row of dir itself
			ok = it.SeekGE(append(append([]byte(nil), prefix...), 1))
			continue
		}
		name := string(rest[:end])
		if err := fn(name); err != nil {
			return err
		}
		// name followed by 0x01 sorts after every key of name's subtree.
		next := append(append(append([]byte(nil), prefix...), name...), 1)
		ok = it.SeekGE(next)
	}
	return it.Error()
}

// HistorySources calls fn for every source with history rows.
func (d *DB) HistorySources(fn func(source string) error) error {
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixHistory}, UpperBound: []byte{prefixHistory + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; {
		rest := it.Key()[1:]
		end := bytes.IndexByte(rest, 0)
		if end < 0 {
			return fmt.Errorf("index: malformed history key")
		}
		if err := fn(string(rest[:end])); err != nil {
			return err
		}
		ok = it.SeekGE(append(append([]byte{prefixHistory}, rest[:end]...), 1))
	}
	return it.Error()
}

// HistoryRows calls fn for every row of source in key order: path by path,
// component by component (a directory's own rows before those below it),
// and each path's rows oldest first. It is one prefix scan, for readers
// that need a whole source's history at once (find, forget).
//
// fn is passed the same row each time, filled anew: it must copy what it
// keeps. Forget scans every row of a source, and a row allocated for each
// (and a path for each row, where one path has several) took a tenth of
// its CPU, most of it in the collector.
func (d *DB) HistoryRows(source string, fn func(*HistoryRow) error) error {
	prefix := historySourcePrefix(source)
	r := &HistoryRow{Source: source}
	return d.scan(prefix, func(k, v []byte) error {
		if err := decodeHistoryKey(r, k[len(prefix):]); err != nil {
			return err
		}
		if err := r.decodeValue(v); err != nil {
			return err
		}
		return fn(r)
	})
}

// decodeHistoryKey parses what follows the source in a history key into
// r: the path's components, each ended by 0x00, one more 0x00, time and
// snapshot. r.Path is kept when the key names it again.
func decodeHistoryKey(r *HistoryRow, rest []byte) error {
	const tail = 1 + 8 + blob.IDSize
	n := len(rest) - tail
	if n < 0 || rest[n] != 0 || (n > 0 && rest[n-1] != 0) {
		return fmt.Errorf("index: malformed history key")
	}
	switch {
	case n == 0:
		r.Path = ""
	case !samePath(r.Path, rest[:n-1]):
		// One allocation: the path is built with its separators.
		var b strings.Builder
		b.Grow(n - 1)
		for _, c := range rest[:n-1] {
			if c == 0 {
				c = '/'
			}
			b.WriteByte(c)
		}
		r.Path = b.String()
	}
	r.Time = int64(binary.BigEndian.Uint64(rest[n+1:]) ^ (1 << 63))
	copy(r.Snapshot[:], rest[n+9:])
	return nil
}

// samePath reports whether path is comps, components separated by 0x00.
func samePath(path string, comps []byte) bool {
	if len(path) != len(comps) {
		return false
	}
	for i, c := range comps {
		if c == 0 {
			c = '/'
		}
		if path[i] != c {
			return false
		}
	}
	return true
}

// DeleteHistoryRows removes the rows whose source, path, time and snapshot
// match those of rows (their values are not compared), in one batch.
// Callers bound the batch: forget passes a few thousand at a time.
//
// The batch is not synced, as deleting rows is no durability point: a
// deletion lost in a crash leaves a row of a snapshot no longer listed,
// which readers skip, or a row of forget's that repeats the state before
// it (snapshot.Forget), or one that 'repair index' rewrites, as it would
// have written a row deleted too early. The next synced batch makes every
// deletion before it durable. Syncing each batch cost forget a disk flush
// per thousand rows: 130 on the benchmark, where it deletes 130,000.
func (d *DB) DeleteHistoryRows(rows []HistoryRow) error {
	b := d.db.NewBatch()
	defer b.Close()
	var k []byte // the batch copies each key
	for i := range rows {
		r := &rows[i]
		k = appendHistoryKey(k[:0], r.Source, r.Path, r.Time, r.Snapshot)
		if err := b.Delete(k, nil); err != nil {
			return err
		}
	}
	return d.guard.write(func() error { return b.Commit(pebble.NoSync) })
}

// DeleteHistory removes every history row of one snapshot in source; used
// when a backup fails after writing rows. It scans the source's rows: cost
// grows with the source's history, memory does not.
func (d *DB) DeleteHistory(source string, snap blob.ID) error {
	prefix := historySourcePrefix(source)
	b := d.db.NewBatch()
	defer b.Close()
	err := d.scan(prefix, func(k, _ []byte) error {
		if bytes.HasSuffix(k, snap[:]) {
			return b.Delete(append([]byte(nil), k...), nil)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return d.guard.write(func() error { return b.Commit(pebble.Sync) })
}
