package snapshot

import (
	"io"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Image backups read volumes with O_DIRECT: past the page cache, which
// on a hypervisor holds the guests' data, and without the kernel copying
// every page twice. Measured on this project's test machine, a cold 2 GiB
// read took 6.3 s buffered, 2.5 s direct.

// directAlign is the alignment O_DIRECT needs of buffers, offsets and
// lengths: 4096 satisfies both 512-byte and 4K-sector devices.
const directAlign = 4096

// directSpan is the most a directReaderAt reads at once.
const directSpan = 1 << 20

var directBuffers = sync.Pool{New: func() any {
	b := alignedBuffer(directSpan + 2*directAlign)
	return &b
}}

func alignedBuffer(n int) []byte { return aligned(make([]byte, n+directAlign), n) }

// aligned returns the first n bytes of b that start at a multiple of
// directAlign; b must have room for n plus directAlign.
func aligned(b []byte, n int) []byte {
	b = b[:cap(b)]
	skip := int(-uintptr(unsafe.Pointer(&b[0])) & (directAlign - 1))
	return b[skip : skip+n]
}

// openDirect opens path for O_DIRECT reads, or returns nil where the
// filesystem refuses them (tmpfs).
func openDirect(path string) *os.File {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_DIRECT, 0)
	if err != nil {
		return nil
	}
	return f
}

// directReaderAt serves reads of any offset and length from an O_DIRECT
// file by reading the aligned span around them.
type directReaderAt struct{ f *os.File }

func (d directReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if len(p) > 0 && uintptr(unsafe.Pointer(&p[0]))%directAlign == 0 && off%directAlign == 0 && len(p)%directAlign == 0 {
		// The chunker reads its own page-aligned buffer at aligned
		// offsets: no copy through a bounce buffer.
		n, err := d.f.ReadAt(p, off)
		if err == io.EOF && n == len(p) {
			err = nil
		}
		return n, err
	}
	bp := directBuffers.Get().(*[]byte)
	defer directBuffers.Put(bp)
	buf := *bp
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		start := pos &^ (directAlign - 1)
		want := min(int64(len(p)-n), directSpan)
		end := (pos + want + directAlign - 1) &^ (directAlign - 1)
		got, err := d.f.ReadAt(buf[:end-start], start)
		if k := int64(got) - (pos - start); k > 0 {
			n += copy(p[n:], buf[pos-start:pos-start+min(k, want)])
		}
		if err != nil {
			if err == io.EOF && n == len(p) {
				return n, nil
			}
			return n, err
		}
	}
	return n, nil
}

// readChunk reads n bytes at off into a buffer of chunkBuffers without the
// bounce copy ReadAt makes for an unaligned range: it reads the aligned
// span around them into the buffer, and returns the part asked for. A
// guided backup reads every unchanged chunk so, at the chunk's own offset;
// the copy and the zeroing of fresh bounce buffers were a quarter of its
// CPU (user time 1.56–1.80 s → 1.39–1.50 s for a 2 GiB volume).
func (d directReaderAt) readChunk(off int64, n int) ([]byte, error) {
	start := off &^ (directAlign - 1)
	end := (off + int64(n) + directAlign - 1) &^ (directAlign - 1)
	b := chunkBuffers.Get(int(end-start) + directAlign)
	span := aligned(b, int(end-start))
	got, err := d.f.ReadAt(span, start)
	if err == io.EOF && int64(got) >= off-start+int64(n) {
		err = nil // the device ends within the last aligned block
	}
	if err != nil {
		chunkBuffers.Put(b)
		return nil, err
	}
	return span[off-start : off-start+int64(n)], nil
}
