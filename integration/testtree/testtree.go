// Package testtree builds, on the real filesystem, a directory tree that holds
// every kind of file and every piece of metadata hindsight has to back up and
// restore exactly, and mutates such a tree deterministically for incremental
// backup tests.
//
// Everything is created as root through *at system calls relative to
// directory file descriptors: the tree contains a path longer than PATH_MAX,
// which no single path-taking system call accepts.
//
// The content, names and times depend on nothing but fixed seeds, so two
// calls to Build yield trees that differ only in inode numbers and ctimes, and
// Mutate with the same seed changes two such trees identically.
package testtree

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Kind is the file type of a manifest entry.
type Kind string

const (
	File     Kind = "file"
	Dir      Kind = "dir"
	Symlink  Kind = "symlink"
	FIFO     Kind = "fifo"
	CharDev  Kind = "chardev"
	BlockDev Kind = "blockdev"
	Socket   Kind = "socket"
)

// Tags mark the entries that exist to exercise one particular feature, so that
// tests can find them without hard-coding paths.
const (
	TagSparse   = "sparse"    // 10 MiB, two data extents, holes elsewhere
	TagAllHole  = "all-hole"  // sparse file without any data extent
	TagHardlink = "hardlink"  // one of three names of one inode
	TagLongPath = "long-path" // relative path longer than PATH_MAX (4096)
	TagDeep     = "deep"      // 30 directory levels below the root
	TagSetuid   = "setuid"    // setuid + setgid regular file
	TagSticky   = "sticky"    // sticky directory
	TagOwned    = "owned"     // owned by OwnerUID:OwnerGID
	TagNoPasswd = "no-passwd" // owner uid has no passwd entry
	TagXattr    = "xattr"     // has user.* extended attributes
	TagACL      = "acl"       // has a POSIX access (and maybe default) ACL
	TagSecurity = "security"  // has a security.* or trusted.* xattr
	TagNonUTF8  = "non-utf8"  // name is not valid UTF-8
	TagAllBytes = "all-bytes" // name holds a slice of the bytes 1..255
	TagNewline  = "newline"   // name contains '\n'
	TagDedup    = "dedup"     // content is one 1 MiB block repeated
	TagBig      = "big"       // several MiB of content
	TagOddTime  = "odd-time"  // mtime before 1970 or after 2038
	TagDangling = "dangling"  // symlink whose target does not exist
)

// The owners that exercise uid/gid preservation. NoPasswdUID is above 2^31
// on purpose: formats that store ids as signed 32-bit integers break on it.
const (
	OwnerUID     = 1234
	OwnerGID     = 5678
	NoPasswdUID  = 3000000000
	NoPasswdGID  = 3000000001
	MutateUID    = 4321
	MutateGID    = 8765
	LongPathRoot = "long" // top directory of the PATH_MAX-exceeding chain; rsync cannot copy it
)

// Entry is one thing Build made. Path is relative to the root, '/'-separated,
// made of raw name bytes (not necessarily UTF-8, possibly over 4096 bytes).
type Entry struct {
	Path string
	Kind Kind
	Tags []string
}

// HasTag reports whether e carries tag.
func (e Entry) HasTag(tag string) bool { return slices.Contains(e.Tags, tag) }

// Manifest lists what Build made, sorted by path bytes.
type Manifest struct {
	Root    string
	Entries []Entry
	// Missing names optional features the filesystem refused (for example
	// security.* xattrs), each with the reason, so tests can say what they
	// did not cover.
	Missing []string
}

// Lookup returns the entry for path.
func (m *Manifest) Lookup(p string) (Entry, bool) {
	i, ok := slices.BinarySearchFunc(m.Entries, p, func(e Entry, p string) int { return strings.Compare(e.Path, p) })
	if !ok {
		return Entry{}, false
	}
	return m.Entries[i], true
}

// WithKind returns the entries of kind k.
func (m *Manifest) WithKind(k Kind) []Entry {
	var out []Entry
	for _, e := range m.Entries {
		if e.Kind == k {
			out = append(out, e)
		}
	}
	return out
}

// WithTag returns the entries tagged tag.
func (m *Manifest) WithTag(tag string) []Entry {
	var out []Entry
	for _, e := range m.Entries {
		if e.HasTag(tag) {
			out = append(out, e)
		}
	}
	return out
}

