package fs

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"syscall"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// entryNode is one entry of a snapshot's tree, of any type: the kernel
// only sends each type the calls that fit it. The kernel keeps a node for
// every entry it has seen, a hundred thousand after one find, so a node
// keeps only what its calls need, not the whole Entry: no name (go-fuse
// keeps it), and what few entries have behind one pointer.
type entryNode struct {
	fusefs.Inode
	readOnly
	m                  *mount
	snap               uint64 // the snapshot root's inode number, which link groups hang off
	mode, uid, gid     uint32
	nlink              uint32
	size, blocks       uint64
	atime, mtime, ctim int64
	ref                any
	rare               *rareAttrs // nil for most entries
}

// rareAttrs are the attributes most entries lack.
type rareAttrs struct {
	target string
	xattrs []Xattr
	rdev   uint64
}

// newEntry makes the inode of entry e, numbered ino, and fills out.
func (m *mount) newEntry(ctx context.Context, parent *fusefs.Inode, snap, ino uint64, e Entry, out *fuse.EntryOut) *fusefs.Inode {
	fillAttr(&out.Attr, &e)
	n := &entryNode{m: m, snap: snap, mode: e.Mode, uid: e.UID, gid: e.GID, nlink: e.Nlink, size: e.Size, blocks: e.Blocks,
		atime: e.Atime, mtime: e.Mtime, ctim: e.Ctime, ref: e.Ref}
	if e.Target != "" || len(e.Xattrs) > 0 || e.Rdev != 0 {
		n.rare = &rareAttrs{target: e.Target, xattrs: e.Xattrs, rdev: e.Rdev}
	}
	return parent.NewInode(ctx, n, fusefs.StableAttr{Mode: e.Mode & syscall.S_IFMT, Ino: ino})
}

// entry gives the node's Entry back, without its name, which the
// Repository's methods do not need.
func (n *entryNode) entry() Entry {
	e := Entry{Mode: n.mode, UID: n.uid, GID: n.gid, Nlink: n.nlink, Size: n.size, Blocks: n.blocks,
		Atime: n.atime, Mtime: n.mtime, Ctime: n.ctim, Ref: n.ref}
	if n.rare != nil {
		e.Target, e.Xattrs, e.Rdev = n.rare.target, n.rare.xattrs, n.rare.rdev
	}
	return e
}

func fillAttr(a *fuse.Attr, e *Entry) {
	a.Mode = e.Mode
	a.Owner = fuse.Owner{Uid: e.UID, Gid: e.GID}
	a.Size = e.Size
	a.Blocks = e.Blocks
	a.Blksize = 4096
	a.Nlink = max(e.Nlink, 1)
	// glibc's dev_t agrees with the kernel's 32-bit encoding for every
	// major below 4096 and minor below 2^20, all that FUSE can carry.
	a.Rdev = uint32(e.Rdev)
	a.Atime, a.Atimensec = splitNs(e.Atime)
	a.Mtime, a.Mtimensec = splitNs(e.Mtime)
	a.Ctime, a.Ctimensec = splitNs(e.Ctime)
}

// splitNs splits nanoseconds since the epoch into seconds and nanoseconds
// as struct stat has them; the seconds of a time before 1970 are negative
// and the nanoseconds still count up.
func splitNs(ns int64) (uint64, uint32) {
	s, n := ns/1e9, ns%1e9
	if n < 0 {
		s, n = s-1, n+1e9
	}
	return uint64(s), uint32(n)
}

func (n *entryNode) path() string { return n.Path(nil) }

func (n *entryNode) Getattr(_ context.Context, _ fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	e := n.entry()
	fillAttr(&out.Attr, &e)
	return 0
}

func (n *entryNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	dir := n.entry()
	e, err := n.m.repo.Lookup(ctx, &dir, name)
	if errno := n.m.errno(err, "reading directory", n.path()); errno != 0 {
		return nil, errno
	}
	return n.m.newEntry(ctx, &n.Inode, n.snap, entryIno(n.snap, n.StableAttr().Ino, &e), e, out), 0
}

// OpendirHandle lists the directory once per open. The handle answers the
// lookup READDIRPLUS makes of each name it returns from that list, rather
// than finding and converting every entry a second time. A snapshot's
// directories never change, so the kernel may keep their listings.
func (n *entryNode) OpendirHandle(ctx context.Context, _ uint32) (fusefs.FileHandle, uint32, syscall.Errno) {
	dir := n.entry()
	var buf []Entry
	if p, ok := n.m.lists.Get().(*[]Entry); ok {
		buf = *p
	}
	list, err := n.m.repo.List(ctx, &dir, buf)
	if errno := n.m.errno(err, "reading directory", n.path()); errno != 0 {
		return nil, 0, errno
	}
	return &dirHandle{dir: n, list: list}, fuse.FOPEN_CACHE_DIR, 0
}

