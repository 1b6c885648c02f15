package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
)

// HoleMode says what an image restore does where the image has holes.
type HoleMode int

const (
	// HolesZero makes holes read as zeros: BLKZEROOUT on a device (which
	// thin volumes and most SSDs do without writing), a truncated file.
	HolesZero HoleMode = iota
	// HolesDiscard discards the ranges: fast, but only devices that
	// guarantee zeros after a discard then read zeros there.
	HolesDiscard
	// HolesSkip leaves them alone: for a target known to read as zeros,
	// such as a fresh thin volume.
	HolesSkip
)

// ImageRestoreOptions control an image restore.
type ImageRestoreOptions struct {
	Holes   HoleMode
	Workers int // chunks loaded and written at once; default GOMAXPROCS+1
}

// ErrTargetTooSmall is wrapped when the target device is smaller than the image.
var ErrTargetTooSmall = errors.New("target is smaller than the image")

// RestoreImage writes the image of an image snapshot onto target, a block
// device or a file (created if missing, truncated to the image's size).
// Only data chunks are written; holes are handled as o.Holes says.
func RestoreImage(ctx context.Context, repo Repo, rec *Record, target string, o ImageRestoreOptions, prog *RestoreProgress) error {
	n, err := ImageNode(ctx, repo, rec)
	if err != nil {
		return err
	}
	if prog == nil {
		prog = &RestoreProgress{}
	}
	prog.TotalBytes.Store(n.Size)
	f, isDev, err := openImageTarget(target, n.Size)
	if err != nil {
		return err
	}
	defer f.Close()
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0) + 1
	}
	if err := writeImage(ctx, repo, f, isDev, n.Content, o, prog); err != nil {
		return fmt.Errorf("restore image to %s: %w", target, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("restore image to %s: %w", target, err)
	}
	prog.Files.Store(1)
	return nil
}

func openImageTarget(target string, size uint64) (*os.File, bool, error) {
	fi, err := os.Stat(target)
	if err == nil && fi.Mode()&os.ModeDevice != 0 {
		f, err := os.OpenFile(target, os.O_WRONLY|unix.O_EXCL, 0) // EXCL: fails while mounted
		if err != nil {
			return nil, false, err
		}
		devSize, err := f.Seek(0, io.SeekEnd)
		if err == nil && uint64(devSize) < size {
			err = fmt.Errorf("%w: %s has %d bytes, the image %d", ErrTargetTooSmall, target, devSize, size)
		}
		if err != nil {
			f.Close()
			return nil, false, err
		}
		return f, true, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, false, err
	}
	f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, false, err
	}
	if err := f.Truncate(int64(size)); err != nil {
		f.Close()
		return nil, false, err
	}
	return f, false, nil
}

type imageWrite struct {
	off int64
	c   Chunk
}

func writeImage(ctx context.Context, repo Repo, f *os.File, isDev bool, content []Chunk, o ImageRestoreOptions, prog *RestoreProgress) error {
	g, ctx := errgroup.WithContext(ctx)
	jobs := make(chan imageWrite)
	for range o.Workers {
		g.Go(func() error {
			var buf []byte
			for j := range jobs {
				b, err := repo.LoadBlob(ctx, blob.Data, j.c.ID, buf[:0])
				if err != nil {
					return fmt.Errorf("offset %d: %w", j.off, err)
				}
				if uint64(len(b)) != j.c.Size {
					return fmt.Errorf("offset %d: blob %s has %d bytes, the image's content list says %d", j.off, j.c.ID.Short(), len(b), j.c.Size)
				}
				if _, err := f.WriteAt(b, j.off); err != nil {
					return err
				}
				prog.Bytes.Add(j.c.Size)
				buf = b
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(jobs)
		var off int64
		for _, c := range content {
			if c.IsHole() {
				if err := fillHole(f, isDev, off, int64(c.Size), o.Holes); err != nil {
					return fmt.Errorf("offset %d: %w", off, err)
				}
				prog.Bytes.Add(c.Size)
			} else {
				select {
				case jobs <- imageWrite{off: off, c: c}:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			off += int64(c.Size)
		}
		return nil
	})
	return g.Wait()
}

// fillHole makes a hole of the image read as o.Holes says. A file target
// was truncated, so it reads as zeros already.
func fillHole(f *os.File, isDev bool, off, n int64, mode HoleMode) error {
	if !isDev || mode == HolesSkip {
		return nil
	}
	req := uintptr(unix.BLKZEROOUT)
	if mode == HolesDiscard {
		req = unix.BLKDISCARD
	}
	r := [2]uint64{uint64(off), uint64(n)}
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), req, uintptr(unsafe.Pointer(&r))); errno != 0 {
		if mode == HolesZero && (errno == unix.EOPNOTSUPP || errno == unix.ENOTTY || errno == unix.EINVAL) {
			return writeZeros(f, off, n)
		}
		return errno
	}
	return nil
}

// zeroBlock is what writeZeros writes, for devices without BLKZEROOUT.
var zeroBlock [1 << 20]byte

func writeZeros(f *os.File, off, n int64) error {
	for n > 0 {
		k := min(n, int64(len(zeroBlock)))
		if _, err := f.WriteAt(zeroBlock[:k], off); err != nil {
			return err
		}
		off, n = off+k, n-k
	}
	return nil
}
