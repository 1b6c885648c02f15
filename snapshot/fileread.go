package snapshot

import (
	"context"
	"io"
	"slices"
	"sort"
	"sync"
)

// readAhead is how many chunks past a sequential reader's position are
// fetched in parallel with its reads. Chunks average 1 MiB, so this keeps
// some 12 MiB in flight: enough to overlap decryption of the next chunks
// with the copy of the current one, and to keep the disk's queue full, which
// a cold read needs when the file's chunks are spread over packs between
// other files' chunks. Once decryption got cheap (XAES-256-GCM) a cold cat
// left a quarter of the CPU idle waiting for the disk: 8 in flight gave
// 912 MB/s, 12 gave 997 (10 alternated cold reads of 512 MiB each; 16, 890).
const readAhead = 12

// reorderSlack is how far from where the last read ended a read may start
// and still continue it. The kernel sends a sequential reader's
// read-ahead as several requests at once, which reach us out of order by
// up to a few MiB: taken for random reads, a quarter of a cold cat's
// requests fetched nothing ahead.
const reorderSlack = 8 << 20

// FileReader reads one file's content at any offset. It is safe for
// concurrent use: the kernel issues reads of one open file in parallel.
type FileReader struct {
	v      *View
	chunks []Chunk
	ends   []int64 // ends[i] is the offset just past chunks[i]

	mu   sync.Mutex
	next int64 // where a sequential reader continues
}

// Open returns a reader of the content of the file node n. It copies the
// content list, so that an open file does not pin n's whole decoded tree.
func (v *View) Open(n *Node) *FileReader {
	r := &FileReader{v: v, chunks: slices.Clone(n.Content), ends: make([]int64, len(n.Content))}
	var off int64
	for i, c := range n.Content {
		off += int64(c.Size)
		r.ends[i] = off
	}
	return r
}

// Size is the length of the content, which may differ from the node's Size
// for a file that changed while it was backed up.
func (r *FileReader) Size() int64 {
	if len(r.ends) == 0 {
		return 0
	}
	return r.ends[len(r.ends)-1]
}

// find returns the index of the chunk holding off, or len(chunks).
func (r *FileReader) find(off int64) int {
	return sort.Search(len(r.ends), func(i int) bool { return r.ends[i] > off })
}

// ReadVec returns the content from off, up to len(p) bytes, as slices of
// the cached chunks, and the function to call once done with them: a
// mount hands them to the kernel without copying them first. Holes are
// zeros cleared in p. It returns io.EOF with a short count at the end of
// the content.
func (r *FileReader) ReadVec(ctx context.Context, p []byte, off int64) ([][]byte, func(), error) {
	if off < 0 {
		return nil, func() {}, io.ErrUnexpectedEOF
	}
	r.readAhead(ctx, off, int64(len(p)))
	var vec [][]byte
	var dones []func()
	release := func() {
		for _, done := range dones {
			done()
		}
	}
	n := 0
	for i := r.find(off); n < len(p) && i < len(r.chunks); i++ {
		start := r.ends[i] - int64(r.chunks[i].Size)
		skip := off + int64(n) - start
		m := int(min(int64(len(p)-n), int64(r.chunks[i].Size)-skip))
		if r.chunks[i].IsHole() {
			clear(p[n : n+m])
			vec = append(vec, p[n:n+m])
		} else {
			b, done, err := r.v.chunk(ctx, r.chunks[i])
			if err != nil {
				release()
				return nil, func() {}, err
			}
			vec = append(vec, b[skip:skip+int64(m)])
			dones = append(dones, done)
		}
		n += m
	}
	if n < len(p) {
		return vec, release, io.EOF
	}
	return vec, release, nil
}

// readAhead fetches the chunks after a read that continues the previous
// one. Random access (a database file, a seek in a video) fetches nothing
// extra.
func (r *FileReader) readAhead(ctx context.Context, off, n int64) {
	r.mu.Lock()
	sequential := off == 0 || max(off-r.next, r.next-off) <= reorderSlack
	r.next = off + n
	r.mu.Unlock()
	if !sequential {
		return
	}
	last := r.find(off + n - 1)
	for i := last + 1; i <= last+readAhead && i < len(r.chunks); i++ {
		r.v.prefetch(ctx, r.chunks[i])
	}
}

// NextData returns the first offset at or after off that holds data, and
// false when only holes follow (lseek's SEEK_DATA).
func (r *FileReader) NextData(off int64) (int64, bool) {
	for i := r.find(off); i < len(r.chunks); i++ {
		if !r.chunks[i].IsHole() {
			return max(off, r.ends[i]-int64(r.chunks[i].Size)), true
		}
	}
	return 0, false
}

// NextHole returns the first offset at or after off inside a hole; the end
// of the content counts as one (lseek's SEEK_HOLE).
func (r *FileReader) NextHole(off int64) int64 {
	for i := r.find(off); i < len(r.chunks); i++ {
		if r.chunks[i].IsHole() {
			return max(off, r.ends[i]-int64(r.chunks[i].Size))
		}
	}
	return max(off, r.Size())
}
