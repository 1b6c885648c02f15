package fuse

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hindsight-backup/hindsight/integration/testtree"
	"github.com/hindsight-backup/hindsight/integration/treecmp"
)

// latest returns the directory of the source's newest snapshot, through
// the "latest" symlink.
func latest(t testing.TB, mnt, src string) string {
	t.Helper()
	dir := sourceDir(mnt, src)
	target, err := os.Readlink(filepath.Join(dir, "latest"))
	if err != nil {
		t.Fatalf("latest: %v", err)
	}
	return filepath.Join(dir, target)
}

// mountTestTree builds testtree's tree, backs it up and mounts the
// repository; it returns the repository, the source, its manifest and the
// mounted snapshot.
func mountTestTree(t *testing.T) (r *repo, src string, m *testtree.Manifest, snap string) {
	t.Helper()
	r = newRepo(t)
	src = filepath.Join(t.TempDir(), "src")
	m = testtree.Build(t, src)
	r.backup(t, src)
	mnt, _ := r.mount(t)
	return r, src, m, latest(t, mnt, src)
}

// sameTree fails the test with every difference treecmp and rsync see.
func sameTree(t testing.TB, a, b string) {
	t.Helper()
	diffs, err := treecmp.Compare(a, b, treecmp.Options{Holes: true, Atime: true, Exclude: treecmp.SkipSockets})
	if err != nil {
		t.Fatalf("compare: %v", err)
	}
	for i, d := range diffs {
		if i == 30 {
			t.Errorf("... and %d more differences", len(diffs)-i)
			break
		}
		t.Errorf("%s", d)
	}
	_, err = exec.LookPath("rsync")
	testtree.Require(t, err == nil, "rsync: %v", err)
	// rsync cannot walk paths beyond PATH_MAX, and does not copy sockets.
	out, err := treecmp.RsyncDryRun(a, b, "--exclude=/long/", "--exclude=/special/socket")
	if err != nil {
		t.Fatalf("rsync: %v", err)
	}
	if strings.TrimSpace(out) != "" {
		t.Errorf("rsync -aHAX --checksum --numeric-ids sees differences:\n%s", out)
	}
}

// TestMountedTreeIsExact backs up a tree holding every kind of file and
// metadata and compares it with the mounted snapshot: contents, modes,
// owners, times, symlinks, hardlinks sharing an inode, xattrs and ACLs,
// devices, FIFOs, and the holes of sparse files (SEEK_DATA/SEEK_HOLE).
func TestMountedTreeIsExact(t *testing.T) {
	_, src, m, snap := mountTestTree(t)
	sameTree(t, src, snap)

	// What rsync and treecmp infer, asked directly.
	links := m.WithTag(testtree.TagHardlink)
	if len(links) < 2 {
		t.Fatalf("testtree has %d hardlinks", len(links))
	}
	var first unix.Stat_t
	for i, e := range links {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(snap, e.Path), &st); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = st
		} else if st.Ino != first.Ino {
			t.Errorf("hardlinks %s and %s: inodes %d and %d", links[0].Path, e.Path, first.Ino, st.Ino)
		}
	}
	out, err := exec.Command("getfattr", "-R", "-d", "-m", "-", "--absolute-names", snap).CombinedOutput()
	if err == nil && !bytes.Contains(out, []byte("system.posix_acl_access")) {
		t.Errorf("getfattr shows no ACL:\n%.2000s", out)
	}
}

