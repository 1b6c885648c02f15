package remote

import (
	"bytes"
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"
)

// CacheOptions configure WithCache.
type CacheOptions struct {
	// Dir holds the cached ranges, one file each; it is created if
	// missing and may be shared with earlier runs, whose entries are used.
	Dir string
	// MaxBytes bounds the files in Dir; the least recently used go first.
	// Default 256 MiB.
	MaxBytes int64
	// MaxRange is the largest range cached; longer or open-ended Loads
	// pass through, since caching whole packs would evict the blobs a
	// mount rereads. Default 16 MiB.
	MaxRange int64
	// Cacheable says which objects may be cached: only names whose
	// content never changes (content-addressed packs and segments), since
	// the cache is never invalidated. Required.
	Cacheable func(name string) bool
}

// WithCache returns b with ranged Loads of cacheable objects kept on local
// disk, so that a mount or a second restore from a remote reads each blob
// over the network once. Everything else passes through.
func WithCache(b Backend, o CacheOptions) (Backend, error) {
	if o.Cacheable == nil {
		return nil, fmt.Errorf("remote cache: no Cacheable function")
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 256 << 20
	}
	if o.MaxRange <= 0 {
		o.MaxRange = 16 << 20
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("remote cache: %w", err)
	}
	c := &cacheBackend{Backend: b, o: o, lru: list.New(), entries: map[string]*list.Element{}}
	if err := c.adopt(); err != nil {
		return nil, err
	}
	return keepFileSaver(c, b), nil
}

type cacheBackend struct {
	Backend
	o CacheOptions

	mu      sync.Mutex
	lru     *list.List // of *cacheEntry, most recent first
	entries map[string]*list.Element
	total   int64
}

type cacheEntry struct {
	file string // name within Dir
	size int64
}

func (c *cacheBackend) Unwrap() Backend { return c.Backend }

// adopt takes in the entries an earlier run left, the most recently used
// (by modification time, which hits refresh) first, and trims them to
// MaxBytes. Temporary files of an interrupted write are removed.
func (c *cacheBackend) adopt() error {
	des, err := os.ReadDir(c.o.Dir)
	if err != nil {
		return fmt.Errorf("remote cache: %w", err)
	}
	type found struct {
		cacheEntry
		mtime time.Time
	}
	var all []found
	for _, de := range des {
		fi, err := de.Info()
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if filepath.Ext(de.Name()) == ".tmp" {
			os.Remove(filepath.Join(c.o.Dir, de.Name()))
			continue
		}
		all = append(all, found{cacheEntry{de.Name(), fi.Size()}, fi.ModTime()})
	}
	slices.SortFunc(all, func(a, b found) int { return b.mtime.Compare(a.mtime) })
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range all {
		c.entries[f.file] = c.lru.PushBack(&cacheEntry{f.file, f.size})
		c.total += f.size
	}
	c.evictLocked()
	return nil
}

func (c *cacheBackend) Load(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	if length <= 0 || length > c.o.MaxRange || !c.o.Cacheable(name) {
		return c.Backend.Load(ctx, name, offset, length)
	}
	file := cacheFile(name, offset, length)
	if rc := c.hit(file, length); rc != nil {
		return rc, nil
	}
	rc, err := c.Backend.Load(ctx, name, offset, length)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	p, err := io.ReadAll(io.LimitReader(rc, length))
	if err != nil {
		return nil, err
	}
	// A range cut short by the object's end is not kept: a short entry
	// would be indistinguishable from a damaged one.
	if int64(len(p)) == length {
		c.store(file, p)
	}
	return io.NopCloser(bytes.NewReader(p)), nil
}

// cacheFile names the entry of one range: a hash, so that any object name
// makes a safe file name of fixed length.
func cacheFile(name string, offset, length int64) string {
	h := sha256.Sum256([]byte(name + "\x00" + strconv.FormatInt(offset, 10) + "\x00" + strconv.FormatInt(length, 10)))
	return hex.EncodeToString(h[:16])
}

// hit opens a cached range, or returns nil. A file of another length than
// the range is damaged, and dropped.
func (c *cacheBackend) hit(file string, length int64) io.ReadCloser {
	c.mu.Lock()
	el, ok := c.entries[file]
	if ok {
		c.lru.MoveToFront(el)
	}
	c.mu.Unlock()
	if !ok {
		return nil
	}
	path := filepath.Join(c.o.Dir, file)
	f, err := os.Open(path)
	if err == nil {
		if fi, serr := f.Stat(); serr == nil && fi.Size() == length {
			now := time.Now()
			os.Chtimes(path, now, now) // the LRU order for the next run
			return f
		}
		f.Close()
	}
	c.drop(file)
	return nil
}

// store keeps p as an entry; failing to is no error, only a missed chance.
func (c *cacheBackend) store(file string, p []byte) {
	tmp, err := os.CreateTemp(c.o.Dir, "*.tmp")
	if err != nil {
		return
	}
	_, err = tmp.Write(p)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(c.o.Dir, file))
	}
	if err != nil {
		os.Remove(tmp.Name())
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[file]; ok { // a concurrent miss stored it too
		c.total -= el.Value.(*cacheEntry).size
		c.lru.Remove(el)
	}
	c.entries[file] = c.lru.PushFront(&cacheEntry{file, int64(len(p))})
	c.total += int64(len(p))
	c.evictLocked()
}

func (c *cacheBackend) drop(file string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[file]; ok {
		c.removeLocked(el)
	}
}

func (c *cacheBackend) evictLocked() {
	for c.total > c.o.MaxBytes && c.lru.Len() > 0 {
		c.removeLocked(c.lru.Back())
	}
}

func (c *cacheBackend) removeLocked(el *list.Element) {
	e := el.Value.(*cacheEntry)
	c.lru.Remove(el)
	delete(c.entries, e.file)
	c.total -= e.size
	os.Remove(filepath.Join(c.o.Dir, e.file))
}
