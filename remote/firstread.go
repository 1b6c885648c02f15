package remote

import (
	"io"
	"slices"
	"sync"
)

// CountFirstReads returns r with fn called, after each read, with how
// many of the bytes read were never read before through it. Uploaders read
// their source more than once (a checksum pass before the send, a part
// sent again), and from several goroutines at different offsets; what the
// network carries once, and what a rate limit or a progress bar should
// count, is each byte once. An error from fn fails the read.
func CountFirstReads(r io.ReaderAt, fn func(n int64) error) io.ReaderAt {
	return &firstReads{r: r, fn: fn}
}

type firstReads struct {
	r  io.ReaderAt
	fn func(n int64) error

	mu   sync.Mutex
	seen []span // disjoint, sorted, never adjacent
}

type span struct{ start, end int64 }

func (f *firstReads) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.r.ReadAt(p, off)
	if n > 0 {
		f.mu.Lock()
		fresh := f.add(span{off, off + int64(n)})
		f.mu.Unlock()
		if ferr := f.fn(fresh); ferr != nil {
			return 0, ferr
		}
	}
	return n, err
}

// add records s as read and returns how many of its bytes were new.
// Sources are read mostly in order, so seen stays a span or a few.
func (f *firstReads) add(s span) int64 {
	orig, fresh := s, s.end-s.start
	i := 0
	for i < len(f.seen) && f.seen[i].end < s.start {
		i++
	}
	j := i
	for j < len(f.seen) && f.seen[j].start <= s.end {
		o := f.seen[j]
		fresh -= max(0, min(o.end, orig.end)-max(o.start, orig.start))
		s = span{min(s.start, o.start), max(s.end, o.end)}
		j++
	}
	f.seen = slices.Replace(f.seen, i, j, s)
	return fresh
}
