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

// Pebble does not expect a full disk: a failed WAL write ends in
// Logger.Fatalf ("the commit pipeline will be horked"), and a flush that
// fails while opening is retried forever. So Open refuses to start below a
// reserve of free space, with an ordinary ENOSPC error, and the Fatalf a
// write can still meet is turned into an error that breaks only this DB.
// Writes are not held to the reserve: the last pack a backup stored
// before the disk filled must still be indexed, or it would be stored
// again by the next run, on a disk that has no room for it.

// indexReserve is the free space Open wants: room for Pebble's MANIFEST, a
// new WAL and the flush of the log it replays. Small enough that a
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
// filesystem is below its reserve at Open. It matches syscall.ENOSPC.
var ErrNoSpace = fmt.Errorf("index: %w", syscall.ENOSPC)

type guard struct {
	fs      vfs.FS
	dir     string
	reserve uint64
	broken  atomic.Pointer[fatalError]
}

// checkSpace fails when the disk has less free than the reserve and
// extra. A filesystem that cannot tell its usage (an in-memory one) always
// passes.
func (g *guard) checkSpace(extra uint64) error {
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
	if need := g.reserve + extra; free < need {
		return fmt.Errorf("%w: %s has %d KiB free; the index needs %d KiB free",
			ErrNoSpace, g.dir, free>>10, need>>10)
	}
	return nil
}

// write runs fn, a Pebble write, unless an earlier one broke the DB.
func (g *guard) write(fn func() error) error {
	if f := g.broken.Load(); f != nil {
		return fmt.Errorf("index is unusable after an earlier failure: %w", f)
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
