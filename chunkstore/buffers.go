package chunkstore

import "sync"

// BufferPool recycles byte buffers while holding at most a fixed number of
// free bytes. Unlike sync.Pool, which keeps everything put into it alive
// until two collections pass, it gives a hard bound: the backup pipeline's
// multi-MiB chunk buffers would otherwise pile up in a pool that the
// collector empties too late to keep the process's memory flat.
type BufferPool struct {
	mu        sync.Mutex
	free      [][]byte
	freeBytes int
	maxFree   int
	newCap    int
}

// NewBufferPool keeps up to maxFree bytes of free buffers and makes new
// ones with capacity newCap.
func NewBufferPool(maxFree, newCap int) *BufferPool {
	return &BufferPool{maxFree: maxFree, newCap: newCap}
}

// Get returns an empty buffer with capacity at least n (or newCap).
func (p *BufferPool) Get(n int) []byte {
	p.mu.Lock()
	for i := len(p.free) - 1; i >= 0; i-- {
		if b := p.free[i]; cap(b) >= n {
			p.free[i] = p.free[len(p.free)-1]
			p.free = p.free[:len(p.free)-1]
			p.freeBytes -= cap(b)
			p.mu.Unlock()
			return b[:0]
		}
	}
	p.mu.Unlock()
	return make([]byte, 0, max(n, p.newCap))
}

// Put returns b to the pool, or drops it when the pool is full.
func (p *BufferPool) Put(b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.freeBytes+cap(b) > p.maxFree {
		return
	}
	p.free = append(p.free, b)
	p.freeBytes += cap(b)
}