// TestCopyOut copies a snapshot out with cp -a and compares the copy.
func TestCopyOut(t *testing.T) {
	r := newRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	small(t, src)
	r.backup(t, src)
	mnt, _ := r.mount(t)
	dst := filepath.Join(t.TempDir(), "copy")
	if out, err := exec.Command("cp", "-a", latest(t, mnt, src), dst).CombinedOutput(); err != nil {
		t.Fatalf("cp -a: %v: %s", err, out)
	}
	diffs, err := treecmp.Compare(src, dst, treecmp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diffs {
		t.Errorf("%s", d)
	}
}

// small builds a little tree: a world-readable file, a root-only file, a
// large random file and a subdirectory.
func small(t testing.TB, dir string) {
	t.Helper()
	files := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{"public.txt", []byte("anyone may read this\n"), 0o644},
		{"secret.txt", []byte("root only\n"), 0o600},
		{"big.bin", random(24 << 20), 0o644},
		{"sub/notes.txt", []byte("notes\n"), 0o644},
	}
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.data, f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

// random returns n bytes that do not compress, from a fixed seed.
func random(n int) []byte {
	b := make([]byte, n)
	x := uint64(0x9e3779b97f4a7c15)
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
	return b
}

// TestEveryWriteIsEROFS tries each writing call on the mount.
func TestEveryWriteIsEROFS(t *testing.T) {
	r := newRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	small(t, src)
	r.backup(t, src)
	mnt, _ := r.mount(t)
	snap := latest(t, mnt, src)
	file := filepath.Join(snap, "public.txt")
	newName := filepath.Join(snap, "new")
	tests := []struct {
		name string
		call func() error
	}{
		{"create", func() error { return os.WriteFile(newName, nil, 0o644) }},
		{"open for writing", func() error {
			f, err := os.OpenFile(file, os.O_WRONLY, 0)
			if err == nil {
				f.Close()
			}
			return err
		}},
		{"truncate", func() error { return os.Truncate(file, 0) }},
		{"mkdir", func() error { return os.Mkdir(newName, 0o755) }},
		{"mknod", func() error { return unix.Mknod(newName, unix.S_IFIFO|0o644, 0) }},
		{"unlink", func() error { return unix.Unlink(file) }},
		{"rmdir", func() error { return unix.Rmdir(filepath.Join(snap, "sub")) }},
		{"rename", func() error { return os.Rename(file, newName) }},
		{"chmod", func() error { return os.Chmod(file, 0o777) }},
		{"chown", func() error { return os.Chown(file, 1, 1) }},
		{"utimes", func() error { return os.Chtimes(file, time.Now(), time.Now()) }},
		{"setxattr", func() error { return unix.Setxattr(file, "user.x", []byte("y"), 0) }},
		{"removexattr", func() error { return unix.Removexattr(file, "user.x") }},
		{"link", func() error { return os.Link(file, newName) }},
		{"symlink", func() error { return os.Symlink("public.txt", newName) }},
		{"mkdir in the root", func() error { return os.Mkdir(filepath.Join(mnt, "x"), 0o755) }},
		{"remove latest", func() error { return os.Remove(filepath.Join(sourceDir(mnt, src), "latest")) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !errors.Is(err, syscall.EROFS) {
				t.Errorf("got %v, want EROFS", err)
			}
		})
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "anyone may read this\n" {
		t.Errorf("after the writes: %q, %v", b, err)
	}
}

// TestPermissionsAsNobody mounts with --allow-other and reads as nobody:
// what nobody could read on the original system is readable, a 0600 root
// file is not, and POSIX ACLs count as they did there.
func TestPermissionsAsNobody(t *testing.T) {
	r := newRepo(t)
	src, err := os.MkdirTemp("", "hindsight-src-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(src) })
	small(t, src)
	// POSIX ACLs that the mode bits alone would decide the other way.
	for name, acl := range map[string]string{"acl-grants.txt": "u:nobody:r", "acl-denies.txt": "u:nobody:-"} {
		p := filepath.Join(src, name)
		if err := os.WriteFile(p, []byte(name), 0o600); err != nil {
			t.Fatal(err)
		}
		if name == "acl-denies.txt" {
			os.Chmod(p, 0o644)
		}
		if out, err := exec.Command("setfacl", "-m", acl, p).CombinedOutput(); err != nil {
			t.Fatalf("setfacl: %v: %s", err, out)
		}
	}
	r.backup(t, src)
	mnt, _ := r.mount(t, "--allow-other")
	snap := latest(t, mnt, src)
	tests := []struct {
		file string
		ok   bool
	}{
		{"public.txt", true},
		{"sub/notes.txt", true},
		{"secret.txt", false},
		{"acl-grants.txt", true},
		{"acl-denies.txt", false},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			cmd := exec.Command("cat", filepath.Join(snap, tc.file))
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
			out, err := cmd.CombinedOutput()
			if (err == nil) != tc.ok {
				t.Errorf("cat as nobody: %v: %s (want readable: %v)", err, out, tc.ok)
			}
			if !tc.ok && !strings.Contains(string(out), "Permission denied") {
				t.Errorf("cat as nobody: %s, want Permission denied", out)
			}
		})
	}
}

// TestParallelReaders reads one large file from eight processes at once,
// each from the start; each must see exactly the original bytes. The
// mount's kernel read-ahead is 2 MiB (fs.readAheadKB), not the 128 KiB
// every FUSE mount starts with: sequential readers need it.
func TestParallelReaders(t *testing.T) {
	r := newRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	small(t, src)
	r.backup(t, src)
	mnt, _ := r.mount(t)
	var st unix.Stat_t
	if err := unix.Stat(mnt, &st); err != nil {
		t.Fatal(err)
	}
	ra, err := os.ReadFile(fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", unix.Major(st.Dev), unix.Minor(st.Dev)))
	if err != nil || strings.TrimSpace(string(ra)) != "2048" {
		t.Errorf("read_ahead_kb of the mount: %q, %v; want 2048", ra, err)
	}
	want := sha256.Sum256(random(24 << 20))
	big := filepath.Join(latest(t, mnt, src), "big.bin")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			f, err := os.Open(big)
			if err != nil {
				t.Error(err)
				return
			}
			defer f.Close()
			h := sha256.New()
			if _, err := io.CopyBuffer(h, f, make([]byte, 64<<10+i)); err != nil {
				t.Errorf("reader %d: %v", i, err)
				return
			}
			if !bytes.Equal(h.Sum(nil), want[:]) {
				t.Errorf("reader %d read other bytes", i)
			}
		})
	}
	wg.Wait()
}