// InCI reports whether the tests run under CI, where a missing component
// must fail a test instead of skipping it.
func InCI() bool {
	v := os.Getenv("CI")
	return v != "" && v != "0" && v != "false"
}

// Require skips the test when ok is false, or fails it under CI, where a
// silently skipped test would hide a broken machine setup.
func Require(t testing.TB, ok bool, format string, args ...any) {
	t.Helper()
	if ok {
		return
	}
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("required for this test under CI=true: %s", msg)
	}
	t.Skipf("skipping: %s", msg)
}

// At resolves rel below root one component at a time and calls fn with a
// descriptor of rel's parent directory and rel's last name, so that fn can
// use *at system calls on paths of any length. Symlinks among the parents are
// not followed.
func At(root, rel string, fn func(dirfd int, name string) error) error {
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", root, err)
	}
	defer unix.Close(rfd)
	return at(rfd, rel, fn)
}

func at(root int, rel string, fn func(dirfd int, name string) error) error {
	dir, name := path.Split(rel)
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" {
		return fn(root, name)
	}
	fd := root
	for _, c := range strings.Split(dir, "/") {
		next, err := unix.Openat(fd, c, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if fd != root {
			unix.Close(fd)
		}
		if err != nil {
			return fmt.Errorf("open parent of %s: %w", short(rel), err)
		}
		fd = next
	}
	defer unix.Close(fd)
	return fn(fd, name)
}

// procPath names the file behind an O_PATH descriptor for the path-only
// xattr calls; with the final symlink followed it reaches the inode itself,
// even when that inode is a symlink, FIFO or device.
func procPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

func short(p string) string {
	if len(p) <= 120 {
		return strconv.Quote(p)
	}
	return fmt.Sprintf("%s...%s (%d bytes)", strconv.Quote(p[:50]), strconv.Quote(p[len(p)-50:]), len(p))
}

type builder struct {
	t       testing.TB
	root    string
	fd      int
	entries map[string]*Entry
	missing []string
	// times overrides the hash-derived timestamps of a few paths.
	times map[string][2]unix.Timespec
}

func (b *builder) fail(err error, format string, args ...any) {
	b.t.Helper()
	if err != nil {
		b.t.Fatalf("testtree: %s: %v", fmt.Sprintf(format, args...), err)
	}
}

func (b *builder) add(rel string, k Kind, tags ...string) {
	if e, ok := b.entries[rel]; ok {
		e.Tags = append(e.Tags, tags...)
		return
	}
	b.entries[rel] = &Entry{Path: rel, Kind: k, Tags: tags}
}

func (b *builder) tag(rel string, tags ...string) {
	b.entries[rel].Tags = append(b.entries[rel].Tags, tags...)
}

func (b *builder) at(rel string, fn func(dirfd int, name string) error) error {
	return at(b.fd, rel, fn)
}

func (b *builder) mkdir(rel string, mode uint32, tags ...string) {
	b.t.Helper()
	err := b.at(rel, func(d int, n string) error {
		if err := unix.Mkdirat(d, n, 0o700); err != nil {
			return err
		}
		return unix.Fchmodat(d, n, mode, 0)
	})
	b.fail(err, "mkdir %s", short(rel))
	b.add(rel, Dir, tags...)
}

func (b *builder) file(rel string, data []byte, mode uint32, tags ...string) {
	b.t.Helper()
	b.fail(writeFile(b.fd, rel, data, mode), "create %s", short(rel))
	b.add(rel, File, tags...)
}

func writeFile(root int, rel string, data []byte, mode uint32) error {
	return at(root, rel, func(d int, n string) error {
		fd, err := unix.Openat(d, n, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return err
		}
		f := os.NewFile(uintptr(fd), n)
		if _, err := f.Write(data); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		// Explicitly, because the create mode passes through the umask and
		// cannot carry setuid/setgid/sticky bits reliably.
		return unix.Fchmodat(d, n, mode, 0)
	})
}

func (b *builder) symlink(rel, target string, tags ...string) {
	b.t.Helper()
	b.fail(b.at(rel, func(d int, n string) error { return unix.Symlinkat(target, d, n) }), "symlink %s", short(rel))
	b.add(rel, Symlink, tags...)
}

func (b *builder) hardlink(existing, rel string, tags ...string) {
	b.t.Helper()
	err := b.at(existing, func(od int, on string) error {
		return b.at(rel, func(nd int, nn string) error { return unix.Linkat(od, on, nd, nn, 0) })
	})
	b.fail(err, "link %s to %s", short(rel), short(existing))
	b.add(rel, File, tags...)
}

