package chunkstore

import (
	"math/bits"
	"sync"
)

// BufferPool recycles byte buffers in power-of-two size classes while
// holding at most a fixed number of free bytes. Unlike sync.Pool, which
// keeps everything put into it alive until two collections pass, it gives
// a hard bound: the backup pipeline's multi-MiB chunk buffers would
// otherwise pile up in a pool that the collector empties too late to keep
// the process's memory flat. Size classes let a 5 KiB file's chunk take a
// small buffer, so that small files do not each hold (and count as) a
// chunk-sized one.
type BufferPool struct {
	mu        sync.Mutex
	free      [numClasses][][]byte
	freeBytes int
	maxFree   int
	arena     *hugeArena // nil: every buffer comes from the heap
}

// Classes step by a quarter of a power of two (4, 5, 6, 7, 8, 10, 12, 14,
// 16 KiB, ...), so a buffer wastes at most a fifth of itself: a chunk of
// just over 8 MiB takes 10 MiB, not 16.
const (
	minShift   = 12 // 4 KiB
	maxShift   = 30 // 1 GiB; larger requests are not pooled
	numClasses = (maxShift-minShift)*4 + 1
)

// classSize is the capacity of class c's buffers.
func classSize(c int) int {
	base := 1 << (minShift + c/4)
	return base + base/4*(c%4)
}

// classOf is the smallest class whose buffers hold n bytes, or -1 when
// none does.
func classOf(n int) int {
	if n <= 1<<minShift {
		return 0
	}
	k := bits.Len(uint(n-1)) - 1 // 2^k < n <= 2^(k+1)
	quarter := 1 << k / 4
	sub := (n - 1<<k + quarter - 1) / quarter
	c := (k-minShift)*4 + sub
	if c >= numClasses {
		return -1
	}
	return c
}

// NewBufferPool keeps up to maxFree bytes of free buffers.
func NewBufferPool(maxFree int) *BufferPool {
	return &BufferPool{maxFree: maxFree}
}

// NewHugePageBufferPool is NewBufferPool for buffers that reads past the
// page cache fill (a mount's chunks): its buffers of 512 KiB and more come
// first from the process's 64 MiB of memory backed by huge pages (see
// hugeArena), which they go back to when put. Drop returns that memory to
// the kernel once every buffer of it is back.
func NewHugePageBufferPool(maxFree int) *BufferPool {
	return &BufferPool{maxFree: maxFree, arena: sharedArena}
}

// Get returns an empty buffer with capacity at least n: the smallest free
// one that fits, or a new one of n's class.
func (p *BufferPool) Get(n int) []byte {
	c := classOf(n)
	if c < 0 {
		return make([]byte, 0, n)
	}
	if p.arena != nil {
		if b := p.arena.get(c); b != nil {
			return b
		}
	}
	p.mu.Lock()
	for k := c; k < numClasses; k++ {
		if l := len(p.free[k]); l > 0 {
			b := p.free[k][l-1]
			p.free[k][l-1] = nil
			p.free[k] = p.free[k][:l-1]
			p.freeBytes -= cap(b)
			p.mu.Unlock()
			return b[:0]
		}
	}
	p.mu.Unlock()
	return make([]byte, 0, classSize(c))
}

// Put returns b to the pool, or drops it when the pool is full.
func (p *BufferPool) Put(b []byte) {
	// The class a buffer serves is the largest whose size it covers.
	c := classOf(cap(b))
	if c < 0 || cap(b) < 1<<minShift {
		return
	}
	if classSize(c) > cap(b) {
		c--
	}
	if p.arena != nil && p.arena.owns(b) {
		p.arena.put(c, b)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	// Make room by dropping smaller buffers, which are cheaper to make
	// again: a pool clogged with small files' buffers would otherwise
	// turn away every large chunk's.
	for k := 0; k < c && p.freeBytes+cap(b) > p.maxFree; k++ {
		for len(p.free[k]) > 0 && p.freeBytes+cap(b) > p.maxFree {
			l := len(p.free[k])
			p.freeBytes -= cap(p.free[k][l-1])
			p.free[k][l-1] = nil
			p.free[k] = p.free[k][:l-1]
		}
	}
	if p.freeBytes+cap(b) > p.maxFree {
		return
	}
	p.free[c] = append(p.free[c], b)
	p.freeBytes += cap(b)
}

// Drop lets go of every free buffer, for a process about to sit idle.
func (p *BufferPool) Drop() {
	p.mu.Lock()
	clear(p.free[:])
	p.freeBytes = 0
	p.mu.Unlock()
	if p.arena != nil {
		p.arena.reset()
	}
}
