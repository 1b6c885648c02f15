package fs

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// rawFS serves the mount through go-fuse's raw protocol API. A walk makes
// the kernel hold a node for every entry it listed, a hundred thousand
// after one find: here such a node costs nothing of its own. An entry of a
// snapshot's tree is numbered by where it lives, the slot of its
// directory's loaded listing and its index there (treeBit|slot<<32|index),
// and a slot counts the kernel's references to all its entries at once;
// when FORGET drops them to zero, the listing goes. What the catalog
// makes up (sources, latest, .history and the entries it shows, snapshot
// roots) is few and kept as one node each.
//
// go-fuse's fs package, whose nodes embed fs.Inode, served the mount
// before: there every node the kernel holds is an object with its own
// maps of children and parents and its own lock, and a cold find over
// the 100k-file benchmark tree cost the mount 1.48 s of CPU and left 111
// MiB resident, against 0.81 s and 75 MiB here, which is what brought find
// and du under half of kopia's times. Embedding fuse.RawFileSystem answers
// ENOSYS for whatever is not overridden, so a compile-time check per
// capability would prove nothing here; raw_test.go tests the node table.
type rawFS struct {
	fuse.RawFileSystem
	m   *mount
	srv atomic.Pointer[fuse.Server]

	mu      sync.Mutex
	nodes   map[uint64]*node  // by node ID, the catalog's
	byIno   map[uint64]uint64 // node ID by inode number, the catalog's
	nextID  uint64
	slots   []*dirSlot // nil where free
	free    []uint32   // free slots
	slotOf  map[uint64]uint32
	handles map[uint64]File // open files
	nextFh  uint64
	// statters are the callers (by the thread ID a request names) that
	// looked up a file of a snapshot's tree; see bareFiles.
	statters map[uint32]struct{}
}

// A READDIRPLUS entry costs the kernel an inode, whether or not the
// caller wants more than the name: find | wc -l on the 100k-file benchmark
// spent most of its time making inodes it never used (0.645 s, 0.390 s
// with files listed bare, medians of 5). A bare entry has a zero node ID:
// the kernel keeps its name and type and looks the file up if asked. A
// caller that stats what it lists (du, ls -l, rsync, cp) then pays a
// LOOKUP round trip per file, ten times the inode (du took 7 s instead
// of 1.2). So files go bare only to callers that have not looked a file
// up yet, and only from directories of at most leanMaxList entries: a
// stat-ing caller pays for one such directory, then gets full entries
// (du: 0.752 s before, 0.751 s after).
const (
	leanMaxList = 256
	maxStatters = 1024 // then the set starts over: a wrong guess costs time only
)

// bareFiles reports whether the files of a directory of n entries go
// bare to caller pid: it has not looked a file up. The caller holds mu.
func (r *rawFS) bareFiles(n int, pid uint32) bool {
	_, statter := r.statters[pid]
	return n <= leanMaxList && !statter
}

// sawStat notes that caller pid looked up e; the caller holds mu.
func (r *rawFS) sawStat(e *Entry, pid uint32) {
	if e.IsDir() {
		return
	}
	if len(r.statters) >= maxStatters {
		clear(r.statters)
	}
	r.statters[pid] = struct{}{}
}

// treeBit marks the node IDs of entries in loaded listings; the catalog's
// IDs count up from 2 and never reach it.
const (
	treeBit  = 1 << 63
	maxSlots = 1<<31 - 1 // keeps IDs below go-fuse's reserved ^0
)

type nodeKind uint8

const (
	kindRoot nodeKind = iota
	kindSource
	kindLatest
	kindHistory
	kindEntry // a snapshot's root, or a version under .history
)

// node is one of the catalog's nodes.
type node struct {
	kind   nodeKind
	refs   uint64 // the kernel's lookups
	ino    uint64
	source string // the source's directory name (source, history)
	latest *latestLink
	hist   *historyDir
	entry  *placedEntry
}

// placedEntry is an entry outside any loaded listing, with what numbering
// its children and naming it in logs needs.
type placedEntry struct {
	e         Entry
	snap, ino uint64
	path      string
}

// dirSlot is one loaded listing of a snapshot directory.
type dirSlot struct {
	dir       uint64 // the directory's node ID
	snap, ino uint64 // the snapshot's and the directory's inode numbers
	path      string // for logs
	list      []Entry
	refs      uint64 // lookups of its entries, plus calls using it
}