func (b *builder) mknod(rel string, k Kind, mode uint32, dev uint64, tags ...string) {
	b.t.Helper()
	typ := map[Kind]uint32{FIFO: unix.S_IFIFO, CharDev: unix.S_IFCHR, BlockDev: unix.S_IFBLK}[k]
	err := b.at(rel, func(d int, n string) error {
		if err := unix.Mknodat(d, n, typ|0o600, int(dev)); err != nil {
			return err
		}
		return unix.Fchmodat(d, n, mode, 0)
	})
	b.fail(err, "mknod %s", short(rel))
	b.add(rel, k, tags...)
}

func (b *builder) socket(rel string, mode uint32) {
	b.t.Helper()
	err := b.at(rel, func(d int, n string) error {
		s, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(s)
		// sun_path holds only 108 bytes; going through the directory
		// descriptor keeps the address short wherever the tree lives.
		if err := unix.Bind(s, &unix.SockaddrUnix{Name: procPath(d) + "/" + n}); err != nil {
			return err
		}
		return unix.Fchmodat(d, n, mode, 0)
	})
	b.fail(err, "bind socket %s", short(rel))
	b.add(rel, Socket)
}

func (b *builder) chown(rel string, uid, gid int) {
	b.t.Helper()
	err := b.at(rel, func(d int, n string) error { return unix.Fchownat(d, n, uid, gid, unix.AT_SYMLINK_NOFOLLOW) })
	b.fail(err, "chown %s", short(rel))
}

func (b *builder) chmod(rel string, mode uint32) {
	b.t.Helper()
	b.fail(b.at(rel, func(d int, n string) error { return unix.Fchmodat(d, n, mode, 0) }), "chmod %s", short(rel))
}

func setXattr(root int, rel, name string, value []byte) error {
	return at(root, rel, func(d int, n string) error {
		fd, err := unix.Openat(d, n, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return unix.Setxattr(procPath(fd), name, value, 0)
	})
}

// xattr sets an attribute the tree cannot do without.
func (b *builder) xattr(rel, name string, value []byte) {
	b.t.Helper()
	err := setXattr(b.fd, rel, name, value)
	if errors.Is(err, unix.ENOTSUP) {
		Require(b.t, false, "filesystem under %s does not support xattr %s: %v", b.root, name, err)
	}
	b.fail(err, "setxattr %s on %s", name, short(rel))
}

// optionalXattr sets an attribute some filesystems or sandboxes refuse
// (security.* and trusted.* need privileges a container may lack).
func (b *builder) optionalXattr(rel, name string, value []byte) {
	if err := setXattr(b.fd, rel, name, value); err != nil {
		b.missing = append(b.missing, fmt.Sprintf("xattr %s on %s: %v", name, short(rel), err))
		return
	}
	b.tag(rel, TagSecurity)
}

// POSIX ACL tags and the xattr value layout (linux/posix_acl_xattr.h),
// written directly so that building the tree needs no setfacl.
const (
	aclUserObj  = 0x01
	aclUser     = 0x02
	aclGroupObj = 0x04
	aclGroup    = 0x08
	aclMask     = 0x10
	aclOther    = 0x20
	aclNoID     = 0xffffffff
)

// ACLEntry is one entry of a POSIX ACL in its xattr form.
type ACLEntry struct {
	Tag  uint16
	Perm uint16
	ID   uint32
}

// EncodeACL renders entries as the value of system.posix_acl_access or
// system.posix_acl_default. The kernel rejects entries out of canonical
// order, so callers list them sorted by tag, then id.
func EncodeACL(entries []ACLEntry) []byte {
	out := binary.LittleEndian.AppendUint32(nil, 2)
	for _, e := range entries {
		out = binary.LittleEndian.AppendUint16(out, e.Tag)
		out = binary.LittleEndian.AppendUint16(out, e.Perm)
		out = binary.LittleEndian.AppendUint32(out, e.ID)
	}
	return out
}

// TestACL is the ACL Build puts on the TagACL entries:
// user::rw- user:1234:rwx group::r-- group:5678:r-x mask::rwx other::r--.
func TestACL() []ACLEntry {
	return []ACLEntry{
		{aclUserObj, 6, aclNoID},
		{aclUser, 7, OwnerUID},
		{aclGroupObj, 4, aclNoID},
		{aclGroup, 5, OwnerGID},
		{aclMask, 7, aclNoID},
		{aclOther, 4, aclNoID},
	}
}

// Build creates the test tree in dir (created if absent, expected empty) and
// returns its manifest. It needs root; without it the test is skipped, or
// failed under CI.
func Build(t testing.TB, dir string) *Manifest {
	t.Helper()
	Require(t, os.Geteuid() == 0, "testtree.Build needs root (mknod, chown, trusted xattrs)")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("testtree: %v", err)
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("testtree: open %s: %v", dir, err)
	}
	defer unix.Close(fd)
	b := &builder{t: t, root: dir, fd: fd, entries: map[string]*Entry{}, times: map[string][2]unix.Timespec{}}
	b.build()
	if err := setTimes(fd, b.times, 0); err != nil {
		t.Fatalf("testtree: set times: %v", err)
	}
	b.checkOddTimes()
	// The root's own metadata is part of what a restore must reproduce.
	b.fail(unix.Fchmod(fd, 0o755), "chmod root")
	rt := stamp(".", 0)
	b.fail(unix.UtimesNanoAt(unix.AT_FDCWD, dir, rt[:], 0), "set times on root")

	m := &Manifest{Root: dir, Missing: b.missing}
	for _, e := range b.entries {
		m.Entries = append(m.Entries, *e)
	}
	slices.SortFunc(m.Entries, func(a, b Entry) int { return strings.Compare(a.Path, b.Path) })
	for _, s := range m.Missing {
		t.Logf("testtree: not created (filesystem refused): %s", s)
	}
	return m
}

