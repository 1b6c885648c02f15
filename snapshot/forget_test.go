package snapshot_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
	"github.com/hindsight-backup/hindsight/snapshot"
)

// treeState is a source tree: path → file content, or "/" for a directory.
type treeState map[string]string

// historyStates are four backups of one source with every kind of change:
// content changed and changed back, files deleted and added again, a file
// that becomes a directory and a file again, and a subtree ("keep") that
// never changes, so that its tree ID is shared.
var historyStates = []treeState{
	{"a": "1", "d/x": "x1", "d/y": "y1", "g": "g1", "t": "t-file", "keep/k": "k"},
	{"a": "22", "d/x": "x1", "d/y": "y22", "n": "n1", "t": "/", "t/in": "in1", "keep/k": "k"},
	{"a": "1", "d/x": "x333", "n": "n1", "t": "t-file", "g": "g1", "keep/k": "k"},
	{"a": "1", "d/x": "x333", "n": "n4444", "keep/k": "k"},
}

// apply changes dir in place into st: unchanged files keep their inodes
// and times, so unchanged directories keep their tree IDs.
func apply(t *testing.T, dir string, st treeState) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		want, ok := st[rel]
		if !ok && fi.IsDir() && holds(st, rel) {
			ok, want = true, "/"
		}
		if !ok || (want == "/") != fi.IsDir() {
			if err := os.RemoveAll(p); err != nil {
				return err
			}
			if fi.IsDir() {
				return filepath.SkipDir
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for rel, content := range st {
		p := filepath.Join(dir, rel)
		if content == "/" {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if b, err := os.ReadFile(p); err == nil && string(b) == content {
			continue
		}
		writeFile(t, p, []byte(content))
	}
}

// holds reports whether st has anything below dir.
func holds(st treeState, dir string) bool {
	for p := range st {
		if strings.HasPrefix(p, dir+"/") {
			return true
		}
	}
	return false
}

// historyRepo backs up every state with an hour between them, and
// returns the snapshots and the history source.
func historyRepo(t *testing.T) (*chunkstore.Repository, []*snapshot.Result, string) {
	t.Helper()
	repo, _ := chunkstore.TestRepository(t, chunkstore.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var snaps []*snapshot.Result
	for i, st := range historyStates {
		apply(t, src, st)
		snaps = append(snaps, backup(t, repo, src, snapshot.BackupOptions{Time: base.Add(time.Duration(i) * time.Hour)}, nil))
	}
	return repo, snaps, snapshot.HistorySource("testhost", src)
}

// allRows returns every history row of source, rendered for comparison.
func allRows(t *testing.T, repo *chunkstore.Repository, source string) []string {
	t.Helper()
	var out []string
	err := repo.Index().HistoryRows(source, func(r *index.HistoryRow) error {
		out = append(out, fmt.Sprintf("%q %d %s kind %d size %d", r.Path, r.Time, r.Snapshot.Short(), r.Kind, r.Size))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// rebuiltRows deletes every history row of source and writes them again
// from the snapshots, as 'index rebuild' does.
func rebuiltRows(t *testing.T, repo *chunkstore.Repository, source string) []string {
	t.Helper()
	var rows []index.HistoryRow
	repo.Index().HistoryRows(source, func(r *index.HistoryRow) error { rows = append(rows, *r); return nil })
	if err := repo.Index().DeleteHistoryRows(rows); err != nil {
		t.Fatal(err)
	}
	if err := snapshot.RebuildHistory(context.Background(), repo); err != nil {
		t.Fatal(err)
	}
	return allRows(t, repo, source)
}

// wantVersions is what History must say of path after only the snapshots
// kept remain: each distinct state in order, with the index of the
// snapshot it first appears in; a deletion only after a version.
func wantVersions(path string, kept []int) []string {
	var out []string
	last := ""
	for _, i := range kept {
		st, ok := historyStates[i][path]
		state := "deleted"
		switch {
		case ok && st == "/":
			state = "dir"
		case ok:
			state = fmt.Sprintf("file %d", len(st))
		}
		if state == last || (last == "" && state == "deleted") {
			continue
		}
		last = state
		out = append(out, fmt.Sprintf("%d: %s", i, state))
	}
	return out
}

func gotVersions(t *testing.T, repo *chunkstore.Repository, source, path string, snaps []*snapshot.Result) []string {
	t.Helper()
	vs, err := snapshot.History(context.Background(), repo, source, path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, v := range vs {
		i := slices.IndexFunc(snaps, func(r *snapshot.Result) bool { return r.ID == v.Snapshot })
		state := "deleted"
		switch v.Kind {
		case index.KindDir:
			state = "dir"
		case index.KindFile:
			state = fmt.Sprintf("file %d", v.Size)
		}
		out = append(out, fmt.Sprintf("%d: %s", i, state))
	}
	return out
}

func TestForgetKeepsHistory(t *testing.T) {
	paths := make(map[string]bool)
	for _, st := range historyStates {
		for p := range st {
			paths[p] = true
		}
	}
	for _, forget := range [][]int{{1}, {2}, {0}, {3}, {1, 2}, {0, 1}, {0, 3}, {0, 1, 2}, {0, 1, 2, 3}} {
		t.Run(fmt.Sprint(forget), func(t *testing.T) {
			repo, snaps, source := historyRepo(t)
			var ids []blob.ID
			var kept []int
			for i, s := range snaps {
				if slices.Contains(forget, i) {
					ids = append(ids, s.ID)
				} else {
					kept = append(kept, i)
				}
			}
			if err := snapshot.Forget(context.Background(), repo, ids); err != nil {
				t.Fatal(err)
			}
			for p := range paths {
				got, want := gotVersions(t, repo, source, p, snaps), wantVersions(p, kept)
				if !slices.Equal(got, want) {
					t.Errorf("%s: versions %q, want %q", p, got, want)
				}
			}
			names, err := collectNames(repo, source, "")
			if err != nil {
				t.Fatal(err)
			}
			var wantNames []string
			for p := range paths {
				if len(wantVersions(p, kept)) > 0 {
					wantNames = append(wantNames, strings.Split(p, "/")[0])
				}
			}
			slices.Sort(wantNames)
			wantNames = slices.Compact(wantNames)
			if !slices.Equal(names, wantNames) {
				t.Errorf("history lists %q at the top, want %q", names, wantNames)
			}
			rows := allRows(t, repo, source)
			if rebuilt := rebuiltRows(t, repo, source); !slices.Equal(rows, rebuilt) {
				t.Errorf("rows after forget:\n  %s\nrebuilt from the snapshots:\n  %s",
					strings.Join(rows, "\n  "), strings.Join(rebuilt, "\n  "))
			}
			var cached []blob.ID
			repo.Index().Snapshots(func(id blob.ID, _ []byte) error { cached = append(cached, id); return nil })
			for _, id := range ids {
				if slices.Contains(cached, id) {
					t.Errorf("summary row of forgotten snapshot %s left in the index", id.Short())
				}
			}
			all, err := snapshot.List(context.Background(), repo)
			if err != nil || len(all) != len(kept) {
				t.Errorf("%d snapshots listed (%v), want %d", len(all), err, len(kept))
			}
		})
	}
}

func collectNames(repo *chunkstore.Repository, source, dir string) ([]string, error) {
	var out []string
	err := repo.Index().HistoryChildren(source, dir, func(n string) error { out = append(out, n); return nil })
	return out, err
}

// TestForgetWithExcludes forgets the snapshot before one that excluded a
// file: the excluded file counts as unchanged, not deleted, whichever
// snapshot it is compared with.
func TestForgetWithExcludes(t *testing.T) {
	repo, _ := chunkstore.TestRepository(t, chunkstore.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var snaps []*snapshot.Result
	for i, st := range []treeState{
		{"k.log": "one", "a": "1"},
		{"k.log": "two!", "a": "22"},
		{"k.log": "two!", "a": "22"},
		{"k.log": "two!", "a": "1"},
	} {
		apply(t, src, st)
		o := snapshot.BackupOptions{Time: base.Add(time.Duration(i) * time.Hour)}
		if i == 2 {
			o.Excludes = []string{"*.log"}
		}
		snaps = append(snaps, backup(t, repo, src, o, nil))
	}
	source := snapshot.HistorySource("testhost", src)
	if err := snapshot.Forget(context.Background(), repo, []blob.ID{snaps[1].ID}); err != nil {
		t.Fatal(err)
	}
	rows := allRows(t, repo, source)
	if rebuilt := rebuiltRows(t, repo, source); !slices.Equal(rows, rebuilt) {
		t.Errorf("rows after forget:\n  %s\nrebuilt:\n  %s", strings.Join(rows, "\n  "), strings.Join(rebuilt, "\n  "))
	}
	vs, _ := snapshot.History(context.Background(), repo, source, "k.log")
	if len(vs) != 2 || vs[0].Snapshot != snaps[0].ID || vs[1].Snapshot != snaps[3].ID || vs[1].Size != 4 {
		t.Errorf("k.log versions %+v, want the first backup's and the last's", vs)
	}
}

func TestForgetRefuses(t *testing.T) {
	repo, snaps, _ := historyRepo(t)
	err := snapshot.Forget(context.Background(), repo, []blob.ID{snaps[0].ID, {1, 2, 3}})
	if err == nil || !strings.Contains(err.Error(), "no such snapshot") {
		t.Fatalf("forgetting an unknown ID: %v", err)
	}
	if all, _ := snapshot.List(context.Background(), repo); len(all) != len(snaps) {
		t.Fatalf("a refused forget removed snapshots: %d left", len(all))
	}
	if err := snapshot.Forget(context.Background(), repo, []blob.ID{snaps[0].ID, snaps[0].ID}); err != nil {
		t.Fatalf("an ID named twice: %v", err)
	}
}
