package snapshot

import (
	"bytes"
	"context"
	"path"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
)

// ChangeKind is how a path differs between two snapshots.
type ChangeKind uint8

const (
	Added ChangeKind = iota + 1
	Removed
	Modified    // content (files), target (symlinks) or device number
	TypeChanged // a file became a directory, or the like
	MetadataChanged
)

func (k ChangeKind) String() string {
	switch k {
	case Added:
		return "added"
	case Removed:
		return "removed"
	case Modified:
		return "modified"
	case TypeChanged:
		return "type"
	case MetadataChanged:
		return "metadata"
	}
	return "unknown"
}

// Change is one path that differs. Path is relative to the snapshot's
// root, "" for the root itself; Old or New is nil where the path is
// absent.
type Change struct {
	Path     string
	Kind     ChangeKind
	Old, New *Node
}

// Diff calls fn for every path that differs between snapshots a and b,
// depth first in name order, a directory before what it holds. Subtrees
// with the same tree ID in both are skipped unread. Below a directory
// that is added, removed or changes type, every entry is reported added
// or removed.
//
// A metadata change is one of mode, owner, group, extended attributes
// (ACLs included) or, for anything but a directory, modification time. A
// directory's times and size follow its entries, whose changes are
// reported themselves; access and change times, inode numbers and link
// counts say nothing of what a restore would bring back.
func Diff(ctx context.Context, repo Repo, a, b *Record, fn func(*Change) error) error {
	an, err := RootNode(ctx, repo, a)
	if err != nil {
		return err
	}
	bn, err := RootNode(ctx, repo, b)
	if err != nil {
		return err
	}
	d := &differ{ctx: ctx, repo: repo, fn: fn}
	return d.node("", an, bn)
}

type differ struct {
	ctx  context.Context
	repo Repo
	fn   func(*Change) error
}

func (d *differ) node(rel string, o, n *Node) error {
	switch {
	case o == nil:
		return d.whole(rel, n, Added)
	case n == nil:
		return d.whole(rel, o, Removed)
	case o.Type != n.Type:
		if err := d.fn(&Change{Path: rel, Kind: TypeChanged, Old: o, New: n}); err != nil {
			return err
		}
		if err := d.below(rel, o, Removed); err != nil {
			return err
		}
		return d.below(rel, n, Added)
	case o.Type == TypeDir:
		if !sameMetadata(o, n) {
			if err := d.fn(&Change{Path: rel, Kind: MetadataChanged, Old: o, New: n}); err != nil {
				return err
			}
		}
		if o.Subtree == n.Subtree {
			return nil
		}
		return d.dir(rel, o.Subtree, n.Subtree)
	case ContentHash(o) != ContentHash(n):
		return d.fn(&Change{Path: rel, Kind: Modified, Old: o, New: n})
	case !sameMetadata(o, n):
		return d.fn(&Change{Path: rel, Kind: MetadataChanged, Old: o, New: n})
	}
	return nil
}

// dir compares two directories' entries, merged by name.
func (d *differ) dir(rel string, oid, nid blob.ID) error {
	ot, err := LoadTree(d.ctx, d.repo, oid)
	if err != nil {
		return err
	}
	nt, err := LoadTree(d.ctx, d.repo, nid)
	if err != nil {
		return err
	}
	i, j := 0, 0
	for i < len(ot.Nodes) || j < len(nt.Nodes) {
		var o, n *Node
		var name string
		switch {
		case j >= len(nt.Nodes) || (i < len(ot.Nodes) && ot.Nodes[i].Name < nt.Nodes[j].Name):
			o, name = &ot.Nodes[i], ot.Nodes[i].Name
			i++
		case i >= len(ot.Nodes) || nt.Nodes[j].Name < ot.Nodes[i].Name:
			n, name = &nt.Nodes[j], nt.Nodes[j].Name
			j++
		default:
			o, n, name = &ot.Nodes[i], &nt.Nodes[j], ot.Nodes[i].Name
			i, j = i+1, j+1
		}
		if err := d.node(path.Join(rel, name), o, n); err != nil {
			return err
		}
	}
	return nil
}

// whole reports n and everything below it as added or removed.
func (d *differ) whole(rel string, n *Node, kind ChangeKind) error {
	c := &Change{Path: rel, Kind: kind}
	if kind == Added {
		c.New = n
	} else {
		c.Old = n
	}
	if err := d.fn(c); err != nil {
		return err
	}
	return d.below(rel, n, kind)
}

func (d *differ) below(rel string, n *Node, kind ChangeKind) error {
	if n.Type != TypeDir {
		return nil
	}
	t, err := LoadTree(d.ctx, d.repo, n.Subtree)
	if err != nil {
		return err
	}
	for i := range t.Nodes {
		if err := d.whole(path.Join(rel, t.Nodes[i].Name), &t.Nodes[i], kind); err != nil {
			return err
		}
	}
	return nil
}

func sameMetadata(a, b *Node) bool {
	if a.Mode != b.Mode || a.UID != b.UID || a.GID != b.GID || len(a.Xattrs) != len(b.Xattrs) {
		return false
	}
	if a.Type != TypeDir && a.Mtime != b.Mtime {
		return false
	}
	for i := range a.Xattrs {
		if a.Xattrs[i].Name != b.Xattrs[i].Name || !bytes.Equal(a.Xattrs[i].Value, b.Xattrs[i].Value) {
			return false
		}
	}
	return true
}
