package snapshot

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
)

// Snapshot is a stored record with its ID.
type Snapshot struct {
	ID     blob.ID
	Record *Record
}

func newSnapshotID() (blob.ID, error) {
	var id blob.ID
	_, err := rand.Read(id[:])
	return id, err
}

// List returns every snapshot, oldest first. Unreadable records are
// reported through the error after the readable ones are collected.
func List(ctx context.Context, repo Repo) ([]Snapshot, error) {
	var out []Snapshot
	var errs []error
	err := repo.ListSnapshots(ctx, func(id blob.ID, b []byte) error {
		r, err := DecodeRecord(b)
		if err != nil {
			errs = append(errs, fmt.Errorf("snapshot %s: %w", id.Short(), err))
			return nil
		}
		out = append(out, Snapshot{ID: id, Record: r})
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Record.Time.Equal(out[j].Record.Time) {
			return out[i].Record.Time.Before(out[j].Record.Time)
		}
		return out[i].ID.String() < out[j].ID.String()
	})
	return out, errors.Join(errs...)
}

// ErrNoSnapshot says a snapshot reference matched nothing.
var ErrNoSnapshot = errors.New("no such snapshot")

// Filter narrows "latest" to a host and source; empty fields match all.
type Filter struct {
	Host, Source string
}

func (f Filter) match(r *Record) bool {
	return (f.Host == "" || f.Host == r.Host) && (f.Source == "" || f.Source == r.Source)
}

// Resolve finds one snapshot by reference: "latest" (the newest matching
// the filter), a full ID, or an unambiguous ID prefix.
func Resolve(ctx context.Context, repo Repo, ref string, f Filter) (Snapshot, error) {
	all, err := List(ctx, repo)
	if err != nil && len(all) == 0 {
		return Snapshot{}, err
	}
	if ref == "latest" {
		for i := len(all) - 1; i >= 0; i-- {
			if f.match(all[i].Record) {
				return all[i], nil
			}
		}
		return Snapshot{}, fmt.Errorf("%w: the repository has no snapshots", ErrNoSnapshot)
	}
	if len(ref) < 4 || strings.Trim(strings.ToLower(ref), "0123456789abcdef") != "" {
		return Snapshot{}, fmt.Errorf("%w: %q is neither \"latest\" nor a snapshot ID (at least 4 hex digits)", ErrNoSnapshot, ref)
	}
	var match []Snapshot
	for _, s := range all {
		if strings.HasPrefix(s.ID.String(), strings.ToLower(ref)) {
			match = append(match, s)
		}
	}
	switch len(match) {
	case 0:
		return Snapshot{}, fmt.Errorf("%w: %s", ErrNoSnapshot, ref)
	case 1:
		return match[0], nil
	}
	return Snapshot{}, fmt.Errorf("snapshot ID prefix %q is ambiguous: %d snapshots match", ref, len(match))
}

// findParent picks the parent snapshot for a backup.
func findParent(ctx context.Context, repo Repo, o BackupOptions) (*Snapshot, error) {
	if o.Parent != nil {
		if o.Parent.IsZero() {
			return nil, nil
		}
		s, err := Resolve(ctx, repo, o.Parent.String(), Filter{})
		if err != nil {
			return nil, fmt.Errorf("parent: %w", err)
		}
		return &s, nil
	}
	s, err := Resolve(ctx, repo, "latest", Filter{Host: o.Host, Source: o.Source})
	if errors.Is(err, ErrNoSnapshot) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if s.Record.Kind != KindFiles {
		return nil, nil
	}
	return &s, nil
}

// RootNode returns the node of the backed-up path itself: the only entry
// of the snapshot's top tree.
func RootNode(ctx context.Context, repo Repo, rec *Record) (*Node, error) {
	t, err := LoadTree(ctx, repo, rec.Tree)
	if err != nil {
		return nil, err
	}
	if len(t.Nodes) != 1 {
		return nil, fmt.Errorf("top tree %s has %d entries, want 1", rec.Tree.Short(), len(t.Nodes))
	}
	return &t.Nodes[0], nil
}

// Lookup walks from the snapshot's root node down a slash-separated path
// ("" or "/" is the root itself).
func Lookup(ctx context.Context, repo Repo, rec *Record, p string) (*Node, error) {
	n, err := RootNode(ctx, repo, rec)
	if err != nil {
		return nil, err
	}
	for _, c := range strings.Split(p, "/") {
		if c == "" || c == "." {
			continue
		}
		if n.Type != TypeDir {
			return nil, fmt.Errorf("%s: not a directory", p)
		}
		t, err := LoadTree(ctx, repo, n.Subtree)
		if err != nil {
			return nil, err
		}
		if n = t.Find(c); n == nil {
			return nil, fmt.Errorf("%s: no such file or directory in the snapshot", p)
		}
	}
	return n, nil
}
