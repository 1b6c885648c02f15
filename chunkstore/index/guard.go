package index

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Pebble cannot survive a full disk: a failed WAL write ends in
// Logger.Fatalf ("the commit pipeline will be horked"), and a memtable
// flush that fails is retried forever while writers stall. So the index
// refuses a write while its filesystem has less than a reserve free, giving
// the caller an ordinary ENOSPC error instead, and turns the Fatalf that a
// race past the reserve can still cause into an error that breaks only
// this DB.

// indexReserve is what the guard keeps free: room for Pebble's MANIFEST,
// a new WAL and the flush of what a command writes, which for every
// command but the first backup is a few hundred KiB. Small enough that a
// repository whose disk filled up can still be listed and restored.
const indexReserve = 1 << 20

// fatalError is Pebble's Logger.Fatalf, carried by panic to the write that
// caused it.
type fatalError struct{ msg string }

func (e *fatalError) Error() string { return e.msg }

// Unwrap lets errors.Is see the cause Pebble names in its message: the one
// that matters to users is a full disk.
func (e *fatalError) Unwrap() error {
	if strings.Contains(e.msg, syscall.ENOSPC.Error()) {
		return syscall.ENOSPC
	}
	return nil
}

// ErrNoSpace is returned, wrapped with the numbers, when the index's
// filesystem is below its reserve. It matches syscall.ENOSPC.
var ErrNoSpace = fmt.Errorf("index: %w", syscall.ENOSPC)

type guard struct {
	fs      vfs.FS
	dir     string
	reserve uint64
	broken  atomic.Pointer[fatalError]
}

// check fails when the DB is broken or its disk is below the reserve. A
// filesystem that cannot tell its usage (an in-memory one) always passes.
func (g *guard) check() error {
	if f := g.broken.Load(); f != nil {
		return fmt.Errorf("index is unusable after an earlier failure: %w", f)
	}
	u, err := g.fs.GetDiskUsage(g.dir)
	if errors.Is(err, vfs.ErrUnsupported) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("index: free space of %s: %w", g.dir, err)
	}
	free := u.AvailBytes
	if os.Geteuid() == 0 { // root may use the blocks reserved for it
		free = u.TotalBytes - u.UsedBytes
	}
	if free < g.reserve {
		return fmt.Errorf("%w: %s has %d KiB free; the index keeps %d KiB free for its own files",
			ErrNoSpace, g.dir, free>>10, g.reserve>>10)
	}
	return nil
}

// write runs fn, a Pebble write, if the guard allows it.
func (g *guard) write(fn func() error) error {
	if err := g.check(); err != nil {
		return err
	}
	return g.recoverFatal(fn)
}

// recoverFatal runs fn, turning Pebble's Fatalf into an error that breaks
// the DB for every later write.
func (g *guard) recoverFatal(fn func() error) (err error) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		f, ok := r.(*fatalError)
		if !ok {
			panic(r)
		}
		g.broken.CompareAndSwap(nil, f)
		err = f
	}()
	return fn()
}
