package chunkstore

import (
	"bufio"
	"context"
	"fmt"
	"sync"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/codec"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
	"github.com/hindsight-backup/hindsight/chunkstore/pack"
	"github.com/hindsight-backup/hindsight/chunkstore/segment"
	"github.com/hindsight-backup/hindsight/remote"
)

// maxFinishing bounds packs being finished (fsync, store, index) at once.
// When both slots are busy, SaveBlob waits: that is the pipeline's
// backpressure, and it bounds scratch space to a few packs.
const maxFinishing = 2

// segmentBlobs is how many blob entries an index segment collects before it
// is written, bounding the memory held for segments (~80 bytes an entry
// here, ~45 encoded). Whoever reads a segment holds it whole, sealed and
// opened: at 64Ki entries, prune's rewrite of one such segment (2.8 MiB
// sealed) held four copies and was prune's peak memory.
const segmentBlobs = 16 << 10

type blobKey struct {
	t  blob.Type
	id blob.ID
}

// writer packs new blobs. It exists from the first SaveBlob to Close.
type writer struct {
	r *Repository

	mu      sync.Mutex
	pending map[blobKey]struct{} // blobs claimed but not yet in the index

	packMu [2]sync.Mutex // by blob type
	open   [2]*openPack

	slots chan struct{}
	wg    sync.WaitGroup

	errMu sync.Mutex
	err   error // first error of a background finish

	segMu sync.Mutex
	seg   []segment.Pack
	segN  int

	scratch scratchClaim // names its scratch packs
}

type openPack struct {
	f    vfs.File
	path string
	bw   *bufio.Writer
	pw   *pack.Writer
}

func (r *Repository) writer() *writer {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	if r.w == nil {
		r.w = &writer{r: r, pending: make(map[blobKey]struct{}), slots: make(chan struct{}, maxFinishing)}
	}
	return r.w
}

// HasBlob reports whether the repository has the blob, in a pack that is
// not condemned, or is writing it.
func (r *Repository) HasBlob(t blob.Type, id blob.ID) (bool, error) {
	r.wmu.Lock()
	w := r.w
	r.wmu.Unlock()
	if w != nil && w.isPending(blobKey{t, id}) {
		return true, nil
	}
	_, ok, err := r.idx.LookupLive(t, id)
	return ok, err
}

// SaveBlob stores plain as a blob of type t unless the repository already
// has it. id must be r.BlobID(plain): callers hash in their own goroutines.
// Compression and encryption run in the caller's goroutine too, so that
// concurrent callers use every core. The blob is durable only after Flush.
func (r *Repository) SaveBlob(ctx context.Context, t blob.Type, id blob.ID, plain []byte) (known bool, err error) {
	if len(plain) > maxBlobSize {
		return false, fmt.Errorf("blob of %d bytes exceeds the %d-byte limit", len(plain), maxBlobSize)
	}
	w := r.writer()
	k := blobKey{t, id}
	if w.isPending(k) {
		return true, nil
	}
	// LookupLive: a blob in a pack that prune condemned is stored again.
	if _, ok, err := r.idx.LookupLive(t, id); err != nil || ok {
		return ok, err
	}
	if !w.claim(k) {
		return true, nil
	}
	buf := encodeBuffers.Get(len(plain) + r.codec.Overhead() + 64)
	stored, comp := r.codec.Encode(buf, t, id, plain)
	err = w.add(ctx, t, id, comp, len(plain), stored)
	n := len(stored)
	encodeBuffers.Put(stored)
	if err != nil {
		w.release([]blobKey{k})
		return false, err
	}
	r.written.Blobs.Add(1)
	r.written.RawBytes.Add(uint64(len(plain)))
	r.written.StoredBytes.Add(uint64(n))
	return false, nil
}

// maxBlobSize caps plaintext blobs. Chunks are at most MaxChunk; a tree
// blob holds one whole directory, so a directory of several hundred
// thousand entries with long names exceeds it and cannot be stored.
const maxBlobSize = 64 << 20

// encodeBuffers holds the stored forms of blobs between encoding and
// packing: one per concurrent SaveBlob.
var encodeBuffers = NewBufferPool(4 << 20)

func (w *writer) isPending(k blobKey) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.pending[k]
	return ok
}

func (w *writer) claim(k blobKey) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.pending[k]; ok {
		return false
	}
	w.pending[k] = struct{}{}
	return true
}

func (w *writer) release(keys []blobKey) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, k := range keys {
		delete(w.pending, k)
	}
}

func (w *writer) firstErr() error {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	return w.err
}

