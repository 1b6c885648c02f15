package inputs

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/hindsight-backup/hindsight/integration/testtree"
	"github.com/hindsight-backup/hindsight/integration/treecmp"
)

// nameChunks splits the 254 bytes a file name may hold (all but NUL and
// '/') into names short enough for NAME_MAX.
func nameChunks() []string {
	var all []byte
	for c := 1; c < 256; c++ {
		if c != '/' {
			all = append(all, byte(c))
		}
	}
	var out []string
	for len(all) > 0 {
		n := min(64, len(all))
		out = append(out, string(all[:n]))
		all = all[n:]
	}
	return out
}

// everyByteTree puts every byte but NUL and '/' into names of files,
// directories and symlinks, every byte but NUL into symlink targets and
// xattr names, and every byte into xattr values.
func everyByteTree(t *testing.T, root string) {
	t.Helper()
	var target, value []byte
	for c := 0; c < 256; c++ {
		value = append(value, byte(c))
		if c != 0 {
			target = append(target, byte(c))
		}
	}
	for _, d := range []string{"files", "dirs", "links"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	xattrs := filepath.Join(root, "xattrs")
	if err := os.WriteFile(xattrs, []byte("has xattrs\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i, name := range nameChunks() {
		if err := os.WriteFile(filepath.Join(root, "files", name), []byte(name), 0o644); err != nil {
			t.Fatalf("file %q: %v", name, err)
		}
		d := filepath.Join(root, "dirs", name)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, name), []byte("inside\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(string(target), filepath.Join(root, "links", name)); err != nil {
			t.Fatal(err)
		}
		// '/' is fine in an xattr name; the user. namespace is the one
		// every filesystem takes.
		xname := "user." + strconv.Itoa(i) + "/" + name
		if err := unix.Setxattr(xattrs, xname, value, 0); err != nil {
			t.Fatalf("setxattr %q: %v", xname, err)
		}
	}
}

// TestEveryByteInNames backs up names, link targets and xattrs holding
// every possible byte, restores them and mounts them: both must be exact.
func TestEveryByteInNames(t *testing.T) {
	requireRoot(t)
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	everyByteTree(t, src)
	hs := newRepo(t, filepath.Join(tmp, "repo"))
	hs.Must(t, "backup", "--host", "bytes", src)

	target := filepath.Join(tmp, "restore")
	hs.Must(t, "restore", "latest", "--target", target, "--verify")
	exact := treecmp.Options{SkipRootMeta: true}
	sameTree(t, src, target, exact)

	// 'ls' prints every name; none may be lost or merged with another.
	ls := hs.Must(t, "ls", "latest", "files")
	if got, want := strings.Count(ls.Stdout, "\n"), len(nameChunks()); got < want {
		t.Errorf("ls lists %d lines for %d files:\n%s", got, want, ls.Stdout)
	}

	_, err := exec.LookPath("fusermount3")
	testtree.Require(t, err == nil, "fusermount3 (Debian package fuse3): %v", err)
	mnt := filepath.Join(tmp, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Command("fusermount3", "-u", mnt).Run() })
	hs.Must(t, "mount", "--daemon", "--pid-file", filepath.Join(tmp, "pid"), mnt)
	snap := filepath.Join(mnt, "bytes"+strings.ReplaceAll(src, "/", "-"), "latest")
	sameTree(t, src, snap, exact)
}