func (b *builder) build() {
	b.t.Helper()
	const mib = 1 << 20

	// Regular files around the sizes where block, chunk and buffer logic
	// switches behaviour.
	b.mkdir("files", 0o755)
	b.file("files/empty", nil, 0o644)
	b.file("files/one-byte", []byte{'x'}, 0o644)
	b.file("files/4095", randomBytes(4095, 4095), 0o644)
	b.file("files/4096", randomBytes(4096, 4096), 0o644)
	b.file("files/4097", randomBytes(4097, 4097), 0o644)
	b.file("files/random-3MiB", randomBytes(3, 3*mib), 0o644, TagBig)
	b.file("files/text-20MiB", textish(20, 20*mib), 0o644, TagBig)
	block := randomBytes(5, mib)
	b.file("files/repeat-5MiB", bytes.Repeat(block, 5), 0o644, TagBig, TagDedup)
	// Written zeros, not holes: a restore must not turn these into holes
	// when asked to preserve the hole map exactly.
	b.file("files/zeros-1MiB", make([]byte, mib), 0o644)
	b.file("files/mode-0000", []byte("no permissions\n"), 0o000)
	b.file("files/mode-0777", []byte("#!/bin/sh\necho hi\n"), 0o777)
	b.file("files/readonly", []byte("read only\n"), 0o400)

	b.mkdir("empty-dir", 0o755)

	b.mkdir("deep", 0o755)
	p := "deep"
	for i := 1; i <= 30; i++ {
		p += fmt.Sprintf("/l%02d", i)
		b.mkdir(p, 0o755, TagDeep)
	}
	b.file(p+"/bottom.txt", []byte("30 levels down\n"), 0o644, TagDeep)

	b.buildLongPath()

	b.mkdir("links", 0o755)
	b.symlink("links/relative", "../files/one-byte")
	b.symlink("links/absolute", "/etc/passwd")
	b.symlink("links/dangling", "no/such/target", TagDangling)
	b.symlink("links/absolute-dangling", "/nonexistent/hindsight/target", TagDangling)
	b.symlink("links/to-dir", "../deep")
	b.symlink("links/self-loop", "self-loop", TagDangling)
	b.symlink("links/binary-target", "caf\xe9/\x80\xff", TagDangling, TagNonUTF8)
	b.longSymlink()

	b.mkdir("hardlinks", 0o755)
	b.mkdir("hardlinks/one", 0o755)
	b.mkdir("hardlinks/two", 0o755)
	b.file("hardlinks/one/first", []byte("one inode, three names\n"), 0o640, TagHardlink)
	b.chown("hardlinks/one/first", OwnerUID, OwnerGID)
	b.hardlink("hardlinks/one/first", "hardlinks/two/second", TagHardlink)
	b.hardlink("hardlinks/one/first", "hardlinks/third", TagHardlink)
	// Same content, owner, mode and times as the link group but its own
	// inode: only the hardlink structure tells them apart.
	b.file("hardlinks/zz-twin", []byte("one inode, three names\n"), 0o640)
	b.chown("hardlinks/zz-twin", OwnerUID, OwnerGID)
	b.times["hardlinks/zz-twin"] = stamp("hardlinks/one/first", 0)
	b.times["hardlinks/one/first"] = stamp("hardlinks/one/first", 0)
	b.times["hardlinks/two/second"] = stamp("hardlinks/one/first", 0)
	b.times["hardlinks/third"] = stamp("hardlinks/one/first", 0)

	b.buildSparse()

	b.mkdir("special", 0o755)
	b.mknod("special/fifo", FIFO, 0o644, 0)
	b.mknod("special/null", CharDev, 0o666, unix.Mkdev(1, 3))
	b.mknod("special/loop200", BlockDev, 0o660, unix.Mkdev(7, 200))
	b.socket("special/socket", 0o755)

	b.mkdir("perms", 0o755)
	b.file("perms/setuid-setgid", []byte("#!/bin/sh\nid\n"), 0o6755, TagSetuid)
	b.mkdir("perms/sticky-dir", 0o1777, TagSticky)
	b.file("perms/sticky-dir/inside", []byte("in a sticky dir\n"), 0o644)
	b.mkdir("perms/setgid-dir", 0o755)
	b.chown("perms/setgid-dir", 0, OwnerGID)
	b.chmod("perms/setgid-dir", 0o2775)
	// Inherits the directory's group through setgid.
	b.file("perms/setgid-dir/inherits-group", []byte("group from parent\n"), 0o664)
	// Restores must fill these before applying their modes.
	b.mkdir("perms/readonly-dir", 0o755)
	b.file("perms/readonly-dir/inside", []byte("in a read-only dir\n"), 0o444)
	b.chmod("perms/readonly-dir", 0o555)
	b.mkdir("perms/no-access-dir", 0o755)
	b.file("perms/no-access-dir/inside", []byte("in a mode-0 dir\n"), 0o644)
	b.chmod("perms/no-access-dir", 0o000)

	b.mkdir("owners", 0o755)
	b.file("owners/owned", []byte("owned by 1234:5678\n"), 0o644, TagOwned)
	b.chown("owners/owned", OwnerUID, OwnerGID)
	b.file("owners/no-passwd", []byte("owner has no passwd entry\n"), 0o644, TagNoPasswd)
	b.chown("owners/no-passwd", NoPasswdUID, NoPasswdGID)
	b.mkdir("owners/owned-dir", 0o750, TagOwned)
	b.chown("owners/owned-dir", OwnerUID, OwnerGID)
	b.symlink("owners/owned-symlink", "../files/empty", TagOwned)
	b.chown("owners/owned-symlink", OwnerUID, OwnerGID)
	// chown clears setuid/setgid, so the mode goes on after it.
	b.file("owners/setuid-owned", []byte("setuid, not root\n"), 0o644, TagOwned, TagSetuid)
	b.chown("owners/setuid-owned", OwnerUID, OwnerGID)
	b.chmod("owners/setuid-owned", 0o6750)

	b.buildXattrs()
	b.buildNames()

	b.mkdir("times", 0o755)
	b.file("times/pre-epoch", []byte("1960\n"), 0o644, TagOddTime)
	b.times["times/pre-epoch"] = [2]unix.Timespec{{Sec: -315619200 + 7, Nsec: 1}, {Sec: -315619200, Nsec: 999999999}}
	b.file("times/after-2038", []byte("2100\n"), 0o644, TagOddTime)
	b.times["times/after-2038"] = [2]unix.Timespec{{Sec: 4102444800, Nsec: 5}, {Sec: 4102444800 + 3, Nsec: 500000000}}

	// Enough entries that a directory listing takes several getdents calls
	// and a FUSE readdir several pages.
	b.mkdir("many", 0o755)
	for i := range 200 {
		b.file(fmt.Sprintf("many/f%03d", i), []byte(fmt.Sprintf("file %d of many\n", i)), 0o644)
	}
}

