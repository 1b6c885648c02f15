package index

import "github.com/hindsight-backup/hindsight/chunkstore/blob"

// Store is the index as the rest of the repository uses it: a *DB that one
// process owns, or a *Shared that every process of a repository can use at
// the same time. Both have a Created field, which is not part of Store
// because an interface cannot carry fields.
type Store interface {
	core
	NewHistoryBatch() HistoryWriter
}

// core is what a Store and a Shared's backend have in common: all but how
// history rows are written (a Store hands out batches; a backend takes a
// batch's rows at once).
type core interface {
	Lookup(t blob.Type, id blob.ID) (Location, bool, error)
	LookupMany(refs []BlobRef, fn func(i int, l Location) error) error
	AddPack(p PackInfo, entries []BlobEntry) error
	AddSegment(segment blob.ID, packs []PackBlobs) error
	MarkListed(segment blob.ID, packs []blob.ID) error
	HasSegment(segment blob.ID) (bool, error)
	HasPack(pack blob.ID) (bool, error)
	Pack(id blob.ID) (PackInfo, bool, error)
	Packs(fn func(PackInfo) error) error
	UnlistedPacks(fn func(blob.ID) error) error
	Segments(fn func(blob.ID) error) error
	Blobs(fn func(BlobEntry) error) error
	SetRemote(remote string, pack blob.ID) error
	OnRemote(remote string, pack blob.ID) (bool, error)
	PutSnapshot(id blob.ID, record []byte) error
	DeleteSnapshot(id blob.ID) error
	Snapshots(fn func(id blob.ID, record []byte) error) error
	History(source, path string, fn func(*HistoryRow) error) error
	HistoryChildren(source, dir string, fn func(name string) error) error
	HistorySources(fn func(source string) error) error
	DeleteHistory(source string, snap blob.ID) error
	HistoryRows(source string, fn func(*HistoryRow) error) error
	DeleteHistoryRows(rows []HistoryRow) error
	LookupLive(t blob.Type, id blob.ID) (Location, bool, error)
	Condemn(record RecordID, packs []blob.ID) error
	Uncondemn(record RecordID, pack blob.ID) error
	Bury(record RecordID, pack blob.ID) error
	DropPack(pack blob.ID, blobs []BlobRef, moved []BlobEntry, remotes []string) error
	Condemned(fn func(Condemnation) error) error
	Close() error
}

// HistoryWriter collects the history rows of one snapshot. It is not safe
// for concurrent use.
type HistoryWriter interface {
	Put(r *HistoryRow) error
	Commit() error
	Abort()
}

var (
	_ Store         = (*DB)(nil)
	_ Store         = (*Shared)(nil)
	_ HistoryWriter = (*HistoryBatch)(nil)
	_ HistoryWriter = (*sharedHistory)(nil)
)