func newRawFS(m *mount) *rawFS {
	r := &rawFS{
		RawFileSystem: fuse.NewDefaultRawFileSystem(),
		m:             m,
		nodes:         map[uint64]*node{rootIno: {kind: kindRoot, ino: rootIno}},
		byIno:         map[uint64]uint64{rootIno: rootIno},
		nextID:        rootIno + 1,
		slotOf:        make(map[uint64]uint32),
		handles:       make(map[uint64]File),
		statters:      make(map[uint32]struct{}),
	}
	return r
}

func (r *rawFS) String() string { return "hindsight" }

// Init keeps the server, to tell the kernel when listings change.
func (r *rawFS) Init(s *fuse.Server) { r.srv.Store(s) }

// catalogChanged makes the kernel drop what it keeps of the directories
// the catalog makes up (the root, sources, .history): their listings and
// attributes change with every snapshot made or forgotten. A snapshot's
// own tree never changes.
func (r *rawFS) catalogChanged() {
	srv := r.srv.Load()
	if srv == nil {
		return
	}
	var ids []uint64
	r.mu.Lock()
	for id, n := range r.nodes {
		if n.kind == kindRoot || n.kind == kindSource || n.kind == kindHistory {
			ids = append(ids, id)
		}
	}
	r.mu.Unlock()
	for _, id := range ids {
		// ENOENT for a node the kernel dropped meanwhile: nothing to drop.
		srv.InodeNotify(id, 0, 0)
	}
}

// loc is where a node's entry lives: a slot and index, or a catalog node.
type loc struct {
	s    *dirSlot
	i    int
	n    *placedEntry
	node *node
}

// made reports whether the node is one of the directories or links the
// catalog makes up, rather than an entry of a snapshot.
func (l loc) made() bool { return l.node != nil && l.node.kind != kindEntry }

func (l loc) entry() *Entry {
	if l.s != nil {
		return &l.s.list[l.i]
	}
	if l.n != nil {
		return &l.n.e
	}
	return nil
}

func (l loc) snapIno() (snap, ino uint64) {
	if l.s != nil {
		e := &l.s.list[l.i]
		return l.s.snap, entryIno(l.s.snap, l.s.ino, e)
	}
	return l.n.snap, l.n.ino
}

func (l loc) path() string {
	if l.s != nil {
		return l.s.path + "/" + l.s.list[l.i].Name
	}
	if l.n != nil {
		return l.n.path
	}
	return ""
}

// locate finds node id; the caller holds mu. ok is false for an ID the
// kernel should not have.
func (r *rawFS) locate(id uint64) (loc, bool) {
	if id&treeBit != 0 {
		si, i := uint32(id>>32)&maxSlots, int(uint32(id))
		if int(si) >= len(r.slots) || r.slots[si] == nil || i >= len(r.slots[si].list) {
			return loc{}, false
		}
		return loc{s: r.slots[si], i: i}, true
	}
	n := r.nodes[id]
	if n == nil {
		return loc{}, false
	}
	return loc{n: n.entry, node: n}, true
}

func (r *rawFS) lookupLoc(id uint64) (loc, fuse.Status) {
	r.mu.Lock()
	defer r.mu.Unlock()
	l, ok := r.locate(id)
	if !ok {
		return loc{}, fuse.Status(syscall.ESTALE)
	}
	return l, fuse.OK
}

// intern returns the ID of the catalog node numbered ino, made by mk if
// the kernel holds none, and counts one lookup of it.
func (r *rawFS) intern(ino uint64, mk func() *node) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if id, ok := r.byIno[ino]; ok {
		r.nodes[id].refs++
		return id
	}
	n := mk()
	n.ino, n.refs = ino, 1
	id := r.nextID
	r.nextID++
	r.nodes[id] = n
	r.byIno[ino] = id
	return id
}

func (r *rawFS) Forget(id, nlookup uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if id&treeBit != 0 {
		si := uint32(id>>32) & maxSlots
		if int(si) < len(r.slots) && r.slots[si] != nil {
			r.unref(si, nlookup)
		}
		return
	}
	n := r.nodes[id]
	if n == nil || n.kind == kindRoot {
		return
	}
	n.refs -= min(n.refs, nlookup)
	if n.refs == 0 {
		delete(r.nodes, id)
		delete(r.byIno, n.ino)
	}
}

// unref drops k references to slot si and frees it at zero; the caller
// holds mu.
func (r *rawFS) unref(si uint32, k uint64) {
	s := r.slots[si]
	s.refs -= min(s.refs, k)
	if s.refs > 0 {
		return
	}
	r.slots[si] = nil
	r.free = append(r.free, si)
	delete(r.slotOf, s.dir)
	r.m.recycle(s.list)
}

