package chunkstore

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A process killed while it writes packs leaves their scratch files
// behind: up to maxFinishing+2 packs of up to 32 MiB each, on every kill.
// Their age says nothing of whether their writer is alive (a backup of
// unchanged files can leave an open pack untouched for hours), so each
// writer claims a tag instead: a lock file, owner-<tag>.lock, that it
// holds locked (fcntl, via vfs.FS.Lock) while it lives, and its packs are
// named pack-<tag>-<n>.tmp. The kernel drops the lock when the process
// dies however it dies, so a lock file another process can lock names
// packs nobody will finish.
//
// Pack files from before tags (pack-<n>.tmp, no owner) are left alone:
// nothing tells whether their writer still runs.

const (
	ownerPrefix = "owner-"
	ownerSuffix = ".lock"
	// ownerGrace protects a claim between the creation of its lock file
	// and its locking, which vfs.FS.Lock does in two system calls: a
	// cleaner locking it in between would fail the writer. A lock file
	// this young is never judged.
	ownerGrace = 10 * time.Second
)

// scratchClaim is a writer's tag and the lock that keeps it. It is held
// while the writer has scratch packs, so that the scratch directory is
// empty whenever no pack is being written.
type scratchClaim struct {
	mu   sync.Mutex
	tag  string
	lock io.Closer
	n    int // packs named under tag
	live int // packs named and not yet gone
}

// packPath names a new scratch pack, claiming a tag first if the writer has
// none.
func (r *Repository) packPath(c *scratchClaim) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lock == nil {
		var rnd [8]byte
		if _, err := rand.Read(rnd[:]); err != nil {
			return "", err
		}
		if err := r.fs.MkdirAll(r.scratch, 0o700); err != nil {
			return "", err
		}
		tag := hex.EncodeToString(rnd[:])
		l, err := r.fs.Lock(filepath.Join(r.scratch, ownerPrefix+tag+ownerSuffix))
		if err != nil {
			return "", err
		}
		c.tag, c.lock, c.n = tag, l, 0
	}
	c.n++
	c.live++
	return filepath.Join(r.scratch, "pack-"+c.tag+"-"+strconv.Itoa(c.n)+".tmp"), nil
}

// packGone says that a pack packPath named was stored or removed; the
// claim is given up with the last.
func (r *Repository) packGone(c *scratchClaim) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.live--; c.live > 0 || c.lock == nil {
		return
	}
	r.fs.Remove(filepath.Join(r.scratch, ownerPrefix+c.tag+ownerSuffix))
	c.lock.Close()
	c.lock = nil
}

// removeDeadScratch removes the scratch packs of writers that died, and
// their lock files, and reports how many packs it removed.
func (r *Repository) removeDeadScratch() (int, error) {
	names, err := r.fs.List(r.scratch)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	removed := 0
	for _, name := range names {
		tag, ok := strings.CutPrefix(name, ownerPrefix)
		if tag, ok = strings.CutSuffix(tag, ownerSuffix); !ok {
			continue
		}
		n, err := r.removeDeadClaim(names, tag)
		removed += n
		if err != nil {
			return removed, err
		}
	}
	return removed, nil
}

// removeDeadClaim removes the packs of tag if no process holds its lock.
func (r *Repository) removeDeadClaim(names []string, tag string) (int, error) {
	owner := filepath.Join(r.scratch, ownerPrefix+tag+ownerSuffix)
	fi, err := r.fs.Stat(owner)
	if err != nil || time.Since(fi.ModTime()) < ownerGrace {
		return 0, nil // gone meanwhile, or too young to judge
	}
	l, err := r.fs.Lock(owner)
	if err != nil {
		return 0, nil // alive: held by a process, this one included
	}
	defer l.Close()
	removed := 0
	for _, name := range names {
		if strings.HasPrefix(name, "pack-"+tag+"-") && strings.HasSuffix(name, ".tmp") {
			if err := r.fs.Remove(filepath.Join(r.scratch, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return removed, err
			}
			removed++
		}
	}
	// The lock file goes last: a crash before leaves it to the next try.
	return removed, r.fs.Remove(owner)
}
