package snapshot

import (
	"bytes"
	"context"
	"io"
	"slices"
	"sort"
	"sync"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
)

// A guide is a file's content in the parent snapshot, used to back the
// file up again without the Rabin chunker where nothing changed. The
// chunker starts afresh at every cut, so from a position where it cut,
// bytes equal to one of the parent's chunks are cut exactly where the
// parent cut them: hashing the range and finding the parent's blob ID
// proves it without running the chunker, which costs several times what
// the hash does. The guide walks the parent's chunks in order while they
// match; where one does not, the chunker takes over at the same position
// and hands back at its first cut after which the parent's next chunk is
// known: a cut at one of the parent's offsets (an image changed in place
// re-syncs within a chunk or two), or a chunk the parent also had (content
// that moved because bytes were inserted or removed before it).
//
// Cuts stay those the chunker alone would make. The exception is a cut the
// parent was forced to make, at the end of a piece: its last chunk and
// chunks ending on a segment boundary are reused only where they end a
// piece here too. Cuts forced by a hole in the parent that the file no
// longer has cannot be told apart and are reused; that costs nothing, as
// any cut is correct and the parent's blobs already exist.
type guide struct {
	starts []int64 // offset of each chunk; ascending
	chunks []Chunk

	byIDOnce sync.Once
	byID     []int32 // chunk indices sorted by ID, built when first needed
}

// newGuide returns nil where a guide cannot help: a file of one chunk is
// cheaper to cut again than to read twice when it changed.
func newGuide(content []Chunk) *guide {
	if len(content) < 2 {
		return nil
	}
	g := &guide{starts: make([]int64, len(content)), chunks: content}
	var off int64
	for i, c := range content {
		g.starts[i] = off
		off += int64(c.Size)
	}
	return g
}

// startingAt returns the index of the parent's chunk that starts at off,
// or -1.
func (g *guide) startingAt(off int64) int {
	if g == nil {
		return -1
	}
	i := sort.Search(len(g.starts), func(i int) bool { return g.starts[i] >= off })
	if i == len(g.starts) || g.starts[i] != off {
		return -1
	}
	return i
}

// after returns the index of the chunk that follows one with the given ID
// in the parent, or -1. The index holds four bytes a chunk, not a map.
// A chunk the parent holds more than once (a run of zeros, most often)
// says nothing about what follows it: a wrong guess costs a read and a
// hash, and each failed try makes the chunker go on longer before the
// next (see chunkRange), so zeros written over a file kept the guide
// away from most of what followed them.
func (g *guide) after(id blob.ID) int {
	g.byIDOnce.Do(func() {
		g.byID = make([]int32, 0, len(g.chunks))
		for i, c := range g.chunks {
			if !c.ID.IsZero() {
				g.byID = append(g.byID, int32(i))
			}
		}
		slices.SortFunc(g.byID, func(a, b int32) int { return bytes.Compare(g.chunks[a].ID[:], g.chunks[b].ID[:]) })
	})
	k := sort.Search(len(g.byID), func(k int) bool { return bytes.Compare(g.chunks[g.byID[k]].ID[:], id[:]) >= 0 })
	if k == len(g.byID) || g.chunks[g.byID[k]].ID != id || int(g.byID[k])+1 == len(g.chunks) {
		return -1
	}
	if k+1 < len(g.byID) && g.chunks[g.byID[k+1]].ID == id {
		return -1
	}
	return int(g.byID[k]) + 1
}

// forced says whether the parent's chunk i ended where it did only because
// its piece ended there.
func (g *guide) forced(i int) bool {
	return i == len(g.chunks)-1 || (g.starts[i]+int64(g.chunks[i].Size))%segmentSize == 0
}

// followGuide hands on the parent's chunks from its chunk next, at pos, for
// as long as the file still holds them, and returns where it stopped: at
// end, or where the chunker must take over.
func (a *archiver) followGuide(ctx context.Context, r io.ReaderAt, pos, end int64, g *guide, next int, out []chan chunkResult) ([]chan chunkResult, int64, error) {
	for i := next; pos < end && i < len(g.chunks); i++ {
		c := g.chunks[i]
		size := int(c.Size)
		if stop := pos + int64(size); stop > end || g.forced(i) && stop != end {
			break
		}
		// The oracle speaks of the bytes at the same offset in the
		// base, so only for a parent's chunk that starts at pos; one
		// found by its ID (content that moved) is read and hashed.
		if a.changes != nil && g.starts[i] == pos {
			if !a.unread(pos, c) {
				// What the oracle does not vouch for has nearly always
				// changed: reading it to hash it first would read it
				// twice, as the chunker must then read it again.
				break
			}
			out = append(out, doneResult(c))
			pos += int64(size)
			continue
		}
		// The budget is taken before the buffer, for a chunk's size and
		// the alignment slack a direct read adds.
		held := a.budget(size + 3*directAlign)
		if err := a.inFlight.Acquire(ctx, held); err != nil {
			return out, pos, err
		}
		buf, err := readChunk(r, pos, size)
		var id blob.ID
		same := false
		// A read error or a short file is the chunker's to report.
		if err == nil {
			if c.ID.IsZero() {
				same = a.zeroHoles && allZero(buf)
			} else {
				id = a.repo.BlobID(buf)
				same = id == c.ID
			}
		}
		if !same || c.ID.IsZero() {
			a.inFlight.Release(held)
			chunkBuffers.Put(buf)
			if !same {
				break
			}
			a.guided(size)
			out = append(out, holeResult(uint64(size)))
			pos += int64(size)
			continue
		}
		a.guided(size)
		job := &chunkJob{data: buf, held: held, id: id, res: make(chan chunkResult, 1)}
		select {
		case a.blobCh <- job:
		case <-ctx.Done():
			a.inFlight.Release(held)
			return out, pos, ctx.Err()
		}
		out = append(out, job.res)
		pos += int64(size)
	}
	return out, pos, nil
}

// readChunk reads n bytes of r at off into a buffer of chunkBuffers.
func readChunk(r io.ReaderAt, off int64, n int) ([]byte, error) {
	if d, ok := r.(directReaderAt); ok {
		return d.readChunk(off, n)
	}
	buf := chunkBuffers.Get(n)[:n]
	_, err := r.ReadAt(buf, off)
	return buf, err
}

func (a *archiver) guided(n int) {
	a.prog.ReadBytes.Add(uint64(n))
	a.prog.GuidedBytes.Add(uint64(n))
}
