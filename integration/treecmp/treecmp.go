// Package treecmp compares two directory trees exactly, the way a restore
// must be judged: types, permission and special mode bits, owners, sizes,
// nanosecond times, symlink targets, device numbers, content, holes,
// extended attributes of every namespace (POSIX ACLs included) and the
// hardlink structure.
//
// Both trees are walked in lockstep through directory file descriptors, so
// paths longer than PATH_MAX work, and symlinks are never followed.
package treecmp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The Field of a Diff.
const (
	FieldPresence = "presence" // the entry exists in one tree only
	FieldType     = "type"
	FieldMode     = "mode" // permission, setuid, setgid and sticky bits
	FieldUID      = "uid"
	FieldGID      = "gid"
	FieldSize     = "size"
	FieldMtime    = "mtime"
	FieldAtime    = "atime"
	FieldTarget   = "target" // symlink target
	FieldRdev     = "rdev"   // device numbers
	FieldContent  = "content"
	FieldHoles    = "holes"
	FieldXattr    = "xattr" // Diff.Name holds the attribute's name
	FieldHardlink = "hardlink"
)

// Options selects the optional comparisons.
type Options struct {
	// Atime compares access times too (of everything but symlinks, whose
	// atime any readlink moves). Compare itself reads with O_NOATIME, so it
	// leaves atimes as they were.
	Atime bool
	// Holes compares the SEEK_DATA/SEEK_HOLE map of regular files, so a
	// sparse file restored dense (or zeros restored as holes) differs. Both
	// trees must be on filesystems that report holes.
	Holes bool
	// SkipRootMeta ignores the metadata of the two roots themselves, for
	// when b is a pre-existing directory that a restore filled.
	SkipRootMeta bool
	// Exclude, when set, is asked about every entry of either tree; an
	// entry it excludes in either tree is neither compared nor descended
	// into. mode is the st_mode from lstat.
	Exclude func(path string, mode uint32) bool
}

// SkipSockets is an Options.Exclude for comparing a source tree with a
// restore of it: hindsight skips sockets by design.
func SkipSockets(_ string, mode uint32) bool { return mode&unix.S_IFMT == unix.S_IFSOCK }

// Diff is one difference. Path is relative to the roots ("." for the roots
// themselves), raw name bytes joined with '/'. A and B describe the value in
// each tree.
type Diff struct {
	Path  string
	Field string
	Name  string // attribute name, for FieldXattr
	A, B  string
}

func (d Diff) String() string {
	switch d.Field {
	case FieldPresence:
		if d.B == absent {
			return fmt.Sprintf("only in a: %s (%s)", quote(d.Path), d.A)
		}
		return fmt.Sprintf("only in b: %s (%s)", quote(d.Path), d.B)
	case FieldXattr:
		return fmt.Sprintf("xattr %s differs at %s: %s vs %s", strconv.Quote(d.Name), quote(d.Path), d.A, d.B)
	}
	return fmt.Sprintf("%s differs at %s: %s vs %s", d.Field, quote(d.Path), d.A, d.B)
}

const absent = "absent"

// quote makes names with newlines or invalid UTF-8 printable, and shortens
// the very long paths a tree may hold to something a log can show.
func quote(p string) string {
	if len(p) <= 240 {
		return strconv.Quote(p)
	}
	return fmt.Sprintf("%s...%s (%d bytes)", strconv.Quote(p[:100]), strconv.Quote(p[len(p)-100:]), len(p))
}

// Compare walks a and b and returns their differences in walk order (names
// sorted by bytes). The error is for trees that cannot be read, never for
// differences.
func Compare(a, b string, opts Options) ([]Diff, error) {
	c := &comparer{opts: opts, linksA: map[inode]string{}, linksB: map[inode]string{}, buf: [2][]byte{make([]byte, 1<<20), make([]byte, 1<<20)}}
	// The roots themselves may be reached through symlinks; only what is
	// below them is compared without following any.
	fa, err := openDir(unix.AT_FDCWD, a, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", a, err)
	}
	defer unix.Close(fa)
	fb, err := openDir(unix.AT_FDCWD, b, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", b, err)
	}
	defer unix.Close(fb)
	if !opts.SkipRootMeta {
		var sa, sb unix.Stat_t
		if err := unix.Fstat(fa, &sa); err != nil {
			return nil, err
		}
		if err := unix.Fstat(fb, &sb); err != nil {
			return nil, err
		}
		if err := c.meta(".", fa, fb, "", &sa, &sb); err != nil {
			return nil, err
		}
	}
	if err := c.dir(fa, fb, ""); err != nil {
		return nil, err
	}
	return c.diffs, nil
}

