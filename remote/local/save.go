package local

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/hindsight-backup/hindsight/remote"
)

// tempPrefix starts the name of every file that is not yet an object. The
// leading dot keeps it outside the names remote.CheckName accepts, so List
// can skip such files without ever hiding a real object; a crash may leave
// them behind.
const tempPrefix = ".tmp-"

// copyBufSize bounds the memory one Save holds while copying; packs are
// tens of MiB and several are saved at once.
const copyBufSize = 1 << 20

// Save writes rd to a temporary file beside name, fsyncs it, renames it into
// place and fsyncs the directory, creating (and durably recording) missing
// directories first. Until the rename nothing is visible under name; once
// Save returns nil the object survives a power loss.
func (b *Backend) Save(ctx context.Context, name string, rd io.ReaderAt, size int64) error {
	if err := remote.CheckName(name); err != nil {
		return err
	}
	if size < 0 {
		return remote.Permanent(fmt.Errorf("local: save %s: negative size %d", name, size))
	}
	if err := b.save(ctx, name, rd, size); err != nil {
		return classify(fmt.Errorf("local: save %s: %w", name, err))
	}
	return nil
}

func (b *Backend) save(ctx context.Context, name string, rd io.ReaderAt, size int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dir := parentOf(name)
	return b.inDir(dir, func() error {
		tmp, err := b.writeTemp(ctx, dir, rd, size)
		if err != nil {
			return err
		}
		if err := b.fs.Rename(tmp, b.path(name)); err != nil {
			// Best effort: a leftover temp file is hidden from List and
			// costs only space.
			_ = b.fs.Remove(tmp)
			return err
		}
		if err := syncDir(b.fs, b.path(dir)); err != nil {
			return fmt.Errorf("sync directory: %w", err)
		}
		return nil
	})
}

// inDir runs fn after making sure dir exists. The set of directories known
// to exist is a cache; when something removed a directory behind our back
// (an operator cleaning up, a test), fn fails with ENOENT and is retried
// once after the directory is created again.
func (b *Backend) inDir(dir string, fn func() error) error {
	for attempt := 0; ; attempt++ {
		if err := b.ensureDir(dir); err != nil {
			return fmt.Errorf("create directory: %w", err)
		}
		err := fn()
		if attempt > 0 || !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		for d := dir; d != ""; d = parentOf(d) {
			b.durableDirs.Delete(d)
		}
	}
}

// writeTemp returns the path of a fully written and fsynced temporary file
// in dir holding size bytes of rd. On error the file is gone.
func (b *Backend) writeTemp(ctx context.Context, dir string, rd io.ReaderAt, size int64) (string, error) {
	tmp := b.fs.PathJoin(b.path(dir), tempPrefix+rand.Text())
	f, err := b.fs.Create(tmp, vfs.WriteCategoryUnspecified)
	if err != nil {
		return "", err
	}
	err = copyFrom(ctx, f, rd, size)
	if err == nil {
		if err = f.Sync(); err != nil {
			err = fmt.Errorf("sync: %w", err)
		}
	}
	// Close is checked too: NFS reports deferred write errors there.
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close: %w", cerr)
	}
	if err != nil {
		_ = b.fs.Remove(tmp)
		return "", err
	}
	return tmp, nil
}

// copyFrom writes exactly size bytes of rd to w. A source that ends early is
// a permanent error: reading the same ReaderAt again gives the same bytes.
func copyFrom(ctx context.Context, w io.Writer, rd io.ReaderAt, size int64) error {
	buf := make([]byte, min(size, copyBufSize))
	for off := int64(0); off < size; {
		// Checked per buffer so that a cancelled backup abandons even a
		// large pack after at most one buffer of I/O.
		if err := ctx.Err(); err != nil {
			return err
		}
		p := buf[:min(size-off, int64(len(buf)))]
		n, err := rd.ReadAt(p, off)
		if n < len(p) {
			if err == nil || errors.Is(err, io.EOF) {
				return remote.Permanent(fmt.Errorf("source ended after %d of %d bytes", off+int64(n), size))
			}
			return fmt.Errorf("read source at offset %d: %w", off+int64(n), err)
		}
		if m, err := w.Write(p); err != nil {
			return err
		} else if m != len(p) {
			return io.ErrShortWrite
		}
		off += int64(len(p))
	}
	return nil
}

// SaveFile adopts the finished, fsynced file at path (a path on the same
// vfs.FS, not relative to the root) as name by renaming it, which avoids
// copying a pack that was written locally. Across filesystems it falls back
// to a copy and removes path only once the copy is durable.
func (b *Backend) SaveFile(ctx context.Context, name, path string) error {
	if err := remote.CheckName(name); err != nil {
		return err
	}
	if err := b.saveFile(ctx, name, path); err != nil {
		return classify(fmt.Errorf("local: save %s from %s: %w", name, path, err))
	}
	return nil
}

func (b *Backend) saveFile(ctx context.Context, name, path string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dir := parentOf(name)
	var copied bool
	err := b.inDir(dir, func() error {
		err := b.fs.Rename(path, b.path(name))
		if errors.Is(err, syscall.EXDEV) {
			copied = true
			return nil
		}
		return err
	})
	if err != nil {
		return err
	}
	if copied {
		return b.copyFile(ctx, name, path)
	}
	if err := syncDir(b.fs, b.path(dir)); err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	return nil
}

func (b *Backend) copyFile(ctx context.Context, name, path string) error {
	f, err := b.fs.Open(path)
	if err != nil {
		return err
	}
	size, err := objectSize(f)
	if err == nil {
		err = b.save(ctx, name, f, size)
	}
	f.Close()
	if err != nil {
		return err
	}
	return b.fs.Remove(path)
}

// ensureDir creates the repository directory dir (relative, slash-separated)
// and its missing parents, fsyncing each parent so that the new entry, and
// everything later renamed into it, survives a crash.
func (b *Backend) ensureDir(dir string) error {
	if dir == "" {
		return nil
	}
	if _, ok := b.durableDirs.Load(dir); ok {
		return nil
	}
	parent := parentOf(dir)
	if err := b.ensureDir(parent); err != nil {
		return err
	}
	if err := b.fs.MkdirAll(b.path(dir), dirMode); err != nil {
		return err
	}
	if err := syncDir(b.fs, b.path(parent)); err != nil {
		return err
	}
	b.durableDirs.Store(dir, struct{}{})
	return nil
}

// mkdirAllDurable is ensureDir for paths outside a repository: the root
// itself and its ancestors.
func mkdirAllDurable(fsys vfs.FS, dir string) error {
	fi, err := fsys.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s: %w", dir, syscall.ENOTDIR)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	parent := fsys.PathDir(dir)
	if parent != dir {
		if err := mkdirAllDurable(fsys, parent); err != nil {
			return err
		}
	}
	if err := fsys.MkdirAll(dir, dirMode); err != nil {
		return err
	}
	return syncDir(fsys, parent)
}

func syncDir(fsys vfs.FS, dir string) error {
	d, err := fsys.OpenDir(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	// Some filesystems (CIFS, several FUSE mounts) cannot sync a directory
	// and say so with EINVAL or ENOTSUP. Durability there is up to the
	// mount; refusing to work would help nobody.
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP) {
		return nil
	}
	return err
}
