// Package fs serves backups as a read-only FUSE filesystem:
//
//	<mount>/<source>/<time>/...       the whole tree of one snapshot
//	<mount>/<source>/latest           symlink to the newest snapshot
//	<mount>/<source>/.history/<path>/ one entry per distinct version of path
//
// It knows nothing of repositories: it serves a Repository, the narrow
// read-only interface declared here, which the caller implements over
// whatever holds the snapshots.
package fs

import (
	"context"
	"errors"
	"syscall"
	"time"
)

// ErrNotExist is what a Repository returns (wrapped or not) for a name
// that does not exist; it becomes ENOENT. Every other error becomes EIO.
var ErrNotExist = errors.New("does not exist")

// Source is what was backed up: a path (or volume) on a host. Each source
// is one directory at the top of the mount.
type Source struct {
	Host, Path string
}

// Snapshot is one backup of a source.
type Snapshot struct {
	ID     string // unique and stable; inode numbers derive from it
	Time   time.Time
	Source Source
	Ref    any // the Repository's handle, passed back to Root
}

// Entry is one node of a snapshot's tree as stat, readlink and getxattr
// show it.
type Entry struct {
	Name     string
	Mode     uint32 // file type (syscall.S_IF*) and permission bits, as st_mode
	UID, GID uint32
	Size     uint64
	Blocks   uint64 // 512-byte blocks of data: holes take none
	Nlink    uint32
	Rdev     uint64 // as st_rdev from glibc's stat
	Atime    int64  // nanoseconds since the epoch
	Mtime    int64
	Ctime    int64
	Target   string // symlink target
	Xattrs   []Xattr
	// Link, when not zero, is shared by the names of one hardlinked file
	// within a snapshot: they get one inode number.
	Link uint64
	Ref  any // the Repository's handle, passed back to List, Lookup and Open
}

// IsDir reports whether e is a directory.
func (e *Entry) IsDir() bool { return e.Mode&syscall.S_IFMT == syscall.S_IFDIR }

// Xattr is one extended attribute, POSIX ACLs included.
type Xattr struct {
	Name  string
	Value []byte
}

// Version is one distinct state of a path in a source's history.
type Version struct {
	Time     time.Time // of the snapshot in which the state first appeared
	Snapshot string    // that snapshot's ID
	Deleted  bool      // the path stopped existing
	// Type is the S_IF* file type of the path, or 0 when the repository
	// does not record it (fs then looks the entry up).
	Type uint32
}

// File is an open regular file. Reads may come concurrently.
type File interface {
	// ReadVec returns the content from off, up to len(p) bytes, in
	// slices of memory that stay valid until done is called: they go to
	// the kernel without being copied into a request buffer first. p is
	// room for what the File does not hold (the zeros of holes). It
	// returns io.EOF with fewer bytes at the end of the file.
	ReadVec(ctx context.Context, p []byte, off int64) (vec [][]byte, done func(), err error)
	// NextData returns the first offset at or after off holding data,
	// false when only holes follow (SEEK_DATA).
	NextData(off int64) (int64, bool)
	// NextHole returns the first offset at or after off in a hole, the
	// end of the file counting as one (SEEK_HOLE).
	NextHole(off int64) int64
}

// Repository is the read-only tree fs serves. Its methods are called
// concurrently. Entries and snapshots never change once returned, which
// is what lets the kernel cache them.
type Repository interface {
	// Snapshots returns every snapshot, oldest first. fs calls it at
	// mount time and again every refresh interval.
	Snapshots(ctx context.Context) ([]Snapshot, error)
	// Root returns the entry of a snapshot's top directory.
	Root(ctx context.Context, s *Snapshot) (Entry, error)
	// List, Lookup and Open get back an Entry the Repository returned,
	// without its Name: fs keeps no names of its own.
	//
	// List returns a directory's entries sorted by name, appended to
	// buf[:0]: fs passes back the listings of directories it is done
	// with, so that a walk does not allocate one per directory.
	List(ctx context.Context, dir *Entry, buf []Entry) ([]Entry, error)
	Lookup(ctx context.Context, dir *Entry, name string) (Entry, error)
	Open(ctx context.Context, file *Entry) (File, error)
	// History returns the versions of a path ("" is the source's root)
	// among the snapshots the last Snapshots call returned, oldest first.
	History(ctx context.Context, src Source, path string) ([]Version, error)
	// HistoryNames returns every name ever seen in the directory at path.
	HistoryNames(ctx context.Context, src Source, path string) ([]string, error)
}
