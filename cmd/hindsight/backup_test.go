package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBackupRestoreRoundTrip is the path a user takes first: init, back
// up, list, look inside, restore, and get the same bytes back.
func TestBackupRestoreRoundTrip(t *testing.T) {
	e := testEnv(t)
	initRepo(t, e)
	src := sourceTree(t)

	r := must(t, e, noConfig(t, "backup", src, "--tag", "first", "--host", "testhost")...)
	if !strings.Contains(r.stdout, "snapshot ") || !strings.Contains(r.stdout, "files: 3") {
		t.Errorf("backup summary:\n%s", r.stdout)
	}

	r = must(t, e, noConfig(t, "snapshots")...)
	for _, want := range []string{"testhost", src, "first"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("snapshots table lacks %q:\n%s", want, r.stdout)
		}
	}
	snaps := jsonLines[snapshotJSON](t, must(t, e, noConfig(t, "snapshots", "--json")...).stdout)
	if len(snaps) != 1 || snaps[0].Host != "testhost" || snaps[0].Stats.Files != 3 || len(snaps[0].ID) != 64 {
		t.Fatalf("snapshots --json: %+v", snaps)
	}
	id := snaps[0].ID

	r = must(t, e, noConfig(t, "ls", "latest", "-R")...)
	for _, want := range []string{"hello.txt", `"sub/two\nlines"`, "link -> hello.txt", "-rw-r--r--", "drwx"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("ls -R lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "two\nlines") {
		t.Errorf("ls printed a raw newline from a name:\n%s", r.stdout)
	}
	entries := jsonLines[map[string]any](t, must(t, e, noConfig(t, "ls", id[:8]+":sub", "--json")...).stdout)
	names := map[string]bool{}
	for _, en := range entries {
		names[en["name"].(string)] = true
	}
	if len(entries) != 2 || !names["data.bin"] || !names["two\nlines"] {
		t.Errorf("ls --json of sub: %v", entries)
	}

	target := filepath.Join(t.TempDir(), "restored")
	must(t, e, noConfig(t, "restore", "latest", "--target", target, "--verify")...)
	compareTrees(t, src, target)

	sub := filepath.Join(t.TempDir(), "sub-only")
	must(t, e, noConfig(t, "restore", id[:6]+":sub", "--target", sub)...)
	compareTrees(t, filepath.Join(src, "sub"), sub)
}

func TestBackupJSON(t *testing.T) {
	e := testEnv(t)
	initRepo(t, e)
	src := sourceTree(t)
	r := must(t, e, noConfig(t, "backup", src, "--json", "--exclude", "*.bin")...)
	got := jsonLines[backupJSON](t, r.stdout)
	if len(got) != 1 {
		t.Fatalf("backup --json printed %d objects:\n%s", len(got), r.stdout)
	}
	if !got[0].Complete || got[0].Files != 2 || len(got[0].Snapshot) != 64 {
		t.Errorf("backup --json: %+v", got[0])
	}
	ls := must(t, e, noConfig(t, "ls", "latest", "sub", "--short")...)
	if strings.Contains(ls.stdout, "data.bin") {
		t.Errorf("excluded file was backed up:\n%s", ls.stdout)
	}
}

func TestBackupExcludeFileAndParent(t *testing.T) {
	e := testEnv(t)
	initRepo(t, e)
	src := sourceTree(t)
	ex := filepath.Join(t.TempDir(), "excludes")
	writeFile(t, ex, "# comment\n\nhello.txt\n")
	first := jsonLines[backupJSON](t, must(t, e, noConfig(t, "backup", src, "--json", "--exclude-file", ex)...).stdout)[0]
	second := jsonLines[backupJSON](t, must(t, e, noConfig(t, "backup", src, "--json", "--parent", first.Snapshot[:10])...).stdout)[0]
	if second.Parent != first.Snapshot {
		t.Errorf("parent %q, want %q", second.Parent, first.Snapshot)
	}
	if first.Files != 2 || second.Files != 3 {
		t.Errorf("files: %d then %d, want 2 then 3", first.Files, second.Files)
	}
	wantExit(t, exitFailure, e, noConfig(t, "backup", src, "--parent", "ffffffff")...)
}

func TestBackupMissingPath(t *testing.T) {
	e := testEnv(t)
	initRepo(t, e)
	missing := filepath.Join(t.TempDir(), "nothing-here")
	r := wantExit(t, exitFailure, e, noConfig(t, "backup", missing)...)
	if !strings.Contains(r.stderr, missing) {
		t.Errorf("error does not name the path: %q", r.stderr)
	}
}

// compareTrees checks that every file, symlink and directory of want is
// in got with the same content.
func compareTrees(t *testing.T, want, got string) {
	t.Helper()
	err := filepath.Walk(want, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		q := filepath.Join(got, rel)
		gi, err := os.Lstat(q)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			return nil
		}
		if gi.Mode() != fi.Mode() {
			t.Errorf("%s: mode %v, want %v", rel, gi.Mode(), fi.Mode())
		}
		switch {
		case fi.Mode().IsRegular():
			a, _ := os.ReadFile(p)
			b, _ := os.ReadFile(q)
			if !bytes.Equal(a, b) {
				t.Errorf("%s: content differs", rel)
			}
		case fi.Mode()&os.ModeSymlink != 0:
			a, _ := os.Readlink(p)
			b, _ := os.Readlink(q)
			if a != b {
				t.Errorf("%s: link %q, want %q", rel, b, a)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
