package testtree_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hindsight-backup/hindsight/integration/testtree"
	"github.com/hindsight-backup/hindsight/integration/treecmp"
)

func lstat(t *testing.T, root, rel string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	err := testtree.At(root, rel, func(d int, n string) error { return unix.Fstatat(d, n, &st, unix.AT_SYMLINK_NOFOLLOW) })
	if err != nil {
		t.Fatalf("lstat %q: %v", rel, err)
	}
	return st
}

func one(t *testing.T, m *testtree.Manifest, tag string) testtree.Entry {
	t.Helper()
	es := m.WithTag(tag)
	if len(es) == 0 {
		t.Fatalf("no entry tagged %q", tag)
	}
	return es[0]
}

var kindOf = map[uint32]testtree.Kind{
	unix.S_IFREG: testtree.File, unix.S_IFDIR: testtree.Dir, unix.S_IFLNK: testtree.Symlink,
	unix.S_IFIFO: testtree.FIFO, unix.S_IFCHR: testtree.CharDev, unix.S_IFBLK: testtree.BlockDev,
	unix.S_IFSOCK: testtree.Socket,
}

func TestBuildManifestMatchesDisk(t *testing.T) {
	dir := t.TempDir()
	m := testtree.Build(t, dir)
	for _, k := range []testtree.Kind{testtree.File, testtree.Dir, testtree.Symlink, testtree.FIFO,
		testtree.CharDev, testtree.BlockDev, testtree.Socket} {
		if len(m.WithKind(k)) == 0 {
			t.Errorf("manifest has no %s", k)
		}
	}
	if !slices.IsSortedFunc(m.Entries, func(a, b testtree.Entry) int { return strings.Compare(a.Path, b.Path) }) {
		t.Error("manifest entries are not sorted by path")
	}
	seen := map[string]bool{}
	for _, e := range m.Entries {
		st := lstat(t, dir, e.Path)
		if got := kindOf[st.Mode&unix.S_IFMT]; got != e.Kind {
			t.Errorf("%q: manifest says %s, disk has %s", e.Path, e.Kind, got)
		}
		seen[e.Path] = true
	}
	// Everything on disk is in the manifest, too.
	var onDisk int
	err := testtree.Walk(dir, func(rel string, _ *unix.Stat_t) error {
		onDisk++
		if !seen[rel] {
			t.Errorf("%q is on disk but not in the manifest", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if onDisk != len(m.Entries) {
		t.Errorf("%d entries on disk, %d in manifest", onDisk, len(m.Entries))
	}
	if len(m.WithKind(testtree.Socket)) != 1 {
		t.Errorf("want exactly one socket, got %v", m.WithKind(testtree.Socket))
	}
}

func TestBuildFeatures(t *testing.T) {
	dir := t.TempDir()
	m := testtree.Build(t, dir)

	// First, because the checks below read files and so move atimes.
	t.Run("times", func(t *testing.T) {
		limit := time.Now().Add(-24 * time.Hour).Unix()
		var withNsec int
		for _, e := range m.Entries {
			st := lstat(t, dir, e.Path)
			if e.HasTag(testtree.TagOddTime) {
				continue
			}
			// Directories too: their times are set after their content.
			if st.Mtim.Sec > limit || st.Atim.Sec > limit {
				t.Errorf("%s (%s): mtime %d atime %d are recent", e.Path, e.Kind, st.Mtim.Sec, st.Atim.Sec)
			}
			if st.Mtim.Nsec != 0 {
				withNsec++
			}
		}
		if withNsec < len(m.Entries)*9/10 {
			t.Errorf("only %d of %d entries have a sub-second mtime", withNsec, len(m.Entries))
		}
		if st := lstat(t, dir, "times/pre-epoch"); st.Mtim.Sec >= 0 {
			t.Errorf("times/pre-epoch has mtime %d", st.Mtim.Sec)
		}
		if st := lstat(t, dir, "times/after-2038"); st.Mtim.Sec <= 1<<31 {
			t.Errorf("times/after-2038 has mtime %d", st.Mtim.Sec)
		}
	})

	t.Run("sizes", func(t *testing.T) {
		for rel, want := range map[string]int64{"files/empty": 0, "files/one-byte": 1,
			"files/random-3MiB": 3 << 20, "files/text-20MiB": 20 << 20, "files/repeat-5MiB": 5 << 20} {
			if st := lstat(t, dir, rel); st.Size != want {
				t.Errorf("%s: size %d, want %d", rel, st.Size, want)
			}
		}
		rep, err := os.ReadFile(dir + "/files/repeat-5MiB")
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i < 5; i++ {
			if !bytes.Equal(rep[:1<<20], rep[i<<20:(i+1)<<20]) {
				t.Errorf("block %d of repeat-5MiB differs from block 0", i)
			}
		}
		if bytes.Equal(rep[:4096], rep[4096:8192]) {
			t.Error("repeat-5MiB repeats within its 1 MiB block")
		}
	})

	t.Run("sparse", func(t *testing.T) {
		e := one(t, m, testtree.TagSparse)
		f, err := os.Open(dir + "/" + e.Path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		dm, err := testtree.DataMap(int(f.Fd()))
		if err != nil {
			t.Fatal(err)
		}
		st := lstat(t, dir, e.Path)
		if st.Size != 10<<20 || len(dm) != 2 || dm[0][0] == 0 || dm[1][1] == st.Size {
			t.Errorf("%s: size %d, data extents %v; want 10 MiB with two extents and holes around them", e.Path, st.Size, dm)
		}
		if st.Blocks*512 > 1<<20 {
			t.Errorf("%s allocates %d bytes", e.Path, st.Blocks*512)
		}
		hole := one(t, m, testtree.TagAllHole)
		if st := lstat(t, dir, hole.Path); st.Blocks != 0 || st.Size == 0 {
			t.Errorf("%s: %d blocks, size %d; want a hole only", hole.Path, st.Blocks, st.Size)
		}
	})

	t.Run("hardlinks", func(t *testing.T) {
		es := m.WithTag(testtree.TagHardlink)
		if len(es) != 3 {
			t.Fatalf("want 3 names of one inode, got %v", es)
		}
		dirs := map[string]bool{}
		first := lstat(t, dir, es[0].Path)
		for _, e := range es {
			st := lstat(t, dir, e.Path)
			if st.Ino != first.Ino || st.Nlink != 3 {
				t.Errorf("%s: inode %d nlink %d; want inode %d nlink 3", e.Path, st.Ino, st.Nlink, first.Ino)
			}
			dirs[e.Path[:strings.LastIndexByte(e.Path, '/')]] = true
		}
		if len(dirs) < 3 {
			t.Errorf("hardlinks are in %d directories, want 3", len(dirs))
		}
	})

	t.Run("long and deep paths", func(t *testing.T) {
		var longest int
		for _, e := range m.WithTag(testtree.TagLongPath) {
			longest = max(longest, len(e.Path))
		}
		if longest <= unix.PathMax {
			t.Errorf("longest path is %d bytes, want over %d", longest, unix.PathMax)
		}
		if _, err := os.Lstat(dir + "/" + m.WithTag(testtree.TagLongPath)[len(m.WithTag(testtree.TagLongPath))-1].Path); err == nil {
			t.Error("the long path is reachable in one syscall; it is not long enough to test anything")
		}
		var deepest int
		for _, e := range m.WithTag(testtree.TagDeep) {
			if e.Kind == testtree.Dir {
				deepest = max(deepest, strings.Count(e.Path, "/"))
			}
		}
		if deepest < 30 {
			t.Errorf("deepest directory is %d levels below the top, want 30", deepest)
		}
	})

	t.Run("symlinks", func(t *testing.T) {
		for rel, want := range map[string]string{"links/relative": "../files/one-byte",
			"links/absolute": "/etc/passwd", "links/dangling": "no/such/target", "links/to-dir": "../deep"} {
			got, err := os.Readlink(dir + "/" + rel)
			if err != nil || got != want {
				t.Errorf("%s -> %q, %v; want %q", rel, got, err, want)
			}
		}
		if fi, err := os.Stat(dir + "/links/to-dir"); err != nil || !fi.IsDir() {
			t.Errorf("links/to-dir does not lead to a directory: %v", err)
		}
		if _, err := os.Stat(dir + "/links/dangling"); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("links/dangling resolves: %v", err)
		}
		want := int64(unix.PathMax - 1)
		if slices.ContainsFunc(m.Missing, func(s string) bool { return strings.Contains(s, "links/long-target") }) {
			want = 1023 // XFS's limit
		}
		if st := lstat(t, dir, "links/long-target"); st.Size != want {
			t.Errorf("links/long-target has a %d-byte target, want %d", st.Size, want)
		}
	})

	t.Run("special files", func(t *testing.T) {
		for rel, want := range map[string][3]uint32{
			"special/null":    {unix.S_IFCHR, 1, 3},
			"special/loop200": {unix.S_IFBLK, 7, 200},
		} {
			st := lstat(t, dir, rel)
			if st.Mode&unix.S_IFMT != want[0] || unix.Major(st.Rdev) != want[1] || unix.Minor(st.Rdev) != want[2] {
				t.Errorf("%s: mode %o dev %d:%d, want type %o dev %d:%d", rel, st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev), want[0], want[1], want[2])
			}
		}
		if st := lstat(t, dir, "special/fifo"); st.Mode&unix.S_IFMT != unix.S_IFIFO {
			t.Errorf("special/fifo has mode %o", st.Mode)
		}
		if st := lstat(t, dir, "special/socket"); st.Mode&unix.S_IFMT != unix.S_IFSOCK {
			t.Errorf("special/socket has mode %o", st.Mode)
		}
	})

	t.Run("modes and owners", func(t *testing.T) {
		for rel, want := range map[string]uint32{"perms/setuid-setgid": 0o6755, "perms/sticky-dir": 0o1777,
			"perms/setgid-dir": 0o2775, "owners/setuid-owned": 0o6750, "files/mode-0000": 0, "perms/readonly-dir": 0o555} {
			if st := lstat(t, dir, rel); st.Mode&0o7777 != want {
				t.Errorf("%s: mode %04o, want %04o", rel, st.Mode&0o7777, want)
			}
		}
		for rel, want := range map[string][2]uint32{"owners/owned": {1234, 5678}, "owners/owned-symlink": {1234, 5678},
			"owners/no-passwd": {testtree.NoPasswdUID, testtree.NoPasswdGID}, "perms/setgid-dir/inherits-group": {0, 5678}} {
			if st := lstat(t, dir, rel); st.Uid != want[0] || st.Gid != want[1] {
				t.Errorf("%s: owner %d:%d, want %d:%d", rel, st.Uid, st.Gid, want[0], want[1])
			}
		}
		_, err := user.LookupId(strconv.Itoa(testtree.NoPasswdUID))
		if !errors.As(err, new(user.UnknownUserIdError)) {
			t.Errorf("uid %d should have no passwd entry: %v", testtree.NoPasswdUID, err)
		}
	})

	t.Run("xattrs", func(t *testing.T) {
		p := dir + "/xattrs/file"
		buf := make([]byte, 1024)
		n, err := unix.Lgetxattr(p, "user.empty", buf)
		if err != nil || n != 0 {
			t.Errorf("user.empty: %d bytes, %v; want present and empty", n, err)
		}
		n, err = unix.Lgetxattr(p, "user.binary", buf)
		if err != nil || n != 256 || buf[0] != 0 || buf[255] != 255 {
			t.Errorf("user.binary: %d bytes, %v", n, err)
		}
		if _, err := unix.Lgetxattr(dir+"/xattrs/dir", "user.on-dir", buf); err != nil {
			t.Errorf("xattr on directory: %v", err)
		}
	})

	t.Run("acl", func(t *testing.T) {
		_, err := exec.LookPath("getfacl")
		testtree.Require(t, err == nil, "getfacl (Debian package acl) to check the ACLs independently")
		for _, rel := range []string{"acl/file", "acl/dir", "acl/dir/inherited"} {
			out, err := exec.Command("getfacl", "-n", "-p", dir+"/"+rel).CombinedOutput()
			if err != nil {
				t.Fatalf("getfacl %s: %v: %s", rel, err, out)
			}
			if !strings.Contains(string(out), "user:1234:rwx") || !strings.Contains(string(out), "group:5678:r-x") {
				t.Errorf("getfacl %s lacks the named entries:\n%s", rel, out)
			}
		}
		out, _ := exec.Command("getfacl", "-n", "-p", dir+"/acl/dir").CombinedOutput()
		if !strings.Contains(string(out), "default:user:1234:rwx") {
			t.Errorf("acl/dir has no default ACL:\n%s", out)
		}
	})

	t.Run("names", func(t *testing.T) {
		var bytesSeen [256]bool
		var newline, nonUTF8 bool
		for _, e := range m.Entries {
			for i := range len(e.Path) {
				bytesSeen[e.Path[i]] = true
			}
			newline = newline || e.HasTag(testtree.TagNewline)
			nonUTF8 = nonUTF8 || e.HasTag(testtree.TagNonUTF8)
		}
		for c := 1; c < 256; c++ {
			if !bytesSeen[c] {
				t.Errorf("byte %#x appears in no path", c)
			}
		}
		if !newline || !nonUTF8 {
			t.Errorf("newline name: %v, non-UTF-8 name: %v", newline, nonUTF8)
		}
		if _, err := os.Lstat(dir + "/names/new\nline"); err != nil {
			t.Error(err)
		}
	})

	if len(m.Missing) > 0 {
		t.Logf("optional features this filesystem refused: %v", m.Missing)
	}
}

func TestBuildIsDeterministic(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	testtree.Build(t, a)
	testtree.Build(t, b)
	diffs, err := treecmp.Compare(a, b, treecmp.Options{Atime: true, Holes: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diffs {
		t.Error(d)
	}
}

func TestMutate(t *testing.T) {
	orig, x, y := t.TempDir(), t.TempDir(), t.TempDir()
	m := testtree.Build(t, orig)
	testtree.Build(t, x)
	testtree.Build(t, y)
	cx := testtree.Mutate(t, x, 7)
	cy := testtree.Mutate(t, y, 7)

	if !slices.Equal(cx, cy) {
		t.Fatalf("same seed, different changes:\n%v\n%v", cx, cy)
	}
	diffs, err := treecmp.Compare(x, y, treecmp.Options{Atime: true, Holes: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diffs {
		t.Errorf("same seed, trees differ: %s", d)
	}

	ops := map[testtree.Op]int{}
	changed := map[string]testtree.Change{}
	for _, c := range cx {
		ops[c.Op]++
		changed[c.Path] = c
	}
	for _, op := range []testtree.Op{testtree.OpContent, testtree.OpAppend, testtree.OpMode, testtree.OpOwner,
		testtree.OpXattr, testtree.OpTouch, testtree.OpDelete, testtree.OpToDir, testtree.OpToSymlink, testtree.OpAdd} {
		if ops[op] == 0 {
			t.Errorf("no %s change among %v", op, cx)
		}
	}
	files := len(m.WithKind(testtree.File))
	if n := len(cx) - ops[testtree.OpAdd]; n < files/20 || n > files/5 {
		t.Errorf("%d of %d files changed, want about a tenth", n, files)
	}

	// Every change shows in a comparison with the original at its own path,
	// with the field that op touches; beyond those only directories whose
	// names changed differ, and only in their times.
	diffs, err = treecmp.Compare(orig, x, treecmp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	wantField := map[testtree.Op][]string{
		// An empty file cannot keep its size when its content changes.
		testtree.OpContent: {treecmp.FieldContent, treecmp.FieldSize},
		testtree.OpAppend:  {treecmp.FieldSize}, testtree.OpMode: {treecmp.FieldMode},
		testtree.OpOwner: {treecmp.FieldUID}, testtree.OpXattr: {treecmp.FieldXattr}, testtree.OpTouch: {treecmp.FieldMtime},
		testtree.OpDelete: {treecmp.FieldPresence}, testtree.OpToDir: {treecmp.FieldType}, testtree.OpToSymlink: {treecmp.FieldType},
		testtree.OpAdd: {treecmp.FieldPresence},
	}
	found := map[string]bool{}
	for _, d := range diffs {
		c, ok := changed[d.Path]
		if !ok {
			if lstat(t, x, d.Path).Mode&unix.S_IFMT != unix.S_IFDIR || d.Field != treecmp.FieldMtime {
				t.Errorf("unexpected difference: %s", d)
			}
			continue
		}
		if slices.Contains(wantField[c.Op], d.Field) {
			found[d.Path] = true
		}
		if c.Op == testtree.OpContent && d.Field == treecmp.FieldMtime {
			t.Errorf("%s: content change moved mtime: %s", d.Path, d)
		}
	}
	for _, c := range cx {
		if !found[c.Path] {
			t.Errorf("change %s at %q shows no %s difference", c.Op, c.Path, wantField[c.Op])
		}
	}

	if cz := testtree.Mutate(t, y, 8); slices.Equal(cx, cz) {
		t.Error("seeds 7 and 8 made the same changes")
	}
}