func (b *builder) buildLongPath() {
	b.t.Helper()
	p := LongPathRoot
	b.mkdir(p, 0o755)
	for i := 1; i <= 22; i++ {
		p += "/" + fmt.Sprintf("%02d-", i) + strings.Repeat(string(rune('a'+i)), 200)
		b.mkdir(p, 0o755)
		if len(p) > unix.PathMax {
			b.tag(p, TagLongPath)
		}
	}
	b.file(p+"/end.txt", []byte("beyond PATH_MAX\n"), 0o644, TagLongPath, TagXattr)
	b.xattr(p+"/end.txt", "user.where", []byte("far away"))
	b.symlink(p+"/back", "../../../..", TagLongPath)
	if len(p) <= unix.PathMax {
		b.t.Fatalf("testtree: long path is only %d bytes", len(p))
	}
}

// longSymlink makes a symlink with the longest target symlink(2) accepts,
// PATH_MAX-1 bytes. XFS stores at most 1023; there the target is 1023 bytes
// and the shortfall goes into Missing.
func (b *builder) longSymlink() {
	b.t.Helper()
	const rel = "links/long-target"
	target := strings.Repeat("t/", 2047) + "x"
	err := b.at(rel, func(d int, n string) error { return unix.Symlinkat(target, d, n) })
	if err == unix.ENAMETOOLONG {
		b.missing = append(b.missing, fmt.Sprintf("symlink target of %d bytes on %s: %v; made it 1023 bytes", len(target), rel, err))
		target = target[:1023]
		err = b.at(rel, func(d int, n string) error { return unix.Symlinkat(target, d, n) })
	}
	b.fail(err, "symlink %s", rel)
	b.add(rel, Symlink, TagDangling)
}

