package chunkstore

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// A mount's chunk buffers come from memory backed by huge pages (2 MiB,
// transparent huge pages in madvise mode). A cold read of a large file
// through the mount then went from 540-630 to 750-970 MB/s on the test
// machine, and its CPU fell by a seventh: a read past the page cache into
// 4 KiB pages of Go's heap scatters over more pages than one disk request
// may hold (254 on virtio) and goes out as two, the host maps each page on
// its own, and the kernel pins every page again for the reply to FUSE.
//
// Go's heap cannot be asked for huge pages, so the buffers are cut from
// one mapping of our own. It is never unmapped: a buffer stays valid memory
// whatever a caller does with it, and one never given back only costs its
// share of the arena, after which buffers come from the heap again.

// hugePage is the size of an x86-64 and arm64 (4 KiB base page) huge page.
const hugePage = 2 << 20

// arenaMinClass is the smallest class taken from an arena: smaller buffers
// (trees, small files) gain little and would strand arena memory in many
// classes.
var arenaMinClass = classOf(512 << 10)

// hugeArena hands out buffers of the pool's classes from one mapping. The
// pool's mutex guards it.
type hugeArena struct {
	size int
	mem  []byte // mapped on first use; nil until then or if mapping failed
	next int    // mem[next:] was never handed out
	free [numClasses][][]byte
	out  int // buffers handed out and not given back
}

func newHugeArena(size int) *hugeArena {
	return &hugeArena{size: (size + hugePage - 1) &^ (hugePage - 1)}
}

// get returns a buffer of class c or larger, or nil when the arena has
// none left (or no memory at all).
func (a *hugeArena) get(c int) []byte {
	if c < arenaMinClass {
		return nil
	}
	for k := c; k < numClasses; k++ {
		if l := len(a.free[k]); l > 0 {
			b := a.free[k][l-1]
			a.free[k][l-1] = nil
			a.free[k] = a.free[k][:l-1]
			a.out++
			return b
		}
	}
	if a.mem == nil && !a.mapMemory() {
		return nil
	}
	n := classSize(c)
	if a.next+n > len(a.mem) {
		return nil
	}
	b := a.mem[a.next : a.next : a.next+n]
	a.next += n
	a.out++
	return b
}

// mapMemory maps the arena, aligned to a huge page so that every whole
// huge page of it can be one, and reports whether it could.
func (a *hugeArena) mapMemory() bool {
	if a.size == 0 {
		return false
	}
	m, err := unix.Mmap(-1, 0, a.size+hugePage, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		a.size = 0 // do not try again
		return false
	}
	skip := int(-uintptr(unsafe.Pointer(&m[0])) & (hugePage - 1))
	a.mem = m[skip : skip+a.size : skip+a.size]
	// Where the kernel has no huge pages to give, the arena still works,
	// in small pages.
	_ = unix.Madvise(a.mem, unix.MADV_HUGEPAGE)
	return true
}

// owns reports whether b was cut from the arena.
func (a *hugeArena) owns(b []byte) bool {
	if a.mem == nil || cap(b) == 0 {
		return false
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b[:1])))
	base := uintptr(unsafe.Pointer(&a.mem[0]))
	return p >= base && p < base+uintptr(len(a.mem))
}

// put takes back a buffer of class c that get handed out.
func (a *hugeArena) put(c int, b []byte) {
	a.free[c] = append(a.free[c], b[:0])
	a.out--
}

// reset gives the arena's memory back to the kernel when no buffer of it
// is out: an idle mount then holds none of it.
func (a *hugeArena) reset() {
	if a.mem == nil || a.out != 0 || a.next == 0 {
		return
	}
	_ = unix.Madvise(a.mem, unix.MADV_DONTNEED)
	clear(a.free[:])
	a.next = 0
}
