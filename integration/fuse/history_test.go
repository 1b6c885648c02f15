package fuse

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hindsight-backup/hindsight/integration/testtree"
)

// versionName is what snapshot and version names look like: sortable,
// and free of colons, which Samba cannot show and scp takes for a host.
var versionName = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d{6}Z(_[0-9a-f]{8})?$`)

// names lists a directory of the mount, failing the test on error.
func names(t testing.TB, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Name()
	}
	return out
}

// readVersions returns the contents of every version of rel, oldest first;
// a symlink version as "-> target".
func readVersions(t testing.TB, hist, rel string) []string {
	t.Helper()
	dir := filepath.Join(hist, rel)
	var out []string
	vs := names(t, dir)
	for _, n := range vs {
		if !versionName.MatchString(n) {
			continue // a name in a directory that was once this file
		}
		b, err := os.ReadFile(filepath.Join(dir, n))
		if target, lerr := os.Readlink(filepath.Join(dir, n)); lerr == nil {
			b, err = []byte("-> "+target), nil
		}
		if err != nil {
			t.Fatalf("version %s of %s: %v", n, rel, err)
		}
		out = append(out, string(b))
	}
	return out
}

// TestHistory backs a tree up, changes it, backs it up twice more (the
// last time without changes), and checks the history view of every kind
// of change: one entry per distinct content, deleted files included,
// names that sort by time.
func TestHistory(t *testing.T) {
	r := newRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	testtree.Build(t, src)
	r.backup(t, src)
	changes := testtree.Mutate(t, src, 7)
	before := make(map[string]string)
	r.backup(t, src) // nothing happened between these two
	r.backup(t, src)
	mnt, _ := r.mount(t)
	srcDir := sourceDir(mnt, src)
	hist := filepath.Join(srcDir, ".history")

	snaps := slices.DeleteFunc(names(t, srcDir), func(n string) bool { return n == "latest" || n == ".history" })
	if len(snaps) != 3 || !slices.IsSorted(snaps) {
		t.Fatalf("snapshots %q, want 3 in order", snaps)
	}
	for _, n := range snaps {
		if !versionName.MatchString(n) {
			t.Errorf("snapshot name %q", n)
		}
	}
	first := filepath.Join(srcDir, snaps[0])
	for _, c := range changes {
		if b, err := os.ReadFile(filepath.Join(first, c.Path)); err == nil {
			before[c.Path] = string(b)
		}
	}
	now := latest(t, mnt, src)
	for _, c := range changes {
		if strings.HasPrefix(c.Path, testtree.LongPathRoot+"/") {
			continue // beyond PATH_MAX for os.ReadFile
		}
		t.Run(string(c.Op)+"/"+c.Path, func(t *testing.T) {
			got := readVersions(t, hist, c.Path)
			switch c.Op {
			case testtree.OpContent, testtree.OpAppend, testtree.OpAdd:
				cur, err := os.ReadFile(filepath.Join(now, c.Path))
				if err != nil {
					t.Fatal(err)
				}
				want := []string{before[c.Path], string(cur)}
				if c.Op == testtree.OpAdd {
					want = want[1:]
				}
				if !slices.Equal(got, want) {
					t.Errorf("%d versions, want %d (old, new) in order", len(got), len(want))
				}
			case testtree.OpDelete:
				if !slices.Equal(got, []string{before[c.Path]}) {
					t.Errorf("deleted file: %d versions, want its last content", len(got))
				}
				dir, name := filepath.Split(c.Path)
				if !slices.Contains(names(t, filepath.Join(hist, dir)), name) {
					t.Errorf("deleted file missing from its history directory's listing")
				}
			case testtree.OpToDir:
				if !slices.Equal(got, []string{before[c.Path]}) {
					t.Errorf("file turned directory: %d file versions, want 1", len(got))
				}
				if !slices.Contains(names(t, filepath.Join(hist, c.Path)), "inside") {
					t.Errorf("file turned directory: the new child is not listed")
				}
			case testtree.OpToSymlink:
				if len(got) != 2 || got[0] != before[c.Path] || !strings.HasPrefix(got[1], "-> ") {
					t.Errorf("file turned symlink: versions %.40q, want the file, then the link", got)
				}
			case testtree.OpMode, testtree.OpOwner, testtree.OpXattr, testtree.OpTouch:
				if len(got) != 1 {
					t.Errorf("metadata-only change: %d versions, want 1", len(got))
				}
			}
		})
	}
}

// TestHistoryVersionMetadata checks that a version shows the mtime and
// mode of that version, and the same inode number as in its snapshot.
func TestHistoryVersionMetadata(t *testing.T) {
	r := newRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	small(t, src)
	p := filepath.Join(src, "sub/notes.txt")
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
	r.backup(t, src)
	if err := os.WriteFile(p, []byte("changed\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	r.backup(t, src)
	mnt, _ := r.mount(t)
	dir := filepath.Join(sourceDir(mnt, src), ".history", "sub", "notes.txt")
	vs := names(t, dir)
	if len(vs) != 2 {
		t.Fatalf("versions %q, want 2", vs)
	}
	st, err := os.Stat(filepath.Join(dir, vs[0]))
	if err != nil {
		t.Fatal(err)
	}
	if !st.ModTime().Equal(old) || st.Mode().Perm() != 0o644 {
		t.Errorf("first version: mtime %v mode %v, want %v 0644", st.ModTime(), st.Mode(), old)
	}
	inSnap, err := os.Stat(filepath.Join(sourceDir(mnt, src), vs[0], "sub", "notes.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(st, inSnap) {
		t.Errorf("the version and the snapshot's file are different inodes")
	}
}

// TestNewSnapshotAppears backs up while the repository is mounted: the
// new snapshot shows up, and latest moves to it, without a remount.
func TestNewSnapshotAppears(t *testing.T) {
	r := newRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	small(t, src)
	r.backup(t, src)
	mnt, _ := r.mount(t)
	before := latest(t, mnt, src)
	listed := names(t, sourceDir(mnt, src)) // the kernel may keep this listing
	if err := os.WriteFile(filepath.Join(src, "new.txt"), []byte("new\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // snapshot names have one-second resolution
	r.backup(t, src)
	start := time.Now()
	ok := eventually(15*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(sourceDir(mnt, src), "latest", "new.txt"))
		return err == nil
	})
	if !ok {
		t.Fatalf("the new snapshot did not appear within 15s; latest is still %s", before)
	}
	t.Logf("new snapshot visible after %v", time.Since(start).Round(time.Millisecond))
	if got := latest(t, mnt, src); got == before {
		t.Errorf("latest still points to %s", got)
	}
	if now := names(t, sourceDir(mnt, src)); len(now) != len(listed)+1 {
		t.Errorf("the source lists %q after the backup, %q before: want one snapshot more", now, listed)
	}
	if vs := names(t, filepath.Join(sourceDir(mnt, src), ".history", "new.txt")); len(vs) != 1 {
		t.Errorf("history of the new file: %q", vs)
	}
}

// TestForgetWhileMounted: forget runs beside a mount (only commands that
// write keep it out), and the mount drops the forgotten snapshot and its
// versions at its next refresh while the rest stays readable.
func TestForgetWhileMounted(t *testing.T) {
	r := newRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	small(t, src)
	note := filepath.Join(src, "sub", "notes.txt")
	r.backup(t, src)
	mnt, _ := r.mount(t)
	oldest := latest(t, mnt, src)
	time.Sleep(time.Second) // snapshot names have one-second resolution
	if err := os.WriteFile(note, []byte("notes, second version\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r.backup(t, src)
	hist := filepath.Join(sourceDir(mnt, src), ".history")
	if !eventually(15*time.Second, func() bool { return len(readVersions(t, hist, "sub/notes.txt")) == 2 }) {
		t.Fatalf("the second snapshot did not appear: versions %q", readVersions(t, hist, "sub/notes.txt"))
	}

	r.run(t, "forget", "--keep-last", "1")
	ok := eventually(15*time.Second, func() bool {
		_, err := os.Stat(oldest)
		return os.IsNotExist(err)
	})
	if !ok {
		t.Fatalf("forgotten snapshot %s still listed 15s after forget", filepath.Base(oldest))
	}
	if got := readVersions(t, hist, "sub/notes.txt"); !slices.Equal(got, []string{"notes, second version\n"}) {
		t.Errorf("versions after forget: %q", got)
	}
	b, err := os.ReadFile(filepath.Join(latest(t, mnt, src), "sub", "notes.txt"))
	if err != nil || string(b) != "notes, second version\n" {
		t.Errorf("latest after forget: %q, %v", b, err)
	}
}
