package chunkstore

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"unsafe"
)

func TestBufferClasses(t *testing.T) {
	for _, tc := range []struct{ n, want int }{
		{0, 4 << 10},
		{1, 4 << 10},
		{4 << 10, 4 << 10},
		{4<<10 + 1, 5 << 10},
		{7 << 10, 7 << 10},
		{7<<10 + 1, 8 << 10},
		{8<<10 + 1, 10 << 10},
		{1 << 20, 1 << 20},
		{8<<20 + 64, 10 << 20},
		{(1 << 30) + 1, -1},
	} {
		c := classOf(tc.n)
		got := -1
		if c >= 0 {
			got = classSize(c)
		}
		if got != tc.want {
			t.Errorf("class size for %d bytes = %d, want %d", tc.n, got, tc.want)
		}
		if c > 0 && classSize(c-1) >= tc.n {
			t.Errorf("class for %d bytes is not the smallest that fits", tc.n)
		}
	}
}

func TestBufferPoolBoundAndReuse(t *testing.T) {
	p := NewBufferPool(3 << 20)
	big := p.Get(1 << 20)
	small := p.Get(5000)
	if cap(big) != 1<<20 || cap(small) != 5<<10 {
		t.Fatalf("new buffers of capacity %d and %d", cap(big), cap(small))
	}
	p.Put(big)
	p.Put(small)
	if b := p.Get(4000); cap(b) != 5<<10 {
		t.Errorf("Get(4000) took a buffer of %d bytes; want the free 5 KiB one", cap(b))
	}
	if b := p.Get(100 << 10); cap(b) != 1<<20 {
		t.Errorf("Get(100 KiB) = %d bytes; want the free 1 MiB buffer reused", cap(b))
	}
	// Buffers beyond the bound are dropped, not kept.
	for range 5 {
		p.Put(make([]byte, 0, 1<<20))
	}
	if p.freeBytes > 3<<20 {
		t.Errorf("pool holds %d free bytes, bound is %d", p.freeBytes, 3<<20)
	}
	// A large buffer displaces small ones rather than being turned away.
	for range 64 {
		p.Put(make([]byte, 0, 8<<10))
	}
	p.Put(make([]byte, 0, 2<<20))
	if b := p.Get(2 << 20); cap(b) != 2<<20 {
		t.Errorf("a full pool of small buffers turned away a 2 MiB one")
	}
	// A grown buffer (append's odd capacity) serves the class below it.
	p.Put(make([]byte, 0, 1100<<10))
	if b := p.Get(1 << 20); cap(b) < 1<<20 {
		t.Errorf("Get(1 MiB) returned %d bytes", cap(b))
	}
}

func TestHugePageBufferPool(t *testing.T) {
	// A pool of its own arena, 4 MiB, rather than the process's.
	p := &BufferPool{maxFree: 8 << 20, arena: &hugeArena{size: 4 << 20}}
	var arena [][]byte
	for range 4 {
		b := p.Get(1 << 20)
		if !p.arena.owns(b) {
			t.Fatalf("buffer %d of 1 MiB is not from the 4 MiB arena", len(arena))
		}
		arena = append(arena, b)
	}
	if !strings.Contains(vmFlags(t, arena[0]), " hg") {
		t.Errorf("the arena is not advised for huge pages (VmFlags %q)", vmFlags(t, arena[0]))
	}
	if b := p.Get(1 << 20); p.arena.owns(b) || cap(b) != 1<<20 {
		t.Errorf("a full arena handed out another buffer (or the heap one has %d bytes)", cap(b))
	}
	if b := p.Get(64 << 10); p.arena.owns(b) {
		t.Errorf("a 64 KiB buffer came from the arena")
	}

	// Buffers go back to the arena and are handed out again.
	arena[3] = append(arena[3], 42)
	p.Put(arena[3])
	if b := p.Get(1 << 20); &b[:1][0] != &arena[3][0] {
		t.Errorf("the arena buffer put back was not reused")
	}
	// Drop with buffers out leaves the arena to the last one back, which
	// gives its memory to the kernel: it reads as zeros then.
	p.Drop()
	if p.arena.next == 0 {
		t.Fatalf("Drop reset the arena with buffers out")
	}
	for _, b := range arena {
		p.Put(b)
	}
	if p.arena.next != 0 {
		t.Fatalf("the arena was kept after Drop once every buffer was back")
	}
	var b []byte
	for range 4 {
		b = p.Get(1 << 20)
	}
	if &b[:1][0] != &arena[3][0] || b[:1][0] != 0 {
		t.Errorf("after the reset the arena's memory still holds %d", b[:1][0])
	}
	// A buffer taken after Drop means the arena is in use again: the
	// last one back then keeps it.
	p.Drop()
	c := p.Get(1 << 20)
	for _, b := range arena {
		p.Put(b)
	}
	p.Put(c)
	if p.arena.next == 0 {
		t.Errorf("the arena was reset though buffers were taken after Drop")
	}
}

// vmFlags returns the VmFlags line of /proc/self/smaps for the mapping
// holding b.
func vmFlags(t *testing.T, b []byte) string {
	t.Helper()
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	p := uint64(uintptr(unsafe.Pointer(&b[:1][0])))
	in := false
	for _, line := range strings.Split(string(smaps), "\n") {
		var lo, hi uint64
		if _, err := fmt.Sscanf(line, "%x-%x ", &lo, &hi); err == nil {
			in = lo <= p && p < hi
		}
		if in && strings.HasPrefix(line, "VmFlags:") {
			return strings.TrimPrefix(line, "VmFlags:")
		}
	}
	t.Fatalf("no mapping in /proc/self/smaps holds %#x", p)
	return ""
}
