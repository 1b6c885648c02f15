package main

import (
	"slices"
	"strings"
	"testing"
)

func TestTag(t *testing.T) {
	e, src, snaps := threeBackups(t)
	r := must(t, e, noConfig(t, "tag", snaps[1].ID[:8], "--add", "keep", "--add", "x y")...)
	if !strings.Contains(r.stdout, "snapshot "+snaps[1].ID[:8]+" is now ") || !strings.Contains(r.stdout, "tags: keep,x y") {
		t.Errorf("tag output:\n%s", r.stdout)
	}
	after := jsonLines[snapshotJSON](t, must(t, e, noConfig(t, "snapshots", "--json")...).stdout)
	if len(after) != 3 || after[1].ID == snaps[1].ID || after[1].Tree != snaps[1].Tree || !after[1].Time.Equal(snaps[1].Time) {
		t.Fatalf("retagged snapshot: %+v\nwas %+v", after[1], snaps[1])
	}
	if got := []string{string(after[1].Tags[0]), string(after[1].Tags[1])}; !slices.Equal(got, []string{"keep", "x y"}) {
		t.Errorf("tags %q", got)
	}
	wantExit(t, exitFailure, e, noConfig(t, "ls", snaps[1].ID[:8])...)
	// The history names the new ID.
	if got := historyOf(t, e, src+"/hello.txt"); len(got) != 2 || got[1] != after[1].ID[:8]+" file" {
		t.Errorf("history after tag: %q", got)
	}

	type tagResult struct {
		OldID   string   `json:"old_id"`
		ID      string   `json:"id"`
		Tags    []string `json:"tags"`
		Changed bool     `json:"changed"`
	}
	out := must(t, e, noConfig(t, "tag", after[1].ID[:8], after[0].ID[:8], after[1].ID, "--remove", "x y", "--remove", "absent", "--json")...).stdout
	res := jsonLines[tagResult](t, out)
	if len(res) != 2 || !res[0].Changed || res[1].Changed || res[1].ID != after[0].ID || !slices.Equal(res[0].Tags, []string{"keep"}) {
		t.Fatalf("tag --json: %+v", res)
	}
	res = jsonLines[tagResult](t, must(t, e, noConfig(t, "tag", res[0].ID, "--set", "", "--json")...).stdout)
	if len(res) != 1 || !res[0].Changed || len(res[0].Tags) != 0 {
		t.Fatalf("--set '': %+v", res)
	}
	res = jsonLines[tagResult](t, must(t, e, noConfig(t, "tag", "latest", "--set", "b", "--set", "a", "--set", "b", "--json")...).stdout)
	if len(res) != 1 || !slices.Equal(res[0].Tags, []string{"b", "a"}) {
		t.Fatalf("--set b a b: %+v", res)
	}
}