type inode struct{ dev, ino uint64 }

type comparer struct {
	opts   Options
	diffs  []Diff
	linksA map[inode]string // inode → first path seen with it
	linksB map[inode]string
	buf    [2][]byte
}

func (c *comparer) add(p, field, a, b string) {
	c.diffs = append(c.diffs, Diff{Path: p, Field: field, A: a, B: b})
}

func openDir(dirfd int, name string, extra int) (int, error) {
	flags := unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC | extra
	fd, err := unix.Openat(dirfd, name, flags|unix.O_NOATIME, 0)
	if err == unix.EPERM { // O_NOATIME needs ownership or CAP_FOWNER
		fd, err = unix.Openat(dirfd, name, flags, 0)
	}
	return fd, err
}

func (c *comparer) excluded(p string, st *unix.Stat_t) bool {
	return st != nil && c.opts.Exclude != nil && c.opts.Exclude(p, st.Mode)
}

func (c *comparer) dir(fa, fb int, rel string) error {
	na, err := readNames(fa)
	if err != nil {
		return fmt.Errorf("a: read directory %s: %w", quote(rel), err)
	}
	nb, err := readNames(fb)
	if err != nil {
		return fmt.Errorf("b: read directory %s: %w", quote(rel), err)
	}
	for i, j := 0, 0; i < len(na) || j < len(nb); {
		var name string
		var inA, inB bool
		switch {
		case j == len(nb) || (i < len(na) && na[i] < nb[j]):
			name, inA = na[i], true
			i++
		case i == len(na) || nb[j] < na[i]:
			name, inB = nb[j], true
			j++
		default:
			name, inA, inB = na[i], true, true
			i, j = i+1, j+1
		}
		if err := c.entry(fa, fb, name, path.Join(rel, name), inA, inB); err != nil {
			return err
		}
	}
	return nil
}

func lstat(dirfd int, name string, present bool) (*unix.Stat_t, error) {
	if !present {
		return nil, nil
	}
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, err
	}
	return &st, nil
}

func (c *comparer) entry(fa, fb int, name, p string, inA, inB bool) error {
	sa, err := lstat(fa, name, inA)
	if err != nil {
		return fmt.Errorf("a: %s: %w", quote(p), err)
	}
	sb, err := lstat(fb, name, inB)
	if err != nil {
		return fmt.Errorf("b: %s: %w", quote(p), err)
	}
	if c.excluded(p, sa) || c.excluded(p, sb) {
		return nil
	}
	if sa == nil || sb == nil {
		d := Diff{Path: p, Field: FieldPresence, A: absent, B: absent}
		if sa != nil {
			d.A = typeName(sa.Mode)
		} else {
			d.B = typeName(sb.Mode)
		}
		c.diffs = append(c.diffs, d)
		return nil
	}
	if sa.Mode&unix.S_IFMT != sb.Mode&unix.S_IFMT {
		c.add(p, FieldType, typeName(sa.Mode), typeName(sb.Mode))
		return nil
	}
	if err := c.meta(p, fa, fb, name, sa, sb); err != nil {
		return err
	}
	if sa.Mode&unix.S_IFMT != unix.S_IFDIR {
		c.hardlinks(p, sa, sb)
	}
	switch sa.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		if sa.Size != sb.Size {
			c.add(p, FieldSize, strconv.FormatInt(sa.Size, 10), strconv.FormatInt(sb.Size, 10))
			return nil
		}
		return c.content(fa, fb, name, p)
	case unix.S_IFLNK:
		ta, err := readlink(fa, name, sa.Size)
		if err != nil {
			return fmt.Errorf("a: %s: %w", quote(p), err)
		}
		tb, err := readlink(fb, name, sb.Size)
		if err != nil {
			return fmt.Errorf("b: %s: %w", quote(p), err)
		}
		if ta != tb {
			c.add(p, FieldTarget, quote(ta), quote(tb))
		}
	case unix.S_IFCHR, unix.S_IFBLK:
		if sa.Rdev != sb.Rdev {
			c.add(p, FieldRdev, devName(sa.Rdev), devName(sb.Rdev))
		}
	case unix.S_IFDIR:
		da, err := openDir(fa, name, unix.O_NOFOLLOW)
		if err != nil {
			return fmt.Errorf("a: open %s: %w", quote(p), err)
		}
		defer unix.Close(da)
		db, err := openDir(fb, name, unix.O_NOFOLLOW)
		if err != nil {
			return fmt.Errorf("b: open %s: %w", quote(p), err)
		}
		defer unix.Close(db)
		return c.dir(da, db, p)
	}
	return nil
}

