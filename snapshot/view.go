package snapshot

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/remote"
)

// ViewOptions bound a View's memory.
type ViewOptions struct {
	TreeCache int64 // bytes of decoded trees kept; default 16 MiB
	// BlobCache is the bytes of file content kept, and the most that
	// free buffers waiting for content hold besides; default 32 MiB.
	BlobCache int64
	// Fetchers is how many chunks (or trees) are fetched ahead of readers
	// at once, across all files; default readAhead, one sequential
	// reader's worth.
	Fetchers int
}

// View reads snapshots for a long-lived reader such as a mount: trees are
// decoded when first needed and kept in an LRU cache, file content goes
// through a cache of plaintext chunks with read-ahead. Its memory is
// bounded by the options whatever the size of the repository.
type View struct {
	repo   Repo
	trees  *cache[blob.ID, *Tree]
	order  walkOrder
	chunks *cache[blob.ID, cachedChunk]
	// fetch limits read-ahead: chunks being fetched ahead hold memory
	// outside the cache until they land in it.
	fetch chan struct{}
	// bufs recycles the chunks the cache evicts: decrypting into fresh
	// allocations cost a tenth of a cold read's CPU in zeroing alone.
	bufs *chunkstore.BufferPool
	// lastRead is when file content was last asked for (UnixNano), and
	// trimmed whether the chunks were dropped since.
	lastRead atomic.Int64
	trimmed  atomic.Bool
}

// NewView returns a View of repo.
func NewView(repo Repo, o ViewOptions) *View {
	if o.TreeCache == 0 {
		o.TreeCache = 16 << 20
	}
	if o.BlobCache == 0 {
		o.BlobCache = 32 << 20
	}
	if o.Fetchers == 0 {
		o.Fetchers = readAhead
	}
	v := &View{
		repo:  repo,
		trees: newCache[blob.ID, *Tree](o.TreeCache, nil),
		order: walkOrder{next: make(map[blob.ID]blob.ID)},
		fetch: make(chan struct{}, o.Fetchers),
		// Read-ahead takes buffers for a burst of chunks before the
		// cache evicts as many: a pool as large as the cache keeps them
		// circulating (at 8 MiB a cold 512 MiB cat allocated 220-310 MB
		// of fresh buffers, at 32 MiB 70-75 MB, with no higher peak).
		bufs: chunkstore.NewHugePageBufferPool(int(o.BlobCache)),
	}
	v.chunks = newCache[blob.ID, cachedChunk](o.BlobCache, func(c cachedChunk) { v.bufs.Put(c.buf) })
	return v
}

// TrimIdle drops the cached file content and its recycled buffers when no
// content was read for idle, and reports whether it dropped anything. A
// mount spends most of its life idle; the kernel's page cache keeps what
// was read anyway, so holding tens of megabytes for the next reader
// would save it little.
func (v *View) TrimIdle(idle time.Duration) bool {
	if v.trimmed.Load() || time.Since(time.Unix(0, v.lastRead.Load())) < idle {
		return false
	}
	v.trimmed.Store(true)
	v.chunks.clear()
	v.bufs.Drop()
	return true
}

// Repo returns the repository the view reads.
func (v *View) Repo() Repo { return v.repo }

// nodeSize approximates what one decoded node occupies besides its share
// of the tree blob, which its strings point into.
const nodeSize = int64(unsafe.Sizeof(Node{}))

// Tree returns the decoded tree blob id.
func (v *View) Tree(ctx context.Context, id blob.ID) (*Tree, error) {
	return v.trees.get(ctx, id, func(ctx context.Context) (*Tree, int64, error) {
		// The plaintext is dead once decoded (the tree's strings share a
		// copy of it), so it goes back to the pool: a walk loads a tree
		// per directory.
		b, err := v.repo.LoadBlob(ctx, blob.Tree, id, v.bufs.Get(0))
		if err != nil {
			return nil, 0, err
		}
		t, size, err := decodeCached(id, b)
		v.bufs.Put(b)
		return t, size, err
	})
}

// decodeCached decodes tree blob id and tells what it occupies in the
// cache.
func decodeCached(id blob.ID, b []byte) (*Tree, int64, error) {
	t, err := decodeTreeBlob(id, b)
	if err != nil {
		return nil, 0, err
	}
	size := int64(len(b)) + int64(len(t.Nodes))*nodeSize
	for i := range t.Nodes {
		size += int64(len(t.Nodes[i].Content)) * int64(unsafe.Sizeof(Chunk{}))
	}
	return t, size, nil
}

// startFetch runs load in the background if a read-ahead slot is free,
// and reports whether one was: read-ahead never queues unbounded work.
func (v *View) startFetch(ctx context.Context, load func(context.Context)) bool {
	select {
	case v.fetch <- struct{}{}:
	default:
		return false
	}
	go func() {
		defer func() { <-v.fetch }()
		load(context.WithoutCancel(ctx))
	}()
	return true
}

// cachedChunk is a chunk's plaintext and the pooled buffer it lies in,
// not necessarily at its start (LoadBlobIn), which goes back to the pool
// whole when the cache drops the chunk.
type cachedChunk struct{ plain, buf []byte }

// chunk returns the plaintext of one data chunk, checked against its size
// in the file's content list, and the function to call once done with it.
func (v *View) chunk(ctx context.Context, c Chunk) ([]byte, func(), error) {
	v.lastRead.Store(time.Now().UnixNano())
	v.trimmed.Store(false)
	cc, done, err := v.chunks.acquire(ctx, c.ID, func(ctx context.Context) (cachedChunk, int64, error) {
		buf := v.bufs.Get(int(c.Size) + chunkstore.LoadSlack)
		b, err := v.repo.LoadBlobIn(remote.WithSparseReads(ctx), blob.Data, c.ID, buf)
		if err == nil && uint64(len(b)) != c.Size {
			err = fmt.Errorf("blob %s has %d bytes, the file's content list says %d", c.ID.Short(), len(b), c.Size)
		}
		if err != nil {
			v.bufs.Put(buf)
			return cachedChunk{}, 0, err
		}
		return cachedChunk{b, buf}, int64(len(b)), nil
	})
	return cc.plain, done, err
}

// prefetch starts loading c into the cache unless it is there or on its
// way, or read-ahead is already as busy as allowed: then a reader catches
// up with it later, and read-ahead never queues unbounded work.
func (v *View) prefetch(ctx context.Context, c Chunk) {
	if c.IsHole() || v.chunks.loading(c.ID) {
		return
	}
	v.startFetch(ctx, func(ctx context.Context) {
		if _, done, err := v.chunk(ctx, c); err == nil {
			done()
		}
	})
}
