package fs

import (
	"context"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// historyDir is the name of each source's history view. The dot keeps it
// out of plain ls and shell globs over the snapshots.
const historyDir = ".history"

// latestName is the symlink to a source's newest snapshot.
const latestName = "latest"

// rootNode lists the sources.
type rootNode struct {
	fusefs.Inode
	readOnly
	m *mount
}

func (n *rootNode) Getattr(_ context.Context, _ fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	listingAttr(&out.Attr, n.m.cat.Load().newest)
	out.SetTimeout(changingTimeout)
	return 0
}

func (n *rootNode) Readdir(context.Context) (fusefs.DirStream, syscall.Errno) {
	cat := n.m.cat.Load()
	list := make([]fuse.DirEntry, len(cat.sources))
	for i, s := range cat.sources {
		list[i] = fuse.DirEntry{Name: s.name, Mode: syscall.S_IFDIR, Ino: sourceIno(s.name)}
	}
	return fusefs.NewListDirStream(list), 0
}

func (n *rootNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	s := n.m.cat.Load().byName[name]
	if s == nil {
		return nil, syscall.ENOENT
	}
	listingAttr(&out.Attr, s.snaps[s.latest()].Time)
	changing(out)
	return n.NewInode(ctx, &sourceNode{m: n.m, name: name}, fusefs.StableAttr{Mode: syscall.S_IFDIR, Ino: sourceIno(name)}), 0
}

func sourceIno(name string) uint64 { return ino("source", rootIno, name) }

// listingAttr describes a directory that fs makes up (the root, a source):
// readable by all, since it only lists names, and as new as its newest
// snapshot.
func listingAttr(a *fuse.Attr, mtime time.Time) {
	a.Mode = syscall.S_IFDIR | 0o555
	a.Nlink = 2
	a.SetTimes(&mtime, &mtime, &mtime)
}

// changing gives an entry the short timeouts of what backups change.
func changing(out *fuse.EntryOut) {
	out.SetEntryTimeout(changingTimeout)
	out.SetAttrTimeout(changingTimeout)
}

// sourceNode lists one source's snapshots, "latest" and ".history". It
// finds its source by name in the current catalog on every call, so a
// refresh shows at once.
type sourceNode struct {
	fusefs.Inode
	readOnly
	m    *mount
	name string
}

// source returns the current listing, nil once the source is gone (every
// snapshot of it forgotten).
func (n *sourceNode) source() *source { return n.m.cat.Load().byName[n.name] }

func (n *sourceNode) Getattr(_ context.Context, _ fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	s := n.source()
	if s == nil {
		return syscall.ENOENT
	}
	listingAttr(&out.Attr, s.snaps[s.latest()].Time)
	out.SetTimeout(changingTimeout)
	return 0
}

func (n *sourceNode) Readdir(context.Context) (fusefs.DirStream, syscall.Errno) {
	s := n.source()
	if s == nil {
		return nil, syscall.ENOENT
	}
	list := make([]fuse.DirEntry, 0, len(s.names)+2)
	for i, name := range s.names {
		list = append(list, fuse.DirEntry{Name: name, Mode: syscall.S_IFDIR, Ino: snapshotIno(s.snaps[i].ID)})
	}
	list = append(list,
		fuse.DirEntry{Name: latestName, Mode: syscall.S_IFLNK, Ino: n.latestIno(s)},
		fuse.DirEntry{Name: historyDir, Mode: syscall.S_IFDIR, Ino: n.historyIno()})
	return fusefs.NewListDirStream(list), 0
}

// latestIno changes with the target: the kernel caches symlink targets by
// inode, so a moved "latest" must be a new inode.
func (n *sourceNode) latestIno(s *source) uint64 {
	return ino(latestName, sourceIno(n.name), s.snaps[s.latest()].ID)
}

func (n *sourceNode) historyIno() uint64 { return ino(historyDir, sourceIno(n.name), "") }

func (n *sourceNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	s := n.source()
	if s == nil {
		return nil, syscall.ENOENT
	}
	changing(out)
	switch name {
	case latestName:
		l := &latestNode{target: s.names[s.latest()], time: s.snaps[s.latest()].Time}
		l.attr(&out.Attr)
		return n.NewInode(ctx, l, fusefs.StableAttr{Mode: syscall.S_IFLNK, Ino: n.latestIno(s)}), 0
	case historyDir:
		return n.history(ctx, s, out)
	}
	i, ok := s.byName[name]
	if !ok {
		return nil, syscall.ENOENT
	}
	e, err := n.m.repo.Root(ctx, &s.snaps[i])
	if errno := n.m.errno(err, "reading snapshot", n.name+"/"+name); errno != 0 {
		return nil, errno
	}
	sino := snapshotIno(s.snaps[i].ID)
	return n.m.newEntry(ctx, &n.Inode, sino, sino, e, out), 0
}

// history makes the root of the source's history view. It looks as the
// backed-up directory did in every snapshot (see strictest), so that its
// owner and mode guard the history as they guarded the original.
func (n *sourceNode) history(ctx context.Context, s *source, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	roots := make([]Entry, len(s.snaps))
	for i := range s.snaps {
		var err error
		roots[i], err = n.m.repo.Root(ctx, &s.snaps[i])
		if errno := n.m.errno(err, "reading snapshot", n.name+"/"+s.names[i]); errno != 0 {
			return nil, errno
		}
	}
	h := &historyNode{m: n.m, src: s.src, source: n.name, dir: strictest(roots)}
	h.attr(&out.Attr)
	return n.NewInode(ctx, h, fusefs.StableAttr{Mode: syscall.S_IFDIR, Ino: n.historyIno()}), 0
}

// latestNode is the symlink to a source's newest snapshot.
type latestNode struct {
	fusefs.Inode
	readOnly
	target string
	time   time.Time
}

func (n *latestNode) attr(a *fuse.Attr) {
	a.Mode = syscall.S_IFLNK | 0o777
	a.Size = uint64(len(n.target))
	a.Nlink = 1
	a.SetTimes(&n.time, &n.time, &n.time)
}

func (n *latestNode) Getattr(_ context.Context, _ fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.attr(&out.Attr)
	return 0
}

func (n *latestNode) Readlink(context.Context) ([]byte, syscall.Errno) {
	return []byte(n.target), 0
}
