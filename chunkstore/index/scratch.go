package index

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
)

// Scratch is the throw-away database of one prune run (key schema in
// keys.go). It has no write-ahead log: a crash loses it, and the next run
// starts over with an empty one.
type Scratch struct {
	db    *pebble.DB
	opts  *pebble.Options
	fs    vfs.FS
	dir   string
	guard *guard
}

const (
	scratchMark      = 'm'
	scratchSnapshot  = 's'
	scratchUsage     = 'a'
	scratchCandidate = 'k'
	scratchDoomed    = 'g'
	scratchElsewhere = 'o'
)

// OpenScratch creates an empty scratch database in dir, replacing whatever
// an earlier run left there.
func OpenScratch(fs vfs.FS, dir string, o Options) (*Scratch, error) {
	if err := fs.RemoveAll(dir); err != nil {
		return nil, err
	}
	if o.CacheSize == 0 {
		o.CacheSize = 8 << 20
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = 4 << 20
	}
	opts := &pebble.Options{
		FS:                 fs,
		CacheSize:          o.CacheSize,
		MemTableSize:       o.MemTableSize,
		DisableWAL:         true,
		FormatMajorVersion: pebble.FormatNewest,
		Merger:             usageMerger,
		Logger:             &pebbleLogger{},
	}
	// Most lookups ask for a key that is absent (a blob not marked yet, not
	// doomed): bloom filters answer them without reading data blocks.
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	// MarkSorted writes tables with these options: the defaults Open
	// would fill in must be there already.
	opts.EnsureDefaults()
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("open prune scratch space %s: %w", dir, err)
	}
	return &Scratch{db: db, opts: opts, fs: fs, dir: dir, guard: &guard{fs: fs, dir: dir}}, nil
}

// Close closes and deletes the scratch database.
func (s *Scratch) Close() error {
	err := s.guard.recoverFatal(s.db.Close)
	return errors.Join(err, s.fs.RemoveAll(s.dir))
}

func refKey(prefix byte, t blob.Type, id blob.ID) []byte {
	return appendRefKey(make([]byte, 0, 2+blob.IDSize), prefix, t, id)
}

func appendRefKey(k []byte, prefix byte, t blob.Type, id blob.ID) []byte {
	k = append(k, prefix, byte(t))
	return append(k, id[:]...)
}

func (s *Scratch) has(k []byte) (bool, error) { return has(s.db, k) }

func (s *Scratch) set(k, v []byte) error {
	return s.guard.write(func() error { return s.db.Set(k, v, pebble.NoSync) })
}

// MarkSorted records that snapshots reference the blobs refs, which must
// be in key order (type, then ID) and distinct. They go into the database
// as one table, written whole and ingested: no memtable, no flush, and
// no compaction unless tables of several calls overlap.
func (s *Scratch) MarkSorted(refs []BlobRef) error {
	if len(refs) == 0 {
		return nil
	}
	path := s.fs.PathJoin(s.dir, "marks.ingest")
	f, err := s.fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	w := sstable.NewWriter(objstorageprovider.NewFileWritable(f), s.opts.MakeWriterOptions(0, s.db.TableFormat()))
	k := refKey(scratchMark, 0, blob.ID{})
	for _, r := range refs {
		k[1] = byte(r.Type)
		copy(k[2:], r.ID[:])
		if err = w.Set(k, nil); err != nil {
			break
		}
	}
	// Close closes the file, whatever went wrong before.
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// Ingest moves the file into the database.
		err = s.guard.write(func() error { return s.db.Ingest(context.Background(), []string{path}) })
	}
	if err != nil {
		_ = s.fs.Remove(path) // or OpenScratch's RemoveAll does
	}
	return err
}

// Marked reports whether the blob is marked.
func (s *Scratch) Marked(t blob.Type, id blob.ID) (bool, error) {
	return s.has(refKey(scratchMark, t, id))
}

// MarkCursor answers Marked for blobs asked about in key order (type, then
// ID), as the index's Blobs scan yields them: one forward pass over the
// marks instead of a point lookup per blob.
type MarkCursor struct {
	it  *pebble.Iterator
	key []byte // reused: a seek copies the key it is given
}

// NewMarkCursor starts a cursor; Close ends it.
func (s *Scratch) NewMarkCursor() (*MarkCursor, error) {
	prefix := []byte{scratchMark}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, err
	}
	return &MarkCursor{it: it}, nil
}

// Marked reports whether the blob is marked. Each call must ask about a
// blob after the one before.
func (c *MarkCursor) Marked(t blob.Type, id blob.ID) (bool, error) {
	c.key = appendRefKey(c.key[:0], scratchMark, t, id)
	// Pebble turns a SeekGE past the last one into steps forward.
	if !c.it.SeekGE(c.key) {
		return false, c.it.Error()
	}
	return bytes.Equal(c.it.Key(), c.key), nil
}

// Close releases the cursor.
func (c *MarkCursor) Close() error { return c.it.Close() }

// MarkSnapshot records that a snapshot's trees were walked.
func (s *Scratch) MarkSnapshot(id blob.ID) error { return s.set(idKey(scratchSnapshot, id), nil) }

// SnapshotMarked reports whether MarkSnapshot was called for id.
func (s *Scratch) SnapshotMarked(id blob.ID) (bool, error) { return s.has(idKey(scratchSnapshot, id)) }

