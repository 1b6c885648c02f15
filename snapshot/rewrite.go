package snapshot

import (
	"context"
	"errors"
	"fmt"
	"path"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/chunkstore/blob"
)

// LostPath is a file or directory a repair gave up, and why.
type LostPath struct {
	Path   string // relative to the snapshot's root, as Problem.Path
	Reason string
}

func (l LostPath) String() string { return displayPath(l.Path) + ": " + l.Reason }

// treeFix is what rewriting one tree gave: its new ID (the old one when
// nothing in it was lost) and what was lost below it, with paths relative
// to it. gone means the tree itself cannot be read.
type treeFix struct {
	id   blob.ID
	lost []LostPath
	gone string
}

// rewriter rewrites trees without what is lost: a file's lost chunks become
// holes of the same size, so that the rest of the file keeps its place and
// its bytes, and a directory whose tree cannot be read becomes empty.
type rewriter struct {
	repo   Repo
	dmg    Damage
	dryRun bool // compute the new trees' IDs, store nothing
	done   map[treeKey]treeFix
}

type treeKey struct {
	id  blob.ID
	top bool
}

func newRewriter(repo Repo, dmg Damage, dryRun bool) *rewriter {
	return &rewriter{repo: repo, dmg: dmg, dryRun: dryRun, done: make(map[treeKey]treeFix)}
}

// tree rewrites tree id; shared subtrees are rewritten once, while the
// memo has room.
func (w *rewriter) tree(ctx context.Context, id blob.ID, top bool) (treeFix, error) {
	if f, ok := w.done[treeKey{id, top}]; ok {
		return f, nil
	}
	t, err := LoadTree(ctx, w.repo, id)
	if err != nil {
		if !lostTree(err) {
			return treeFix{}, err
		}
		return treeFix{gone: err.Error()}, nil
	}
	f := treeFix{id: id}
	changed := false
	for i := range t.Nodes {
		n := &t.Nodes[i]
		name := n.Name
		if top {
			name = "" // the top tree's only node is the backed-up path itself
		}
		switch n.Type {
		case TypeDir:
			sub, err := w.tree(ctx, n.Subtree, false)
			if err != nil {
				return treeFix{}, err
			}
			if sub.gone != "" {
				f.lost = append(f.lost, LostPath{name, "directory lost, now empty: " + sub.gone})
				if sub.id, err = w.save(ctx, &Tree{}); err != nil {
					return treeFix{}, err
				}
			}
			for _, l := range sub.lost {
				f.lost = append(f.lost, LostPath{path.Join(name, l.Path), l.Reason})
			}
			changed = changed || sub.id != n.Subtree
			n.Subtree = sub.id
		case TypeFile:
			why, err := w.file(n)
			if err != nil {
				return treeFix{}, err
			}
			if why != "" {
				f.lost = append(f.lost, LostPath{name, why})
				changed = true
			}
		}
	}
	if changed {
		if f.id, err = w.save(ctx, t); err != nil {
			return treeFix{}, err
		}
	}
	if len(w.done) >= maxCheckedTrees {
		clear(w.done)
	}
	w.done[treeKey{id, top}] = f
	return f, nil
}

// lostTree tells a tree that is gone for good from one that could not be
// read this time (a network error), which must stop the repair instead.
func lostTree(err error) bool {
	return errors.Is(err, chunkstore.ErrCorrupt) || errors.Is(err, chunkstore.ErrBlobMissing) || errors.Is(err, ErrInvalidTree)
}

// file turns the lost chunks of n into holes and says what it did, or
// returns "" when nothing of n is lost.
func (w *rewriter) file(n *Node) (string, error) {
	lost, first := 0, ""
	for i, ch := range n.Content {
		if ch.IsHole() {
			continue
		}
		_, why, err := w.dmg.lost(w.repo.Index(), blob.Data, ch.ID)
		if err != nil {
			return "", err
		}
		if why != "" {
			n.Content[i] = Chunk{Size: ch.Size}
			lost++
			if first == "" {
				first = why
			}
		}
	}
	if lost == 0 {
		return "", nil
	}
	// The next backup must read the file again rather than take its
	// content from this snapshot as unchanged: no real file has ctime 0,
	// and ctime is never restored.
	n.Ctime = 0
	return fmt.Sprintf("%d of %d chunks lost, now zeros (%s)", lost, len(n.Content), first), nil
}

func (w *rewriter) save(ctx context.Context, t *Tree) (blob.ID, error) {
	if !w.dryRun {
		return SaveTree(ctx, w.repo, t)
	}
	b, err := EncodeTree(t)
	if err != nil {
		return blob.ID{}, err
	}
	return w.repo.BlobID(b), nil
}