func (b *builder) buildSparse() {
	b.t.Helper()
	const mib = 1 << 20
	b.mkdir("sparse", 0o755)
	err := b.at("sparse/ten-mib", func(d int, n string) error {
		fd, err := unix.Openat(d, n, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if _, err := unix.Pwrite(fd, randomBytes(11, 64<<10), 1*mib); err != nil {
			return err
		}
		if _, err := unix.Pwrite(fd, randomBytes(12, 128<<10), 6*mib); err != nil {
			return err
		}
		if err := unix.Ftruncate(fd, 10*mib); err != nil {
			return err
		}
		// Flushing makes the extent map final before anyone looks at it.
		return unix.Fsync(fd)
	})
	b.fail(err, "create sparse file")
	b.chmod("sparse/ten-mib", 0o644)
	b.add("sparse/ten-mib", File, TagSparse)

	err = b.at("sparse/all-hole", func(d int, n string) error {
		fd, err := unix.Openat(d, n, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return unix.Ftruncate(fd, 10*mib)
	})
	b.fail(err, "create all-hole file")
	b.chmod("sparse/all-hole", 0o644)
	b.add("sparse/all-hole", File, TagAllHole)

	var extents int
	err = b.at("sparse/ten-mib", func(d int, n string) error {
		fd, err := unix.Openat(d, n, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		m, err := DataMap(fd)
		extents = len(m)
		return err
	})
	b.fail(err, "map sparse file")
	Require(b.t, extents == 2, "filesystem under %s keeps holes in sparse files (SEEK_DATA found %d data extents, want 2)", b.root, extents)
}

// DataMap lists the data extents of the open file fd as [start, end) byte
// ranges, as SEEK_DATA/SEEK_HOLE report them; the gaps are holes.
func DataMap(fd int) ([][2]int64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	var out [][2]int64
	for off := int64(0); off < st.Size; {
		d, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if err == unix.ENXIO {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("SEEK_DATA at %d: %w", off, err)
		}
		h, err := unix.Seek(fd, d, unix.SEEK_HOLE)
		if err != nil {
			return nil, fmt.Errorf("SEEK_HOLE at %d: %w", d, err)
		}
		out = append(out, [2]int64{d, h})
		off = h
	}
	return out, nil
}

func (b *builder) buildXattrs() {
	b.t.Helper()
	b.mkdir("xattrs", 0o755)
	b.file("xattrs/file", []byte("has xattrs\n"), 0o644, TagXattr)
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	b.xattr("xattrs/file", "user.binary", all)
	b.xattr("xattrs/file", "user.empty", nil)
	b.xattr("xattrs/file", "user.text", []byte("plain text"))
	b.xattr("xattrs/file", "user.utf8", []byte("h\u00e9llo w\u00f6rld \u2603"))
	b.xattr("xattrs/file", "user.nul-terminated", []byte("c string\x00"))
	b.file("xattrs/large-value", []byte("one large xattr\n"), 0o644, TagXattr)
	b.xattr("xattrs/large-value", "user.large", randomBytes(31, 3000))
	b.file("xattrs/long-name", []byte("xattr with a 255-byte name\n"), 0o644, TagXattr)
	b.xattr("xattrs/long-name", "user."+strings.Repeat("n", 250), []byte("v"))
	b.mkdir("xattrs/dir", 0o755, TagXattr)
	b.xattr("xattrs/dir", "user.on-dir", []byte("directories have them too"))

	b.mkdir("acl", 0o755)
	b.file("acl/file", []byte("has an access ACL\n"), 0o644, TagACL)
	b.xattr("acl/file", "system.posix_acl_access", EncodeACL(TestACL()))
	b.mkdir("acl/dir", 0o755, TagACL)
	b.xattr("acl/dir", "system.posix_acl_access", EncodeACL(TestACL()))
	b.xattr("acl/dir", "system.posix_acl_default", EncodeACL(TestACL()))
	// Gets its ACL from the directory's default ACL at creation.
	b.file("acl/dir/inherited", []byte("inherited ACL\n"), 0o640, TagACL)

	// Privileged namespaces, on the file types user.* is not allowed on.
	b.mkdir("security", 0o755)
	b.file("security/capability", []byte("#!/bin/sh\n"), 0o755)
	// vfs_cap_data revision 2, effective, permitted = CAP_NET_BIND_SERVICE.
	b.optionalXattr("security/capability", "security.capability",
		[]byte{1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	b.symlink("security/symlink", "capability")
	b.optionalXattr("security/symlink", "trusted.hindsight", []byte("on a symlink"))
	b.optionalXattr("security/symlink", "security.hindsight", []byte{0, 1, 2})
	b.mknod("security/fifo", FIFO, 0o600, 0)
	b.optionalXattr("security/fifo", "trusted.hindsight", []byte("on a fifo"))
}

func (b *builder) buildNames() {
	b.t.Helper()
	b.mkdir("names", 0o755)
	b.file("names/caf\xe9.latin1", []byte("latin-1 name\n"), 0o644, TagNonUTF8)
	b.file("names/\x80\x81\xfe\xff", []byte("high bytes\n"), 0o644, TagNonUTF8)
	b.mkdir("names/dir-\xc0\xaf", 0o755, TagNonUTF8) // overlong UTF-8 encoding of '/'
	b.file("names/dir-\xc0\xaf/inside", []byte("under a non-UTF-8 dir\n"), 0o644)
	b.file("names/new\nline", []byte("newline in name\n"), 0o644, TagNewline)
	b.file("names/\n", []byte("name is a newline\n"), 0o644, TagNewline)
	b.file("names/-dash", nil, 0o644)
	b.file("names/ leading space", nil, 0o644)
	b.file("names/trailing space ", nil, 0o644)
	b.file("names/back\\slash", nil, 0o644)
	b.file("names/..dots", nil, 0o644)
	b.file("names/\u00fctf-8 \u2603", nil, 0o644)
	b.file("names/"+strings.Repeat("N", 255), []byte("NAME_MAX\n"), 0o644)
	// Every byte but NUL and '/' appears in some name.
	var chunk []byte
	part := 0
	for c := 1; c <= 255; c++ {
		if c != '/' {
			chunk = append(chunk, byte(c))
		}
		if len(chunk) == 64 || c == 255 {
			tags := []string{TagAllBytes}
			if c > 0x7f {
				tags = append(tags, TagNonUTF8)
			}
			b.file("names/"+string(chunk), []byte(fmt.Sprintf("all-bytes part %d\n", part)), 0o644, tags...)
			chunk, part = nil, part+1
		}
	}
}

// checkOddTimes verifies that the filesystem kept timestamps outside
// 1970..2038 instead of clamping them.
func (b *builder) checkOddTimes() {
	for rel, ts := range b.times {
		if !strings.HasPrefix(rel, "times/") {
			continue
		}
		var st unix.Stat_t
		b.fail(b.at(rel, func(d int, n string) error { return unix.Fstatat(d, n, &st, unix.AT_SYMLINK_NOFOLLOW) }), "stat %s", rel)
		if st.Mtim != ts[1] {
			b.missing = append(b.missing, fmt.Sprintf("mtime %d.%09d on %s: filesystem stored %d.%09d", ts[1].Sec, ts[1].Nsec, rel, st.Mtim.Sec, st.Mtim.Nsec))
		}
	}
}

// stamp derives an (atime, mtime) pair from rel, so every entry has its own
// past time with nanoseconds and a mix-up between entries shows up.
func stamp(rel string, salt uint64) [2]unix.Timespec {
	h := fnv.New64a()
	binary.Write(h, binary.LittleEndian, salt)
	h.Write([]byte(rel))
	v := h.Sum64()
	const base = 1072915200 // 2004-01-01
	const span = 15 * 365 * 86400
	mtime := unix.Timespec{Sec: base + int64(v%span), Nsec: int64((v >> 20) % 1e9)}
	// Mutations use salt != 0 and must land after the original times, so
	// that mtime-based change detection sees them as newer.
	if salt != 0 {
		mtime.Sec += span
	}
	atime := unix.Timespec{Sec: mtime.Sec + int64((v>>40)%86400), Nsec: int64((v >> 7) % 1e9)}
	return [2]unix.Timespec{atime, mtime}
}

// setTimes gives every entry below root its stamp, children before their
// directory, since creating or touching a child would move the directory's
// mtime again.
func setTimes(root int, override map[string][2]unix.Timespec, salt uint64) error {
	return walk(root, "", func(d int, name, rel string, _ *unix.Stat_t) error {
		ts, ok := override[rel]
		if !ok {
			ts = stamp(rel, salt)
		}
		return unix.UtimesNanoAt(d, name, ts[:], unix.AT_SYMLINK_NOFOLLOW)
	})
}

// Walk calls fn with the path relative to root and the lstat of every entry
// below root, a directory's entries (sorted by name bytes) before the
// directory itself. It works at any path length and follows no symlinks.
func Walk(root string, fn func(rel string, st *unix.Stat_t) error) error {
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOATIME|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return walk(fd, "", func(_ int, _, rel string, st *unix.Stat_t) error { return fn(rel, st) })
}

// walk calls fn for every entry below the directory dirfd, after it has
// walked an entry's children.
func walk(dirfd int, rel string, fn func(dirfd int, name, rel string, st *unix.Stat_t) error) error {
	names, err := readNames(dirfd)
	if err != nil {
		return fmt.Errorf("read directory %s: %w", short(rel), err)
	}
	for _, name := range names {
		r := path.Join(rel, name)
		var st unix.Stat_t
		if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("stat %s: %w", short(r), err)
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_NOATIME|unix.O_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("open %s: %w", short(r), err)
			}
			err = walk(fd, r, fn)
			unix.Close(fd)
			if err != nil {
				return err
			}
		}
		if err := fn(dirfd, name, r, &st); err != nil {
			return fmt.Errorf("%s: %w", short(r), err)
		}
	}
	return nil
}

// readNames lists a directory sorted by name bytes, the order every consumer
// of the tree uses.
func readNames(fd int) ([]string, error) {
	if _, err := unix.Seek(fd, 0, 0); err != nil {
		return nil, err
	}
	var names []string
	buf := make([]byte, 32<<10)
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			break
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
	slices.Sort(names)
	return names, nil
}

func randomBytes(seed uint64, n int) []byte {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	out := make([]byte, n)
	rand.NewChaCha8(s).Read(out)
	return out
}

// textish yields log-like lines that compress well but are not trivially
// repetitive, like most of what a server's file system holds.
func textish(seed uint64, n int) []byte {
	words := strings.Fields(`backup snapshot volume chunk restore pack index
		server kernel mount error warning info debug the of and to a in is that for
		it with as was on be at by this had not are but from or have an they which`)
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	var buf bytes.Buffer
	buf.Grow(n + 256)
	t := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	for line := 0; buf.Len() < n; line++ {
		t = t.Add(time.Duration(r.IntN(5000)) * time.Millisecond)
		buf.WriteString(t.Format("2006-01-02T15:04:05.000 "))
		for range r.IntN(12) + 3 {
			buf.WriteString(words[r.IntN(len(words))])
			buf.WriteByte(' ')
		}
		buf.WriteString(strconv.Itoa(r.IntN(100000)))
		buf.WriteByte('\n')
	}
	return buf.Bytes()[:n]
}
