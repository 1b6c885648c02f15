package chunkstore

import (
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A mount's chunk buffers come from memory backed by huge pages (2 MiB,
// transparent huge pages in madvise mode). A cold read of a large file
// through the mount then went from 560-770 to 700-920 MB/s on the test
// machine (alternated), and its CPU fell by a seventh: a read past the page
// cache into 4 KiB pages of Go's heap scatters over more pages than one
// disk request may hold (254 on virtio) and goes out as two, the host maps
// each page on its own, and the kernel pins every page again for the reply
// to FUSE.
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

// hugeArena hands out buffers of the pool classes from one mapping.
type hugeArena struct {
	mu   sync.Mutex
	size int
	mem  []byte // mapped on first use; nil until then or if mapping failed
	next int    // mem[next:] was never handed out
	free [numClasses][][]byte
	out  int // buffers handed out and not given back
	// idle: reset was asked for while buffers were out; the last one
	// back does it.
	idle bool
}

// sharedArena serves every pool made by NewHugePageBufferPool: one mapping
// per process, however many views come and go. 64 MiB holds what a view's
// default 32 MiB content cache and its read-ahead have out at once
// (buffers are up to a quarter larger than their chunks).
var sharedArena = &hugeArena{size: 64 << 20}

// get returns a buffer of class c or larger, or nil when the arena has
// none left (or no memory at all).
func (a *hugeArena) get(c int) []byte {
	if c < arenaMinClass {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.idle = false
	// A free buffer of the class, else new memory, else a larger free
	// one: large buffers stay for large chunks while there is room.
	if b := a.pop(c); b != nil {
		return b
	}
	if a.mem == nil && !a.mapMemory() {
		return nil
	}
	if n := classSize(c); a.next+n <= len(a.mem) {
		b := a.mem[a.next : a.next : a.next+n]
		a.next += n
		a.out++
		return b
	}
	for k := c + 1; k < numClasses; k++ {
		if b := a.pop(k); b != nil {
			return b
		}
	}
	return nil
}

// pop takes a free buffer of class k; the caller holds mu.
func (a *hugeArena) pop(k int) []byte {
	l := len(a.free[k])
	if l == 0 {
		return nil
	}
	b := a.free[k][l-1]
	a.free[k][l-1] = nil
	a.free[k] = a.free[k][:l-1]
	a.out++
	return b
}

// mapMemory maps the arena, aligned to a huge page so that every whole
// huge page of it can be one, and reports whether it could; the caller
// holds mu.
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

// owns reports whether b was cut from the arena. mem never changes once
// mapped, and a buffer of it exists only after the mapping.
func (a *hugeArena) owns(b []byte) bool {
	a.mu.Lock()
	mem := a.mem
	a.mu.Unlock()
	if mem == nil || cap(b) == 0 {
		return false
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b[:1])))
	base := uintptr(unsafe.Pointer(&mem[0]))
	return p >= base && p < base+uintptr(len(mem))
}

// put takes back a buffer of class c that get handed out.
func (a *hugeArena) put(c int, b []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.free[c] = append(a.free[c], b[:0])
	a.out--
	if a.out == 0 && a.idle {
		a.release()
	}
}

// reset gives the arena's memory back to the kernel, at once if no buffer
// of it is out, else when the last one comes back (unless buffers are
// handed out again first): an idle mount then holds none of it.
func (a *hugeArena) reset() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.out == 0 {
		a.release()
	} else {
		a.idle = true
	}
}

// release discards the arena's memory; the caller holds mu and no buffer
// is out.
func (a *hugeArena) release() {
	a.idle = false
	if a.next == 0 {
		return
	}
	_ = unix.Madvise(a.mem, unix.MADV_DONTNEED)
	clear(a.free[:])
	a.next = 0
}
