package fuse

import (
	"bytes"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/hindsight-backup/hindsight/integration/testtree"
)

// TestToolsSeeTheSource backs the test tree up once and asks find, stat,
// ls -li, getfattr and du what they see through the mount, comparing their
// output with what they print for the source.
func TestToolsSeeTheSource(t *testing.T) {
	r, src, m, snap := mountTestTree(t)

	t.Run("find", func(t *testing.T) {
		// hindsight does not back sockets up.
		want := findPaths(t, src, "!", "-type", "s")
		got := findPaths(t, snap)
		if len(got) != len(want) {
			t.Errorf("find lists %d entries in the mount, %d in the source", len(got), len(want))
		}
		for _, p := range setDiff(want, got) {
			t.Errorf("only in the source: %q", p)
		}
		for _, p := range setDiff(got, want) {
			t.Errorf("only in the mount: %q", p)
		}
		// find -type reads the type the listing gives (d_type), without
		// a stat, from entries listed bare to a caller that stats nothing.
		for _, typ := range []string{"f", "d", "l", "p", "c"} {
			want, got := findPaths(t, src, "-type", typ), findPaths(t, snap, "-type", typ)
			if want[0] == "" || len(setDiff(want, got))+len(setDiff(got, want)) != 0 {
				t.Errorf("find -type %s: only in the source %q, only in the mount %q (%d in the source)",
					typ, setDiff(want, got), setDiff(got, want), len(want))
			}
		}
	})

	links := m.WithTag(testtree.TagHardlink)
	if len(links) != 3 {
		t.Fatalf("testtree has %d names of its hardlinked file, want 3", len(links))
	}
	// A file with the same content and metadata as the linked one, but an
	// inode of its own.
	const twin = "hardlinks/zz-twin"
	paths := []string{twin}
	for _, e := range links {
		paths = append(paths, e.Path)
	}

	t.Run("stat", func(t *testing.T) {
		first := statInodes(t, snap, paths)
		checkLinks(t, "stat", first, paths)
		// Forget the kernel's dentries and inodes, so that the second
		// stat looks every name up again.
		if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("2"), 0); err != nil {
			t.Fatalf("drop_caches: %v", err)
		}
		again := statInodes(t, snap, paths)
		if !maps.Equal(first, again) {
			t.Errorf("inode numbers changed after the kernel forgot them: %v, then %v", first, again)
		}
		mnt2, _ := r.mount(t)
		other := statInodes(t, latest(t, mnt2, src), paths)
		if !maps.Equal(first, other) {
			t.Errorf("a second mount numbers the inodes differently: %v, then %v", first, other)
		}
	})

	t.Run("ls -li", func(t *testing.T) {
		want := statInodes(t, snap, paths)
		got := make(map[string]inode)
		for _, dir := range []string{"hardlinks", "hardlinks/one", "hardlinks/two"} {
			out, err := exec.Command("ls", "-li", filepath.Join(snap, dir)).Output()
			if err != nil {
				t.Fatalf("ls -li %s: %v", dir, err)
			}
			// "12345 -rw-r----- 3 owner group 24 Jan  2 03:04 name"
			for _, line := range strings.Split(string(out), "\n") {
				f := strings.Fields(line)
				if len(f) < 9 || f[0] == "total" {
					continue
				}
				ino, err1 := strconv.ParseUint(f[0], 10, 64)
				nlink, err2 := strconv.ParseUint(f[2], 10, 64)
				if err1 != nil || err2 != nil {
					t.Fatalf("ls -li line %q", line)
				}
				got[filepath.Join(dir, f[len(f)-1])] = inode{ino, nlink}
			}
		}
		for _, p := range paths {
			if got[p] != want[p] {
				t.Errorf("%s: ls -li shows inode %d with %d links, stat %d with %d", p, got[p].ino, got[p].nlink, want[p].ino, want[p].nlink)
			}
		}
		checkLinks(t, "ls -li", got, paths)
	})

	t.Run("getfattr", func(t *testing.T) {
		want := getfattr(t, src)
		got := getfattr(t, snap)
		if len(m.WithTag(testtree.TagXattr)) == 0 || len(want) < len(m.WithTag(testtree.TagXattr)) {
			t.Fatalf("getfattr shows %d files with attributes in the source", len(want))
		}
		for p, w := range want {
			if g, ok := got[p]; !ok {
				t.Errorf("%s: getfattr shows %q in the source, nothing in the mount", p, w)
			} else if g != w {
				t.Errorf("%s: getfattr shows\n%s\nin the mount,\n%s\nin the source", p, g, w)
			}
		}
		for p, g := range got {
			if _, ok := want[p]; !ok {
				t.Errorf("%s: getfattr shows %q in the mount, nothing in the source", p, g)
			}
		}
	})

	t.Run("du", func(t *testing.T) {
		sparse := m.WithTag(testtree.TagSparse)
		if len(sparse) == 0 {
			t.Fatal("testtree has no sparse file")
		}
		for _, p := range []string{".", sparse[0].Path} {
			want, got := du(t, filepath.Join(src, p)), du(t, filepath.Join(snap, p))
			// The source counts what its filesystem allocates (metadata
			// blocks, rounding to its block size); the mount counts the
			// data. Holes count in neither.
			if got > want+want/10 || got < want-want/10 {
				t.Errorf("du -s %s: %d KiB in the mount, %d KiB in the source", p, got, want)
			}
		}
		fi, err := os.Stat(filepath.Join(src, sparse[0].Path))
		if err != nil {
			t.Fatal(err)
		}
		apparent := fi.Size() / 1024
		if got := du(t, filepath.Join(snap, sparse[0].Path)); got >= apparent/2 {
			t.Errorf("du -s of a sparse file of %d KiB: %d KiB, its holes counted", apparent, got)
		}
	})
}

