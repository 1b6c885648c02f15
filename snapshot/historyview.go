package snapshot

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
)

// HistorySource is the key under which a host's source keeps its history,
// so that two hosts backing up "/home" keep separate histories.
func HistorySource(host, source string) string { return host + ":" + source }

// Version is one distinct state of a path.
type Version struct {
	Time     time.Time // the snapshot in which this state first appeared
	Snapshot blob.ID
	Kind     index.Kind // index.KindDeleted when the path stopped existing
	Size     uint64
	Mtime    time.Time
	Content  blob.ID
}

// History returns the versions of one path of a source (HistorySource),
// oldest first: one prefix scan of the history rows, never a walk of every
// snapshot. Rows of snapshots that no longer exist are ignored, and
// consecutive rows with the same content collapse into one version.
func History(ctx context.Context, repo Repo, source, p string) ([]Version, error) {
	snaps, err := List(ctx, repo)
	if err != nil && len(snaps) == 0 {
		return nil, err
	}
	exists := make(map[blob.ID]bool, len(snaps))
	for _, s := range snaps {
		exists[s.ID] = true
	}
	return Versions(repo.Index(), exists, source, p)
}

// Versions is History for a caller that already knows which snapshots
// exist, such as a mount that lists them periodically: it reads nothing
// but the path's history rows.
func Versions(idx index.Store, exists map[blob.ID]bool, source, p string) ([]Version, error) {
	var out []Version
	err := idx.History(source, cleanRel(p), func(r *index.HistoryRow) error {
		// A deletion with no version before it is no version: forget
		// leaves such a row for a moment (see Forget).
		if !exists[r.Snapshot] || (len(out) == 0 && r.Kind == index.KindDeleted) {
			return nil
		}
		if n := len(out); n > 0 && out[n-1].Kind == r.Kind && out[n-1].Content == r.Content {
			return nil
		}
		out = append(out, Version{Time: time.Unix(0, r.Time), Snapshot: r.Snapshot, Kind: r.Kind,
			Size: r.Size, Mtime: time.Unix(0, r.Mtime), Content: r.Content})
		return nil
	})
	return out, err
}

// historySources groups the file snapshots of snaps by history source
// (HistorySource), keeping their order within each, and returns the
// sources in the order first seen.
func historySources(snaps []Snapshot) ([]string, map[string][]Snapshot) {
	by := make(map[string][]Snapshot)
	var order []string
	for _, s := range snaps {
		if s.Record.Kind != KindFiles {
			continue
		}
		k := HistorySource(s.Record.Host, s.Record.Source)
		if _, ok := by[k]; !ok {
			order = append(order, k)
		}
		by[k] = append(by[k], s)
	}
	return order, by
}

func cleanRel(p string) string {
	p = path.Clean("/" + p)
	return p[1:]
}

// RebuildHistory writes the history rows of every snapshot again, comparing
// each snapshot with the previous one of the same host and source. Unchanged
// subtrees (same tree ID) are skipped without being loaded.
func RebuildHistory(ctx context.Context, repo Repo) error {
	snaps, err := List(ctx, repo)
	if err != nil && len(snaps) == 0 {
		return err
	}
	sources, bySource := historySources(snaps)
	sort.Strings(sources)
	for _, src := range sources {
		var prev *Tree
		for _, s := range bySource[src] {
			cur, err := LoadTree(ctx, repo, s.Record.Tree)
			if err != nil {
				return err
			}
			if err := writeRows(ctx, repo, src, s, cur, prev); err != nil {
				return err
			}
			prev = cur
		}
	}
	return nil
}

// writeRows writes the rows of snapshot s of source src compared with the
// top tree prev of the snapshot before it (nil for none).
func writeRows(ctx context.Context, repo Repo, src string, s Snapshot, cur, prev *Tree) error {
	h := newHistoryWriter(repo, src, s.Record.Time.UnixNano(), s.ID)
	leftOut, err := leftOutBy(s.Record)
	if err != nil {
		return err
	}
	if err := rebuildRows(ctx, h, "", cur, prev, true, leftOut); err != nil {
		h.abort()
		return err
	}
	return h.commit()
}

// rebuildRows diffs one directory level and descends into directories whose
// tree changed. The top trees hold only the root node, whose rows are its
// children's, so the top level only descends.
func rebuildRows(ctx context.Context, h *historyWriter, rel string, cur, prev *Tree, top bool, leftOut func(rel, name string) bool) error {
	if !top {
		var skipped []string
		if prev != nil {
			for i := range prev.Nodes {
				name := prev.Nodes[i].Name
				if cur.Find(name) == nil && leftOut(path.Join(rel, name), name) {
					skipped = append(skipped, name)
				}
			}
		}
		if err := h.diff(ctx, rel, cur, prev, skipped); err != nil {
			return err
		}
	}
	for i := range cur.Nodes {
		n := &cur.Nodes[i]
		if n.Type != TypeDir {
			continue
		}
		child := path.Join(rel, n.Name)
		if top {
			child = ""
		}
		var prevSub *Tree
		if p := prev.Find(n.Name); p != nil && p.Type == TypeDir {
			if p.Subtree == n.Subtree {
				continue
			}
			var err error
			if prevSub, err = LoadTree(ctx, h.repo, p.Subtree); err != nil {
				return err
			}
		}
		sub, err := LoadTree(ctx, h.repo, n.Subtree)
		if err != nil {
			return err
		}
		if err := rebuildRows(ctx, h, child, sub, prevSub, false, leftOut); err != nil {
			return err
		}
	}
	return nil
}

// leftOutBy tells, for an entry missing from the snapshot of rec, whether
// the backup left it out (excluded, or unreadable that time) rather than
// found it deleted, as the backup itself decided when it wrote the rows.
func leftOutBy(rec *Record) (func(rel, name string) bool, error) {
	excl, err := NewExcluder(rec.Excludes)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", rec.Time.Format(time.RFC3339), err)
	}
	excl.SetRoot(rec.Source)
	// Incomplete entries read "path: reason", and a path may hold ": "
	// itself: every split is a candidate path.
	unread := make(map[string]bool)
	for _, e := range rec.Incomplete {
		for i := strings.Index(e, ": "); i >= 0; {
			unread[e[:i]] = true
			j := strings.Index(e[i+2:], ": ")
			if j < 0 {
				break
			}
			i += 2 + j
		}
	}
	return func(rel, name string) bool {
		return excl.Excluded(rel, name) || unread[rel]
	}, nil
}
