// Package local stores a repository in a directory. All file access goes
// through pebble's vfs.FS rather than package os so that crash tests can run
// the backend on vfs.NewCrashableMem, which forgets every write that was not
// made durable by fsync, and on errorfs, which fails chosen operations.
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"
	"golang.org/x/sys/unix"

	"github.com/hindsight-backup/hindsight/remote"
)

// Backend is a remote.Backend over one directory of a vfs.FS.
type Backend struct {
	fs   vfs.FS
	root string

	// durableDirs holds the relative names of directories whose entry in
	// their parent is known to be fsynced. A Save that finds its directory
	// already present cannot tell whether the goroutine that created it has
	// synced the parent yet, so each directory is synced once more by the
	// first Save of this process to use it; later Saves skip the work.
	durableDirs sync.Map
}

var (
	_ remote.Backend     = (*Backend)(nil)
	_ remote.FileSaver   = (*Backend)(nil)
	_ remote.TempRemover = (*Backend)(nil)
)

// dirMode keeps the repository private to its owner, as restic does: key
// files and lock files name hosts and users even when the data is encrypted.
const dirMode = 0o700

// Open returns a Backend for the existing directory root on fsys. A missing
// root yields an error matching remote.ErrNotExist, so that a mistyped
// repository path is reported rather than silently created.
func Open(fsys vfs.FS, root string) (*Backend, error) {
	fi, err := fsys.Stat(root)
	if err != nil {
		return nil, lookupErr("open", root, err)
	}
	if !fi.IsDir() {
		return nil, remote.Permanent(fmt.Errorf("local: open %s: %w", root, syscall.ENOTDIR))
	}
	return &Backend{fs: fsys, root: root}, nil
}

// Create makes root and any missing parents, durably, and opens it. It is
// not an error for root to exist already.
func Create(fsys vfs.FS, root string) (*Backend, error) {
	if err := mkdirAllDurable(fsys, root); err != nil {
		return nil, classify(fmt.Errorf("local: create %s: %w", root, err))
	}
	return Open(fsys, root)
}

// OpenDir is Open on the operating system's filesystem.
func OpenDir(root string) (*Backend, error) { return Open(vfs.Default, root) }

// Location returns the root directory.
func (b *Backend) Location() string { return b.root }

// Close releases nothing: the backend holds no open files between calls.
func (b *Backend) Close() error { return nil }

// Stat returns the size of name.
func (b *Backend) Stat(ctx context.Context, name string) (remote.FileInfo, error) {
	if err := remote.CheckName(name); err != nil {
		return remote.FileInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return remote.FileInfo{}, fmt.Errorf("local: stat %s: %w", name, err)
	}
	fi, err := b.fs.Stat(b.path(name))
	if err != nil {
		return remote.FileInfo{}, lookupErr("stat", name, err)
	}
	// A directory is an artefact of the layout, never an object.
	if fi.IsDir() {
		return remote.FileInfo{}, fmt.Errorf("local: stat %s: %w", name, remote.ErrNotExist)
	}
	return remote.FileInfo{Name: name, Size: fi.Size()}, nil
}

// Load opens name and returns a reader of length bytes from offset; length
// <= 0 reads to the end. A range running past the end of the object is cut
// short there, as an HTTP range request is; an offset past the end is an
// error.
func (b *Backend) Load(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	f, size, err := b.open(ctx, name, offset)
	if err != nil {
		return nil, err
	}
	n := size - offset
	if length > 0 && length < n {
		n = length
	}
	if remote.SparseReads(ctx) {
		adviseRandom(f)
	}
	return &fileReader{SectionReader: io.NewSectionReader(f, offset, n), f: f}, nil
}

// open opens name for a read from offset and returns its size.
func (b *Backend) open(ctx context.Context, name string, offset int64) (vfs.File, int64, error) {
	if err := remote.CheckName(name); err != nil {
		return nil, 0, err
	}
	if offset < 0 {
		return nil, 0, remote.Permanent(fmt.Errorf("local: load %s: negative offset %d", name, offset))
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, fmt.Errorf("local: load %s: %w", name, err)
	}
	f, err := b.fs.Open(b.path(name))
	if err != nil {
		return nil, 0, lookupErr("load", name, err)
	}
	size, err := objectSize(f)
	if err != nil {
		f.Close()
		return nil, 0, lookupErr("load", name, err)
	}
	if offset > size {
		f.Close()
		return nil, 0, remote.Permanent(fmt.Errorf("local: load %s: offset %d beyond end of %d-byte object", name, offset, size))
	}
	return f, size, nil
}

// adviseRandom turns off the kernel's readahead for this open file only
// (each Load opens the object anew): past a sparse read's range it would
// fetch mostly other files' chunks, 8 MiB of them on many disks, and a
// cold sequential read of one file through a mount got a fraction of the
// disk's bandwidth.
func adviseRandom(f vfs.File) {
	if fd := f.Fd(); fd != vfs.InvalidFd {
		_ = unix.Fadvise(int(fd), 0, 0, unix.FADV_RANDOM)
	}
}

func objectSize(f vfs.File) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if fi.IsDir() {
		return 0, fs.ErrNotExist
	}
	return fi.Size(), nil
}

// fileReader closes its file at most once: pebble's MemFS panics on a
// second Close, and callers commonly both defer Close and close explicitly.
type fileReader struct {
	*io.SectionReader
	f      vfs.File
	closed bool
}

func (r *fileReader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	return r.f.Close()
}

// Remove deletes name and makes the deletion durable, so that a crash cannot
// resurrect an object that prune has already accounted as gone.
func (b *Backend) Remove(ctx context.Context, name string) error {
	if _, err := b.Stat(ctx, name); err != nil {
		if errors.Is(err, remote.ErrNotExist) {
			return fmt.Errorf("local: remove %s: %w", name, remote.ErrNotExist)
		}
		return err
	}
	if err := b.fs.Remove(b.path(name)); err != nil {
		return lookupErr("remove", name, err)
	}
	if err := syncDir(b.fs, b.path(parentOf(name))); err != nil {
		return classify(fmt.Errorf("local: remove %s: sync directory: %w", name, err))
	}
	return nil
}

func (b *Backend) path(name string) string {
	if name == "" {
		return b.root
	}
	return b.fs.PathJoin(b.root, name)
}

// parentOf returns the slash-separated directory part of an object name, ""
// for a name at the root.
func parentOf(name string) string {
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		return name[:i]
	}
	return ""
}

func joinName(dir, elem string) string {
	if dir == "" {
		return elem
	}
	return dir + "/" + elem
}

// lookupErr reports a failure to find name as remote.ErrNotExist, and any
// other failure as classify does.
func lookupErr(op, name string, err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return fmt.Errorf("local: %s %s: %w", op, name, remote.ErrNotExist)
	}
	return classify(fmt.Errorf("local: %s %s: %w", op, name, err))
}

// classify marks err permanent when the operating system says that sending
// the same request again cannot help: someone has to free space, remount or
// fix permissions first. The errno stays reachable through errors.Is.
func classify(err error) error {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return err
	}
	switch errno {
	case syscall.ENOSPC, syscall.EDQUOT, syscall.EROFS, syscall.EACCES,
		syscall.EPERM, syscall.EFBIG, syscall.ENAMETOOLONG, syscall.ENOTDIR,
		syscall.EISDIR:
		return remote.Permanent(err)
	}
	return err
}
