package fs

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// treeRepo is a Repository of one snapshot whose directories are keyed by
// path (an Entry's Ref).
type treeRepo struct {
	dirs  map[string][]Entry
	lists int // List calls
}

func (r *treeRepo) Snapshots(context.Context) ([]Snapshot, error) {
	return []Snapshot{{ID: "s1", Time: time.Unix(1e9, 0), Source: Source{Host: "h", Path: "/p"}}}, nil
}

func (r *treeRepo) Root(context.Context, *Snapshot) (Entry, error) {
	return Entry{Mode: syscall.S_IFDIR | 0o755, Ref: ""}, nil
}

func (r *treeRepo) List(_ context.Context, dir *Entry, buf []Entry) ([]Entry, error) {
	r.lists++
	return append(buf[:0], r.dirs[dir.Ref.(string)]...), nil
}

func (r *treeRepo) Lookup(context.Context, *Entry, string) (Entry, error) {
	return Entry{}, ErrNotExist
}

func (r *treeRepo) Open(context.Context, *Entry) (File, error) { return nil, io.EOF }

func (r *treeRepo) History(context.Context, Source, string) ([]Version, error) { return nil, nil }

func (r *treeRepo) HistoryNames(context.Context, Source, string) ([]string, error) {
	return nil, nil
}

