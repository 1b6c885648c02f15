package snapshot

import (
	"context"
	"sync"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
)

// treeBatch bounds the subtrees of one directory loaded ahead.
const treeBatch = 256

// treeAhead bounds the trees loaded ahead beyond a directory's own
// subtrees: enough for a typical directory's subdirectories, and, even of
// large directories (a tree of 100 files takes some 30 KiB of the cache),
// little enough that what is loaded for later does not push out of the
// cache what the walk needs before (the mount's tree cache is 8 MiB).
// Without the bound, a walk over the benchmark's tree evicted a hundred
// trees before their use.
const treeAhead = 32

// treeJobs is how many of a batch's pack reads run at once.
const treeJobs = 2

// PrefetchSubtrees starts loading, in the background if read-ahead has
// room, the trees a walk (find, du, rsync) that just listed directory id,
// t, asks for next: it enters each subdirectory in turn, lists it, and
// enters that one's subdirectories first. Waiting for each tree's read
// and decryption would be most of such a walk's time. So the subtrees of
// t are loaded, and, where their trees are cached already, some of those
// of its first subdirectory and of the directory the walk enters after
// this one: by the time the walk gets to them, they are there.
//
// The trees are loaded as one batch (one index lookup, neighbours in a
// pack read at once), and a reader asking for one of them meanwhile waits
// for it rather than loading it again.
func (v *View) PrefetchSubtrees(ctx context.Context, id blob.ID, t *Tree) {
	dirs := subdirs(t, nil)
	v.order.record(dirs)
	ids := dirs[:min(len(dirs), treeBatch)]
	ahead := len(ids) + treeAhead
	if len(dirs) > 0 {
		if first, ok := v.trees.peek(dirs[0]); ok {
			ids = subdirs(first, ids)
		}
	}
	if next, ok := v.order.after(id); ok {
		if t, ok := v.trees.peek(next); ok {
			ids = subdirs(t, ids)
		}
	}
	res := v.trees.reserve(ids[:min(len(ids), ahead)])
	if len(res.keys) == 0 {
		return
	}
	if !v.startFetch(ctx, func(ctx context.Context) { v.loadTrees(ctx, res) }) {
		res.drop()
	}
}

// subdirs appends the trees of t's subdirectories to ids.
func subdirs(t *Tree, ids []blob.ID) []blob.ID {
	for i := range t.Nodes {
		if t.Nodes[i].Type == TypeDir {
			ids = append(ids, t.Nodes[i].Subtree)
		}
	}
	return ids
}

// loadTrees loads the trees res reserved. One that fails to load or to
// decode is left to its reader, who loads it again and gets the error.
func (v *View) loadTrees(ctx context.Context, res *reservation[blob.ID, *Tree]) {
	defer res.drop()
	_ = v.repo.LoadBlobs(ctx, blob.Tree, res.keys, treeJobs, func(id blob.ID, b []byte) error {
		if t, size, err := decodeCached(id, b); err == nil {
			res.put(id, t, size)
		}
		return nil
	})
}

// walkOrder remembers, for the subdirectories of the directories listed
// lately, which one a walk enters after each: the next in name order.
type walkOrder struct {
	mu   sync.Mutex
	next map[blob.ID]blob.ID
}

// walkOrderMax bounds what walkOrder remembers (some 64 bytes an entry).
const walkOrderMax = 4096

// record notes that a walk enters dirs in this order.
func (w *walkOrder) record(dirs []blob.ID) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.next)+len(dirs) > walkOrderMax {
		clear(w.next)
	}
	for i := 1; i < len(dirs); i++ {
		w.next[dirs[i-1]] = dirs[i]
	}
}

// after returns the directory a walk enters after id, if it knows one.
func (w *walkOrder) after(id blob.ID) (blob.ID, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	next, ok := w.next[id]
	return next, ok
}
