package snapshot

import (
	"context"
	"encoding/binary"
	"path"
	"sync"

	"github.com/zeebo/blake3"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
)

// historyWriter writes the history rows of one backup: one row for every
// path that is new, changed or deleted relative to the parent snapshot.
// Unchanged paths get no row, so a file's history is the list of its
// distinct versions.
type historyWriter struct {
	repo   Repo
	source string
	time   int64
	snap   blob.ID

	mu sync.Mutex
	b  index.HistoryWriter
}

func newHistoryWriter(repo Repo, source string, t int64, snap blob.ID) *historyWriter {
	return &historyWriter{repo: repo, source: source, time: t, snap: snap, b: repo.Index().NewHistoryBatch()}
}

func (h *historyWriter) put(rel string, n *Node, kind index.Kind) error {
	r := &index.HistoryRow{Source: h.source, Path: rel, Time: h.time, Snapshot: h.snap, Kind: kind}
	if n != nil {
		r.Size, r.Mtime, r.Content = n.Size, n.Mtime, ContentHash(n)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.b.Put(r)
}

func (h *historyWriter) commit() error { return h.b.Commit() }

func (h *historyWriter) abort() { h.b.Abort() }

// deleteRows removes rows already committed for a snapshot that was never
// written. Rows left by a crash are harmless: readers ignore rows of
// snapshots that do not exist, and index rebuild drops them.
func (h *historyWriter) deleteRows() { _ = h.repo.Index().DeleteHistory(h.source, h.snap) }

// KindOf maps a node type to its history kind.
func KindOf(t NodeType) index.Kind {
	switch t {
	case TypeFile:
		return index.KindFile
	case TypeDir:
		return index.KindDir
	case TypeSymlink:
		return index.KindSymlink
	}
	return index.KindOther
}

// ContentHash identifies a node's content for the history view: equal
// hashes mean the same bytes (files), target (symlinks) or device.
func ContentHash(n *Node) blob.ID {
	h := blake3.New()
	var b [9]byte
	b[0] = byte(n.Type)
	switch n.Type {
	case TypeFile:
		for _, c := range n.Content {
			h.Write(c.ID[:])
			binary.BigEndian.PutUint64(b[1:], c.Size)
			h.Write(b[:])
		}
	case TypeSymlink:
		h.Write([]byte(n.LinkTarget))
	case TypeCharDev, TypeBlockDev:
		binary.BigEndian.PutUint64(b[1:], n.Rdev)
		h.Write(b[:])
	default:
		h.Write(b[:1])
	}
	var id blob.ID
	h.Sum(id[:0])
	return id
}

// diff writes rows for the entries of one directory (at rel) compared with
// the same directory in the parent snapshot. Names in skipped were excluded
// or could not be read this time and are not reported as deleted.
func (h *historyWriter) diff(ctx context.Context, rel string, cur, parent *Tree, skipped []string) error {
	var pn []Node
	if parent != nil {
		pn = parent.Nodes
	}
	cn := cur.Nodes
	i, j := 0, 0
	for i < len(cn) || j < len(pn) {
		switch {
		case j >= len(pn) || (i < len(cn) && cn[i].Name < pn[j].Name): // new
			if err := h.put(path.Join(rel, cn[i].Name), &cn[i], KindOf(cn[i].Type)); err != nil {
				return err
			}
			i++
		case i >= len(cn) || pn[j].Name < cn[i].Name: // gone
			if !contains(skipped, pn[j].Name) {
				if err := h.deleted(ctx, path.Join(rel, pn[j].Name), &pn[j]); err != nil {
					return err
				}
			}
			j++
		default:
			c, p := &cn[i], &pn[j]
			p2 := path.Join(rel, c.Name)
			if c.Type != p.Type {
				if p.Type == TypeDir {
					if err := h.deletedBelow(ctx, p2, p); err != nil {
						return err
					}
				}
				if err := h.put(p2, c, KindOf(c.Type)); err != nil {
					return err
				}
			} else if c.Type != TypeDir && ContentHash(c) != ContentHash(p) {
				if err := h.put(p2, c, KindOf(c.Type)); err != nil {
					return err
				}
			}
			i, j = i+1, j+1
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// deleted records that rel (and, for a directory, everything below it)
// stopped existing.
func (h *historyWriter) deleted(ctx context.Context, rel string, n *Node) error {
	if n.Type == TypeDir {
		if err := h.deletedBelow(ctx, rel, n); err != nil {
			return err
		}
	}
	return h.put(rel, nil, index.KindDeleted)
}

func (h *historyWriter) deletedBelow(ctx context.Context, rel string, dir *Node) error {
	t, err := LoadTree(ctx, h.repo, dir.Subtree)
	if err != nil {
		return err
	}
	for i := range t.Nodes {
		if err := h.deleted(ctx, path.Join(rel, t.Nodes[i].Name), &t.Nodes[i]); err != nil {
			return err
		}
	}
	return nil
}
