// Package remote defines the storage interface the repository is written to,
// and the wrappers (retry, rate limit, cache) that compose around it.
// Implementations live in sub-packages: remote/local, remote/s3, remote/swift.
// This package imports none of hindsight's other packages.
package remote

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotExist is returned (possibly wrapped) when a named object is absent.
// Test with errors.Is(err, remote.ErrNotExist).
var ErrNotExist = errors.New("object does not exist")

// FileInfo describes one stored object.
type FileInfo struct {
	Name string // slash-separated, relative to the backend's root
	Size int64
}

// Backend stores immutable named objects. Names are slash-separated relative
// paths such as "packs/ab/ab12…"; the repository layout is chunkstore's.
//
// All methods are safe for concurrent use.
type Backend interface {
	// Save stores size bytes of rd under name. It is atomic: once it
	// returns nil the whole object is durable; on error no partial object
	// is visible under name. rd is a ReaderAt so that a retrying wrapper
	// can send it again from the start.
	Save(ctx context.Context, name string, rd io.ReaderAt, size int64) error

	// Load returns length bytes of name starting at offset; length <= 0
	// means up to the end. A missing object yields ErrNotExist.
	Load(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error)

	// Stat returns the object's size, or ErrNotExist.
	Stat(ctx context.Context, name string) (FileInfo, error)

	// List calls fn for every object whose name starts with prefix, in no
	// particular order. An error from fn stops the listing and is returned.
	List(ctx context.Context, prefix string, fn func(FileInfo) error) error

	// Remove deletes name. Removing a missing object yields ErrNotExist.
	Remove(ctx context.Context, name string) error

	// Location is a human-readable description (a path or URL) used in
	// messages.
	Location() string

	Close() error
}

// FileSaver is implemented by backends that can adopt a finished local file
// by renaming it instead of copying it (the local directory backend, when
// the file lives on the same filesystem). The file must already be fsynced;
// after success the file at path is gone.
type FileSaver interface {
	SaveFile(ctx context.Context, name, path string) error
}

// TempRemover is implemented by backends that write an object through a
// temporary file (the local directory backend): a process killed during
// Save leaves that file behind, and no listing shows it.
type TempRemover interface {
	// RemoveTemp removes the temporary files last written before before,
	// and reports how many it removed.
	RemoveTemp(ctx context.Context, before time.Time) (int, error)
}

// RemoveTemp calls the RemoveTemp of b, or of the backend b's wrappers
// wrap; for a backend that leaves no temporary files it does nothing.
func RemoveTemp(ctx context.Context, b Backend, before time.Time) (int, error) {
	if tr, ok := As[TempRemover](b); ok {
		return tr.RemoveTemp(ctx, before)
	}
	return 0, nil
}

// As returns b, or the first backend b's wrappers wrap, that is a T: a
// capability (TempRemover) or a concrete backend (*local.Backend).
func As[T any](b Backend) (T, bool) {
	for {
		if t, ok := b.(T); ok {
			return t, true
		}
		w, ok := b.(Wrapper)
		if !ok {
			var zero T
			return zero, false
		}
		b = w.Unwrap()
	}
}

// IsNotExist reports whether err says the object is absent.
func IsNotExist(err error) bool { return errors.Is(err, ErrNotExist) }
