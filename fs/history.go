package fs

import (
	"context"
	"path"
	"strings"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// historyDir is the directory <source>/.history/<path>. It lists one entry
// per distinct version of path that was not a directory, named like the
// snapshot the version first appeared in, and, if path ever was a
// directory, every name ever seen in it. A version name hides a child of
// the same name (a file named like a timestamp in a directory that was
// once a file).
type historyDir struct {
	src    Source
	source string // the source's directory name
	path   string // "" is the source's root
	dir    Entry  // whose owner, mode and times the directory shows
}

func (n *historyDir) attr(a *fuse.Attr) {
	d := n.dir
	d.Mode = syscall.S_IFDIR | d.Mode&0o7777
	d.Size, d.Blocks, d.Nlink = 0, 0, 2
	fillAttr(a, &d)
}

func (n *historyDir) where() string { return path.Join(n.source, historyName, n.path) }

// versions returns path's versions with the current listing of the
// source, whose names they take.
func (n *historyDir) versions(ctx context.Context, m *mount, p string) ([]Version, *source, syscall.Errno) {
	s := m.cat.Load().byName[n.source]
	if s == nil {
		return nil, nil, syscall.ENOENT
	}
	vs, err := m.repo.History(ctx, n.src, p)
	return vs, s, m.errno(err, "reading history", path.Join(n.source, historyName, p))
}

// isDir reports whether the path was ever a directory. The source's root
// always was, though it has no history rows of its own.
func isDir(p string, vs []Version) bool {
	if p == "" {
		return true
	}
	for _, v := range vs {
		if v.Type == syscall.S_IFDIR {
			return true
		}
	}
	return false
}

// files returns the versions that are entries here: every state but
// directories and deletions, of snapshots still listed.
func files(vs []Version, s *source) []Version {
	var out []Version
	for _, v := range vs {
		if _, ok := s.byID[v.Snapshot]; ok && !v.Deleted && v.Type != syscall.S_IFDIR {
			out = append(out, v)
		}
	}
	return out
}

// list lists the directory, numbered ino.
func (n *historyDir) list(ctx context.Context, m *mount, ino uint64) ([]fuse.DirEntry, syscall.Errno) {
	vs, s, errno := n.versions(ctx, m, n.path)
	if errno != 0 {
		return nil, errno
	}
	var list []fuse.DirEntry
	for _, v := range files(vs, s) {
		list = append(list, fuse.DirEntry{Name: s.names[s.byID[v.Snapshot]], Mode: v.Type})
	}
	if isDir(n.path, vs) {
		names, err := m.repo.HistoryNames(ctx, n.src, n.path)
		if errno := m.errno(err, "reading history", n.where()); errno != 0 {
			return nil, errno
		}
		for _, name := range names {
			list = append(list, fuse.DirEntry{Name: name, Mode: syscall.S_IFDIR, Ino: childIno(ino, name)})
		}
	}
	return list, 0
}

func (r *rawFS) lookupHistory(ctx context.Context, dir *node, name string, out *fuse.EntryOut) fuse.Status {
	n := dir.hist
	vs, s, errno := n.versions(ctx, r.m, n.path)
	if errno != 0 {
		return fuse.Status(errno)
	}
	for _, v := range files(vs, s) {
		if s.names[s.byID[v.Snapshot]] == name {
			return r.version(ctx, n, &s.snaps[s.byID[v.Snapshot]], name, out)
		}
	}
	if !isDir(n.path, vs) {
		return fuse.ENOENT
	}
	child := path.Join(n.path, name)
	cvs, _, errno := n.versions(ctx, r.m, child)
	if errno != 0 {
		return fuse.Status(errno)
	}
	if len(cvs) == 0 {
		return fuse.ENOENT
	}
	h := &historyDir{src: n.src, source: n.source, path: child, dir: r.m.containerAttr(ctx, s, child, cvs)}
	h.attr(&out.Attr)
	out.SetEntryTimeout(immutableTimeout)
	out.SetAttrTimeout(immutableTimeout)
	out.Ino = childIno(dir.ino, name)
	out.NodeId = r.intern(out.Ino, func() *node { return &node{kind: kindHistory, hist: h} })
	return fuse.OK
}

// containerAttr picks what the history directory of p shows: the
// directory p was, as strict as it ever was (see strictest), so that its
// history is guarded as each of its versions was; for a path that never
// was a directory, a listing anyone may read (the versions inside keep
// their own owners and modes).
func (m *mount) containerAttr(ctx context.Context, s *source, p string, vs []Version) Entry {
	var dirs []Entry
	for _, v := range vs {
		j, ok := s.byID[v.Snapshot]
		if !ok || v.Type != syscall.S_IFDIR {
			continue
		}
		if e, _, err := m.resolve(ctx, &s.snaps[j], p); err == nil {
			dirs = append(dirs, e)
		}
	}
	if len(dirs) > 0 {
		return strictest(dirs)
	}
	last := vs[len(vs)-1].Time.UnixNano()
	return Entry{Mode: syscall.S_IFDIR | 0o555, Atime: last, Mtime: last, Ctime: last}
}

// aclXattr is where a POSIX ACL is kept.
const aclXattr = "system.posix_acl_access"

// strictest combines the versions of one directory, oldest first, into the
// entry its history directory shows: the newest, granting only what every
// version granted. A file of an old version was guarded by that version's
// directory: had the history shown only the newest, a private directory
// made public later would expose its old private contents. Who owned which
// version cannot be combined, so if owner, group or ACL ever changed, the
// owner becomes root and only the permissions of others remain.
func strictest(dirs []Entry) Entry {
	e := dirs[len(dirs)-1]
	perm := uint32(0o777)
	same := true
	for _, d := range dirs {
		perm &= d.Mode
		same = same && d.UID == e.UID && d.GID == e.GID && string(xattr(d, aclXattr)) == string(xattr(e, aclXattr))
	}
	if !same {
		e.UID, e.GID = 0, 0
		perm &= 0o007
		var kept []Xattr
		for _, x := range e.Xattrs {
			if x.Name != aclXattr {
				kept = append(kept, x)
			}
		}
		e.Xattrs = kept
	}
	e.Mode = e.Mode&^0o777 | perm
	return e
}

func xattr(e Entry, name string) []byte {
	for _, x := range e.Xattrs {
		if x.Name == name {
			return x.Value
		}
	}
	return nil
}

// version looks up the entry of path in snapshot s. It gets the inode
// number it has in the snapshot's own tree.
func (r *rawFS) version(ctx context.Context, n *historyDir, s *Snapshot, name string, out *fuse.EntryOut) fuse.Status {
	e, ino, err := r.m.resolve(ctx, s, n.path)
	if errno := r.m.errno(err, "reading snapshot", n.where()); errno != 0 {
		return fuse.Status(errno)
	}
	r.placed(out, &placedEntry{e: e, snap: snapshotIno(s.ID), ino: ino, path: path.Join(n.where(), name)}, immutableTimeout)
	return fuse.OK
}

// resolve walks p from snapshot s's root, numbering entries on the way as
// the snapshot's tree does.
func (m *mount) resolve(ctx context.Context, s *Snapshot, p string) (Entry, uint64, error) {
	e, err := m.repo.Root(ctx, s)
	if err != nil {
		return Entry{}, 0, err
	}
	sino := snapshotIno(s.ID)
	cur := sino
	for _, c := range strings.Split(p, "/") {
		if c == "" {
			continue
		}
		if e, err = m.repo.Lookup(ctx, &e, c); err != nil {
			return Entry{}, 0, err
		}
		cur = entryIno(sino, cur, &e)
	}
	return e, cur, nil
}