// recycle passes a listing on to the next directory loaded, cleared so
// that it pins nothing; a huge one is left to the collector.
func (m *mount) recycle(l []Entry) {
	if cap(l) <= maxPooledList {
		clear(l)
		m.lists.Put(&l)
	}
}

// acquire returns the slot of directory id's listing, loading it if no
// slot holds it, with one reference the caller drops with unref.
func (r *rawFS) acquire(ctx context.Context, id uint64) (uint32, syscall.Errno) {
	r.mu.Lock()
	if si, ok := r.slotOf[id]; ok {
		r.slots[si].refs++
		r.mu.Unlock()
		return si, 0
	}
	l, ok := r.locate(id)
	if !ok || l.entry() == nil {
		r.mu.Unlock()
		return 0, syscall.ENOTDIR
	}
	dir := *l.entry()
	snap, ino := l.snapIno()
	path := l.path()
	r.mu.Unlock()
	if !dir.IsDir() {
		return 0, syscall.ENOTDIR
	}
	var buf []Entry
	if p, ok := r.m.lists.Get().(*[]Entry); ok {
		buf = *p
	}
	list, err := r.m.repo.List(ctx, &dir, buf)
	if errno := r.m.errno(err, "reading directory", path); errno != 0 {
		r.m.recycle(list)
		return 0, errno
	}
	// The listing is kept as long as the kernel holds one of its entries:
	// at its own size, not the size of the recycled buffer it was read
	// into, which goes on to the next directory.
	kept := slices.Clone(list)
	r.m.recycle(list)
	r.mu.Lock()
	defer r.mu.Unlock()
	if si, ok := r.slotOf[id]; ok { // loaded meanwhile
		r.slots[si].refs++
		return si, 0
	}
	s := &dirSlot{dir: id, snap: snap, ino: ino, path: path, list: kept, refs: 1}
	var si uint32
	if n := len(r.free); n > 0 {
		si, r.free = r.free[n-1], r.free[:n-1]
		r.slots[si] = s
	} else {
		if len(r.slots) >= maxSlots {
			return 0, syscall.ENOMEM
		}
		si = uint32(len(r.slots))
		r.slots = append(r.slots, s)
	}
	r.slotOf[id] = si
	return si, 0
}

// maxPooledList is the most entries a recycled listing holds (some 700 KB).
const maxPooledList = 4096

func treeID(si uint32, i int) uint64 { return treeBit | uint64(si)<<32 | uint64(i) }

// fillEntry describes entry e, numbered ino, as node id.
func fillEntry(out *fuse.EntryOut, id, ino uint64, e *Entry, timeout time.Duration) {
	out.NodeId = id
	fillAttr(&out.Attr, e)
	out.Attr.Ino = ino
	out.SetEntryTimeout(timeout)
	out.SetAttrTimeout(timeout)
}

func (r *rawFS) Lookup(cancel <-chan struct{}, h *fuse.InHeader, name string, out *fuse.EntryOut) fuse.Status {
	ctx := &fuse.Context{Caller: h.Caller, Cancel: cancel}
	l, st := r.lookupLoc(h.NodeId)
	if st != fuse.OK {
		return st
	}
	if !l.made() {
		return r.lookupTree(ctx, h.NodeId, name, h.Pid, out)
	}
	switch l.node.kind {
	case kindRoot:
		return r.lookupSource(name, out)
	case kindSource:
		return r.lookupInSource(ctx, l.node.source, name, out)
	case kindHistory:
		return r.lookupHistory(ctx, l.node, name, out)
	}
	return fuse.ENOTDIR
}

// withListing calls f with directory dir's listing, loaded if need be,
// holding mu.
func (r *rawFS) withListing(ctx context.Context, dir uint64, f func(si uint32, s *dirSlot) fuse.Status) fuse.Status {
	si, errno := r.acquire(ctx, dir)
	if errno != 0 {
		return fuse.Status(errno)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	defer r.unref(si, 1)
	return f(si, r.slots[si])
}

func (r *rawFS) lookupTree(ctx context.Context, dir uint64, name string, pid uint32, out *fuse.EntryOut) fuse.Status {
	return r.withListing(ctx, dir, func(si uint32, s *dirSlot) fuse.Status {
		i, found := slices.BinarySearchFunc(s.list, name, func(e Entry, name string) int { return strings.Compare(e.Name, name) })
		if !found {
			return fuse.ENOENT
		}
		e := &s.list[i]
		fillEntry(out, treeID(si, i), entryIno(s.snap, s.ino, e), e, immutableTimeout)
		s.refs++
		r.sawStat(e, pid)
		return fuse.OK
	})
}

// OpenDir tells the kernel, which was offered CAP_NO_OPENDIR_SUPPORT, to
// stop sending OPENDIR and RELEASEDIR: a walk would wait for a round trip
// per directory for handles that hold nothing READDIR needs. The kernel
// then keeps every listing (FOPEN_CACHE_DIR) until told otherwise; see
// catalogChanged.
func (r *rawFS) OpenDir(<-chan struct{}, *fuse.OpenIn, *fuse.OpenOut) fuse.Status {
	return fuse.ENOSYS
}

func (r *rawFS) addHandle(f File) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.nextFh++
	r.handles[r.nextFh] = f
	return r.nextFh
}

