package snapshot_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/hindsight-backup/hindsight/snapshot"
)

func TestSetTags(t *testing.T) {
	ctx := context.Background()
	repo, snaps, source := historyRepo(t)
	before := allRows(t, repo, source)
	all, err := snapshot.List(ctx, repo)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := snapshot.SetTags(ctx, repo, []snapshot.TagEdit{
		{Snapshot: all[1], Tags: []string{"keep", "x"}},
		{Snapshot: all[3], Tags: nil},
	})
	if err != nil {
		t.Fatal(err)
	}
	after, err := snapshot.List(ctx, repo)
	if err != nil || len(after) != len(all) {
		t.Fatalf("%d snapshots after tagging (%v), want %d", len(after), err, len(all))
	}
	want := []string{"", "keep,x", "", ""}
	for i, s := range after {
		if got := strings.Join(s.Record.Tags, ","); got != want[i] {
			t.Errorf("snapshot %d tags %q, want %q", i, got, want[i])
		}
		if !s.Record.Time.Equal(all[i].Record.Time) || s.Record.Tree != all[i].Record.Tree {
			t.Errorf("snapshot %d changed more than its tags", i)
		}
	}
	if after[1].ID != ids[0] || after[3].ID != ids[1] || after[1].ID == all[1].ID || after[0].ID != all[0].ID {
		t.Errorf("IDs: before %v, after %v, returned %v", all, after, ids)
	}
	// The rows are the same, under the new IDs.
	rows := allRows(t, repo, source)
	for i := range before {
		before[i] = strings.Replace(before[i], all[1].ID.Short(), ids[0].Short(), 1)
		before[i] = strings.Replace(before[i], all[3].ID.Short(), ids[1].Short(), 1)
	}
	if !slices.Equal(rows, before) {
		t.Errorf("rows after tagging:\n  %s\nwant:\n  %s", strings.Join(rows, "\n  "), strings.Join(before, "\n  "))
	}
	if got := gotVersions(t, repo, source, "a", []*snapshot.Result{
		snaps[0], {ID: ids[0]}, snaps[2], {ID: ids[1]},
	}); !slices.Equal(got, []string{"0: file 1", "1: file 2", "2: file 1"}) {
		t.Errorf("versions of a: %q", got)
	}
	// Forgetting works on the new IDs as on any.
	if err := snapshot.Forget(ctx, repo, ids[:1]); err != nil {
		t.Fatal(err)
	}
	rows = allRows(t, repo, source)
	if rebuilt := rebuiltRows(t, repo, source); !slices.Equal(rows, rebuilt) {
		t.Errorf("rows after forget:\n  %s\nrebuilt:\n  %s", strings.Join(rows, "\n  "), strings.Join(rebuilt, "\n  "))
	}
}
