package snapshot

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/restic/chunker"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/snapshot/fsmeta"
)

// fileJob is one regular file, opened by the walker, to be chunked.
type fileJob struct {
	f      *os.File
	rel    string
	node   Node
	parent []Chunk // the file's content in the parent snapshot, if it had one
	fut    *future
}

// chunkJob is one chunk on its way to the repository.
type chunkJob struct {
	data []byte
	held int64   // bytes of the in-flight budget the buffer holds
	id   blob.ID // the data's ID if already known (followGuide hashed it)
	res  chan chunkResult
}

type chunkResult struct {
	c   Chunk
	err error
}

// chunkBuffers recycles chunk buffers; chunks in flight are bounded by the
// archiver's semaphore, free buffers by the pool.
var chunkBuffers = chunkstore.NewBufferPool(8 << 20)

// chunkBufferHint sizes the buffer a chunk is cut into when more than that
// is left to read: four times the average chunk, so that all but about 3%
// of random data's chunks fit (growing a buffer means copies in steps of a
// quarter). Data the rolling hash finds no cut in (text of one repeated
// line, say) is cut at the maximum size, chunk after chunk: after a chunk
// larger than the hint the next buffer is of largeChunkBuffer, which
// measured on a volume image with 17% such data saved 14% of a backup's
// CPU in copies.
const (
	chunkBufferHint  = 4 << 20
	largeChunkBuffer = 8 << 20
)

func (a *archiver) fileWorker(ctx context.Context) error {
	ck := a.repo.NewChunker(nil)
	for job := range a.fileCh {
		n, err := a.readFile(ctx, ck, job)
		job.f.Close()
		if err != nil {
			job.fut.resolve(node{}, err)
			return err
		}
		job.fut.resolve(n, nil)
	}
	return nil
}

// readFile chunks a file's data extents and records its holes. Read errors
// make the file incomplete (skipped); only repository errors are returned.
func (a *archiver) readFile(ctx context.Context, ck *chunker.Chunker, job *fileJob) (node, error) {
	n := job.node
	var before unix.Stat_t
	if err := unix.Fstat(int(job.f.Fd()), &before); err != nil {
		a.incomplete(job.rel, err)
		return node{skip: true}, nil
	}
	if before.Ino != n.Inode { // replaced between lstat and open
		a.incomplete(job.rel, fmt.Errorf("replaced while being read"))
	}
	size := before.Size
	n.Size = uint64(size)
	exts := []fsmeta.Extent{{Off: 0, Len: size}}
	// Only a file with fewer allocated blocks than its size can have holes;
	// asking the others would cost two lseeks per file for nothing.
	if before.Blocks*512 < size {
		if e, err := fsmeta.DataExtents(job.f, size); err == nil {
			exts = e
		}
	}
	pending, err := a.chunkExtents(ctx, ck, job.f, exts, size, newGuide(job.parent))
	if err != nil {
		if ctx.Err() != nil {
			return node{}, ctx.Err()
		}
		drain(ctx, pending)
		a.incomplete(job.rel, err)
		return node{skip: true}, nil
	}
	if n.Content, err = collect(ctx, pending); err != nil {
		return node{}, err
	}
	if contentSize(n.Content) != uint64(size) {
		a.incomplete(job.rel, fmt.Errorf("size changed while being read"))
	}
	var after unix.Stat_t
	if err := unix.Fstat(int(job.f.Fd()), &after); err == nil &&
		(after.Size != before.Size || after.Mtim != before.Mtim || after.Ctim != before.Ctim) {
		a.incomplete(job.rel, fmt.Errorf("changed while being read"))
	}
	return node{Node: n}, nil
}

// chunkExtents hands the data extents of f (of size bytes) to the blob
// workers, and records the gaps between them as holes, in file order.
func (a *archiver) chunkExtents(ctx context.Context, ck *chunker.Chunker, f io.ReaderAt, exts []fsmeta.Extent, size int64, g *guide) ([]chan chunkResult, error) {
	var ps []piece
	var pos int64
	for _, e := range exts {
		if e.Off > pos {
			ps = append(ps, piece{Extent: fsmeta.Extent{Off: pos, Len: e.Off - pos}, hole: true})
		}
		for _, s := range splitSegments(e) {
			ps = append(ps, piece{Extent: s})
		}
		pos = e.Off + e.Len
	}
	if pos < size {
		ps = append(ps, piece{Extent: fsmeta.Extent{Off: pos, Len: size - pos}, hole: true})
	}
	return a.chunkPieces(ctx, ck, f, ps, g)
}

