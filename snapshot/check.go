package snapshot

import (
	"context"
	"fmt"
	"path"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
)

// Problem is damage found in a snapshot: a tree that does not load or
// decode, or content whose blobs are missing or damaged.
type Problem struct {
	Snapshot blob.ID
	Path     string
	Message  string
}

func (p Problem) String() string {
	return fmt.Sprintf("snapshot %s: %s: %s", p.Snapshot.Short(), displayPath(p.Path), p.Message)
}

func displayPath(p string) string {
	if p == "" {
		return "/"
	}
	return "/" + p
}

// Damage is what a pack-level check found; Check names the snapshots and
// paths that reference it.
type Damage struct {
	Packs map[blob.ID]bool // packs missing or unreadable as a whole
	Blobs map[blob.ID]bool // single blobs that fail to decrypt or hash
}

// maxCheckedTrees bounds the set of trees already checked: shared subtrees
// are checked once while it has room, and again (correctly, just slower)
// after it is reset.
const maxCheckedTrees = 1 << 19

// Check walks every snapshot's trees: each must load and decode, and every
// blob a file references must be in the index and not damaged.
func Check(ctx context.Context, repo Repo, snaps []Snapshot, dmg Damage, report func(Problem)) error {
	c := &checker{repo: repo, dmg: dmg, report: report, seen: make(map[blob.ID]bool)}
	for _, s := range snaps {
		c.snap = s.ID
		if err := c.tree(ctx, "", s.Record.Tree, true); err != nil {
			return err
		}
	}
	return nil
}

type checker struct {
	repo   Repo
	dmg    Damage
	report func(Problem)
	snap   blob.ID
	// seen holds trees found clean. A damaged tree stays out of it, so that
	// every snapshot sharing it is named, not just the first checked.
	seen     map[blob.ID]bool
	problems int
}

func (c *checker) problem(p, msg string) {
	c.problems++
	c.report(Problem{Snapshot: c.snap, Path: p, Message: msg})
}

func (c *checker) tree(ctx context.Context, rel string, id blob.ID, top bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.seen[id] {
		return nil
	}
	before := c.problems
	t, err := LoadTree(ctx, c.repo, id)
	if err != nil {
		c.problem(rel, fmt.Sprintf("directory unreadable: %v", err))
		return nil
	}
	for i := range t.Nodes {
		n := &t.Nodes[i]
		p := path.Join(rel, n.Name)
		if top {
			p = rel // the top tree's only node is the backed-up path itself
		}
		switch n.Type {
		case TypeDir:
			if err := c.tree(ctx, p, n.Subtree, false); err != nil {
				return err
			}
		case TypeFile:
			c.content(p, n)
		}
	}
	if c.problems > before {
		return nil
	}
	if len(c.seen) >= maxCheckedTrees {
		clear(c.seen)
	}
	c.seen[id] = true
	return nil
}

func (c *checker) content(p string, n *Node) {
	idx := c.repo.Index()
	var total uint64
	for _, ch := range n.Content {
		total += ch.Size
		if ch.IsHole() {
			continue
		}
		loc, ok, err := idx.Lookup(blob.Data, ch.ID)
		switch {
		case err != nil:
			c.problem(p, fmt.Sprintf("index lookup of blob %s: %v", ch.ID, err))
		case !ok:
			c.problem(p, fmt.Sprintf("data blob %s is missing", ch.ID))
		case c.dmg.Packs[loc.Pack]:
			c.problem(p, fmt.Sprintf("data blob %s is in damaged pack %s", ch.ID, loc.Pack))
		case c.dmg.Blobs[ch.ID]:
			c.problem(p, fmt.Sprintf("data blob %s in pack %s is damaged", ch.ID, loc.Pack))
		case uint64(loc.RawLength) != ch.Size:
			c.problem(p, fmt.Sprintf("data blob %s has %d bytes, the file says %d", ch.ID, loc.RawLength, ch.Size))
		}
	}
	if total != n.Size {
		c.problem(p, fmt.Sprintf("content adds up to %d bytes, size is %d", total, n.Size))
	}
}
