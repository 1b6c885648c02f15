package index

import (
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
)

func testDB(t *testing.T) (*DB, vfs.FS) {
	t.Helper()
	fs := vfs.NewMem()
	d, err := Open(fs, "idx", Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, fs
}

func id(b byte) blob.ID {
	var i blob.ID
	i[0], i[31] = b, b
	return i
}

func TestPackAndLookup(t *testing.T) {
	d, fs := testDB(t)
	entries := []BlobEntry{
		{Type: blob.Data, ID: id(1), Location: Location{Pack: id(9), Offset: 0, Length: 100, RawLength: 200, Compression: 1}},
		{Type: blob.Tree, ID: id(2), Location: Location{Pack: id(9), Offset: 100, Length: 50, RawLength: 50}},
	}
	if err := d.AddPack(PackInfo{ID: id(9), Size: 170, Count: 2}, entries); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		l, ok, err := d.Lookup(e.Type, e.ID)
		if err != nil || !ok || l != e.Location {
			t.Fatalf("Lookup(%v) = %+v, %v, %v; want %+v", e.ID.Short(), l, ok, err, e.Location)
		}
	}
	if _, ok, _ := d.Lookup(blob.Tree, id(1)); ok {
		t.Fatal("a data blob was found as a tree blob")
	}
	var unlisted []blob.ID
	d.UnlistedPacks(func(p blob.ID) error { unlisted = append(unlisted, p); return nil })
	if !reflect.DeepEqual(unlisted, []blob.ID{id(9)}) {
		t.Fatalf("unlisted = %v", unlisted)
	}
	if err := d.MarkListed(id(7), unlisted); err != nil {
		t.Fatal(err)
	}
	unlisted = nil
	d.UnlistedPacks(func(p blob.ID) error { unlisted = append(unlisted, p); return nil })
	if len(unlisted) != 0 {
		t.Fatalf("still unlisted after MarkListed: %v", unlisted)
	}
	if ok, _ := d.HasSegment(id(7)); !ok {
		t.Fatal("segment not recorded")
	}

	// A second opener is refused while the index is held; the data survive a reopen.
	if _, err := Open(fs, "idx", Options{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	d.Close()
	d2, err := Open(fs, "idx", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	var n int
	d2.Blobs(func(BlobEntry) error { n++; return nil })
	p, ok, err := d2.Pack(id(9))
	if n != 2 || !ok || err != nil || p.Size != 170 || p.Count != 2 {
		t.Fatalf("after reopen: %d blobs, pack %+v %v %v", n, p, ok, err)
	}
}

func TestHistory(t *testing.T) {
	d, _ := testDB(t)
	rows := []HistoryRow{
		{Source: "/home", Path: "alice/report.odt", Time: 200, Snapshot: id(2), Kind: KindFile, Size: 5},
		{Source: "/home", Path: "alice/report.odt", Time: 100, Snapshot: id(1), Kind: KindFile, Size: 4},
		{Source: "/home", Path: "alice/report.odt", Time: -5, Snapshot: id(0), Kind: KindFile, Size: 3},
		{Source: "/home", Path: "alice/report.odt/x", Time: 100, Snapshot: id(1), Kind: KindFile},
		{Source: "/home", Path: "alice/report.odt\x01", Time: 100, Snapshot: id(1), Kind: KindFile},
		{Source: "/home", Path: "alice", Time: 100, Snapshot: id(1), Kind: KindDir},
		{Source: "/home", Path: "alice/a\nb", Time: 300, Snapshot: id(3), Kind: KindDeleted},
		{Source: "/home", Path: "bob/x", Time: 100, Snapshot: id(1), Kind: KindFile},
		{Source: "/home2", Path: "alice/zzz", Time: 100, Snapshot: id(1), Kind: KindFile},
	}
	hb := d.NewHistoryBatch()
	for i := range rows {
		if err := hb.Put(&rows[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := hb.Commit(); err != nil {
		t.Fatal(err)
	}

	var times []int64
	err := d.History("/home", "alice/report.odt", func(r *HistoryRow) error {
		times = append(times, r.Time)
		return nil
	})
	if err != nil || !reflect.DeepEqual(times, []int64{-5, 100, 200}) {
		t.Fatalf("History times = %v, %v; want oldest first, only this path", times, err)
	}

	tests := []struct {
		dir  string
		want []string
	}{
		{"", []string{"alice", "bob"}},
		{"alice", []string{"a\nb", "report.odt", "report.odt\x01"}},
		{"alice/report.odt", []string{"x"}},
		{"nothing", nil},
	}
	for _, tc := range tests {
		var got []string
		if err := d.HistoryChildren("/home", tc.dir, func(n string) error { got = append(got, n); return nil }); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("HistoryChildren(%q) = %q, want %q", tc.dir, got, tc.want)
		}
	}

	var sources []string
	d.HistorySources(func(s string) error { sources = append(sources, s); return nil })
	if !reflect.DeepEqual(sources, []string{"/home", "/home2"}) {
		t.Fatalf("sources = %q", sources)
	}

	if err := d.DeleteHistory("/home", id(1)); err != nil {
		t.Fatal(err)
	}
	times = nil
	d.History("/home", "alice/report.odt", func(r *HistoryRow) error { times = append(times, r.Time); return nil })
	if !reflect.DeepEqual(times, []int64{-5, 200}) {
		t.Fatalf("after DeleteHistory: %v", times)
	}
}

// Below its reserve the index does not open (Pebble would retry the flush
// of its log forever); the error says the disk is full.
func TestReserveAtOpen(t *testing.T) {
	fs := vfs.NewMem()
	fs.TestingSetDiskUsage(vfs.DiskUsage{AvailBytes: 100 << 10, TotalBytes: 1 << 30, UsedBytes: 1<<30 - 100<<10})
	if _, err := Open(fs, "idx", Options{}); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Open below the reserve = %v, want ENOSPC", err)
	}
	fs.TestingSetDiskUsage(vfs.DiskUsage{AvailBytes: 1 << 30, TotalBytes: 1 << 30})
	d, err := Open(fs, "idx", Options{})
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
}

// A write that fails under Pebble (its WAL on a full disk) makes Pebble
// call Fatalf. The index turns that into an ENOSPC error for the caller
// and refuses later writes, instead of a panic that kills the process.
func TestWALFailureIsAnError(t *testing.T) {
	toggle := &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind.ReadOrWrite() == errorfs.OpIsWrite {
			return syscall.ENOSPC
		}
		return nil
	})}
	fs := errorfs.Wrap(vfs.NewMem(), toggle)
	d, err := Open(fs, "idx", Options{})
	if err != nil {
		t.Fatal(err)
	}
	pack := PackInfo{ID: id(7), Size: 10, Count: 1}
	entries := []BlobEntry{{Type: blob.Data, ID: id(3), Location: Location{Pack: id(7), Length: 10, RawLength: 10}}}
	toggle.On()
	if err := d.AddPack(pack, entries); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("AddPack with the WAL failing = %v, want ENOSPC", err)
	}
	if err := d.PutSnapshot(id(4), []byte("r")); err == nil || !strings.Contains(err.Error(), "unusable") {
		t.Fatalf("a write after the failure = %v, want the index reported unusable", err)
	}
	d.Close()
}

