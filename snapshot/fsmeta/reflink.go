package fsmeta

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Reflink clones are how an image file on XFS (reflink=1) or btrfs is
// read at one point in time while its guest keeps writing, as an LVM
// snapshot is for a volume: FICLONE makes a second file that shares every
// extent of the first, copy-on-write, at the cost of metadata alone. Kept
// after the backup, the clone is also the cheapest record of what the
// backup read: a write to either file moves the written range of that
// file to a new extent, so a range that the next clone and the kept one
// still map to the same physical extent has not been written since.

// ErrNoReflink says the filesystem cannot clone files.
var ErrNoReflink = errors.New("the filesystem cannot clone files (reflink): use XFS made with reflink=1, or btrfs")

// Clone makes dst a reflink clone of the file at src, replacing what dst
// held.
func Clone(src string, dst *os.File) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := unix.IoctlFileClone(int(dst.Fd()), int(in.Fd())); err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EXDEV) || errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("clone %s: %w (%w)", src, ErrNoReflink, err)
		}
		return fmt.Errorf("clone %s: %w", src, err)
	}
	return nil
}

// Identity names a file so that a file put in its place is told apart:
// its inode number, birth time and size.
func Identity(f *os.File) (string, error) {
	var st unix.Statx_t
	if err := unix.Statx(int(f.Fd()), "", unix.AT_EMPTY_PATH, unix.STATX_INO|unix.STATX_BTIME|unix.STATX_SIZE, &st); err != nil {
		return "", err
	}
	if st.Mask&unix.STATX_BTIME == 0 {
		return "", errors.New("the filesystem records no birth time")
	}
	return fmt.Sprintf("%d:%d.%09d:%d", st.Ino, st.Btime.Sec, st.Btime.Nsec, st.Size), nil
}

// Ranges are sorted, disjoint byte ranges.
type Ranges []Extent

// Contain reports whether the n bytes at off lie within one range.
func (r Ranges) Contain(off, n int64) bool {
	i := sort.Search(len(r), func(i int) bool { return r[i].Off+r[i].Len > off })
	return i < len(r) && r[i].Off <= off && off+n <= r[i].Off+r[i].Len
}

// add appends e, merged with the last range where they touch.
func (r Ranges) add(e Extent) Ranges {
	if e.Len <= 0 {
		return r
	}
	if k := len(r) - 1; k >= 0 && r[k].Off+r[k].Len == e.Off {
		r[k].Len += e.Len
		return r
	}
	return append(r, e)
}

// Unchanged returns the ranges of cur that hold what the same ranges of
// base hold, judged by their extent maps alone: mapped to the same
// physical bytes in both, or a hole in both. It is meant for two reflink
// clones of one file of which base was not written since it was made
// (see above); everything else counts as changed, including extents whose
// physical place the filesystem does not vouch for (delayed allocation,
// inline or encoded data).
func Unchanged(base, cur *os.File) (Ranges, error) {
	bs, err := fiemap(base)
	if err != nil {
		return nil, fmt.Errorf("extent map of %s: %w", base.Name(), err)
	}
	cs, err := fiemap(cur)
	if err != nil {
		return nil, fmt.Errorf("extent map of %s: %w", cur.Name(), err)
	}
	size, err := commonSize(base, cur)
	if err != nil {
		return nil, err
	}
	return sameMapping(bs, cs, size), nil
}

func commonSize(a, b *os.File) (int64, error) {
	ai, err := a.Stat()
	if err != nil {
		return 0, err
	}
	bi, err := b.Stat()
	if err != nil {
		return 0, err
	}
	return min(ai.Size(), bi.Size()), nil
}

// mapping is one extent of a file's map: Len bytes at Off in the file
// stored at Phys on the device (-1 for a hole, or one not to trust).
type mapping struct {
	Off, Len, Phys int64
}