// dirHandle is an open directory of a snapshot. go-fuse serializes the
// calls on one handle.
type dirHandle struct {
	dir  *entryNode
	list []Entry // sorted by name
	next int     // the entry Readdirent returns next; its offset is next
	// de is what Readdirent returns, reused: go-fuse copies it before
	// asking for the next, and a walk lists a hundred thousand entries.
	de fuse.DirEntry
}

func (d *dirHandle) Readdirent(context.Context) (*fuse.DirEntry, syscall.Errno) {
	if d.next == len(d.list) {
		return nil, 0
	}
	e := &d.list[d.next]
	d.next++
	d.de = fuse.DirEntry{Name: e.Name, Mode: e.Mode, Ino: d.ino(e), Off: uint64(d.next)}
	return &d.de, 0
}

func (d *dirHandle) Seekdir(_ context.Context, off uint64) syscall.Errno {
	if off > uint64(len(d.list)) {
		return syscall.EINVAL
	}
	d.next = int(off)
	return 0
}

// Lookup serves READDIRPLUS, which looks up each entry right after
// Readdirent returned it.
func (d *dirHandle) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	i := d.next - 1
	if i < 0 || d.list[i].Name != name {
		var found bool
		if i, found = slices.BinarySearchFunc(d.list, name, func(e Entry, name string) int { return strings.Compare(e.Name, name) }); !found {
			return nil, syscall.ENOENT
		}
	}
	e := &d.list[i]
	return d.dir.m.newEntry(ctx, &d.dir.Inode, d.dir.snap, d.ino(e), *e, out), 0
}

// Releasedir passes the listing on to the next directory opened: the
// nodes made from it keep copies of what they need. It is cleared first,
// so that a pooled listing pins no names or handles, and a huge one is
// left to the collector rather than kept for directories of any size.
func (d *dirHandle) Releasedir(context.Context, uint32) {
	l := d.list
	d.list = nil
	if cap(l) > maxPooledList {
		return
	}
	clear(l)
	d.dir.m.lists.Put(&l)
}

// maxPooledList is the most entries a recycled listing holds (some 700 KB).
const maxPooledList = 4096

func (d *dirHandle) ino(e *Entry) uint64 { return entryIno(d.dir.snap, d.dir.StableAttr().Ino, e) }

func (n *entryNode) Readlink(context.Context) ([]byte, syscall.Errno) {
	return []byte(n.entry().Target), 0
}

func (n *entryNode) Getxattr(_ context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	for _, x := range n.entry().Xattrs {
		if x.Name == attr {
			return copyOut(dest, x.Value)
		}
	}
	return 0, syscall.ENODATA
}

func (n *entryNode) Listxattr(_ context.Context, dest []byte) (uint32, syscall.Errno) {
	var b strings.Builder
	for _, x := range n.entry().Xattrs {
		b.WriteString(x.Name)
		b.WriteByte(0)
	}
	return copyOut(dest, []byte(b.String()))
}

// copyOut answers the getxattr/listxattr protocol: an empty dest asks for
// the size, a short one is ERANGE.
func copyOut(dest, v []byte) (uint32, syscall.Errno) {
	if len(dest) == 0 {
		return uint32(len(v)), 0
	}
	if len(dest) < len(v) {
		return 0, syscall.ERANGE
	}
	return uint32(copy(dest, v)), 0
}

// Open hands out a File per open: the kernel may read one open file from
// several threads, and read-ahead follows each reader separately.
func (n *entryNode) Open(ctx context.Context, flags uint32) (fusefs.FileHandle, uint32, syscall.Errno) {
	if flags&writeFlags != 0 {
		return nil, 0, syscall.EROFS
	}
	file := n.entry()
	f, err := n.m.repo.Open(ctx, &file)
	if errno := n.m.errno(err, "opening file", n.path()); errno != 0 {
		return nil, 0, errno
	}
	// Content never changes, so what the page cache holds from an
	// earlier open is still right.
	return f, fuse.FOPEN_KEEP_CACHE, 0
}

func (n *entryNode) Read(ctx context.Context, fh fusefs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	k, err := fh.(File).ReadAt(ctx, dest, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, n.m.errno(err, "reading file", n.path())
	}
	return fuse.ReadResultData(dest[:k]), 0
}

func (n *entryNode) Lseek(_ context.Context, fh fusefs.FileHandle, off uint64, whence uint32) (uint64, syscall.Errno) {
	f := fh.(File)
	switch whence {
	case unix.SEEK_DATA:
		d, ok := f.NextData(int64(off))
		if !ok {
			return 0, syscall.ENXIO
		}
		return uint64(d), 0
	case unix.SEEK_HOLE:
		if off >= n.size {
			return 0, syscall.ENXIO
		}
		return uint64(min(f.NextHole(int64(off)), int64(n.size))), 0
	}
	return 0, syscall.EINVAL
}