// An index another schema version wrote (a binary from before condemned
// packs) is emptied on open, and says it was created: the caller refills
// it from the repository, applying the condemnation records.
func TestOpenEmptiesOtherSchemaVersion(t *testing.T) {
	d, fs := testDB(t)
	if err := d.AddPack(PackInfo{ID: id(9), Size: 100, Count: 1}, []BlobEntry{{Type: blob.Data, ID: id(1), Location: Location{Pack: id(9), Length: 100}}}); err != nil {
		t.Fatal(err)
	}
	var old [4]byte
	binary.BigEndian.PutUint32(old[:], SchemaVersion-1)
	if err := d.db.Set(versionKey(), old[:], pebble.Sync); err != nil {
		t.Fatal(err)
	}
	d.Close()
	d, err := Open(fs, "idx", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if !d.Created {
		t.Error("an index of schema version 1 was opened as it was")
	}
	if _, ok, err := d.Lookup(blob.Data, id(1)); err != nil || ok {
		t.Errorf("Lookup after emptying: found %v, err %v", ok, err)
	}
}

// TestCloseFlushesWrites: a process that wrote leaves its memtable in a
// table, so the next open has no log to replay (a mount right after a
// backup answered 0.2-0.4 s later for it); one that only read writes
// nothing.
func TestCloseFlushesWrites(t *testing.T) {
	fs := vfs.NewMem()
	tables := func() int {
		t.Helper()
		names, err := fs.List("idx")
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, name := range names {
			if strings.HasSuffix(name, ".sst") {
				n++
			}
		}
		return n
	}
	d, err := Open(fs, "idx", Options{})
	if err != nil {
		t.Fatal(err)
	}
	var entries []BlobEntry
	for i := range 200 {
		entries = append(entries, BlobEntry{Type: blob.Data, ID: id(byte(i)), Location: Location{Pack: id(9), Offset: uint32(i)}})
	}
	if err := d.AddPack(PackInfo{ID: id(9), Count: 200}, entries); err != nil {
		t.Fatal(err)
	}
	before := tables()
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if got := tables(); got != before+1 {
		t.Fatalf("Close after writes: %d tables, want %d (the memtable flushed)", got, before+1)
	}

	d, err = Open(fs, "idx", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := d.Lookup(blob.Data, id(7)); !ok || err != nil {
		t.Fatalf("after reopen: Lookup = %v, %v", ok, err)
	}
	before = tables()
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if got := tables(); got != before {
		t.Fatalf("Close after reads only: %d tables, want %d", got, before)
	}
}
