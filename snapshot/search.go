package snapshot

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
)

// Pattern selects paths for Search. A pattern without a slash is matched
// against each entry's name, as find -name does; one with a slash against
// its whole path as HostPath spells it (so "/home/*/.bashrc" works, and
// "*" never matches a slash). The syntax is path.Match's.
type Pattern struct {
	glob     string
	wholeDir bool
}

// NewPattern checks a pattern's syntax.
func NewPattern(glob string) (Pattern, error) {
	if _, err := path.Match(glob, ""); err != nil {
		return Pattern{}, fmt.Errorf("pattern %q: %w", glob, err)
	}
	return Pattern{glob: glob, wholeDir: strings.Contains(glob, "/")}, nil
}

func (p Pattern) match(source, rel string) bool {
	s := path.Base(rel)
	if p.wholeDir {
		s = HostPath(source, rel)
	}
	ok, _ := path.Match(p.glob, s)
	return ok
}

// HostPath is where a path of a snapshot was on the backed-up host: below
// the source for a directory backed up by its path, below "/" for a
// source that is no path (a mounted volume snapshot, "lvm:VG/LV").
func HostPath(source, rel string) string {
	if strings.HasPrefix(source, "/") {
		return path.Join(source, rel)
	}
	return "/" + rel
}

// Match is one version of a path that Search found: a state the path
// kept through consecutive snapshots, and those snapshots.
type Match struct {
	Host, Source string
	Path         string // relative to the source's root
	Kind         index.Kind
	Size         uint64
	Mtime        time.Time // of the version when first backed up
	Snapshots    []Snapshot
}

// Search calls fn for each version of each path matching p in the file
// snapshots of snaps, by path, then oldest first. snaps must hold every
// listed snapshot of each source to search. It reads the history rows
// alone, one scan per source, and no tree: rows say when a path's content
// or type changed, and a snapshot holds the state of the newest row at or
// before it. So size and mtime are those of the version when first backed
// up (a change of mtime alone makes no row), and an entry a backup left
// out (excluded, or unreadable) counts as unchanged in that snapshot, as
// in the history view.
func Search(ctx context.Context, repo Repo, snaps []Snapshot, p Pattern, fn func(*Match) error) error {
	order, bySource := historySources(snaps)
	for _, k := range order {
		if err := searchSource(ctx, repo.Index(), bySource[k], p, fn); err != nil {
			return err
		}
	}
	return nil
}

// searchSource scans one source's rows, which come path by path, oldest
// first, and hands each matching path's rows to versions.
func searchSource(ctx context.Context, idx index.Store, snaps []Snapshot, p Pattern, fn func(*Match) error) error {
	pos := make(map[blob.ID]int, len(snaps))
	for i, s := range snaps {
		pos[s.ID] = i
	}
	rec := snaps[0].Record
	var rows []index.HistoryRow
	cur, started := "", false
	flush := func() error {
		if len(rows) == 0 {
			return nil
		}
		return versions(rec.Host, rec.Source, snaps, pos, rows, fn)
	}
	skip := false
	err := idx.HistoryRows(HistorySource(rec.Host, rec.Source), func(r *index.HistoryRow) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !started || r.Path != cur {
			if err := flush(); err != nil {
				return err
			}
			cur, rows, started = r.Path, rows[:0], true
			skip = !p.match(rec.Source, r.Path)
		}
		if _, listed := pos[r.Snapshot]; listed && !skip {
			rows = append(rows, *r)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return flush()
}

// versions turns one path's rows into its versions and the snapshots
// holding each.
func versions(host, source string, snaps []Snapshot, pos map[blob.ID]int, rows []index.HistoryRow, fn func(*Match) error) error {
	var m *Match
	var state *index.HistoryRow
	next := 0
	for i := range snaps {
		changed := false
		for next < len(rows) && pos[rows[next].Snapshot] <= i {
			if state == nil || rows[next].Kind != state.Kind || rows[next].Content != state.Content {
				changed = true
				state = &rows[next]
			}
			next++
		}
		if changed && m != nil {
			if err := fn(m); err != nil {
				return err
			}
			m = nil
		}
		if state == nil || state.Kind == index.KindDeleted {
			continue
		}
		if m == nil {
			m = &Match{Host: host, Source: source, Path: state.Path, Kind: state.Kind, Size: state.Size,
				Mtime: time.Unix(0, state.Mtime)}
		}
		m.Snapshots = append(m.Snapshots, snaps[i])
	}
	if m != nil {
		return fn(m)
	}
	return nil
}