// newTreeFS serves a snapshot whose root holds n files f000... (file i of
// size i) and a directory "d" holding one file.
func newTreeFS(t *testing.T, n int) (*rawFS, *treeRepo, uint64) {
	t.Helper()
	repo := &treeRepo{dirs: map[string][]Entry{"/d": {{Name: "x", Mode: syscall.S_IFREG, Ref: "/d/x"}}}}
	root := []Entry{{Name: "d", Mode: syscall.S_IFDIR | 0o755, Ref: "/d"}}
	for i := range n {
		root = append(root, Entry{Name: fmt.Sprintf("f%03d", i), Mode: syscall.S_IFREG | 0o644, Size: uint64(i)})
	}
	slices.SortFunc(root, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	repo.dirs[""] = root
	m := &mount{repo: repo, log: slog.New(slog.DiscardHandler)}
	if err := m.refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := newRawFS(m)
	src := lookup(t, r, rootIno, "h-p")
	snap := lookup(t, r, src, timeName(time.Unix(1e9, 0)))
	return r, repo, snap
}

func lookup(t *testing.T, r *rawFS, dir uint64, name string) uint64 {
	t.Helper()
	var out fuse.EntryOut
	if st := r.Lookup(nil, &fuse.InHeader{NodeId: dir}, name, &out); st != fuse.OK {
		t.Fatalf("lookup %q: %v", name, st)
	}
	return out.NodeId
}

// plusEntry is one entry of a READDIRPLUS answer.
type plusEntry struct {
	name        string
	node, off   uint64
	size, inode uint64
}

// statter is the caller the tests read directories as when they want
// every entry in full, as a caller that stats what it lists gets them.
const statter = 7

// readDirPlus reads directory dir from off with a buffer of size bytes,
// as the kernel does for caller pid, and decodes the answer.
func readDirPlus(t *testing.T, r *rawFS, pid uint32, dir, off uint64, size int) []plusEntry {
	t.Helper()
	if pid == statter {
		r.statters[statter] = struct{}{}
	}
	in := &fuse.ReadIn{InHeader: fuse.InHeader{NodeId: dir, Caller: fuse.Caller{Pid: pid}}, Offset: off}
	out := fuse.NewDirEntryList(make([]byte, size), off)
	if st := r.ReadDirPlus(nil, in, out); st != fuse.OK {
		t.Fatalf("readdirplus: %v", st)
	}
	var list []plusEntry
	for b := out.Bytes(); len(b) > 0; {
		eo := (*fuse.EntryOut)(unsafe.Pointer(&b[0]))
		b = b[unsafe.Sizeof(fuse.EntryOut{}):]
		nameLen := int(binary.LittleEndian.Uint32(b[16:]))
		list = append(list, plusEntry{name: string(b[24 : 24+nameLen]), node: eo.NodeId, off: binary.LittleEndian.Uint64(b[8:]),
			size: eo.Size, inode: binary.LittleEndian.Uint64(b)})
		b = b[24+(nameLen+7)&^7:]
	}
	return list
}

// TestReadDirPlusResumes reads a listing across several READDIRPLUS
// requests: each entry's offset is where the next request resumes, and
// each comes with the node ID and attributes of its own entry.
func TestReadDirPlusResumes(t *testing.T) {
	r, _, snap := newTreeFS(t, 40)
	var all []plusEntry
	for off := uint64(0); ; {
		part := readDirPlus(t, r, statter, snap, off, 1024)
		if len(part) == 0 {
			break
		}
		all = append(all, part...)
		off = part[len(part)-1].off
	}
	if len(all) != 41 || all[0].name != "d" || all[40].name != "f039" {
		t.Fatalf("listed %d entries, %q first: want 41, d first and f039 last", len(all), all[0].name)
	}
	for i, e := range all[1:] {
		var out fuse.AttrOut
		if st := r.GetAttr(nil, &fuse.GetAttrIn{InHeader: fuse.InHeader{NodeId: e.node}}, &out); st != fuse.OK {
			t.Fatalf("getattr %s: %v", e.name, st)
		}
		if e.off != uint64(i+2) || e.size != uint64(i) || out.Size != uint64(i) || out.Ino != e.inode {
			t.Errorf("%s: offset %d, size %d, getattr size %d ino %d; want offset %d, size %d, ino %d",
				e.name, e.off, e.size, out.Size, out.Ino, i+2, i, e.inode)
		}
	}
}

// TestReadDirPlusLean lists files bare (node ID 0, so the kernel makes no
// inode) to a caller that has not looked a file up, directories always in
// full, and everything in full once the caller looked a file up, or from a
// directory too large to risk a lookup per entry.
func TestReadDirPlusLean(t *testing.T) {
	r, _, snap := newTreeFS(t, 3)
	const walker, du = 11, 12
	for _, e := range readDirPlus(t, r, walker, snap, 0, 4096) {
		if full := e.node != 0; full != (e.name == "d") {
			t.Errorf("to a walker, %s has node %x: want a node for the directory only", e.name, e.node)
		}
	}
	if si := r.slotOf[snap]; r.slots[si].refs != 1 {
		t.Errorf("the listing counts %d references after one entry went in full, want 1", r.slots[si].refs)
	}
	d := lookup(t, r, snap, "d")
	in := &fuse.InHeader{NodeId: d, Caller: fuse.Caller{Pid: du}}
	if st := r.Lookup(nil, in, "x", &fuse.EntryOut{}); st != fuse.OK {
		t.Fatalf("lookup x: %v", st)
	}
	for _, e := range readDirPlus(t, r, du, snap, 0, 4096) {
		if e.node == 0 {
			t.Errorf("after looking a file up, a caller got %s bare", e.name)
		}
	}
	big, _, bigSnap := newTreeFS(t, leanMaxList)
	for _, e := range readDirPlus(t, big, walker, bigSnap, 0, 1<<20) {
		if e.node == 0 {
			t.Fatalf("from a directory of %d entries, %s went bare", leanMaxList+1, e.name)
		}
	}
}

// TestForgetDropsListing counts the kernel's references on the listing
// its entries live in: it stays while any entry is held and goes with the
// last FORGET, and a lookup then loads it again.
func TestForgetDropsListing(t *testing.T) {
	r, repo, snap := newTreeFS(t, 3)
	list := readDirPlus(t, r, statter, snap, 0, 4096)
	again := readDirPlus(t, r, statter, snap, 0, 4096) // a second listing counts again
	if len(list) != 4 || len(again) != 4 || repo.lists != 1 {
		t.Fatalf("two listings gave %d and %d entries from %d List calls; want 4, 4, 1", len(list), len(again), repo.lists)
	}
	d := lookup(t, r, snap, "d") // three references on d now
	if d != list[0].node {
		t.Fatalf("lookup of d gave node %x, the listing %x", d, list[0].node)
	}
	x := lookup(t, r, d, "x")
	for _, e := range list {
		r.Forget(e.node, 2)
	}
	if _, ok := r.lookupLoc(d); ok != fuse.OK {
		t.Fatal("d's listing went while the kernel held d")
	}
	r.Forget(x, 1)
	r.Forget(d, 1)
	if len(r.slotOf) != 0 || len(r.free) != 2 {
		t.Fatalf("after the last FORGET: %d listings loaded, %d slots free; want 0 and 2", len(r.slotOf), len(r.free))
	}
	if lookup(t, r, snap, "f001") == 0 || repo.lists != 3 {
		t.Errorf("a lookup after the listing went made %d List calls in all, want 3", repo.lists)
	}
}

// TestCatalogNodesAreShared gives the same node to every lookup of one
// catalog name, so that revalidating a source keeps the kernel's tree
// under it, and drops it with its last FORGET.
func TestCatalogNodesAreShared(t *testing.T) {
	r, _, _ := newTreeFS(t, 0)
	a, b := lookup(t, r, rootIno, "h-p"), lookup(t, r, rootIno, "h-p")
	if a != b {
		t.Fatalf("two lookups of a source gave nodes %d and %d", a, b)
	}
	r.Forget(a, 3) // the two here and newTreeFS's
	if c := lookup(t, r, rootIno, "h-p"); c == a || len(r.nodes) != 3 {
		t.Errorf("after FORGET: node %d (was %d), %d nodes; want a new node and 3 (root, source, snapshot)", c, a, len(r.nodes))
	}
}

// TestReadVecReply: a read's reply reaches go-fuse as the file's slices
// (its withSlice path, one writev), reads the same through Bytes, and
// gives the slices back once however often go-fuse calls Done.
func TestReadVecReply(t *testing.T) {
	released := 0
	var res fuse.ReadResult = &readVec{vec: [][]byte{[]byte("ab"), []byte("cde")}, done: func() { released++ }}
	ws, ok := res.(interface {
		Slices() ([][]byte, fuse.Status)
	})
	if !ok {
		t.Fatal("the reply does not offer its slices")
	}
	if vec, st := ws.Slices(); len(vec) != 2 || !st.Ok() {
		t.Errorf("Slices() = %q, %v", vec, st)
	}
	if b, st := res.Bytes(make([]byte, 1)); string(b) != "abcde" || !st.Ok() || res.Size() != 5 {
		t.Errorf("Bytes() = %q, %v; Size() = %d", b, st, res.Size())
	}
	res.Done()
	res.Done()
	if released != 1 {
		t.Errorf("slices given back %d times, want once", released)
	}
}
