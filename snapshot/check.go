package snapshot

import (
	"context"
	"errors"
	"fmt"
	"path"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
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

// lost says why blob id cannot be read back, or "" when nothing says it
// cannot.
func (d Damage) lost(idx index.Store, t blob.Type, id blob.ID) (index.Location, string, error) {
	loc, ok, err := idx.Lookup(t, id)
	switch {
	case err != nil:
		return loc, "", fmt.Errorf("index lookup of blob %s: %w", id, err)
	case !ok:
		return loc, fmt.Sprintf("%s blob %s is missing", t, id), nil
	case d.Packs[loc.Pack]:
		return loc, fmt.Sprintf("%s blob %s is in damaged pack %s", t, id, loc.Pack), nil
	case d.Blobs[id]:
		return loc, fmt.Sprintf("%s blob %s in pack %s is damaged", t, id, loc.Pack), nil
	}
	return loc, "", nil
}

// maxCheckedTrees bounds the set of trees already checked: shared subtrees
// are checked once while it has room, and again (correctly, just slower)
// after it is reset.
const maxCheckedTrees = 1 << 19

// Check walks every snapshot's trees: each must load and decode, and every
// blob a file references must be in the index and not damaged.
func Check(ctx context.Context, repo Repo, snaps []Snapshot, dmg Damage, report func(Problem)) error {
	c := NewChecker(repo, dmg, report)
	for _, s := range snaps {
		if err := c.Check(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

// Checker checks snapshots one at a time, remembering across them the
// trees found clean, and which of the damage they use.
type Checker struct {
	repo   Repo
	dmg    Damage
	report func(Problem)
	snap   blob.ID
	// seen holds trees found clean. A damaged tree stays out of it, so that
	// every snapshot sharing it is named, not just the first checked.
	seen     map[blob.ID]bool
	problems int
	used     map[blob.ID]bool
	unwalked int // trees that did not load, so what they use is unknown
}

// NewChecker returns a Checker that reports to report.
func NewChecker(repo Repo, dmg Damage, report func(Problem)) *Checker {
	return &Checker{repo: repo, dmg: dmg, report: report, seen: make(map[blob.ID]bool), used: make(map[blob.ID]bool)}
}

// Check checks one snapshot.
func (c *Checker) Check(ctx context.Context, s Snapshot) error {
	c.snap = s.ID
	return c.tree(ctx, "", s.Record.Tree, true)
}

// Uses reports whether a snapshot checked so far needs pack or blob id,
// one the damage names, or might: below a directory that does not load,
// anything might be used. Damage nothing uses loses nothing.
func (c *Checker) Uses(id blob.ID) bool { return c.used[id] || c.unwalked > 0 }

func (c *Checker) problem(p, msg string) {
	c.problems++
	c.report(Problem{Snapshot: c.snap, Path: p, Message: msg})
}

func (c *Checker) tree(ctx context.Context, rel string, id blob.ID, top bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.seen[id] {
		return nil
	}
	before := c.problems
	t, err := LoadTree(ctx, c.repo, id)
	c.noteTreeUse(id, err)
	if err != nil {
		c.unwalked++
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

// noteTreeUse records the damaged pack or blob a tree load ran into, or
// the damaged pack a tree that still loads lives in.
func (c *Checker) noteTreeUse(id blob.ID, err error) {
	if ce, ok := errors.AsType[*chunkstore.CorruptPackError](err); ok {
		c.used[ce.Pack] = true
		c.used[ce.Blob] = true
		return
	}
	if me, ok := errors.AsType[*chunkstore.BlobMissingError](err); ok {
		c.used[me.Pack] = true
		return
	}
	if loc, _, _ := c.dmg.lost(c.repo.Index(), blob.Tree, id); c.dmg.Packs[loc.Pack] {
		c.used[loc.Pack] = true
	}
}

func (c *Checker) content(p string, n *Node) {
	idx := c.repo.Index()
	var total uint64
	for _, ch := range n.Content {
		total += ch.Size
		if ch.IsHole() {
			continue
		}
		loc, why, err := c.dmg.lost(idx, blob.Data, ch.ID)
		switch {
		case err != nil:
			c.problem(p, err.Error())
		case why != "":
			c.used[loc.Pack] = c.used[loc.Pack] || c.dmg.Packs[loc.Pack]
			c.used[ch.ID] = true
			c.problem(p, why)
		case uint64(loc.RawLength) != ch.Size:
			c.problem(p, fmt.Sprintf("data blob %s has %d bytes, the file says %d", ch.ID, loc.RawLength, ch.Size))
		}
	}
	if total != n.Size {
		c.problem(p, fmt.Sprintf("content adds up to %d bytes, size is %d", total, n.Size))
	}
}
