package treecmp_test

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/hindsight-backup/hindsight/integration/testtree"
	"github.com/hindsight-backup/hindsight/integration/treecmp"
)

func build(t *testing.T) (string, *testtree.Manifest) {
	t.Helper()
	d := t.TempDir()
	return d, testtree.Build(t, d)
}

func at(t *testing.T, root, rel string, fn func(dirfd int, name string) error) {
	t.Helper()
	if err := testtree.At(root, rel, fn); err != nil {
		t.Fatalf("%q: %v", rel, err)
	}
}

// keepTimes records the times of rels and returns a function that puts them
// back, so that a perturbation changes the one field it means to change
// (unlinking or creating moves the parent's mtime, writing the file's).
func keepTimes(t *testing.T, root string, rels ...string) func() {
	t.Helper()
	saved := make([][]unix.Timespec, len(rels))
	for i, rel := range rels {
		var st unix.Stat_t
		at(t, root, rel, func(d int, n string) error { return unix.Fstatat(d, n, &st, unix.AT_SYMLINK_NOFOLLOW) })
		saved[i] = []unix.Timespec{st.Atim, st.Mtim}
	}
	return func() {
		t.Helper()
		for i, rel := range rels {
			at(t, root, rel, func(d int, n string) error {
				return unix.UtimesNanoAt(d, n, saved[i], unix.AT_SYMLINK_NOFOLLOW)
			})
		}
	}
}

func shiftTimes(t *testing.T, root, rel string, atime, mtime int64) {
	t.Helper()
	var st unix.Stat_t
	at(t, root, rel, func(d int, n string) error { return unix.Fstatat(d, n, &st, unix.AT_SYMLINK_NOFOLLOW) })
	ts := []unix.Timespec{unix.NsecToTimespec(unix.TimespecToNsec(st.Atim) + atime), unix.NsecToTimespec(unix.TimespecToNsec(st.Mtim) + mtime)}
	at(t, root, rel, func(d int, n string) error { return unix.UtimesNanoAt(d, n, ts, unix.AT_SYMLINK_NOFOLLOW) })
}

func chmod(t *testing.T, root, rel string, mode uint32) {
	t.Helper()
	at(t, root, rel, func(d int, n string) error { return unix.Fchmodat(d, n, mode, 0) })
}