func (r *rawFS) ReadDir(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return r.readDir(cancel, in, out, false)
}

func (r *rawFS) ReadDirPlus(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return r.readDir(cancel, in, out, true)
}

// readDir lists from in.Offset, the index of the entry to list next. With
// plus, each entry of a snapshot's tree comes with its lookup, counted on
// the slot, unless bareFiles lists it bare; the catalog's come bare (a
// zero node ID), and the kernel looks them up if it needs them.
func (r *rawFS) readDir(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList, plus bool) fuse.Status {
	ctx := &fuse.Context{Caller: in.Caller, Cancel: cancel}
	l, st := r.lookupLoc(in.NodeId)
	if st != fuse.OK {
		return st
	}
	if l.made() {
		list, errno := r.catalogList(ctx, l.node)
		if errno != 0 {
			return fuse.Status(errno)
		}
		for i := int(min(in.Offset, uint64(len(list)))); i < len(list); i++ {
			de := list[i]
			de.Off = uint64(i + 1)
			if plus && out.AddDirLookupEntry(de) == nil || !plus && !out.AddDirEntry(de) {
				break
			}
		}
		return fuse.OK
	}
	return r.withListing(ctx, in.NodeId, func(si uint32, s *dirSlot) fuse.Status {
		bare := plus && r.bareFiles(len(s.list), in.Pid)
		for i := int(min(in.Offset, uint64(len(s.list)))); i < len(s.list); i++ {
			e := &s.list[i]
			ino := entryIno(s.snap, s.ino, e)
			de := fuse.DirEntry{Name: e.Name, Mode: e.Mode, Ino: ino, Off: uint64(i + 1)}
			if !plus {
				if !out.AddDirEntry(de) {
					break
				}
				continue
			}
			eo := out.AddDirLookupEntry(de)
			if eo == nil {
				break
			}
			if bare && !e.IsDir() {
				continue
			}
			fillEntry(eo, treeID(si, i), ino, e, immutableTimeout)
			s.refs++
		}
		return fuse.OK
	})
}

func (r *rawFS) GetAttr(cancel <-chan struct{}, in *fuse.GetAttrIn, out *fuse.AttrOut) fuse.Status {
	l, st := r.lookupLoc(in.NodeId)
	if st != fuse.OK {
		return st
	}
	if e := l.entry(); e != nil {
		fillAttr(&out.Attr, e)
		_, out.Ino = l.snapIno()
		out.SetTimeout(immutableTimeout)
		return fuse.OK
	}
	return r.catalogAttr(l.node, out)
}

func (r *rawFS) Readlink(cancel <-chan struct{}, h *fuse.InHeader) ([]byte, fuse.Status) {
	l, st := r.lookupLoc(h.NodeId)
	if st != fuse.OK {
		return nil, st
	}
	if e := l.entry(); e != nil {
		return []byte(e.Target), fuse.OK
	}
	if l.made() && l.node.kind == kindLatest {
		return []byte(l.node.latest.target), fuse.OK
	}
	return nil, fuse.EINVAL
}

func (r *rawFS) GetXAttr(cancel <-chan struct{}, h *fuse.InHeader, attr string, dest []byte) (uint32, fuse.Status) {
	l, st := r.lookupLoc(h.NodeId)
	if st != fuse.OK {
		return 0, st
	}
	if e := l.entry(); e != nil {
		for _, x := range e.Xattrs {
			if x.Name == attr {
				return copyOut(dest, x.Value)
			}
		}
	}
	return 0, fuse.ENOATTR
}

func (r *rawFS) ListXAttr(cancel <-chan struct{}, h *fuse.InHeader, dest []byte) (uint32, fuse.Status) {
	l, st := r.lookupLoc(h.NodeId)
	if st != fuse.OK {
		return 0, st
	}
	var b []byte
	if e := l.entry(); e != nil {
		for _, x := range e.Xattrs {
			b = append(append(b, x.Name...), 0)
		}
	}
	return copyOut(dest, b)
}