// TestHistoryPermissionsAsNobody: a file anyone may read, in a directory
// that was private when it was backed up, stays unreadable to others
// through .history after the directory was made again, public, as it was
// on the source then.
func TestHistoryPermissionsAsNobody(t *testing.T) {
	r := newRepo(t)
	src, err := os.MkdirTemp("", "hindsight-src-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(src) })
	os.Chmod(src, 0o755)
	dir := filepath.Join(src, "dir")
	os.Mkdir(dir, 0o700)
	if err := os.WriteFile(filepath.Join(dir, "old.txt"), []byte("private then"), 0o644); err != nil {
		t.Fatal(err)
	}
	r.backup(t, src)
	os.RemoveAll(dir)
	r.backup(t, src)
	os.Mkdir(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "new.txt"), []byte("public now"), 0o644)
	r.backup(t, src)
	mnt, _ := r.mount(t, "--allow-other")
	asNobody := func(name string, args ...string) (string, error) {
		cmd := exec.Command(name, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	hist := filepath.Join(sourceDir(mnt, src), ".history", "dir", "old.txt")
	versions := names(t, hist)
	if len(versions) != 1 {
		t.Fatalf("versions of dir/old.txt: %v, want 1", versions)
	}
	if out, err := asNobody("cat", filepath.Join(hist, versions[0])); err == nil || !strings.Contains(out, "Permission denied") {
		t.Errorf("nobody read old.txt from when dir was 0700: %v: %s", err, out)
	}
	// The newest snapshot itself is as open as the source is now.
	if out, err := asNobody("cat", filepath.Join(latest(t, mnt, src), "dir", "new.txt")); err != nil || out != "public now" {
		t.Errorf("nobody reading the newest snapshot: %v: %s", err, out)
	}
}