func (w *writer) add(ctx context.Context, t blob.Type, id blob.ID, comp codec.Compression, rawLen int, stored []byte) error {
	if err := w.firstErr(); err != nil {
		return err
	}
	w.packMu[t].Lock()
	defer w.packMu[t].Unlock()
	op := w.open[t]
	if op == nil {
		var err error
		if op, err = w.newPack(); err != nil {
			return err
		}
		w.open[t] = op
	}
	if _, err := op.pw.Add(t, id, comp, rawLen, stored); err != nil {
		// The pack's writer keeps the error; the blobs already in it are
		// lost with it.
		w.open[t] = nil
		w.discard(op)
		return w.fail(fmt.Errorf("write pack %s: %w", op.path, err))
	}
	if op.pw.Size() < w.r.cfg.PackSize {
		return nil
	}
	select {
	case w.slots <- struct{}{}:
	case <-ctx.Done():
		// The pack stays open with its blobs: this blob is in it already,
		// and the caller may still Flush or abort.
		return ctx.Err()
	}
	w.open[t] = nil
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer func() { <-w.slots }()
		w.finish(context.WithoutCancel(ctx), op)
	}()
	return nil
}

// fail records the writer's first error. A writer that failed accepts no
// more blobs and every later Flush returns the error, so no snapshot can
// reference a blob of a pack that was lost.
func (w *writer) fail(err error) error {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	if w.err == nil {
		w.err = err
	}
	return err
}