// findPaths runs find in dir with args and returns the paths it prints,
// relative to dir; find must not fail.
func findPaths(t *testing.T, dir string, args ...string) []string {
	t.Helper()
	cmd := exec.Command("find", append([]string{".", "-mindepth", "1"}, append(args, "-print0")...)...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("find in %s: %v", dir, err)
	}
	return strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
}

// setDiff returns what is in a and not in b.
func setDiff(a, b []string) []string {
	var out []string
	for _, s := range a {
		if !slices.Contains(b, s) {
			out = append(out, s)
		}
	}
	return out
}

type inode struct{ ino, nlink uint64 }

// statInodes asks stat(1) for the inode number and link count of each of
// paths, relative to dir.
func statInodes(t *testing.T, dir string, paths []string) map[string]inode {
	t.Helper()
	cmd := exec.Command("stat", append([]string{"-c", "%i %h %n"}, paths...)...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("stat: %v", err)
	}
	got := make(map[string]inode)
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.SplitN(line, " ", 3)
		ino, err1 := strconv.ParseUint(f[0], 10, 64)
		nlink, err2 := strconv.ParseUint(f[1], 10, 64)
		if len(f) != 3 || err1 != nil || err2 != nil {
			t.Fatalf("stat printed %q", line)
		}
		got[f[2]] = inode{ino, nlink}
	}
	return got
}

// checkLinks checks what a tool showed of paths: all but the first (the
// twin) are one inode with as many links as names, the twin another.
func checkLinks(t *testing.T, tool string, got map[string]inode, paths []string) {
	t.Helper()
	twin, names := paths[0], paths[1:]
	for _, p := range names {
		if got[p].ino != got[names[0]].ino || got[p].nlink != uint64(len(names)) {
			t.Errorf("%s: %s is inode %d with %d links, %s inode %d; want one inode with %d links",
				tool, p, got[p].ino, got[p].nlink, names[0], got[names[0]].ino, len(names))
		}
	}
	if got[twin].ino == got[names[0]].ino || got[twin].nlink != 1 {
		t.Errorf("%s: the twin %s is inode %d with %d links, the linked file %d", tool, twin, got[twin].ino, got[twin].nlink, got[names[0]].ino)
	}
}

// getfattr dumps every extended attribute below dir (symlinks' own, not
// their targets'), keyed by path relative to dir. getfattr walks in
// readdir order, which differs between filesystems, hence the map.
func getfattr(t *testing.T, dir string) map[string]string {
	t.Helper()
	_, err := exec.LookPath("getfattr")
	testtree.Require(t, err == nil, "getfattr (Debian package attr): %v", err)
	cmd := exec.Command("getfattr", "-R", "-h", "-d", "-m", "-", ".")
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	// getfattr fails on the paths beyond PATH_MAX, in the source as in
	// the mount; what it printed for the rest is complete.
	out, _ := cmd.Output()
	if strings.TrimSpace(string(out)) == "" {
		t.Fatalf("getfattr printed nothing: %s", stderr.String())
	}
	got := make(map[string]string)
	for _, block := range strings.Split(strings.TrimSpace(string(out)), "\n\n") {
		head, attrs, _ := strings.Cut(block, "\n")
		name, ok := strings.CutPrefix(head, "# file: ")
		if !ok {
			t.Fatalf("getfattr block %q", block)
		}
		got[name] = attrs
	}
	return got
}

// du returns du -s of p in KiB.
func du(t *testing.T, p string) int64 {
	t.Helper()
	out, err := exec.Command("du", "-s", "-k", p).Output()
	if err != nil {
		t.Fatalf("du -s %s: %v", p, err)
	}
	f := strings.Fields(string(out))
	n, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		t.Fatalf("du printed %q", out)
	}
	return n
}
