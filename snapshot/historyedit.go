package snapshot

import (
	"context"
	"path"
	"strings"

	"github.com/hindsight-backup/hindsight/chunkstore/index"
)

// sweepBatch bounds the rows deleted at once, as history batches bound
// the rows written.
const sweepBatch = 1000

// sweepRows deletes the rows of source that drop selects, in one scan.
// Deleting while scanning is safe: the scan reads the rows as they were
// when it began.
func sweepRows(repo Repo, source string, drop func(r *index.HistoryRow) (bool, error)) error {
	idx := repo.Index()
	var del []index.HistoryRow
	err := idx.HistoryRows(source, func(r *index.HistoryRow) error {
		ok, err := drop(r)
		if err != nil || !ok {
			return err
		}
		del = append(del, *r)
		if len(del) < sweepBatch {
			return nil
		}
		err = idx.DeleteHistoryRows(del)
		del = del[:0]
		return err
	})
	if err == nil && len(del) > 0 {
		err = idx.DeleteHistoryRows(del)
	}
	return err
}

// rowCheck tells which paths have a row when snapshot cur is compared
// with prev, by the rules rebuildRows follows, looking paths up rather
// than walking both trees: it checks the few rows a snapshot has in
// memory that stays bounded whatever the trees' size.
type rowCheck struct {
	view      *View
	cur, prev *Node // root nodes; prev nil when cur is compared with nothing
	leftOut   func(rel, name string) bool
}

func newRowCheck(ctx context.Context, view *View, cur Snapshot, prev *Snapshot) (*rowCheck, error) {
	c := &rowCheck{view: view}
	var err error
	if c.leftOut, err = leftOutBy(cur.Record); err != nil {
		return nil, err
	}
	if c.cur, err = RootNode(ctx, view.Repo(), cur.Record); err != nil {
		return nil, err
	}
	if prev != nil {
		// rebuildRows pairs the root nodes by name, and compares a
		// directory only with a directory.
		p, err := RootNode(ctx, view.Repo(), prev.Record)
		if err != nil {
			return nil, err
		}
		if p.Name == c.cur.Name && p.Type == TypeDir {
			c.prev = p
		}
	}
	return c, nil
}

// needed reports whether rel (relative to the root node) has a row.
func (c *rowCheck) needed(ctx context.Context, rel string) (bool, error) {
	if rel == "" || c.cur.Type != TypeDir {
		return false, nil // the root itself never has rows
	}
	cn, stop, underDir, err := c.lookup(ctx, c.cur, rel)
	if err != nil {
		return false, err
	}
	pn, _, _, err := c.lookup(ctx, c.prev, rel)
	if err != nil {
		return false, err
	}
	switch {
	case cn != nil && pn == nil:
		return true, nil // new, or below a new directory
	case cn != nil:
		if cn.Type != pn.Type {
			return true, nil
		}
		return cn.Type != TypeDir && ContentHash(cn) != ContentHash(pn), nil
	case pn == nil:
		return false, nil
	case !underDir:
		return true, nil // below a directory that became something else
	}
	// Gone from a directory both have: deleted, unless this backup left
	// it out (excluded, or unreadable).
	return !c.leftOut(stop, path.Base(stop)), nil
}

// lookup walks rel down from root. When a component is missing it returns
// nil, the path up to that component, and whether the entry it was
// missing from is a directory.
func (c *rowCheck) lookup(ctx context.Context, root *Node, rel string) (*Node, string, bool, error) {
	if root == nil {
		return nil, "", false, nil
	}
	// Components are cut off rel, not split into a slice: forget looks up
	// every row of a snapshot whose predecessor changes.
	n := root
	for end := 0; end < len(rel); {
		name, _, _ := strings.Cut(rel[end:], "/")
		end += len(name)
		if n.Type != TypeDir {
			return nil, rel[:end], false, nil
		}
		t, err := c.view.Tree(ctx, n.Subtree)
		if err != nil {
			return nil, "", false, err
		}
		if n = t.Find(name); n == nil {
			return nil, rel[:end], true, nil
		}
		end++ // the slash
	}
	return n, "", false, nil
}
