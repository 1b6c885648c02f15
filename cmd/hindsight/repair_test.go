package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

func TestCheckSubsetFlags(t *testing.T) {
	e, _ := repoWithBackup(t)
	for _, args := range [][]string{
		{"check", "--read-data-subset", "0/7"},
		{"check", "--read-data-subset", "8/7"},
		{"check", "--read-data-subset", "150%"},
		{"check", "--read-data-subset", "half"},
		{"check", "--read-data", "--read-data-subset", "1/2"},
	} {
		if r := wantExit(t, exitUsage, e, noConfig(t, args...)...); !strings.Contains(r.stderr, "read-data") {
			t.Errorf("%v: the error should name the flag: %q", args, r.stderr)
		}
	}
	var read int
	for _, part := range []string{"1/2", "2/2"} {
		r := must(t, e, noConfig(t, "check", "--read-data-subset", part)...)
		var snaps, total, n int
		if _, err := fmt.Sscanf(r.stdout, "checked %d snapshots and %d packs (data of %d", &snaps, &total, &n); err != nil {
			t.Fatalf("check summary %q: %v", r.stdout, err)
		}
		read += n
		if part == "2/2" && read != total {
			t.Errorf("parts 1/2 and 2/2 read %d of %d packs", read, total)
		}
	}
	if r := wantExit(t, exitUsage, e, noConfig(t, "check", "--remote", "nowhere")...); !strings.Contains(r.stderr, "no such remote") {
		t.Errorf("check --remote of an unknown remote: %q", r.stderr)
	}
}

func TestRepairCommands(t *testing.T) {
	e, _ := repoWithBackup(t)
	wantExit(t, exitUsage, e, noConfig(t, "repair")...)
	wantExit(t, exitUsage, e, noConfig(t, "repair", "bogus")...)
	if r := wantExit(t, exitUsage, e, noConfig(t, "repair", "packs")...); !strings.Contains(r.stderr, "--from") {
		t.Errorf("repair packs without remotes should ask for --from: %q", r.stderr)
	}
	wantExit(t, exitUsage, e, noConfig(t, "repair", "packs", "not-a-pack", "--from", "x")...)
	if r := must(t, e, noConfig(t, "repair", "index")...); !strings.Contains(r.stdout, "index rebuilt") {
		t.Errorf("repair index: %q", r.stdout)
	}
	if r := must(t, e, noConfig(t, "repair", "snapshots", "--dry-run")...); !strings.Contains(r.stdout, "rewritten: 0, removed: 0") {
		t.Errorf("repair snapshots of a sound repository: %q", r.stdout)
	}

	// Every pack lost, and no replica: the snapshot goes, and check is
	// clean again (the lost packs, used by nothing, are notices).
	for _, p := range packFiles(t, e["HINDSIGHT_REPOSITORY"]) {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	wantExit(t, exitDamage, e, noConfig(t, "check")...)
	r := must(t, e, noConfig(t, "repair", "snapshots")...)
	if !strings.Contains(r.stdout, "removed: 1") {
		t.Errorf("a snapshot whose trees are all lost is removed: %q", r.stdout)
	}
	if r := must(t, e, noConfig(t, "check")...); !strings.Contains(r.stdout, "0 problems") {
		t.Errorf("check after repair snapshots: %q", r.stdout)
	}
}