func (w *writer) newPack() (*openPack, error) {
	p, err := w.r.packPath(&w.scratch)
	if err != nil {
		return nil, fmt.Errorf("name a scratch pack: %w", err)
	}
	f, err := w.r.fs.Create(p, vfs.WriteCategoryUnspecified)
	if err != nil {
		w.r.packGone(&w.scratch)
		return nil, fmt.Errorf("create pack file: %w", err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	return &openPack{f: f, path: p, bw: bw, pw: pack.NewWriter(bw, w.r.codec)}, nil
}

// discard drops a pack that will not be stored, scratch file and all.
func (w *writer) discard(op *openPack) {
	if op.f != nil {
		op.f.Close()
	}
	w.r.fs.Remove(op.path)
	w.r.packGone(&w.scratch)
	keys := make([]blobKey, 0, op.pw.Count())
	for _, e := range op.pw.Entries() {
		keys = append(keys, blobKey{e.Type, e.ID})
	}
	w.release(keys)
}

// finish makes a full pack durable in the backend, then indexes it. When
// any step fails the pack is dropped, its blobs are released so that a
// later save does not take them for stored, and the writer fails.
func (w *writer) finish(ctx context.Context, op *openPack) error {
	sp, err := w.finishPack(ctx, op)
	if err != nil {
		w.discard(op)
		return w.fail(err)
	}
	w.r.packGone(&w.scratch)
	if err := w.addToSegment(ctx, sp); err != nil {
		return w.fail(err)
	}
	return nil
}

func (w *writer) finishPack(ctx context.Context, op *openPack) (segment.Pack, error) {
	id, entries, err := op.pw.Finish()
	if err == nil {
		err = op.bw.Flush()
	}
	if err == nil {
		err = op.f.Sync()
	}
	if err != nil {
		return segment.Pack{}, fmt.Errorf("write pack %s: %w", op.path, err)
	}
	size := op.pw.Size()
	if err := w.store(ctx, packName(id), op, size); err != nil {
		return segment.Pack{}, fmt.Errorf("store pack %s: %w", id, err)
	}
	sp := segment.Pack{ID: id, Size: size, Blobs: make([]segment.Blob, len(entries))}
	ie := make([]index.BlobEntry, len(entries))
	keys := make([]blobKey, len(entries))
	for i, e := range entries {
		loc := index.Location{Pack: id, Offset: e.Offset, Length: e.Length, RawLength: e.RawLength, Compression: uint8(e.Compression)}
		ie[i] = index.BlobEntry{Type: e.Type, ID: e.ID, Location: loc}
		sp.Blobs[i] = segment.Blob{Type: e.Type, ID: e.ID, Offset: e.Offset, Length: e.Length, RawLength: e.RawLength, Compression: uint8(e.Compression)}
		keys[i] = blobKey{e.Type, e.ID}
	}
	if err := w.r.idx.AddPack(index.PackInfo{ID: id, Size: size, Count: uint32(len(entries))}, ie); err != nil {
		return segment.Pack{}, err
	}
	w.release(keys)
	return sp, nil
}

// store moves a finished, fsynced pack file into the backend and closes it.
func (w *writer) store(ctx context.Context, name string, op *openPack, size int64) error {
	if fsaver, ok := w.r.be.(remote.FileSaver); ok {
		if err := op.f.Close(); err != nil {
			return err
		}
		op.f = nil
		return fsaver.SaveFile(ctx, name, op.path)
	}
	if err := w.r.be.Save(ctx, name, op.f, size); err != nil {
		return err
	}
	err := op.f.Close()
	op.f = nil
	if err != nil {
		return err
	}
	return w.r.fs.Remove(op.path)
}

func (w *writer) addToSegment(ctx context.Context, p segment.Pack) error {
	w.segMu.Lock()
	defer w.segMu.Unlock()
	w.seg = append(w.seg, p)
	w.segN += len(p.Blobs)
	if w.segN < segmentBlobs {
		return nil
	}
	return w.writeSegmentLocked(ctx)
}

// Flush finishes every open pack and writes an index segment covering every
// pack not yet listed in one (including packs left unlisted by a crash).
// When it returns nil, every blob saved before the call is durable and may
// be referenced by a snapshot record.
//
// A Flush that fails drops the open packs too: their blobs must not count as
// stored by anyone who retries. The failed writer is retired, so that a
// long-running process (a daemon, a hook backing up guest after guest) can
// save again once the cause, such as a full disk, is gone; packs it did
// store stay indexed and are listed by the next successful Flush.
func (r *Repository) Flush(ctx context.Context) error {
	w := r.writer()
	err := w.flush(ctx)
	if err != nil {
		w.abort()
		r.wmu.Lock()
		if r.w == w {
			r.w = nil
		}
		r.wmu.Unlock()
	}
	return err
}

func (w *writer) flush(ctx context.Context) error {
	if err := w.firstErr(); err != nil {
		return err
	}
	for t := range w.open {
		w.packMu[t].Lock()
		op := w.open[t]
		w.open[t] = nil
		w.packMu[t].Unlock()
		if op == nil {
			continue
		}
		if op.pw.Count() == 0 {
			w.discard(op)
			continue
		}
		if err := w.finish(ctx, op); err != nil {
			return err
		}
	}
	w.wg.Wait()
	if err := w.firstErr(); err != nil {
		return err
	}
	w.segMu.Lock()
	defer w.segMu.Unlock()
	if err := w.addUnlisted(ctx); err != nil {
		return err
	}
	return w.writeSegmentLocked(ctx)
}

// addUnlisted adds to the segment buffer packs that the index marks as
// unlisted but the buffer lacks: packs a crashed run indexed but never
// listed in a segment. Their entries come from their trailers.
func (w *writer) addUnlisted(ctx context.Context) error {
	inBuf := make(map[blob.ID]bool, len(w.seg))
	for _, p := range w.seg {
		inBuf[p.ID] = true
	}
	var missing []blob.ID
	err := w.r.idx.UnlistedPacks(func(id blob.ID) error {
		if !inBuf[id] {
			missing = append(missing, id)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, id := range missing {
		p, err := w.r.readPackSegment(ctx, id)
		if err != nil {
			return err
		}
		w.seg = append(w.seg, p)
		w.segN += len(p.Blobs)
	}
	return nil
}

func (w *writer) writeSegmentLocked(ctx context.Context) error {
	if len(w.seg) == 0 {
		return nil
	}
	id, err := w.r.saveSegment(ctx, segment.Encode(w.seg))
	if err != nil {
		return err
	}
	packs := make([]blob.ID, len(w.seg))
	for i, p := range w.seg {
		packs[i] = p.ID
	}
	if err := w.r.idx.MarkListed(id, packs); err != nil {
		return err
	}
	w.seg, w.segN = nil, 0
	return nil
}

// saveSegment stores an index segment's plaintext and returns its ID.
func (r *Repository) saveSegment(ctx context.Context, plain []byte) (blob.ID, error) {
	sealed, err := r.codec.Seal(nil, plain, codec.ADIndexSegment)
	if err != nil {
		return blob.ID{}, err
	}
	id := hashBytes(sealed)
	if err := saveBytes(ctx, r.be, segmentsPrefix+id.String(), sealed); err != nil {
		return blob.ID{}, fmt.Errorf("write index segment: %w", err)
	}
	return id, nil
}

// abort drops open packs; finished packs stay indexed and unlisted until the
// next Flush lists them.
func (w *writer) abort() {
	for t := range w.open {
		w.packMu[t].Lock()
		if op := w.open[t]; op != nil {
			w.discard(op)
			w.open[t] = nil
		}
		w.packMu[t].Unlock()
	}
	w.wg.Wait()
}