// sameMapping walks two extent maps, with the holes between extents made
// explicit, and returns the ranges below size mapped alike in both.
func sameMapping(a, b []mapping, size int64) Ranges {
	a, b = withHoles(a, size), withHoles(b, size)
	var out Ranges
	for i, j := 0, 0; i < len(a) && j < len(b); {
		x, y := a[i], b[j]
		lo, hi := max(x.Off, y.Off), min(x.Off+x.Len, y.Off+y.Len)
		if lo < hi && x.Phys != untrusted && x.physAt(lo) == y.physAt(lo) {
			out = out.add(Extent{lo, hi - lo})
		}
		if x.Off+x.Len == hi {
			i++
		}
		if y.Off+y.Len == hi {
			j++
		}
	}
	return out
}

// Phys of a hole, and of an extent whose physical place is not vouched
// for.
const (
	hole      = -1
	untrusted = -2
)

func (m mapping) physAt(off int64) int64 {
	if m.Phys < 0 {
		return m.Phys
	}
	return m.Phys + off - m.Off
}

// withHoles fills the gaps of m below size with holes and cuts it at size.
func withHoles(m []mapping, size int64) []mapping {
	var out []mapping
	var pos int64
	for _, e := range m {
		if e.Off >= size {
			break
		}
		if e.Off > pos {
			out = append(out, mapping{pos, e.Off - pos, hole})
		}
		e.Len = min(e.Len, size-e.Off)
		out = append(out, e)
		pos = e.Off + e.Len
	}
	if pos < size {
		out = append(out, mapping{pos, size - pos, hole})
	}
	return out
}

// The FIEMAP ioctl (linux/fiemap.h); x/sys/unix does not define it.
const (
	fsIocFiemap    = 0xc020660b // _IOWR('f', 11, struct fiemap)
	fiemapFlagSync = 0x1
	fiemapLast     = 0x1
	// Flags that leave an extent's data where its physical address says
	// and shared as it says: anything else (unknown, delayed allocation,
	// encoded, encrypted, inline, tail-packed, unaligned) is not trusted.
	fiemapTrusted = fiemapLast | 0x800 /* unwritten */ | 0x1000 /* merged */ | 0x2000 /* shared */
	fiemapBatch   = 512
)

type fiemapHeader struct {
	Start, Length                        uint64
	Flags, Mapped, ExtentCount, reserved uint32
}

type fiemapExtent struct {
	Logical, Physical, Length uint64
	reserved64                [2]uint64
	Flags                     uint32
	reserved                  [3]uint32
}

// fiemap returns f's extents in file order, after writing back its dirty
// pages (FIEMAP_FLAG_SYNC) so that none is still waiting for a place.
func fiemap(f *os.File) ([]mapping, error) {
	buf := make([]byte, unsafe.Sizeof(fiemapHeader{})+fiemapBatch*unsafe.Sizeof(fiemapExtent{}))
	hdr := (*fiemapHeader)(unsafe.Pointer(&buf[0]))
	exts := unsafe.Slice((*fiemapExtent)(unsafe.Pointer(&buf[unsafe.Sizeof(fiemapHeader{})])), fiemapBatch)
	var out []mapping
	var start uint64
	for {
		*hdr = fiemapHeader{Start: start, Length: ^uint64(0) - start, Flags: fiemapFlagSync, ExtentCount: fiemapBatch}
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), fsIocFiemap, uintptr(unsafe.Pointer(&buf[0]))); errno != 0 {
			return nil, errno
		}
		if hdr.Mapped == 0 {
			return out, nil
		}
		for _, e := range exts[:hdr.Mapped] {
			m := mapping{Off: int64(e.Logical), Len: int64(e.Length), Phys: int64(e.Physical)}
			if e.Flags&^fiemapTrusted != 0 {
				m.Phys = untrusted
			}
			out = append(out, m)
			if e.Flags&fiemapLast != 0 {
				return out, nil
			}
			start = e.Logical + e.Length
		}
	}
}