// meta compares what every file type has. name is "" for the roots, whose
// descriptors fa and fb are then the roots themselves.
func (c *comparer) meta(p string, fa, fb int, name string, sa, sb *unix.Stat_t) error {
	if sa.Mode&0o7777 != sb.Mode&0o7777 {
		c.add(p, FieldMode, fmt.Sprintf("0%03o", sa.Mode&0o7777), fmt.Sprintf("0%03o", sb.Mode&0o7777))
	}
	if sa.Uid != sb.Uid {
		c.add(p, FieldUID, strconv.FormatUint(uint64(sa.Uid), 10), strconv.FormatUint(uint64(sb.Uid), 10))
	}
	if sa.Gid != sb.Gid {
		c.add(p, FieldGID, strconv.FormatUint(uint64(sa.Gid), 10), strconv.FormatUint(uint64(sb.Gid), 10))
	}
	if sa.Mtim != sb.Mtim {
		c.add(p, FieldMtime, timeName(sa.Mtim), timeName(sb.Mtim))
	}
	if c.opts.Atime && sa.Mode&unix.S_IFMT != unix.S_IFLNK && sa.Atim != sb.Atim {
		c.add(p, FieldAtime, timeName(sa.Atim), timeName(sb.Atim))
	}
	xa, err := xattrs(fa, name)
	if err != nil {
		return fmt.Errorf("a: xattrs of %s: %w", quote(p), err)
	}
	xb, err := xattrs(fb, name)
	if err != nil {
		return fmt.Errorf("b: xattrs of %s: %w", quote(p), err)
	}
	names := make([]string, 0, len(xa)+len(xb))
	for k := range xa {
		names = append(names, k)
	}
	for k := range xb {
		if _, ok := xa[k]; !ok {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	for _, k := range names {
		va, okA := xa[k]
		vb, okB := xb[k]
		if okA != okB || !bytes.Equal(va, vb) {
			c.diffs = append(c.diffs, Diff{Path: p, Field: FieldXattr, Name: k, A: valueName(k, va, okA), B: valueName(k, vb, okB)})
		}
	}
	return nil
}

// hardlinks checks that p is linked to the same earlier path in both trees,
// or to none: a group of names sharing an inode in a shares one in b, and
// names that are separate in a are separate in b. Links to names outside
// the trees do not count, so st_nlink itself is not compared.
func (c *comparer) hardlinks(p string, sa, sb *unix.Stat_t) {
	leader := func(links map[inode]string, st *unix.Stat_t) string {
		if st.Nlink < 2 {
			return p
		}
		k := inode{st.Dev, st.Ino}
		if first, ok := links[k]; ok {
			return first
		}
		links[k] = p
		return p
	}
	la, lb := leader(c.linksA, sa), leader(c.linksB, sb)
	if la != lb {
		c.add(p, FieldHardlink, linkName(p, la), linkName(p, lb))
	}
}

func linkName(p, leader string) string {
	if leader == p {
		return "not linked to an earlier name"
	}
	return "same inode as " + quote(leader)
}

func (c *comparer) content(fa, fb int, name, p string) error {
	ra, err := openFile(fa, name)
	if err != nil {
		return fmt.Errorf("a: open %s: %w", quote(p), err)
	}
	defer ra.Close()
	rb, err := openFile(fb, name)
	if err != nil {
		return fmt.Errorf("b: open %s: %w", quote(p), err)
	}
	defer rb.Close()
	if c.opts.Holes {
		ma, err := dataMap(int(ra.Fd()))
		if err != nil {
			return fmt.Errorf("a: %s: %w", quote(p), err)
		}
		mb, err := dataMap(int(rb.Fd()))
		if err != nil {
			return fmt.Errorf("b: %s: %w", quote(p), err)
		}
		if !slices.Equal(ma, mb) {
			c.add(p, FieldHoles, mapName(ma), mapName(mb))
		}
	}
	// Streams both files side by side rather than hashing each: it needs no
	// more memory and can say where they part.
	var off int64
	for {
		na, errA := io.ReadFull(ra, c.buf[0])
		nb, errB := io.ReadFull(rb, c.buf[1])
		if errA != nil && errA != io.EOF && errA != io.ErrUnexpectedEOF {
			return fmt.Errorf("a: read %s: %w", quote(p), errA)
		}
		if errB != nil && errB != io.EOF && errB != io.ErrUnexpectedEOF {
			return fmt.Errorf("b: read %s: %w", quote(p), errB)
		}
		if i := firstDiff(c.buf[0][:na], c.buf[1][:nb]); i >= 0 {
			c.add(p, FieldContent, byteName(c.buf[0][:na], i, off), byteName(c.buf[1][:nb], i, off))
			return nil
		}
		off += int64(na)
		if errA != nil || errB != nil {
			return nil
		}
	}
}

func firstDiff(a, b []byte) int {
	if bytes.Equal(a, b) {
		return -1
	}
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

func byteName(b []byte, i int, off int64) string {
	if i >= len(b) {
		return fmt.Sprintf("EOF at offset %d", off+int64(i))
	}
	return fmt.Sprintf("%#02x at offset %d", b[i], off+int64(i))
}

func openFile(dirfd int, name string) (*os.File, error) {
	const flags = unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Openat(dirfd, name, flags|unix.O_NOATIME, 0)
	if err == unix.EPERM {
		fd, err = unix.Openat(dirfd, name, flags, 0)
	}
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
}

// dataMap lists the data extents of fd as SEEK_DATA/SEEK_HOLE report them.
func dataMap(fd int) ([][2]int64, error) {
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
	if _, err := unix.Seek(fd, 0, io.SeekStart); err != nil {
		return nil, err
	}
	return out, nil
}

func mapName(m [][2]int64) string {
	if len(m) == 0 {
		return "no data extents"
	}
	parts := make([]string, len(m))
	for i, e := range m {
		parts[i] = fmt.Sprintf("[%d,%d)", e[0], e[1])
	}
	return "data " + strings.Join(parts, " ")
}

func readlink(dirfd int, name string, size int64) (string, error) {
	// st_size is the target length on local filesystems, but not on all
	// (procfs reports 0), so grow until the target fits.
	for n := max(size+1, 256); ; n *= 2 {
		buf := make([]byte, n)
		got, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if int64(got) < n {
			return string(buf[:got]), nil
		}
	}
}

// xattrs reads every extended attribute of name in dirfd (or of dirfd
// itself when name is ""), whatever the file type. The path-based calls go
// through /proc/self/fd of an O_PATH descriptor: that reaches the inode
// itself, symlinks included, at any path length, and opens no FIFO or
// device.
func xattrs(dirfd int, name string) (map[string][]byte, error) {
	fd := dirfd
	if name != "" {
		var err error
		fd, err = unix.Openat(dirfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		defer unix.Close(fd)
	}
	p := "/proc/self/fd/" + strconv.Itoa(fd)
	list, err := growRead(func(buf []byte) (int, error) { return unix.Listxattr(p, buf) })
	if errors.Is(err, unix.ENOTSUP) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listxattr: %w", err)
	}
	out := map[string][]byte{}
	for _, k := range strings.Split(string(list), "\x00") {
		if k == "" || xfsACLMirror[k] {
			continue
		}
		v, err := growRead(func(buf []byte) (int, error) { return unix.Getxattr(p, k, buf) })
		if err == unix.ENODATA { // removed while we looked
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("getxattr %s: %w", k, err)
		}
		out[k] = v
	}
	return out, nil
}

// xfsACLMirror names the attributes in which XFS stores POSIX ACLs and
// shows to root beside system.posix_acl_*: the same ACL twice. Comparing
// the system.* form keeps a tree on XFS comparable with one elsewhere.
var xfsACLMirror = map[string]bool{"trusted.SGI_ACL_FILE": true, "trusted.SGI_ACL_DEFAULT": true}

// growRead calls an xattr syscall with a buffer large enough for the value,
// retrying when the value grew between the size query and the read.
func growRead(call func([]byte) (int, error)) ([]byte, error) {
	for {
		n, err := call(nil)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return []byte{}, nil
		}
		buf := make([]byte, n)
		n, err = call(buf)
		if err == unix.ERANGE {
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

func valueName(name string, v []byte, ok bool) string {
	if !ok {
		return absent
	}
	if name == "system.posix_acl_access" || name == "system.posix_acl_default" {
		if acl, ok := aclText(v); ok {
			return acl
		}
	}
	if len(v) > 48 {
		return fmt.Sprintf("%q... (%d bytes)", v[:48], len(v))
	}
	return fmt.Sprintf("%q", v)
}

// aclText renders an ACL xattr value in getfacl's short form, since its raw
// bytes say little to a reader.
func aclText(v []byte) (string, bool) {
	if len(v) < 4 || binary.LittleEndian.Uint32(v) != 2 || (len(v)-4)%8 != 0 {
		return "", false
	}
	tags := map[uint16]string{0x01: "user:", 0x02: "user:", 0x04: "group:", 0x08: "group:", 0x10: "mask:", 0x20: "other:"}
	var parts []string
	for e := v[4:]; len(e) > 0; e = e[8:] {
		tag, perm, id := binary.LittleEndian.Uint16(e), binary.LittleEndian.Uint16(e[2:]), binary.LittleEndian.Uint32(e[4:])
		t, ok := tags[tag]
		if !ok {
			return "", false
		}
		if tag == 0x02 || tag == 0x08 {
			t += strconv.FormatUint(uint64(id), 10)
		}
		rwx := []byte("---")
		for i, c := range "rwx" {
			if perm&(4>>i) != 0 {
				rwx[i] = byte(c)
			}
		}
		parts = append(parts, t+":"+string(rwx))
	}
	return strings.Join(parts, ","), true
}

func typeName(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "file"
	case unix.S_IFDIR:
		return "dir"
	case unix.S_IFLNK:
		return "symlink"
	case unix.S_IFIFO:
		return "fifo"
	case unix.S_IFCHR:
		return "chardev"
	case unix.S_IFBLK:
		return "blockdev"
	case unix.S_IFSOCK:
		return "socket"
	}
	return fmt.Sprintf("type %#o", mode&unix.S_IFMT)
}

func devName(rdev uint64) string { return fmt.Sprintf("%d:%d", unix.Major(rdev), unix.Minor(rdev)) }

func timeName(ts unix.Timespec) string {
	return time.Unix(ts.Sec, ts.Nsec).UTC().Format("2006-01-02T15:04:05.000000000Z")
}

func readNames(fd int) ([]string, error) {
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

// RsyncDryRun asks rsync, as an independent second opinion, what it would
// change to make b equal to a, and returns its itemized list: empty means
// rsync sees no difference. rsync refuses paths longer than its MAXPATHLEN
// (4096), and fails with exit code 23 on a tree that holds one; exclude such
// parts with extra arguments, e.g. "--exclude=/long/".
func RsyncDryRun(a, b string, extra ...string) (string, error) {
	args := append([]string{"-aHAXn", "--checksum", "--numeric-ids", "--delete", "-i"}, extra...)
	args = append(args, strings.TrimSuffix(a, "/")+"/", strings.TrimSuffix(b, "/")+"/")
	cmd := exec.Command("rsync", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("rsync %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
