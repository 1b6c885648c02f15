package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"unsafe"

	"github.com/cockroachdb/pebble/v2/vfs"
	"golang.org/x/sys/unix"

	"github.com/hindsight-backup/hindsight/remote"
)

var _ remote.RangeReader = (*Backend)(nil)

// ReadRange reads a range with one pread into buf. A sparse read of a
// range that the page cache does not hold goes past it (O_DIRECT): a
// mount reads each chunk once, and keeps it in its own page cache, so a
// second copy of it here would cost its copying (a fifth of a mount's CPU
// in a cold sequential read) and push out data that is read again. A
// range already cached is copied from there, which beats the disk.
func (b *Backend) ReadRange(ctx context.Context, name string, offset, n int64, buf []byte) ([]byte, error) {
	if n < 0 {
		return nil, remote.Permanent(fmt.Errorf("local: load %s: negative length %d", name, n))
	}
	f, size, err := b.open(ctx, name, offset)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if offset+n > size {
		return nil, fmt.Errorf("local: load %s: %d bytes at %d run past the end of %d: %w", name, n, offset, size, io.ErrUnexpectedEOF)
	}
	if remote.SparseReads(ctx) {
		if p, ok := readDirect(f, offset, n, buf); ok {
			return p, nil
		}
		adviseRandom(f)
	}
	p := buf[:0]
	if int64(cap(p)) < n {
		p = make([]byte, 0, n)
	}
	p = p[:n]
	if _, err := f.ReadAt(p, offset); err != nil && !(errors.Is(err, io.EOF) && int64(len(p)) == n) {
		return nil, lookupErr("load", name, err)
	}
	return p, nil
}

// directAlign is what O_DIRECT asks of memory, offsets and lengths; 4096
// satisfies disks of 512-byte and of 4 KiB sectors.
const directAlign = 4096

// readDirect reads n bytes at offset past the page cache into the
// aligned span of buf around them, and reports false, leaving f as it
// was, where that cannot be done: f has no descriptor (MemFS), the range
// is cached, buf is too small, or the filesystem refuses O_DIRECT.
func readDirect(f vfs.File, offset, n int64, buf []byte) ([]byte, bool) {
	fd := f.Fd()
	start, end := offset&^(directAlign-1), (offset+n+directAlign-1)&^(directAlign-1)
	buf = buf[:cap(buf)]
	if fd == vfs.InvalidFd || len(buf) == 0 || cached(int(fd), start, end) {
		return nil, false
	}
	skip := int64(-uintptr(unsafe.Pointer(&buf[0])) & (directAlign - 1))
	if int64(len(buf)) < skip+end-start {
		return nil, false
	}
	flags, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
	if err == nil {
		_, err = unix.FcntlInt(fd, unix.F_SETFL, flags|unix.O_DIRECT)
	}
	if err != nil {
		return nil, false
	}
	span := buf[skip : skip+end-start]
	got := int64(0)
	for got < offset+n-start {
		k, err := unix.Pread(int(fd), span[got:], start+got)
		if err == unix.EINTR {
			continue
		}
		if err != nil || k == 0 {
			// The buffered read that follows reports what is wrong.
			_, _ = unix.FcntlInt(fd, unix.F_SETFL, flags)
			return nil, false
		}
		got += int64(k)
	}
	return span[offset-start : offset-start+n], true
}

// cached reports whether the page cache holds every page of [start, end).
// Where the kernel cannot tell (before Linux 6.5), it reports false.
func cached(fd int, start, end int64) bool {
	var st unix.Cachestat_t
	r := unix.CachestatRange{Off: uint64(start), Len: uint64(end - start)}
	if unix.Cachestat(uint(fd), &r, &st, 0) != nil {
		return false
	}
	return st.Cache*uint64(unix.Getpagesize()) >= uint64(end-start)
}
