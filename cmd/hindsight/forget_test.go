package main

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// threeBackups backs up a tree three times: hello.txt changes before the
// second backup and not before the third, which adds new.txt.
func threeBackups(t *testing.T) (env, string, []snapshotJSON) {
	t.Helper()
	e, src := repoWithBackup(t)
	writeFile(t, filepath.Join(src, "hello.txt"), "second version\n")
	must(t, e, noConfig(t, "backup", src)...)
	writeFile(t, filepath.Join(src, "new.txt"), "new\n")
	must(t, e, noConfig(t, "backup", src)...)
	snaps := jsonLines[snapshotJSON](t, must(t, e, noConfig(t, "snapshots", "--json")...).stdout)
	if len(snaps) != 3 {
		t.Fatalf("%d snapshots, want 3", len(snaps))
	}
	return e, src, snaps
}

func historyOf(t *testing.T, e env, path string) []string {
	t.Helper()
	var out []string
	for _, v := range jsonLines[historyJSON](t, must(t, e, noConfig(t, "history", path, "--json")...).stdout) {
		out = append(out, v.Snapshot[:8]+" "+v.Kind)
	}
	return out
}

func snapshotIDs(t *testing.T, e env) []string {
	t.Helper()
	var ids []string
	for _, s := range jsonLines[snapshotJSON](t, must(t, e, noConfig(t, "snapshots", "--json")...).stdout) {
		ids = append(ids, s.ID)
	}
	return ids
}

// TestForgetByID forgets the middle snapshot: the third holds the second
// version of hello.txt unchanged, and the history keeps that version,
// now first seen in the third snapshot.
func TestForgetByID(t *testing.T) {
	e, src, snaps := threeBackups(t)
	hello := filepath.Join(src, "hello.txt")
	before := historyOf(t, e, hello)
	if want := []string{snaps[0].ID[:8] + " file", snaps[1].ID[:8] + " file"}; !slices.Equal(before, want) {
		t.Fatalf("history before forget %q, want %q", before, want)
	}
	r := must(t, e, noConfig(t, "forget", snaps[1].ID[:8], "--dry-run")...)
	if !strings.Contains(r.stdout, "would remove 1 snapshot") || len(snapshotIDs(t, e)) != 3 {
		t.Fatalf("dry run:\n%s", r.stdout)
	}
	r = must(t, e, noConfig(t, "forget", snaps[1].ID[:8])...)
	if !strings.Contains(r.stdout, "removed 1 snapshot") {
		t.Errorf("forget output:\n%s", r.stdout)
	}
	if ids := snapshotIDs(t, e); !slices.Equal(ids, []string{snaps[0].ID, snaps[2].ID}) {
		t.Fatalf("snapshots after forget: %q", ids)
	}
	if got, want := historyOf(t, e, hello), []string{snaps[0].ID[:8] + " file", snaps[2].ID[:8] + " file"}; !slices.Equal(got, want) {
		t.Errorf("history after forget %q, want %q", got, want)
	}
	// The first and the last too.
	must(t, e, noConfig(t, "forget", snaps[0].ID, snaps[2].ID[:6])...)
	if ids := snapshotIDs(t, e); len(ids) != 0 {
		t.Fatalf("snapshots left: %q", ids)
	}
	wantExit(t, exitFailure, e, noConfig(t, "history", hello)...)
	wantExit(t, exitFailure, e, noConfig(t, "forget", snaps[0].ID[:8])...)
}

func TestForgetPolicy(t *testing.T) {
	e, src, snaps := threeBackups(t)
	must(t, e, noConfig(t, "tag", snaps[0].ID[:8], "--add", "keep")...)
	ids := snapshotIDs(t, e)
	out := must(t, e, noConfig(t, "forget", "--keep-last", "1", "--keep-tag", "keep", "--dry-run", "--json")...).stdout
	type decision struct {
		ID      string   `json:"id"`
		Keep    bool     `json:"keep"`
		Reasons []string `json:"reasons"`
		DryRun  bool     `json:"dry_run"`
	}
	ds := jsonLines[decision](t, out)
	if len(ds) != 3 || !ds[0].Keep || ds[1].Keep || !ds[2].Keep || !ds[0].DryRun {
		t.Fatalf("decisions: %+v", ds)
	}
	if !slices.Equal(ds[0].Reasons, []string{"tag keep"}) || !slices.Equal(ds[2].Reasons, []string{"last 1"}) || ds[1].Reasons == nil {
		t.Errorf("reasons: %+v", ds)
	}
	if got := snapshotIDs(t, e); !slices.Equal(got, ids) {
		t.Fatalf("a dry run removed snapshots")
	}
	r := must(t, e, noConfig(t, "forget", "--keep-last", "1", "--keep-tag", "keep", "--keep-within", "1d")...)
	for _, want := range []string{"host ", "source " + src, "last 1", "within 24h0m0s", "keep 3, remove 0 snapshots"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("table lacks %q:\n%s", want, r.stdout)
		}
	}
	must(t, e, noConfig(t, "forget", "--keep-last", "1", "--keep-tag", "keep", "--source", src)...)
	if got := snapshotIDs(t, e); !slices.Equal(got, []string{ids[0], ids[2]}) {
		t.Fatalf("after keep-last 1 and the tag: %q, want %q", got, []string{ids[0], ids[2]})
	}
	// A policy for another source touches nothing.
	must(t, e, noConfig(t, "forget", "--keep-last", "1", "--source", "/elsewhere")...)
	if got := snapshotIDs(t, e); len(got) != 2 {
		t.Fatalf("a policy for another source removed snapshots: %q", got)
	}
}

func TestForgetUsage(t *testing.T) {
	e, _ := repoWithBackup(t)
	for _, args := range [][]string{
		{"forget"},
		{"forget", "--dry-run"},
		{"forget", "latest", "--keep-last", "1"},
		{"forget", "latest", "--source", "/x"},
		{"forget", "--keep-last", "-1"},
		{"forget", "--keep-within", "soon"},
		{"forget", "--keep-within", "-3d"},
		{"tag", "latest"},
		{"tag", "--add", "x"},
		{"tag", "latest", "--set", "a", "--add", "b"},
		{"find"},
		{"find", "[x"},
		{"diff", "latest"},
	} {
		r := wantExit(t, exitUsage, e, noConfig(t, args...)...)
		if !strings.Contains(r.stderr, "--help") {
			t.Errorf("%v: usage error without a pointer to --help: %q", args, r.stderr)
		}
	}
	if got := snapshotIDs(t, e); len(got) != 1 {
		t.Fatalf("a refused command changed the snapshots: %q", got)
	}
}

func TestWithinValue(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"48h": 48 * time.Hour, "7d": 7 * 24 * time.Hour, "2w": 14 * 24 * time.Hour,
		"1d12h": 36 * time.Hour, "1.5d": 36 * time.Hour, "90m": 90 * time.Minute,
		"": 0, // the default, as a config file may spell it out: no rule
	} {
		var v withinValue
		if err := v.Set(in); err != nil || time.Duration(v) != want {
			t.Errorf("%q: %v, %v; want %v", in, time.Duration(v), err, want)
		}
	}
	for _, in := range []string{"d", "3x", "0h", "-1d", "1y"} {
		var v withinValue
		if err := v.Set(in); err == nil {
			t.Errorf("%q accepted as %v", in, time.Duration(v))
		}
	}
}
