// Package crashfs records every change a program makes to an in-memory
// vfs.FS, so that a test can rebuild afterwards what a power cut right after
// any recorded change would have left: all that was fsynced by then, and
// optionally a random part of what was not (torn writes, directory entries
// that happened to reach the disk).
//
// Recording first and cutting later lets a test choose its cut points once
// the run is over, knowing how long it was and when each result was
// reported, and keeps one copy of the data instead of one per cut. The
// crash itself is pebble's MemFS model (NewCrashableMem, CrashClone), the
// one Pebble's own crash tests use, so the backend files and the Pebble
// index are judged by the same rules.
package crashfs

import (
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// FS is an in-memory vfs.FS that records its changes. It is safe for
// concurrent use: a change and its record are made under one lock, so the
// record's order is the order in which the changes took effect.
type FS struct {
	// vfs.FS is the live state the program sees. Only what cannot change
	// it (List, Stat, path helpers) is passed straight through.
	vfs.FS

	mu      sync.Mutex
	changes []change
	handles int
}

var _ vfs.FS = (*FS)(nil)

// New returns an empty recording filesystem.
func New() *FS { return &FS{FS: vfs.NewMem()} }

// Changes returns how many changes are recorded: a cut after all of them.
func (fs *FS) Changes() int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return len(fs.changes)
}

// Crash returns a new filesystem in the state a power cut right after the
// first n changes would have left. With cfg zero it holds exactly what was
// fsynced; cfg.UnsyncedDataPercent keeps that share of the unsynced 4 KiB
// blocks and directory entries as well, chosen by cfg.RNG.
func (fs *FS) Crash(n int, cfg vfs.CrashCloneCfg) (*vfs.MemFS, error) {
	fs.mu.Lock()
	log := fs.changes[:n:n]
	fs.mu.Unlock()
	mem := vfs.NewCrashableMem()
	files := make(map[int]vfs.File)
	for i, c := range log {
		if err := c.replay(mem, files); err != nil {
			return nil, fmt.Errorf("crashfs: replay change %d of %d (%s): %w", i, n, c, err)
		}
	}
	return mem.CrashClone(cfg), nil
}

// Unwrap hides the live state: a write that went around the recorder
// would be missing from every crash.
func (*FS) Unwrap() vfs.FS { return nil }

func (fs *FS) Create(name string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	return fs.open(change{kind: opCreate, name: name}, func() (vfs.File, error) { return fs.FS.Create(name, cat) })
}

func (fs *FS) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	return fs.open(change{kind: opOpen, name: name}, func() (vfs.File, error) { return fs.FS.Open(name, opts...) })
}

func (fs *FS) OpenDir(name string) (vfs.File, error) {
	return fs.open(change{kind: opOpenDir, name: name}, func() (vfs.File, error) { return fs.FS.OpenDir(name) })
}

func (fs *FS) OpenReadWrite(name string, cat vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	return fs.open(change{kind: opOpenReadWrite, name: name}, func() (vfs.File, error) { return fs.FS.OpenReadWrite(name, cat, opts...) })
}

func (fs *FS) ReuseForWrite(old, name string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	return fs.open(change{kind: opReuseForWrite, name: old, to: name}, func() (vfs.File, error) { return fs.FS.ReuseForWrite(old, name, cat) })
}

func (fs *FS) Link(old, name string) error {
	return fs.change(change{kind: opLink, name: old, to: name}, func() error { return fs.FS.Link(old, name) })
}

func (fs *FS) Remove(name string) error {
	return fs.change(change{kind: opRemove, name: name}, func() error { return fs.FS.Remove(name) })
}

func (fs *FS) RemoveAll(name string) error {
	return fs.change(change{kind: opRemoveAll, name: name}, func() error { return fs.FS.RemoveAll(name) })
}

func (fs *FS) Rename(old, name string) error {
	return fs.change(change{kind: opRename, name: old, to: name}, func() error { return fs.FS.Rename(old, name) })
}

func (fs *FS) MkdirAll(dir string, perm os.FileMode) error {
	return fs.change(change{kind: opMkdirAll, name: dir, perm: perm}, func() error { return fs.FS.MkdirAll(dir, perm) })
}

// Lock is a change: it creates the lock file (MemFS's as the OS's), which
// the program may later remove, and the replay must find it then. A Lock
// that fails changed nothing in MemFS, and is not recorded.
func (fs *FS) Lock(name string) (io.Closer, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	l, err := fs.FS.Lock(name)
	if err == nil {
		fs.changes = append(fs.changes, change{kind: opLock, name: name})
	}
	return l, err
}

// open records a handle even when it is opened only for reading: fsync
// through any handle makes the file's data durable, and a directory is
// synced through one.
func (fs *FS) open(c change, fn func() (vfs.File, error)) (vfs.File, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f, err := fn()
	if err != nil {
		return nil, err
	}
	c.h = fs.handles
	fs.handles++
	fs.changes = append(fs.changes, c)
	return &file{File: f, fs: fs, h: c.h}, nil
}

// change records fn's change even when it fails: a failed change may still
// have done part of its work, and the replay, from the same state, fails
// the same way.
func (fs *FS) change(c change, fn func() error) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	err := fn()
	c.failed = err != nil
	fs.changes = append(fs.changes, c)
	return err
}
