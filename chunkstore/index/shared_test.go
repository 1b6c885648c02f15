package index

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
)

// openSharedT opens dir, closing it when the test ends.
func openSharedT(t testing.TB, dir string) *Shared {
	t.Helper()
	s, err := OpenShared(vfs.Default, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func indexDir(t testing.TB) string { return filepath.Join(t.TempDir(), "index") }

// nid is a distinct ID for every (kind, n).
func nid(kind byte, n int) blob.ID {
	var i blob.ID
	i[0] = kind
	binary.BigEndian.PutUint64(i[1:], uint64(n))
	i[31] = 0x5a
	return i
}

// testPack is pack n with the given number of data blobs, whose IDs no
// other test pack shares.
func testPack(n, blobs int) (PackInfo, []BlobEntry) {
	p := PackInfo{ID: nid('p', n), Size: int64(1000 + n), Count: uint32(blobs)}
	entries := make([]BlobEntry, blobs)
	for i := range entries {
		entries[i] = BlobEntry{Type: blob.Data, ID: nid('b', n<<20+i), Location: Location{
			Pack: p.ID, Offset: uint32(i * 100), Length: 100, RawLength: uint32(n), Compression: 1}}
	}
	return p, entries
}

// checkPacks fails unless st has packs [first, first+n) with their blobs.
func checkPacks(t testing.TB, st Store, first, n int) {
	t.Helper()
	for i := first; i < first+n; i++ {
		p, entries := testPack(i, 1)
		got, ok, err := st.Pack(p.ID)
		if err != nil || !ok || got != p {
			t.Fatalf("pack %d: %+v %v %v, want %+v", i, got, ok, err, p)
		}
		l, ok, err := st.Lookup(blob.Data, entries[0].ID)
		if err != nil || !ok || l != entries[0].Location {
			t.Fatalf("blob of pack %d: %+v %v %v", i, l, ok, err)
		}
	}
}

func collect[T any](t testing.TB, scan func(func(T) error) error) []T {
	t.Helper()
	var out []T
	if err := scan(func(v T) error { out = append(out, v); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// exerciseStore runs every Store method on st, which must be empty.
func exerciseStore(t *testing.T, st Store) {
	p1, e1 := testPack(1, 3)
	if err := st.AddPack(p1, e1); err != nil {
		t.Fatal(err)
	}
	for _, e := range e1 {
		if l, ok, err := st.Lookup(e.Type, e.ID); err != nil || !ok || l != e.Location {
			t.Fatalf("Lookup = %+v %v %v, want %+v", l, ok, err, e.Location)
		}
	}
	if _, ok, err := st.Lookup(blob.Tree, e1[0].ID); ok || err != nil {
		t.Fatalf("data blob found as tree: %v %v", ok, err)
	}
	refs := []BlobRef{{blob.Data, e1[2].ID}, {blob.Tree, e1[0].ID}, {blob.Data, e1[0].ID}}
	found := map[int]Location{}
	if err := st.LookupMany(refs, func(i int, l Location) error { found[i] = l; return nil }); err != nil {
		t.Fatal(err)
	}
	if want := map[int]Location{0: e1[2].Location, 2: e1[0].Location}; !reflect.DeepEqual(found, want) {
		t.Fatalf("LookupMany = %+v, want %+v", found, want)
	}
	stop := errors.New("stop")
	if err := st.LookupMany(refs, func(int, Location) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("LookupMany with a failing callback: %v", err)
	}
	if got := collect(t, st.UnlistedPacks); !reflect.DeepEqual(got, []blob.ID{p1.ID}) {
		t.Fatalf("unlisted = %v", got)
	}
	if err := st.MarkListed(nid('g', 1), []blob.ID{p1.ID}); err != nil {
		t.Fatal(err)
	}
	if got := collect(t, st.UnlistedPacks); len(got) != 0 {
		t.Fatalf("unlisted after MarkListed = %v", got)
	}
	p2, e2 := testPack(2, 2)
	p3, e3 := testPack(3, 0)
	if err := st.AddSegment(nid('g', 2), []PackBlobs{{p2, e2}, {p3, e3}}); err != nil {
		t.Fatal(err)
	}
	for _, g := range []blob.ID{nid('g', 1), nid('g', 2)} {
		if ok, err := st.HasSegment(g); !ok || err != nil {
			t.Fatalf("HasSegment = %v %v", ok, err)
		}
	}
	if ok, err := st.HasSegment(nid('g', 3)); ok || err != nil {
		t.Fatalf("HasSegment(unknown) = %v %v", ok, err)
	}
	if ok, err := st.HasPack(p3.ID); !ok || err != nil {
		t.Fatalf("HasPack = %v %v", ok, err)
	}
	if p, ok, err := st.Pack(p2.ID); !ok || err != nil || p != p2 {
		t.Fatalf("Pack = %+v %v %v", p, ok, err)
	}
	if p, ok, err := st.Pack(nid('p', 99)); ok || err != nil || p != (PackInfo{}) {
		t.Fatalf("Pack(unknown) = %+v %v %v", p, ok, err)
	}
	if got := collect(t, st.Packs); !reflect.DeepEqual(got, []PackInfo{p1, p2, p3}) {
		t.Fatalf("Packs = %+v", got)
	}
	if got := collect(t, st.Segments); !reflect.DeepEqual(got, []blob.ID{nid('g', 1), nid('g', 2)}) {
		t.Fatalf("Segments = %v", got)
	}
	if got := collect(t, st.Blobs); !reflect.DeepEqual(got, append(append([]BlobEntry(nil), e1...), e2...)) {
		t.Fatalf("Blobs = %+v", got)
	}

	if err := st.SetRemote("s3", p1.ID); err != nil {
		t.Fatal(err)
	}
	if ok, err := st.OnRemote("s3", p1.ID); !ok || err != nil {
		t.Fatalf("OnRemote = %v %v", ok, err)
	}
	if ok, err := st.OnRemote("swift", p1.ID); ok || err != nil {
		t.Fatalf("OnRemote(other remote) = %v %v", ok, err)
	}

	for i := range 3 {
		if err := st.PutSnapshot(nid('s', i), []byte(fmt.Sprintf("record %d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.DeleteSnapshot(nid('s', 1)); err != nil {
		t.Fatal(err)
	}
	var recs []string
	err := st.Snapshots(func(id blob.ID, rec []byte) error {
		recs = append(recs, fmt.Sprintf("%02x:%s", id[8], rec))
		return nil
	})
	if err != nil || !reflect.DeepEqual(recs, []string{"00:record 0", "02:record 2"}) {
		t.Fatalf("Snapshots = %q, %v", recs, err)
	}

	exerciseHistory(t, st)
}

func exerciseHistory(t *testing.T, st Store) {
	// More rows than one internal batch, so that a batch is sent before Commit.
	const rows = historyBatchRows + 7
	hb := st.NewHistoryBatch()
	for i := range rows {
		r := &HistoryRow{Source: "/srv", Path: fmt.Sprintf("d/f%05d", i), Time: -1, Snapshot: nid('s', 1),
			Kind: KindFile, Size: uint64(i), Mtime: int64(i), Content: nid('c', i)}
		if err := hb.Put(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := hb.Commit(); err != nil {
		t.Fatal(err)
	}
	hb = st.NewHistoryBatch()
	if err := hb.Put(&HistoryRow{Source: "/srv", Path: "d/f00003", Time: 50, Snapshot: nid('s', 2), Kind: KindDeleted}); err != nil {
		t.Fatal(err)
	}
	hb.Put(&HistoryRow{Source: "/aborted", Path: "x", Time: 1, Snapshot: nid('s', 3)})
	hb.Abort()
	hb = st.NewHistoryBatch()
	hb.Put(&HistoryRow{Source: "/srv", Path: "d/f00003", Time: 50, Snapshot: nid('s', 2), Kind: KindDeleted})
	if err := hb.Commit(); err != nil {
		t.Fatal(err)
	}

	var hist []HistoryRow
	err := st.History("/srv", "d/f00003", func(r *HistoryRow) error { hist = append(hist, *r); return nil })
	want := []HistoryRow{
		{Source: "/srv", Path: "d/f00003", Time: -1, Snapshot: nid('s', 1), Kind: KindFile, Size: 3, Mtime: 3, Content: nid('c', 3)},
		{Source: "/srv", Path: "d/f00003", Time: 50, Snapshot: nid('s', 2), Kind: KindDeleted},
	}
	if err != nil || !reflect.DeepEqual(hist, want) {
		t.Fatalf("History = %+v, %v", hist, err)
	}
	if n := len(collect(t, func(fn func(string) error) error { return st.HistoryChildren("/srv", "d", fn) })); n != rows {
		t.Fatalf("HistoryChildren: %d names, want %d", n, rows)
	}
	if got := collect(t, st.HistorySources); !reflect.DeepEqual(got, []string{"/srv"}) {
		t.Fatalf("HistorySources = %q (an aborted batch left rows?)", got)
	}
	if err := st.DeleteHistory("/srv", nid('s', 2)); err != nil {
		t.Fatal(err)
	}
	hist = nil
	st.History("/srv", "d/f00003", func(r *HistoryRow) error { hist = append(hist, *r); return nil })
	if len(hist) != 1 || hist[0].Snapshot != nid('s', 1) {
		t.Fatalf("History after DeleteHistory = %+v", hist)
	}
	exerciseHistoryRows(t, st)
}

// exerciseHistoryRows checks the whole-source scan and row deletion on a
// source of its own: key order, the root's rows, names with odd bytes.
func exerciseHistoryRows(t *testing.T, st Store) {
	rows := []HistoryRow{
		{Source: "/rows", Path: "", Time: 5, Snapshot: nid('s', 1), Kind: KindDir},
		{Source: "/rows", Path: "a", Time: -3, Snapshot: nid('s', 0), Kind: KindDir, Mtime: -1},
		{Source: "/rows", Path: "a", Time: 5, Snapshot: nid('s', 1), Kind: KindDeleted},
		{Source: "/rows", Path: "a/b\nc", Time: -3, Snapshot: nid('s', 0), Kind: KindFile, Size: 9, Content: nid('c', 1)},
		{Source: "/rows", Path: "a/b\nc/d", Time: 5, Snapshot: nid('s', 1), Kind: KindSymlink},
		{Source: "/rows", Path: "a\x01", Time: 5, Snapshot: nid('s', 1), Kind: KindOther},
		{Source: "/rows", Path: "b", Time: 5, Snapshot: nid('s', 1), Kind: KindFile},
	}
	hb := st.NewHistoryBatch()
	for i := len(rows) - 1; i >= 0; i-- {
		hb.Put(&rows[i])
	}
	hb.Put(&HistoryRow{Source: "/rows2", Path: "a", Time: 1, Snapshot: nid('s', 1)})
	hb.Put(&HistoryRow{Source: "/row", Path: "s/a", Time: 1, Snapshot: nid('s', 1)})
	if err := hb.Commit(); err != nil {
		t.Fatal(err)
	}
	scan := func() []HistoryRow {
		return collect(t, func(fn func(HistoryRow) error) error {
			return st.HistoryRows("/rows", func(r *HistoryRow) error { return fn(*r) })
		})
	}
	if got := scan(); !reflect.DeepEqual(got, rows) {
		t.Fatalf("HistoryRows =\n%+v\nwant\n%+v", got, rows)
	}
	// Values do not matter to a deletion, nor do rows that do not exist.
	del := []HistoryRow{rows[2], rows[4], {Source: "/rows", Path: "zzz", Time: 1}}
	del[0].Kind, del[1].Size = KindFile, 77
	if err := st.DeleteHistoryRows(del); err != nil {
		t.Fatal(err)
	}
	want := []HistoryRow{rows[0], rows[1], rows[3], rows[5], rows[6]}
	if got := scan(); !reflect.DeepEqual(got, want) {
		t.Fatalf("HistoryRows after DeleteHistoryRows =\n%+v\nwant\n%+v", got, want)
	}
}

// TestStores runs one scenario on each way of holding the index, so that
// the socket protocol answers exactly what the DB answers.
func TestStores(t *testing.T) {
	t.Run("DB", func(t *testing.T) {
		d, err := Open(vfs.Default, indexDir(t), Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		exerciseStore(t, d)
	})
	t.Run("holder", func(t *testing.T) {
		s := openSharedT(t, indexDir(t))
		if !s.holding() || !s.Created {
			t.Fatalf("first opener: holding %v, created %v", s.holding(), s.Created)
		}
		exerciseStore(t, s)
	})
	t.Run("client", func(t *testing.T) {
		dir := indexDir(t)
		openSharedT(t, dir)
		s := openSharedT(t, dir)
		if s.holding() || s.Created {
			t.Fatalf("second opener: holding %v, created %v", s.holding(), s.Created)
		}
		exerciseStore(t, s)
	})
}

func TestSharedWritesVisibleBothWays(t *testing.T) {
	dir := indexDir(t)
	a := openSharedT(t, dir)
	b := openSharedT(t, dir)
	p, e := testPack(1, 1)
	if err := b.AddPack(p, e); err != nil {
		t.Fatal(err)
	}
	checkPacks(t, a, 1, 1)
	p, e = testPack(2, 1)
	if err := a.AddPack(p, e); err != nil {
		t.Fatal(err)
	}
	checkPacks(t, b, 1, 2)

	fi, err := os.Lstat(dir + ".sock")
	if err != nil || fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket: %v %v, want a socket with mode 0600", fi.Mode(), err)
	}
}

func TestSharedScanCallbackErrorStops(t *testing.T) {
	dir := indexDir(t)
	a := openSharedT(t, dir)
	b := openSharedT(t, dir)
	p, e := testPack(1, 3000)
	if err := a.AddPack(p, e); err != nil {
		t.Fatal(err)
	}
	stop := errors.New("enough")
	for name, st := range map[string]*Shared{"holder": a, "client": b} {
		n := 0
		err := st.Blobs(func(BlobEntry) error {
			n++
			if n == 10 {
				return stop
			}
			return nil
		})
		if err != stop || n != 10 {
			t.Fatalf("%s: scan returned %v after %d items, want the callback's error after 10", name, err, n)
		}
		// The stopped scan must not leave a connection with a half-read reply.
		if _, ok, err := st.Lookup(blob.Data, e[2999].ID); !ok || err != nil {
			t.Fatalf("%s: Lookup after a stopped scan: %v %v", name, ok, err)
		}
	}
}

// TestSharedScanStreams checks that neither end holds a whole scan: the
// live heap, measured in the middle of a scan of about 25 MB of items, must
// stay far below that.
func TestSharedScanStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 300k blobs")
	}
	dir := indexDir(t)
	a := openSharedT(t, dir)
	b := openSharedT(t, dir)
	const packs, perPack = 300, 1000
	for i := range packs {
		p, e := testPack(i, perPack)
		if err := a.AddPack(p, e); err != nil {
			t.Fatal(err)
		}
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var n int
	var mid uint64
	err := b.Blobs(func(BlobEntry) error {
		if n++; n == packs*perPack/2 {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			mid = ms.HeapAlloc
		}
		return nil
	})
	if err != nil || n != packs*perPack {
		t.Fatalf("scan: %d items, %v", n, err)
	}
	grown := int64(mid) - int64(base)
	if grown > 8<<20 {
		t.Fatalf("live heap grew by %d MiB half-way through a scan", grown>>20)
	}
	t.Logf("live heap grew by %d KiB half-way through the scan", grown>>10)
}

func TestSharedConnectionReuse(t *testing.T) {
	dir := indexDir(t)
	openSharedT(t, dir)
	b := openSharedT(t, dir)
	for i := range 1000 {
		if _, _, err := b.Lookup(blob.Data, nid('x', i)); err != nil {
			t.Fatal(err)
		}
	}
	c := b.cur.(*client)
	c.mu.Lock()
	dials := c.dials
	c.mu.Unlock()
	if dials != 1 {
		t.Fatalf("%d connections for sequential calls, want the one made at open", dials)
	}
}

// TestSharedHandover closes the holder while a client's goroutines write
// and read: the client must take over and lose nothing.
func TestSharedHandover(t *testing.T) {
	dir := indexDir(t)
	a := openSharedT(t, dir)
	b := openSharedT(t, dir)
	const workers, each = 3, 150
	var started sync.WaitGroup
	started.Add(workers)
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			for i := range each {
				if i == 20 {
					started.Done()
				}
				n := w*each + i
				p, e := testPack(n, 1)
				if err := b.AddPack(p, e); err != nil {
					errs <- fmt.Errorf("AddPack %d: %w", n, err)
					return
				}
				if l, ok, err := b.Lookup(blob.Data, e[0].ID); !ok || err != nil || l != e[0].Location {
					errs <- fmt.Errorf("Lookup %d right after AddPack: %v %v", n, ok, err)
					return
				}
			}
			errs <- nil
		}()
	}
	started.Wait()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := a.Lookup(blob.Data, nid('x', 0)); err != ErrClosed {
		t.Fatalf("Lookup on a closed Shared: %v", err)
	}
	if !b.holding() {
		t.Fatal("the client did not become the holder")
	}
	checkPacks(t, b, 0, workers*each)
	c := openSharedT(t, dir)
	if c.holding() {
		t.Fatal("a third opener took the lock from the new holder")
	}
	checkPacks(t, c, 0, workers*each)
}

// TestSharedScanResumes closes the holder in the middle of a client's scan:
// the scan continues on the new holder, and the callback sees every item
// once, in order.
func TestSharedScanResumes(t *testing.T) {
	dir := indexDir(t)
	a := openSharedT(t, dir)
	b := openSharedT(t, dir)
	// More than the socket buffers hold, so the holder is still sending.
	p, e := testPack(1, 20000)
	if err := a.AddPack(p, e); err != nil {
		t.Fatal(err)
	}
	var got []BlobEntry
	err := b.Blobs(func(be BlobEntry) error {
		got = append(got, be)
		if len(got) == 100 {
			return a.Close()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, e) {
		t.Fatalf("scan across a handover: %d items, want each of %d once in order", len(got), len(e))
	}
	b.mu.RLock()
	gen := b.gen
	b.mu.RUnlock()
	if gen != 1 || !b.holding() {
		t.Fatalf("generation %d, holding %v: the scan did not cross a handover", gen, b.holding())
	}
}

func TestSharedHistoryBatchAcrossHandover(t *testing.T) {
	dir := indexDir(t)
	a := openSharedT(t, dir)
	b := openSharedT(t, dir)
	hb := b.NewHistoryBatch()
	put := func(from, to int) {
		for i := from; i < to; i++ {
			if err := hb.Put(&HistoryRow{Source: "/s", Path: fmt.Sprintf("f%06d", i), Time: 1, Snapshot: nid('s', 1)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	put(0, historyBatchRows+5) // one unit sent to a
	a.Close()
	put(historyBatchRows+5, 2*historyBatchRows+10) // one unit sent after the handover
	if err := hb.Commit(); err != nil {
		t.Fatal(err)
	}
	names := collect(t, func(fn func(string) error) error { return b.HistoryChildren("/s", "", fn) })
	if len(names) != 2*historyBatchRows+10 {
		t.Fatalf("%d rows, want %d", len(names), 2*historyBatchRows+10)
	}
}

func TestSharedReplacesStaleSocket(t *testing.T) {
	dir := indexDir(t)
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		t.Fatal(err)
	}
	// What a holder killed with -9 leaves: a socket nobody listens on, and
	// the directory it was being created in.
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: dir + ".sock", Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	if err := os.Mkdir(dir+".sock.tmp-123", 0o700); err != nil {
		t.Fatal(err)
	}

	a := openSharedT(t, dir)
	b := openSharedT(t, dir)
	if !a.holding() || b.holding() {
		t.Fatalf("holding: %v %v", a.holding(), b.holding())
	}
	checkPacks(t, b, 0, 0)
	if _, err := os.Stat(dir + ".sock.tmp-123"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("leftover directory: %v", err)
	}
	a.Close()
	if _, err := os.Lstat(dir + ".sock"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket after the holder closed: %v", err)
	}
}

func TestSharedLockedWithoutHolder(t *testing.T) {
	dir := indexDir(t)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	lock, err := pebble.LockDirectory(dir, vfs.Default)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	start := time.Now()
	_, err = openShared(vfs.Default, dir, Options{}, 200*time.Millisecond)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), dir+".sock") {
		t.Fatalf("err = %v, want ErrLocked naming the socket", err)
	}
	t.Log(err)
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("gave up after %v without waiting for a starting holder", d)
	}
}

func TestSharedLongSocketPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 60), strings.Repeat("e", 60), "index")
	if len(dir+".sock") <= maxSocketName {
		t.Fatal("path not long enough to test")
	}
	a := openSharedT(t, dir)
	b := openSharedT(t, dir)
	p, e := testPack(1, 1)
	if err := b.AddPack(p, e); err != nil {
		t.Fatal(err)
	}
	if !a.holding() || b.holding() {
		t.Fatalf("holding: %v %v", a.holding(), b.holding())
	}
	checkPacks(t, a, 1, 1)
}

// rawConn speaks the protocol by hand, for what a correct client never sends.
func rawConn(t *testing.T, sock string, version uint32) (*wire, []byte) {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	w := newWire(c)
	e := w.start(opHello)
	e.b = append(e.b, protocolMagic...)
	e.u32(version)
	frame, err := w.roundTrip()
	if err != nil {
		t.Fatal(err)
	}
	return w, frame
}

func TestServerRefusesGarbledRequests(t *testing.T) {
	dir := indexDir(t)
	a := openSharedT(t, dir)

	_, frame := rawConn(t, dir+".sock", protocolVersion+1)
	if frame[0] != stErr || !strings.Contains(string(frame), "version") {
		t.Fatalf("hello with another version: %q", frame)
	}

	w, frame := rawConn(t, dir+".sock", protocolVersion)
	if frame[0] != stOK {
		t.Fatalf("hello: %q", frame)
	}
	p, e := testPack(1, 2)
	enc := w.start(opAddPack)
	enc.packInfo(p)
	enc.blobEntries(e)
	enc.b = enc.b[:len(enc.b)-1] // cut the last blob short
	frame, err := w.roundTrip()
	if err != nil || frame[0] != stErr {
		t.Fatalf("truncated AddPack: %q %v, want an error reply", frame, err)
	}
	if ok, err := a.HasPack(p.ID); ok || err != nil {
		t.Fatalf("a truncated AddPack was applied: %v %v", ok, err)
	}
	// The connection stays usable after a refused request.
	w.start(opHasPack).id(p.ID)
	frame, err = w.roundTrip()
	if err != nil || frame[0] != stOK || frame[1] != 0 {
		t.Fatalf("HasPack after a refused request: %q %v", frame, err)
	}
}

func BenchmarkLookup(b *testing.B) {
	setup := func(b *testing.B, st Store) []blob.ID {
		p, e := testPack(1, 10000)
		if err := st.AddPack(p, e); err != nil {
			b.Fatal(err)
		}
		ids := make([]blob.ID, len(e))
		for i := range e {
			ids[i] = e[i].ID
		}
		return ids
	}
	lookups := func(b *testing.B, st Store, ids []blob.ID) {
		for i := 0; b.Loop(); i++ {
			if _, ok, err := st.Lookup(blob.Data, ids[i%len(ids)]); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	}
	b.Run("DB", func(b *testing.B) {
		d, err := Open(vfs.Default, indexDir(b), Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer d.Close()
		lookups(b, d, setup(b, d))
	})
	b.Run("holder", func(b *testing.B) {
		s := openSharedT(b, indexDir(b))
		lookups(b, s, setup(b, s))
	})
	b.Run("client", func(b *testing.B) {
		dir := indexDir(b)
		openSharedT(b, dir)
		s := openSharedT(b, dir)
		lookups(b, s, setup(b, s))
	})
	b.Run("client-parallel", func(b *testing.B) {
		dir := indexDir(b)
		openSharedT(b, dir)
		s := openSharedT(b, dir)
		ids := setup(b, s)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				if _, ok, err := s.Lookup(blob.Data, ids[i%len(ids)]); !ok || err != nil {
					b.Error(ok, err)
					return
				}
			}
		})
	})
}
