package snapshot_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
	"github.com/hindsight-backup/hindsight/snapshot"
)

func TestSearch(t *testing.T) {
	ctx := context.Background()
	repo, snaps, _ := historyRepo(t)
	all, err := snapshot.List(ctx, repo)
	if err != nil {
		t.Fatal(err)
	}
	src := all[0].Record.Source
	idx := func(id blob.ID) int {
		return slices.IndexFunc(snaps, func(r *snapshot.Result) bool { return r.ID == id })
	}
	search := func(glob string, list []snapshot.Snapshot) []string {
		t.Helper()
		p, err := snapshot.NewPattern(glob)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		err = snapshot.Search(ctx, repo, list, p, func(m *snapshot.Match) error {
			var in []string
			for _, s := range m.Snapshots {
				in = append(in, fmt.Sprint(idx(s.ID)))
			}
			kind := "file"
			if m.Kind == index.KindDir {
				kind = "dir"
			}
			out = append(out, fmt.Sprintf("%s %s %d in %s", m.Path, kind, m.Size, strings.Join(in, ",")))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	tests := []struct {
		glob string
		want []string
	}{
		{"a", []string{"a file 1 in 0", "a file 2 in 1", "a file 1 in 2,3"}},
		{"t", []string{"t file 6 in 0", "t dir 0 in 1", "t file 6 in 2"}},
		{"?", []string{"a file 1 in 0", "a file 2 in 1", "a file 1 in 2,3", "d dir 0 in 0,1,2,3",
			"g file 2 in 0", "g file 2 in 2", "n file 2 in 1,2", "n file 5 in 3",
			"t file 6 in 0", "t dir 0 in 1", "t file 6 in 2",
			"d/x file 2 in 0,1", "d/x file 4 in 2,3", "d/y file 2 in 0", "d/y file 3 in 1", "keep/k file 1 in 0,1,2,3"}},
		{filepath.Join(src, "d/*"), []string{"d/x file 2 in 0,1", "d/x file 4 in 2,3", "d/y file 2 in 0", "d/y file 3 in 1"}},
		{"/d/*", nil},
		{"nothing", nil},
	}
	for _, tt := range tests {
		got := search(tt.glob, all)
		slices.SortStableFunc(got, func(a, b string) int {
			return strings.Count(a, "/") - strings.Count(b, "/")
		})
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s:\n  %s\nwant:\n  %s", tt.glob, strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
		}
	}
	if err := snapshot.Forget(ctx, repo, []blob.ID{snaps[1].ID, snaps[2].ID}); err != nil {
		t.Fatal(err)
	}
	all, _ = snapshot.List(ctx, repo)
	if got := search("a", all); !slices.Equal(got, []string{"a file 1 in 0,3"}) {
		t.Errorf("after forget: %q", got)
	}
	if _, err := snapshot.NewPattern("[x"); err == nil {
		t.Error("bad pattern accepted")
	}
}