// piece is a part of a file chunked on its own: a segment of an extent,
// or a hole between extents.
type piece struct {
	fsmeta.Extent
	hole bool
}

// collect waits for the chunks' results, in order.
func collect(ctx context.Context, pending []chan chunkResult) ([]Chunk, error) {
	out := make([]Chunk, 0, len(pending))
	for _, p := range pending {
		select {
		case r := <-p:
			if r.err != nil {
				return nil, r.err
			}
			out = append(out, r.c)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return out, nil
}

func contentSize(cs []Chunk) (n uint64) {
	for _, c := range cs {
		n += c.Size
	}
	return n
}

func holeResult(size uint64) chan chunkResult { return doneResult(Chunk{Size: size}) }

// doneResult is the result of a chunk known without the blob workers.
func doneResult(c Chunk) chan chunkResult {
	ch := make(chan chunkResult, 1)
	ch <- chunkResult{c: c}
	return ch
}

// drain waits for submitted chunks so their buffers return to the pool,
// unless the backup is ending: blob workers that stopped answer no more.
func drain(ctx context.Context, pending []chan chunkResult) {
	for _, p := range pending {
		select {
		case <-p:
		case <-ctx.Done():
			return
		}
	}
}

// segmentSize splits large files into pieces that are chunked in parallel,
// since content-defined chunking of one stream cannot use a second core.
// Pieces start at multiples of segmentSize in the file, so the same content
// gets the same cuts every time. The price is one forced cut per 128 MiB:
// when content shifts (an insertion), about two chunks per piece after the
// shift do not dedup — under 2%; for volume images nothing shifts at all.
const segmentSize = 128 << 20

// splitSegments cuts an extent at multiples of segmentSize.
func splitSegments(e fsmeta.Extent) []fsmeta.Extent {
	var out []fsmeta.Extent
	for e.Len > 0 {
		n := min(e.Len, segmentSize-e.Off%segmentSize)
		out = append(out, fsmeta.Extent{Off: e.Off, Len: n})
		e.Off, e.Len = e.Off+n, e.Len-n
	}
	return out
}

// piecesInParallel is how many pieces of one file are chunked at once,
// whichever extents they belong to: an image of a filesystem is thousands
// of extents, most of them one file's data, which one after another kept
// one core busy. Four at once measured no faster on two cores and held
// more buffers.
const piecesInParallel = 2

// chunkPieces chunks the pieces of f, piecesInParallel at a time, keeping
// their order. ck serves the first; more chunkers are made as needed, at
// most one per piece in flight.
func (a *archiver) chunkPieces(ctx context.Context, ck *chunker.Chunker, f io.ReaderAt, ps []piece, g *guide) ([]chan chunkResult, error) {
	if len(ps) == 1 && !ps[0].hole {
		return a.chunkRange(ctx, ck, f, ps[0].Extent, g)
	}
	results := make([][]chan chunkResult, len(ps))
	idle := make(chan *chunker.Chunker, piecesInParallel)
	idle <- ck
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(piecesInParallel)
	for i, p := range ps {
		if p.hole {
			results[i] = []chan chunkResult{holeResult(uint64(p.Len))}
			continue
		}
		eg.Go(func() error {
			var c *chunker.Chunker
			select {
			case c = <-idle:
			default:
				c = a.repo.NewChunker(nil)
			}
			defer func() { idle <- c }()
			var err error
			results[i], err = a.chunkRange(ectx, c, f, p.Extent, g)
			return err
		})
	}
	err := eg.Wait()
	var out []chan chunkResult
	for _, r := range results {
		out = append(out, r...)
	}
	return out, err
}

// chunkRange cuts the piece p of f into content-defined chunks and hands
// each to the blob workers, returning their results in order. With a
// guide, the parent's chunks are reused where they still match.
func (a *archiver) chunkRange(ctx context.Context, ck *chunker.Chunker, f io.ReaderAt, p fsmeta.Extent, g *guide) ([]chan chunkResult, error) {
	var out []chan chunkResult
	var err error
	pos, end := p.Off, p.Off+p.Len
	next := g.startingAt(pos)
	// Where nearly every chunk changed (1% of an image's blocks written at
	// random touches most chunks), each try of the guide costs a read and
	// a hash for nothing: after a try that fails at once, the chunker cuts
	// twice as many chunks as last time before the next try. A try the
	// change oracle answers costs nothing, and is made at every chance.
	skip := 0
	for pos < end {
		if next >= 0 {
			from := pos
			if out, pos, err = a.followGuide(ctx, f, pos, end, g, next, out); err != nil || pos == end {
				return out, err
			}
			if pos > from || a.changes != nil {
				skip = 0
			} else {
				skip = min(2*skip+1, 64)
			}
		}
		if out, pos, next, err = a.chunkUntil(ctx, ck, f, pos, end, g, skip, out); err != nil {
			return out, err
		}
	}
	return out, nil
}

// chunkUntil runs the chunker over f from pos to end, and returns at the
// end or at its first cut, after the first skip, after which the guide
// knows what may come next: the index of that parent chunk, or -1.
func (a *archiver) chunkUntil(ctx context.Context, ck *chunker.Chunker, f io.ReaderAt, pos, end int64, g *guide, skip int, out []chan chunkResult) ([]chan chunkResult, int64, int, error) {
	a.repo.ResetChunker(ck, io.NewSectionReader(f, pos, end-pos))
	left := end - pos
	hint := int64(chunkBufferHint)
	for {
		// The buffer counts against the in-flight budget from before it is
		// filled, so that chunks being cut are bounded too. A chunk that
		// outgrew its buffer gives its share back before asking for the
		// larger one: two chunkers each holding a share while waiting for
		// more would deadlock. No request exceeds the budget itself.
		buf := chunkBuffers.Get(int(min(left, hint)))
		held := a.budget(cap(buf))
		if err := a.inFlight.Acquire(ctx, held); err != nil {
			return out, pos, -1, err
		}
		c, err := ck.Next(buf)
		if err == nil && cap(c.Data) > cap(buf) {
			// The chunker copied the chunk into a larger array.
			chunkBuffers.Put(buf)
			buf = nil
		}
		if need := a.budget(cap(c.Data)); err == nil && need > held {
			a.inFlight.Release(held)
			held = 0
			if err = a.inFlight.Acquire(ctx, need); err == nil {
				held = need
			}
		}
		if err != nil {
			a.inFlight.Release(held)
			if cap(c.Data) > cap(buf) {
				buf = c.Data
			}
			chunkBuffers.Put(buf)
			if err == io.EOF {
				return out, end, -1, nil
			}
			return out, pos, -1, err
		}
		left -= int64(len(c.Data))
		hint = chunkBufferHint
		if len(c.Data) > chunkBufferHint {
			hint = largeChunkBuffer
		}
		a.prog.ReadBytes.Add(uint64(len(c.Data)))
		job := &chunkJob{data: c.Data, held: held, res: make(chan chunkResult, 1)}
		pos += int64(len(c.Data))
		next := -1
		if skip--; skip < 0 {
			next = g.startingAt(pos)
		}
		if next >= 0 && a.changes != nil && !a.changes.Unchanged(pos, int64(g.chunks[next].Size)) {
			// The parent's chunk here changed too: the chunker goes on
			// rather than start again after the guide gave up at once,
			// dropping what it had read ahead.
			next = -1
		}
		if g != nil && skip < 0 && next < 0 {
			// Content that moved (bytes inserted or removed before it)
			// is found by its ID instead of its offset.
			job.id = a.repo.BlobID(c.Data)
			next = g.after(job.id)
		}
		select {
		case a.blobCh <- job:
		case <-ctx.Done():
			a.inFlight.Release(held)
			return out, pos, -1, ctx.Err()
		}
		out = append(out, job.res)
		if next >= 0 && pos < end {
			return out, pos, next, nil
		}
	}
}

// budget is the share of the in-flight budget a buffer of capacity n holds.
func (a *archiver) budget(n int) int64 {
	return min(int64(n), a.opts.InFlight)
}

// blobWorker hashes, deduplicates, compresses, encrypts and packs chunks.
func (a *archiver) blobWorker(ctx context.Context) error {
	for job := range a.blobCh {
		data := job.data
		if a.zeroHoles && allZero(data) {
			job.res <- chunkResult{c: Chunk{Size: uint64(len(data))}}
			a.inFlight.Release(job.held)
			chunkBuffers.Put(data)
			continue
		}
		id := job.id
		if id.IsZero() {
			id = a.repo.BlobID(data)
		}
		known, err := a.repo.SaveBlob(ctx, blob.Data, id, data)
		if err == nil && !known {
			a.prog.NewBytes.Add(uint64(len(data)))
		}
		job.res <- chunkResult{c: Chunk{ID: id, Size: uint64(len(data))}, err: err}
		a.inFlight.Release(job.held)
		chunkBuffers.Put(data)
		if err != nil {
			return err
		}
	}
	return nil
}
