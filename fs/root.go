package fs

import (
	"context"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// historyName is the name of each source's history view. The dot keeps it
// out of plain ls and shell globs over the snapshots.
const historyName = ".history"

// latestName is the symlink to a source's newest snapshot.
const latestName = "latest"

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

// latestIno changes with the target: the kernel caches symlink targets by
// inode, so a moved "latest" must be a new inode.
func latestIno(s *source) uint64 {
	return ino(latestName, sourceIno(s.name), s.snaps[s.latest()].ID)
}

func historyIno(s *source) uint64 { return ino(historyName, sourceIno(s.name), "") }

// latestLink is the symlink to a source's newest snapshot.
type latestLink struct {
	target string
	time   time.Time
}

func (l *latestLink) attr(a *fuse.Attr) {
	a.Mode = syscall.S_IFLNK | 0o777
	a.Size = uint64(len(l.target))
	a.Nlink = 1
	a.SetTimes(&l.time, &l.time, &l.time)
}

// catalogList lists a directory fs makes up. A source is found by name in
// the current catalog on every call, so a refresh shows at once.
func (r *rawFS) catalogList(ctx context.Context, n *node) ([]fuse.DirEntry, syscall.Errno) {
	cat := r.m.cat.Load()
	switch n.kind {
	case kindRoot:
		list := make([]fuse.DirEntry, len(cat.sources))
		for i, s := range cat.sources {
			list[i] = fuse.DirEntry{Name: s.name, Mode: syscall.S_IFDIR, Ino: sourceIno(s.name)}
		}
		return list, 0
	case kindSource:
		s := cat.byName[n.source]
		if s == nil {
			return nil, syscall.ENOENT
		}
		list := make([]fuse.DirEntry, 0, len(s.names)+2)
		for i, name := range s.names {
			list = append(list, fuse.DirEntry{Name: name, Mode: syscall.S_IFDIR, Ino: snapshotIno(s.snaps[i].ID)})
		}
		return append(list,
			fuse.DirEntry{Name: latestName, Mode: syscall.S_IFLNK, Ino: latestIno(s)},
			fuse.DirEntry{Name: historyName, Mode: syscall.S_IFDIR, Ino: historyIno(s)}), 0
	case kindHistory:
		return n.hist.list(ctx, r.m, n.ino)
	}
	return nil, syscall.ENOTDIR
}

func (r *rawFS) catalogAttr(n *node, out *fuse.AttrOut) fuse.Status {
	switch n.kind {
	case kindRoot:
		listingAttr(&out.Attr, r.m.cat.Load().newest)
		out.SetTimeout(changingTimeout)
	case kindSource:
		s := r.m.cat.Load().byName[n.source]
		if s == nil {
			return fuse.ENOENT
		}
		listingAttr(&out.Attr, s.snaps[s.latest()].Time)
		out.SetTimeout(changingTimeout)
	case kindLatest:
		n.latest.attr(&out.Attr)
		out.SetTimeout(immutableTimeout)
	case kindHistory:
		n.hist.attr(&out.Attr)
		out.SetTimeout(immutableTimeout)
	}
	out.Ino = n.ino
	return fuse.OK
}

func (r *rawFS) lookupSource(name string, out *fuse.EntryOut) fuse.Status {
	s := r.m.cat.Load().byName[name]
	if s == nil {
		return fuse.ENOENT
	}
	listingAttr(&out.Attr, s.snaps[s.latest()].Time)
	changing(out)
	out.Ino = sourceIno(name)
	out.NodeId = r.intern(out.Ino, func() *node { return &node{kind: kindSource, source: name} })
	return fuse.OK
}

func (r *rawFS) lookupInSource(ctx context.Context, source, name string, out *fuse.EntryOut) fuse.Status {
	s := r.m.cat.Load().byName[source]
	if s == nil {
		return fuse.ENOENT
	}
	switch name {
	case latestName:
		l := &latestLink{target: s.names[s.latest()], time: s.snaps[s.latest()].Time}
		l.attr(&out.Attr)
		changing(out)
		out.Ino = latestIno(s)
		out.NodeId = r.intern(out.Ino, func() *node { return &node{kind: kindLatest, latest: l} })
		return fuse.OK
	case historyName:
		return r.history(ctx, s, out)
	}
	i, ok := s.byName[name]
	if !ok {
		return fuse.ENOENT
	}
	e, err := r.m.repo.Root(ctx, &s.snaps[i])
	where := source + "/" + name
	if errno := r.m.errno(err, "reading snapshot", where); errno != 0 {
		return fuse.Status(errno)
	}
	sino := snapshotIno(s.snaps[i].ID)
	r.placed(out, &placedEntry{e: e, snap: sino, ino: sino, path: where}, changingTimeout)
	return fuse.OK
}

// placed looks up an entry outside the loaded listings.
func (r *rawFS) placed(out *fuse.EntryOut, p *placedEntry, timeout time.Duration) {
	fillEntry(out, 0, p.ino, &p.e, timeout)
	out.NodeId = r.intern(p.ino, func() *node { return &node{kind: kindEntry, entry: p} })
}

// history makes the root of the source's history view. It looks as the
// backed-up directory did in every snapshot (see strictest), so that its
// owner and mode guard the history as they guarded the original.
func (r *rawFS) history(ctx context.Context, s *source, out *fuse.EntryOut) fuse.Status {
	roots := make([]Entry, len(s.snaps))
	for i := range s.snaps {
		var err error
		roots[i], err = r.m.repo.Root(ctx, &s.snaps[i])
		if errno := r.m.errno(err, "reading snapshot", s.name+"/"+s.names[i]); errno != 0 {
			return fuse.Status(errno)
		}
	}
	h := &historyDir{src: s.src, source: s.name, dir: strictest(roots)}
	h.attr(&out.Attr)
	changing(out)
	out.Ino = historyIno(s)
	out.NodeId = r.intern(out.Ino, func() *node { return &node{kind: kindHistory, hist: h} })
	return fuse.OK
}