func setXattr(t *testing.T, root, rel, name string, value []byte) {
	t.Helper()
	at(t, root, rel, func(d int, n string) error {
		fd, err := unix.Openat(d, n, unix.O_PATH|unix.O_NOFOLLOW, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		p := fmt.Sprintf("/proc/self/fd/%d", fd)
		if value == nil {
			return unix.Removexattr(p, name)
		}
		return unix.Setxattr(p, name, value, 0)
	})
}

func writeAt(t *testing.T, root, rel string, data []byte, off int64) {
	t.Helper()
	at(t, root, rel, func(d int, n string) error {
		fd, err := unix.Openat(d, n, unix.O_WRONLY, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		_, err = unix.Pwrite(fd, data, off)
		return err
	})
}

// replace swaps rel for whatever create makes, keeping the times of rel and
// of its directory.
func replace(t *testing.T, root, rel string, create func(d int, n string) error) {
	t.Helper()
	parent := "."
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		parent = rel[:i]
	}
	restore := keepTimes(t, root, parent, rel)
	at(t, root, rel, func(d int, n string) error {
		if err := unix.Unlinkat(d, n, 0); err != nil {
			return err
		}
		return create(d, n)
	})
	restore()
}

// remove unlinks rel, keeping its directory's times.
func remove(t *testing.T, root, rel string) {
	t.Helper()
	defer keepTimes(t, root, rel[:strings.LastIndexByte(rel, '/')])()
	at(t, root, rel, func(d int, n string) error { return unix.Unlinkat(d, n, 0) })
}

func newFile(content string, mode uint32, uid, gid int) func(d int, n string) error {
	return func(d int, n string) error {
		fd, err := unix.Openat(d, n, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		_, err = unix.Write(fd, []byte(content))
		unix.Close(fd)
		if err != nil {
			return err
		}
		if err := unix.Fchownat(d, n, uid, gid, 0); err != nil {
			return err
		}
		return unix.Fchmodat(d, n, mode, 0)
	}
}

func TestIdenticalTreesHaveNoDiffs(t *testing.T) {
	a, _ := build(t)
	b, _ := build(t)
	// Twice: the first comparison must leave the atimes it could have moved
	// (directories read, files hashed) as they were.
	for range 2 {
		diffs, err := treecmp.Compare(a, b, treecmp.Options{Atime: true, Holes: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range diffs {
			t.Error(d)
		}
	}
}

type perturbation struct {
	name    string
	opts    treecmp.Options
	perturb func(t *testing.T, b string)
	want    []treecmp.Diff // Path, Field and Name must match
	text    string         // if set, the first diff's String() must contain it
}

func TestEachPerturbationIsReportedExactly(t *testing.T) {
	a, m := build(t)
	longFile := ""
	for _, e := range m.WithTag(testtree.TagLongPath) {
		if e.Kind == testtree.File {
			longFile = e.Path
		}
	}
	deepFile := m.WithTag(testtree.TagDeep)[len(m.WithTag(testtree.TagDeep))-1].Path
	if !strings.HasSuffix(deepFile, "bottom.txt") || len(longFile) <= unix.PathMax {
		t.Fatalf("manifest lacks the deep file (%q) or the long one (%d bytes)", deepFile, len(longFile))
	}
	all := treecmp.Options{Atime: true, Holes: true}
	d := func(p, f string) treecmp.Diff { return treecmp.Diff{Path: p, Field: f} }
	x := func(p, name string) treecmp.Diff { return treecmp.Diff{Path: p, Field: treecmp.FieldXattr, Name: name} }

	cases := []perturbation{
		{name: "type", opts: all, want: []treecmp.Diff{d("special/fifo", treecmp.FieldType)}, text: "fifo vs file",
			perturb: func(t *testing.T, b string) { replace(t, b, "special/fifo", newFile("", 0o644, 0, 0)) }},
		{name: "permission bits", opts: all, want: []treecmp.Diff{d("files/4096", treecmp.FieldMode)},
			text:    `mode differs at "files/4096": 0644 vs 0600`,
			perturb: func(t *testing.T, b string) { chmod(t, b, "files/4096", 0o600) }},
		{name: "setuid and setgid", opts: all, want: []treecmp.Diff{d("perms/setuid-setgid", treecmp.FieldMode)}, text: "06755 vs 0755",
			perturb: func(t *testing.T, b string) { chmod(t, b, "perms/setuid-setgid", 0o755) }},
		{name: "sticky", opts: all, want: []treecmp.Diff{d("perms/sticky-dir", treecmp.FieldMode)}, text: "01777 vs 0777",
			perturb: func(t *testing.T, b string) { chmod(t, b, "perms/sticky-dir", 0o777) }},
		{name: "uid", opts: all, want: []treecmp.Diff{d("files/4096", treecmp.FieldUID)}, text: "0 vs 1234",
			perturb: func(t *testing.T, b string) { at(t, b, "files/4096", chown(1234, -1)) }},
		{name: "gid", opts: all, want: []treecmp.Diff{d("files/4096", treecmp.FieldGID)}, text: "0 vs 5678",
			perturb: func(t *testing.T, b string) { at(t, b, "files/4096", chown(-1, 5678)) }},
		{name: "symlink owner, not its target's", opts: all,
			want:    []treecmp.Diff{d("owners/owned-symlink", treecmp.FieldUID), d("owners/owned-symlink", treecmp.FieldGID)},
			perturb: func(t *testing.T, b string) { at(t, b, "owners/owned-symlink", chown(0, 0)) }},
		{name: "size", opts: all, want: []treecmp.Diff{d("files/4097", treecmp.FieldSize)}, text: "4097 vs 4096",
			perturb: func(t *testing.T, b string) {
				defer keepTimes(t, b, "files/4097")()
				at(t, b, "files/4097", func(d int, n string) error {
					fd, err := unix.Openat(d, n, unix.O_WRONLY, 0)
					if err != nil {
						return err
					}
					defer unix.Close(fd)
					return unix.Ftruncate(fd, 4096)
				})
			}},
		{name: "content, same size and times", opts: all, want: []treecmp.Diff{d("files/random-3MiB", treecmp.FieldContent)},
			text: "at offset 2097152 vs",
			perturb: func(t *testing.T, b string) {
				defer keepTimes(t, b, "files/random-3MiB")()
				orig := make([]byte, 1)
				f, err := os.Open(b + "/files/random-3MiB")
				if err != nil {
					t.Fatal(err)
				}
				f.ReadAt(orig, 2<<20)
				f.Close()
				writeAt(t, b, "files/random-3MiB", []byte{^orig[0]}, 2<<20)
			}},
		{name: "mtime by one nanosecond", opts: all, want: []treecmp.Diff{d("files/4096", treecmp.FieldMtime)},
			perturb: func(t *testing.T, b string) { shiftTimes(t, b, "files/4096", 0, 1) }},
		{name: "directory mtime", opts: all, want: []treecmp.Diff{d("empty-dir", treecmp.FieldMtime)},
			perturb: func(t *testing.T, b string) { shiftTimes(t, b, "empty-dir", 0, 1e9) }},
		{name: "symlink mtime", opts: all, want: []treecmp.Diff{d("links/relative", treecmp.FieldMtime)},
			perturb: func(t *testing.T, b string) { shiftTimes(t, b, "links/relative", 0, 1) }},
		{name: "atime", opts: all, want: []treecmp.Diff{d("files/4096", treecmp.FieldAtime)},
			perturb: func(t *testing.T, b string) { shiftTimes(t, b, "files/4096", 1, 0) }},
		{name: "atime ignored by default", opts: treecmp.Options{Holes: true}, want: nil,
			perturb: func(t *testing.T, b string) { shiftTimes(t, b, "files/4096", 1, 0) }},
		{name: "symlink target", opts: all, want: []treecmp.Diff{d("links/relative", treecmp.FieldTarget)},
			text: `"../files/one-byte" vs "../files/empty"`,
			perturb: func(t *testing.T, b string) {
				replace(t, b, "links/relative", func(d int, n string) error { return unix.Symlinkat("../files/empty", d, n) })
			}},
		{name: "device numbers", opts: all, want: []treecmp.Diff{d("special/null", treecmp.FieldRdev)}, text: "1:3 vs 1:5",
			perturb: func(t *testing.T, b string) {
				replace(t, b, "special/null", func(d int, n string) error {
					if err := unix.Mknodat(d, n, unix.S_IFCHR|0o600, int(unix.Mkdev(1, 5))); err != nil {
						return err
					}
					return unix.Fchmodat(d, n, 0o666, 0)
				})
			}},
		{name: "hole filled with written zeros", opts: all, want: []treecmp.Diff{d("sparse/ten-mib", treecmp.FieldHoles)},
			perturb: func(t *testing.T, b string) { fillHole(t, b) }},
		{name: "holes ignored by default", opts: treecmp.Options{Atime: true}, want: nil,
			perturb: func(t *testing.T, b string) { fillHole(t, b) }},
		{name: "written zeros punched into a hole", opts: all, want: []treecmp.Diff{d("files/zeros-1MiB", treecmp.FieldHoles)},
			text: "data [0,1048576) vs no data extents",
			perturb: func(t *testing.T, b string) {
				defer keepTimes(t, b, "files/zeros-1MiB")()
				at(t, b, "files/zeros-1MiB", func(d int, n string) error {
					fd, err := unix.Openat(d, n, unix.O_WRONLY, 0)
					if err != nil {
						return err
					}
					defer unix.Close(fd)
					return unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 0, 1<<20)
				})
			}},
		{name: "xattr value", opts: all, want: []treecmp.Diff{x("xattrs/file", "user.text")},
			text:    `xattr "user.text" differs at "xattrs/file": "plain text" vs "plain texT"`,
			perturb: func(t *testing.T, b string) { setXattr(t, b, "xattrs/file", "user.text", []byte("plain texT")) }},
		{name: "empty xattr removed", opts: all, want: []treecmp.Diff{x("xattrs/file", "user.empty")}, text: `"" vs absent`,
			perturb: func(t *testing.T, b string) { setXattr(t, b, "xattrs/file", "user.empty", nil) }},
		{name: "xattr added", opts: all, want: []treecmp.Diff{x("files/one-byte", "user.new")}, text: `absent vs ""`,
			perturb: func(t *testing.T, b string) { setXattr(t, b, "files/one-byte", "user.new", []byte{}) }},
		{name: "xattr on a directory", opts: all, want: []treecmp.Diff{x("xattrs/dir", "user.on-dir")},
			perturb: func(t *testing.T, b string) { setXattr(t, b, "xattrs/dir", "user.on-dir", []byte("x")) }},
		{name: "access ACL, mode unchanged", opts: all, want: []treecmp.Diff{x("acl/file", "system.posix_acl_access")},
			text: "user:1234:rwx,group::r--,group:5678:r-x,mask::rwx,other::r-- vs user::rw-,user:1234:r-x,",
			perturb: func(t *testing.T, b string) {
				acl := testtree.TestACL()
				acl[1].Perm = 5 // user:1234:rwx → r-x; the mask, and so the mode, stay
				setXattr(t, b, "acl/file", "system.posix_acl_access", testtree.EncodeACL(acl))
			}},
		{name: "default ACL removed", opts: all, want: []treecmp.Diff{x("acl/dir", "system.posix_acl_default")},
			perturb: func(t *testing.T, b string) { setXattr(t, b, "acl/dir", "system.posix_acl_default", nil) }},
		{name: "hardlink broken", opts: all, want: []treecmp.Diff{d("hardlinks/third", treecmp.FieldHardlink)},
			text: `same inode as "hardlinks/one/first" vs not linked`,
			perturb: func(t *testing.T, b string) {
				replace(t, b, "hardlinks/third", newFile("one inode, three names\n", 0o640, 1234, 5678))
			}},
		{name: "separate files hardlinked", opts: all, want: []treecmp.Diff{d("hardlinks/zz-twin", treecmp.FieldHardlink)},
			perturb: func(t *testing.T, b string) {
				replace(t, b, "hardlinks/zz-twin", func(d int, n string) error {
					return testtree.At(b, "hardlinks/one/first", func(od int, on string) error { return unix.Linkat(od, on, d, n, 0) })
				})
			}},
		{name: "file only in a", opts: all, want: []treecmp.Diff{d("files/one-byte", treecmp.FieldPresence)},
			text:    `only in a: "files/one-byte" (file)`,
			perturb: func(t *testing.T, b string) { remove(t, b, "files/one-byte") }},
		{name: "directory only in a, reported once", opts: all, want: []treecmp.Diff{d("perms/readonly-dir", treecmp.FieldPresence)},
			perturb: func(t *testing.T, b string) {
				defer keepTimes(t, b, "perms")()
				if err := os.RemoveAll(b + "/perms/readonly-dir"); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "file only in b", opts: all, want: []treecmp.Diff{d("files/extra", treecmp.FieldPresence)},
			text: `only in b: "files/extra" (file)`,
			perturb: func(t *testing.T, b string) {
				defer keepTimes(t, b, "files")()
				at(t, b, "files/extra", newFile("new", 0o644, 0, 0))
			}},
		{name: "path beyond PATH_MAX", opts: all, want: []treecmp.Diff{d(longFile, treecmp.FieldMode)},
			perturb: func(t *testing.T, b string) { chmod(t, b, longFile, 0o600) }},
		{name: "30 levels deep", opts: all, want: []treecmp.Diff{d(deepFile, treecmp.FieldMode)},
			perturb: func(t *testing.T, b string) { chmod(t, b, deepFile, 0o600) }},
		{name: "non-UTF-8 name", opts: all, want: []treecmp.Diff{d("names/caf\xe9.latin1", treecmp.FieldMode)},
			text:    `"names/caf\xe9.latin1"`,
			perturb: func(t *testing.T, b string) { chmod(t, b, "names/caf\xe9.latin1", 0o600) }},
		{name: "name with newline", opts: all, want: []treecmp.Diff{x("names/new\nline", "user.x")}, text: `"names/new\nline"`,
			perturb: func(t *testing.T, b string) { setXattr(t, b, "names/new\nline", "user.x", []byte("y")) }},
		{name: "root mode", opts: all, want: []treecmp.Diff{d(".", treecmp.FieldMode)},
			perturb: func(t *testing.T, b string) { chmod(t, b, ".", 0o700) }},
		{name: "root ignored with SkipRootMeta", opts: treecmp.Options{Atime: true, Holes: true, SkipRootMeta: true}, want: nil,
			perturb: func(t *testing.T, b string) { chmod(t, b, ".", 0o700); shiftTimes(t, b, ".", 0, 1) }},
		{name: "socket missing", opts: all, want: []treecmp.Diff{d("special/socket", treecmp.FieldPresence)}, text: "(socket)",
			perturb: func(t *testing.T, b string) { remove(t, b, "special/socket") }},
		{name: "socket missing, sockets excluded", opts: treecmp.Options{Atime: true, Holes: true, Exclude: treecmp.SkipSockets}, want: nil,
			perturb: func(t *testing.T, b string) { remove(t, b, "special/socket") }},
	}
	if e, ok := m.Lookup("security/symlink"); ok && e.HasTag(testtree.TagSecurity) {
		cases = append(cases, perturbation{name: "trusted xattr on a symlink", opts: all,
			want: []treecmp.Diff{x("security/symlink", "trusted.hindsight")},
			perturb: func(t *testing.T, b string) {
				setXattr(t, b, "security/symlink", "trusted.hindsight", []byte("changed"))
			}})
	} else {
		t.Logf("not testing privileged xattrs on symlinks: %v", m.Missing)
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, _ := build(t)
			tc.perturb(t, b)
			diffs, err := treecmp.Compare(a, b, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			match := len(diffs) == len(tc.want)
			for i := 0; match && i < len(diffs); i++ {
				g, w := diffs[i], tc.want[i]
				match = g.Path == w.Path && g.Field == w.Field && g.Name == w.Name
			}
			if !match {
				t.Errorf("got %d diffs, want %d:", len(diffs), len(tc.want))
				for _, g := range diffs {
					t.Errorf("  got  %s", g)
				}
				for _, w := range tc.want {
					t.Errorf("  want %s at %q", w.Field+" "+w.Name, w.Path)
				}
				return
			}
			t.Log(diffs)
			if tc.text != "" && !strings.Contains(diffs[0].String(), tc.text) {
				t.Errorf("%q does not contain %q", diffs[0].String(), tc.text)
			}
		})
	}
}

func chown(uid, gid int) func(d int, n string) error {
	return func(d int, n string) error { return unix.Fchownat(d, n, uid, gid, unix.AT_SYMLINK_NOFOLLOW) }
}

// fillHole writes zeros over the start of the sparse file, which is a hole:
// the bytes stay the same, the hole map does not.
func fillHole(t *testing.T, b string) {
	t.Helper()
	defer keepTimes(t, b, "sparse/ten-mib")()
	writeAt(t, b, "sparse/ten-mib", make([]byte, 4096), 0)
}

func TestLongPathDiffIsPrintable(t *testing.T) {
	p := strings.Repeat("x/", 3000) + "end"
	s := treecmp.Diff{Path: p, Field: treecmp.FieldMode, A: "0644", B: "0600"}.String()
	if len(s) > 400 || !strings.Contains(s, "(6003 bytes)") || !strings.HasSuffix(s, "0644 vs 0600") {
		t.Errorf("long path rendered as %q", s)
	}
}

func TestCompareFailsOnUnreadableRoot(t *testing.T) {
	if _, err := treecmp.Compare(t.TempDir(), t.TempDir()+"/missing", treecmp.Options{}); err == nil {
		t.Error("no error for a missing root")
	}
}

func TestRsyncDryRun(t *testing.T) {
	_, err := exec.LookPath("rsync")
	testtree.Require(t, err == nil, "rsync (integration/scripts/install-test-deps.sh installs it)")
	a, _ := build(t)
	b, _ := build(t)
	exclude := "--exclude=/" + testtree.LongPathRoot + "/"

	out, err := treecmp.RsyncDryRun(a, b, exclude)
	if err != nil || out != "" {
		t.Fatalf("identical trees: rsync says %q, %v", out, err)
	}

	chmod(t, b, "files/4096", 0o600)
	setXattr(t, b, "xattrs/file", "user.text", []byte("other"))
	out, err = treecmp.RsyncDryRun(a, b, exclude)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"files/4096", "xattrs/file"} {
		if !strings.Contains(out, " "+p+"\n") {
			t.Errorf("rsync output lacks %s:\n%s", p, out)
		}
	}

	// rsync's own MAXPATHLEN: without the exclude it must fail, not pass
	// silently over what it cannot see.
	if _, err := treecmp.RsyncDryRun(a, b); err == nil {
		t.Error("rsync accepted a path beyond 4096 bytes; the exclude advice in RsyncDryRun's doc is stale")
	}
}
