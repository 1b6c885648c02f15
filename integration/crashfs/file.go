package crashfs

import (
	"slices"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// file records writes, syncs and the close of one open file.
type file struct {
	vfs.File
	fs *FS
	h  int
	// pos mirrors the wrapped file's offset, so that a Write is recorded
	// as a WriteAt: the replay need not repeat the reads that moved it.
	pos int64
}

func (f *file) Read(p []byte) (int, error) {
	n, err := f.File.Read(p)
	f.pos += int64(n)
	return n, err
}

func (f *file) Write(p []byte) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	// Copied before the write: MemFS scrambles the caller's buffer after
	// writing it when built with invariants.
	data := slices.Clone(p)
	n, err := f.File.Write(p)
	f.fs.changes = append(f.fs.changes, change{kind: opWriteAt, h: f.h, off: f.pos, data: data[:n], failed: err != nil})
	f.pos += int64(n)
	return n, err
}

func (f *file) WriteAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	data := slices.Clone(p)
	n, err := f.File.WriteAt(p, off)
	f.fs.changes = append(f.fs.changes, change{kind: opWriteAt, h: f.h, off: off, data: data[:n], failed: err != nil})
	return n, err
}

func (f *file) Sync() error { return f.record(opSync, f.File.Sync) }

func (f *file) SyncData() error { return f.record(opSync, f.File.SyncData) }

// SyncTo is recorded as a sync only when it claims a full one; otherwise
// it promises nothing, and the crash must not keep more than it did.
func (f *file) SyncTo(length int64) (bool, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	full, err := f.File.SyncTo(length)
	if full && err == nil {
		f.fs.changes = append(f.fs.changes, change{kind: opSync, h: f.h})
	}
	return full, err
}

func (f *file) Close() error { return f.record(opClose, f.File.Close) }

func (f *file) record(k opKind, fn func() error) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	err := fn()
	f.fs.changes = append(f.fs.changes, change{kind: k, h: f.h, failed: err != nil})
	return err
}
