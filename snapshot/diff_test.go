package snapshot_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/snapshot"
)

func diffLines(t *testing.T, repo snapshot.Repo, a, b *snapshot.Record) []string {
	t.Helper()
	var out []string
	err := snapshot.Diff(context.Background(), repo, a, b, func(c *snapshot.Change) error {
		out = append(out, c.Kind.String()+" "+c.Path)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDiffKinds(t *testing.T) {
	repo, _ := chunkstore.TestRepository(t, chunkstore.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	apply(t, src, historyStates[0])
	first := backup(t, repo, src, snapshot.BackupOptions{}, nil)
	apply(t, src, historyStates[1])
	if err := os.Chmod(filepath.Join(src, "d/x"), 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(src, "keep"), old, old); err != nil {
		t.Fatal(err)
	}
	second := backup(t, repo, src, snapshot.BackupOptions{}, nil)
	got := diffLines(t, repo, first.Record, second.Record)
	want := []string{"modified a", "metadata d/x", "modified d/y", "removed g", "added n", "type t", "added t/in"}
	if !slices.Equal(got, want) {
		t.Errorf("diff:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	got = diffLines(t, repo, second.Record, first.Record)
	want = []string{"modified a", "metadata d/x", "modified d/y", "added g", "removed n", "type t", "removed t/in"}
	if !slices.Equal(got, want) {
		t.Errorf("reverse diff:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if got := diffLines(t, repo, first.Record, first.Record); len(got) != 0 {
		t.Errorf("a snapshot differs from itself: %q", got)
	}
	stop := errors.New("stop")
	err := snapshot.Diff(context.Background(), repo, first.Record, second.Record, func(*snapshot.Change) error { return stop })
	if !errors.Is(err, stop) {
		t.Errorf("callback error not returned: %v", err)
	}
}