// copyOut answers the getxattr/listxattr protocol: an empty dest asks for
// the size, a short one is ERANGE.
func copyOut(dest, v []byte) (uint32, fuse.Status) {
	if len(dest) == 0 {
		return uint32(len(v)), fuse.OK
	}
	if len(dest) < len(v) {
		return 0, fuse.ERANGE
	}
	return uint32(copy(dest, v)), fuse.OK
}

// Open hands out a File per open: the kernel may read one open file from
// several threads, and read-ahead follows each reader separately.
func (r *rawFS) Open(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	if in.Flags&writeFlags != 0 {
		return fuse.EROFS
	}
	l, st := r.lookupLoc(in.NodeId)
	if st != fuse.OK {
		return st
	}
	e := l.entry()
	if e == nil {
		return fuse.EISDIR
	}
	file := *e
	f, err := r.m.repo.Open(&fuse.Context{Caller: in.Caller, Cancel: cancel}, &file)
	if errno := r.m.errno(err, "opening file", r.where(in.NodeId)); errno != 0 {
		return fuse.Status(errno)
	}
	out.Fh = r.addHandle(f)
	// Content never changes, so what the page cache holds from an
	// earlier open is still right.
	out.OpenFlags = fuse.FOPEN_KEEP_CACHE
	return fuse.OK
}

// where names node id in logs.
func (r *rawFS) where(id uint64) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	l, _ := r.locate(id)
	return l.path()
}

func (r *rawFS) file(fh uint64) File {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.handles[fh]
}

func (r *rawFS) Read(cancel <-chan struct{}, in *fuse.ReadIn, buf []byte) (fuse.ReadResult, fuse.Status) {
	f := r.file(in.Fh)
	if f == nil {
		return nil, fuse.EBADF
	}
	vec, done, err := f.ReadVec(&fuse.Context{Caller: in.Caller, Cancel: cancel}, buf[:min(len(buf), int(in.Size))], int64(in.Offset))
	if err != nil && !errors.Is(err, io.EOF) {
		done()
		return nil, fuse.Status(r.m.errno(err, "reading file", r.where(in.NodeId)))
	}
	return &readVec{vec: vec, done: done}, fuse.OK
}

// readVec is a read's reply in slices of the file's memory: go-fuse writes
// them to the kernel with one writev and then calls Done. Copying a 1 MiB
// read into the request's buffer first was a twentieth of a cold cat's
// CPU.
type readVec struct {
	vec  [][]byte
	done func()
}

// Slices makes go-fuse write the slices as they are (its withSlice).
func (r *readVec) Slices() ([][]byte, fuse.Status) { return r.vec, fuse.OK }

func (r *readVec) Bytes(buf []byte) ([]byte, fuse.Status) {
	buf = buf[:0]
	for _, b := range r.vec {
		buf = append(buf, b...)
	}
	return buf, fuse.OK
}

func (r *readVec) Size() int {
	n := 0
	for _, b := range r.vec {
		n += len(b)
	}
	return n
}

// Done gives the slices back once; a second call would release memory a
// later read holds.
func (r *readVec) Done() {
	if r.done != nil {
		r.done()
		r.done = nil
	}
}

func (r *rawFS) Lseek(cancel <-chan struct{}, in *fuse.LseekIn, out *fuse.LseekOut) fuse.Status {
	f := r.file(in.Fh)
	l, st := r.lookupLoc(in.NodeId)
	if f == nil || st != fuse.OK || l.entry() == nil {
		return fuse.EBADF
	}
	size := l.entry().Size
	switch in.Whence {
	case unix.SEEK_DATA:
		d, ok := f.NextData(int64(in.Offset))
		if !ok {
			return fuse.Status(syscall.ENXIO)
		}
		out.Offset = uint64(d)
		return fuse.OK
	case unix.SEEK_HOLE:
		if in.Offset >= size {
			return fuse.Status(syscall.ENXIO)
		}
		out.Offset = uint64(min(f.NextHole(int64(in.Offset)), int64(size)))
		return fuse.OK
	}
	return fuse.EINVAL
}

func (r *rawFS) Release(cancel <-chan struct{}, in *fuse.ReleaseIn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.handles, in.Fh)
}

func (r *rawFS) StatFs(cancel <-chan struct{}, in *fuse.InHeader, out *fuse.StatfsOut) fuse.Status {
	return fuse.OK
}