// AddCandidate records a pack this run may condemn, with its size.
func (s *Scratch) AddCandidate(pack blob.ID, size int64) error {
	return s.set(idKey(scratchCandidate, pack), binary.BigEndian.AppendUint64(nil, uint64(size)))
}

// UsageBatch adds blobs to the usage of their packs. It sums them in
// memory, pack by pack, and writes the sums when it holds usagePacks packs
// and at Commit: one merge per pack, not one per blob, whose flushes and
// compactions cost more than the summing.
type UsageBatch struct {
	s     *Scratch
	max   int
	packs map[blob.ID]usageSum
}

// usagePacks bounds a UsageBatch's memory: about 100 bytes a pack, 1.6
// MiB in all. Repositories of fewer packs (a few hundred GiB) have their
// usage written once.
const usagePacks = 1 << 14

// NewUsageBatch starts adding usage; Commit ends it.
func (s *Scratch) NewUsageBatch() *UsageBatch {
	return &UsageBatch{s: s, max: usagePacks, packs: map[blob.ID]usageSum{}}
}

// Add counts length bytes of a blob in pack, as used if used.
func (u *UsageBatch) Add(pack blob.ID, length uint32, used bool) error {
	sum := u.packs[pack]
	sum.total += uint64(length)
	if used {
		sum.used += uint64(length)
	}
	u.packs[pack] = sum
	if len(u.packs) < u.max {
		return nil
	}
	return u.Commit()
}

// Commit writes what was added so far; the batch may be used again.
func (u *UsageBatch) Commit() error {
	b := u.s.db.NewBatch()
	defer b.Close()
	for pack, sum := range u.packs {
		if err := b.Merge(idKey(scratchUsage, pack), sum.encode(), nil); err != nil {
			return err
		}
	}
	clear(u.packs)
	return u.s.guard.write(func() error { return b.Commit(pebble.NoSync) })
}

// Close drops what was added since the last Commit.
func (u *UsageBatch) Close() { clear(u.packs) }

// PackUsage is what one candidate pack holds.
type PackUsage struct {
	Pack        blob.ID
	Size        int64  // the pack's bytes, headers and trailer included
	Used, Total uint64 // bytes of its indexed blobs, referenced and all
}

// Candidates calls fn for every candidate pack with its usage, ordered by
// pack ID.
func (s *Scratch) Candidates(fn func(PackUsage) error) error {
	prefix := []byte{scratchCandidate}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		u := PackUsage{Pack: idFrom(it.Key(), 1), Size: int64(binary.BigEndian.Uint64(it.Value()))}
		if err := s.usage(&u); err != nil {
			return err
		}
		if err := fn(u); err != nil {
			return err
		}
	}
	return it.Error()
}

func (s *Scratch) usage(u *PackUsage) error {
	v, closer, err := s.db.Get(idKey(scratchUsage, u.Pack))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	defer closer.Close()
	if len(v) != 16 {
		return fmt.Errorf("prune scratch: usage of %d bytes", len(v))
	}
	u.Used, u.Total = binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:])
	return nil
}

// Doom records that the blob's only indexed location is in pack, which is
// about to be deleted.
func (s *Scratch) Doom(r BlobRef, pack blob.ID) error {
	return s.set(refKey(scratchDoomed, r.Type, r.ID), pack[:])
}

// Doomed returns the pack Doom recorded for the blob.
func (s *Scratch) Doomed(r BlobRef) (blob.ID, bool, error) {
	v, closer, err := s.db.Get(refKey(scratchDoomed, r.Type, r.ID))
	if errors.Is(err, pebble.ErrNotFound) {
		return blob.ID{}, false, nil
	}
	if err != nil {
		return blob.ID{}, false, err
	}
	defer closer.Close()
	return idFrom(v, 0), true, nil
}

// SetElsewhere records a copy of a doomed blob in a pack that stays.
func (s *Scratch) SetElsewhere(e BlobEntry) error {
	return s.set(refKey(scratchElsewhere, e.Type, e.ID), e.Location.encode())
}

// Elsewhere returns the copy SetElsewhere recorded, if any.
func (s *Scratch) Elsewhere(r BlobRef) (Location, bool, error) {
	v, closer, err := s.db.Get(refKey(scratchElsewhere, r.Type, r.ID))
	if errors.Is(err, pebble.ErrNotFound) {
		return Location{}, false, nil
	}
	if err != nil {
		return Location{}, false, err
	}
	defer closer.Close()
	l, err := decodeLocation(v)
	return l, err == nil, err
}

// usageMerger adds usage values: used(8) total(8), big-endian.
var usageMerger = &pebble.Merger{
	Name: "hindsight.usage.v1",
	Merge: func(_, value []byte) (pebble.ValueMerger, error) {
		m := &usageSum{}
		return m, m.add(value)
	},
}

type usageSum struct{ used, total uint64 }

func (m *usageSum) add(v []byte) error {
	if len(v) != 16 {
		return fmt.Errorf("prune scratch: usage operand of %d bytes", len(v))
	}
	m.used += binary.BigEndian.Uint64(v)
	m.total += binary.BigEndian.Uint64(v[8:])
	return nil
}

func (m *usageSum) MergeNewer(v []byte) error { return m.add(v) }
func (m *usageSum) MergeOlder(v []byte) error { return m.add(v) }

func (m *usageSum) Finish(bool) ([]byte, io.Closer, error) { return m.encode(), nil, nil }

func (m *usageSum) encode() []byte {
	v := binary.BigEndian.AppendUint64(nil, m.used)
	return binary.BigEndian.AppendUint64(v, m.total)
}
