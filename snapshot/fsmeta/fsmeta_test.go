package fsmeta

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// requireFeature skips a test whose feature this machine lacks, but fails
// it under CI, where a silent skip would hide that nothing was tested.
func requireFeature(t *testing.T, ok bool, reason string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("required under CI: %s", reason)
	}
	t.Skip(reason)
}

func requireRoot(t *testing.T) {
	t.Helper()
	requireFeature(t, os.Geteuid() == 0, "needs root for mknod, chown and trusted.* xattrs")
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// requireXattrs checks that the filesystem under dir stores user xattrs;
// tmpfs, for one, may not.
func requireXattrs(t *testing.T, dir string) {
	t.Helper()
	probe := filepath.Join(dir, ".xattr-probe")
	must(t, os.WriteFile(probe, nil, 0o600))
	defer os.Remove(probe)
	err := unix.Lsetxattr(probe, "user.probe", []byte("1"), 0)
	requireFeature(t, err == nil, "filesystem of "+dir+" does not store user xattrs: "+errString(err))
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}

// POSIX ACL xattr layout (linux/posix_acl_xattr.h): a little-endian u32
// version 2, then per entry u16 tag, u16 perm, u32 id, sorted by tag and id.
const (
	aclUserObj  = 0x01
	aclUser     = 0x02
	aclGroupObj = 0x04
	aclMask     = 0x10
	aclOther    = 0x20
	aclNoID     = 0xffffffff
)

type aclEntry struct {
	tag, perm uint16
	id        uint32
}

func aclBytes(entries ...aclEntry) []byte {
	b := binary.LittleEndian.AppendUint32(nil, 2)
	for _, e := range entries {
		b = binary.LittleEndian.AppendUint16(b, e.tag)
		b = binary.LittleEndian.AppendUint16(b, e.perm)
		b = binary.LittleEndian.AppendUint32(b, e.id)
	}
	return b
}

// setACL uses setfacl when it is installed, so the test also covers what
// the real tool writes, and the equivalent raw xattr otherwise.
func setACL(t *testing.T, path string, setfaclArgs []string, name string, raw []byte) {
	t.Helper()
	if bin, err := exec.LookPath("setfacl"); err == nil {
		out, err := exec.Command(bin, append(setfaclArgs, path)...).CombinedOutput()
		if err != nil {
			t.Fatalf("setfacl: %v: %s", err, out)
		}
		got := make([]byte, 256)
		n, err := unix.Lgetxattr(path, name, got)
		must(t, err)
		if !bytes.Equal(got[:n], raw) {
			t.Fatalf("setfacl wrote %x, the test expects %x", got[:n], raw)
		}
		return
	}
	requireFeature(t, unix.Lsetxattr(path, name, raw, 0) == nil, "filesystem does not store POSIX ACLs")
}

// capV2 is a VFS_CAP_REVISION_2 security.capability value granting
// cap_net_bind_service, effective.
var capV2 = []byte{0x01, 0x00, 0x00, 0x02, 0x00, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

const (
	testAtime = 1600000000_111111111
	testMtime = 1500000000_222222222
)

func setTimes(t *testing.T, path string) {
	t.Helper()
	ts := []unix.Timespec{unix.NsecToTimespec(testAtime), unix.NsecToTimespec(testMtime)}
	must(t, unix.UtimesNanoAt(unix.AT_FDCWD, path, ts, unix.AT_SYMLINK_NOFOLLOW))
}

func TestReadApplyRoundTrip(t *testing.T) {
	requireRoot(t)
	type setup func(t *testing.T, path string)
	file := func(mode uint32, uid, gid int) setup {
		return func(t *testing.T, path string) {
			must(t, os.WriteFile(path, []byte("content"), 0o600))
			must(t, os.Lchown(path, uid, gid))
			must(t, unix.Chmod(path, mode))
		}
	}
	dir := func(mode uint32, uid, gid int) setup {
		return func(t *testing.T, path string) {
			must(t, os.Mkdir(path, 0o700))
			must(t, os.Lchown(path, uid, gid))
			must(t, unix.Chmod(path, mode))
		}
	}
	node := func(mode uint32, dev uint64) setup {
		return func(t *testing.T, path string) {
			must(t, unix.Mknod(path, mode, int(dev)))
			must(t, unix.Chmod(path, mode&07777))
		}
	}
	withXattrs := func(base setup, xs ...Xattr) setup {
		return func(t *testing.T, path string) {
			base(t, path)
			for _, x := range xs {
				must(t, unix.Lsetxattr(path, x.Name, x.Value, 0))
			}
		}
	}
	tests := []struct {
		name     string
		setup    setup
		xattrs   bool   // needs xattr support on the filesystem
		hardlink string // also link the file under this name
		want     func(m Meta) string
	}{
		{name: "file", setup: file(0o640, 1234, 5678),
			want: func(m Meta) string { return check(m.Type == TypeFile && m.Size == 7 && m.UID == 1234, "file fields") }},
		{name: "dir", setup: dir(0o750, 0, 0),
			want: func(m Meta) string {
				return check(m.User == "root" && m.Group == "root" && m.Links == 2, "root-owned dir")
			}},
		{name: "symlink", setup: func(t *testing.T, path string) {
			must(t, os.Symlink("some/target\xff", path))
			must(t, os.Lchown(path, 1234, 5678))
		}, want: func(m Meta) string {
			return check(m.LinkTarget == "some/target\xff" && m.Size == 12 && m.UID == 1234, "symlink target, size, owner")
		}},
		{name: "fifo", setup: node(unix.S_IFIFO|0o620, 0),
			want: func(m Meta) string { return check(m.Type == TypeFIFO && m.Mode == 0o620, "fifo") }},
		{name: "char dev", setup: node(unix.S_IFCHR|0o666, unix.Mkdev(1, 3)),
			want: func(m Meta) string { return check(m.Type == TypeCharDev && m.Rdev == unix.Mkdev(1, 3), "char 1:3") }},
		{name: "block dev", setup: node(unix.S_IFBLK|0o660, unix.Mkdev(7, 200)),
			want: func(m Meta) string {
				return check(m.Type == TypeBlockDev && m.Rdev == unix.Mkdev(7, 200), "block 7:200")
			}},
		{name: "setuid setgid file", setup: file(0o6755, 1234, 5678),
			want: func(m Meta) string { return check(m.Mode == 0o6755, "setuid and setgid survive chown") }},
		{name: "sticky dir", setup: dir(0o1777, 0, 0),
			want: func(m Meta) string { return check(m.Mode == 0o1777, "sticky") }},
		{name: "setgid dir", setup: dir(0o2775, 1234, 5678),
			want: func(m Meta) string { return check(m.Mode == 0o2775, "setgid dir") }},
		{name: "setuid file with capability", xattrs: true,
			setup: withXattrs(file(0o4750, 1234, 5678), Xattr{"security.capability", capV2}),
			want: func(m Meta) string {
				return check(m.Mode == 0o4750 && len(m.Xattrs) == 1 && bytes.Equal(m.Xattrs[0].Value, capV2),
					"chown must not have cleared the capability or setuid")
			}},
		{name: "xattrs", xattrs: true, setup: withXattrs(file(0o644, 0, 0),
			Xattr{"user.b", []byte("2")}, Xattr{"user.a", []byte("1\x00\xff")}, Xattr{"user.empty", []byte{}},
			Xattr{"user.big", bytes.Repeat([]byte("x"), 3000)}, Xattr{"trusted.t", []byte("t")}),
			want: func(m Meta) string {
				names := []string{}
				for _, x := range m.Xattrs {
					names = append(names, x.Name)
				}
				return check(strings.Join(names, " ") == "trusted.t user.a user.b user.big user.empty", "sorted xattrs: "+strings.Join(names, " "))
			}},
		{name: "access acl", xattrs: true, setup: func(t *testing.T, path string) {
			file(0o640, 0, 0)(t, path)
			setACL(t, path, []string{"-m", "u:1234:rw-"}, aclAccess, aclBytes(
				aclEntry{aclUserObj, 6, aclNoID}, aclEntry{aclUser, 6, 1234}, aclEntry{aclGroupObj, 4, aclNoID},
				aclEntry{aclMask, 6, aclNoID}, aclEntry{aclOther, 0, aclNoID}))
		}, want: func(m Meta) string {
			return check(m.Mode == 0o660 && len(m.Xattrs) == 1 && m.Xattrs[0].Name == aclAccess, "ACL with mask rw")
		}},
		{name: "default acl", xattrs: true, setup: func(t *testing.T, path string) {
			dir(0o755, 0, 0)(t, path)
			setACL(t, path, []string{"-d", "-m", "u:1234:rwx"}, aclDefault, aclBytes(
				aclEntry{aclUserObj, 7, aclNoID}, aclEntry{aclUser, 7, 1234}, aclEntry{aclGroupObj, 5, aclNoID},
				aclEntry{aclMask, 7, aclNoID}, aclEntry{aclOther, 5, aclNoID}))
		}, want: func(m Meta) string {
			return check(m.Mode == 0o755 && len(m.Xattrs) == 1 && m.Xattrs[0].Name == aclDefault, "default ACL")
		}},
		{name: "non-UTF-8 \xff\xfe name", setup: file(0o600, 0, 0),
			want: func(m Meta) string { return check(m.Type == TypeFile, "file") }},
		{name: "new\nline", setup: file(0o600, 0, 0),
			want: func(m Meta) string { return check(m.Type == TypeFile, "file") }},
		{name: "hardlink", setup: file(0o644, 1234, 5678), hardlink: "hardlink-2",
			want: func(m Meta) string { return check(m.Links == 2, "two links") }},
	}
	src, dst := t.TempDir(), t.TempDir()
	names := NewIDNames(0)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.xattrs {
				requireXattrs(t, src)
			}
			srcPath, dstPath := filepath.Join(src, tt.name), filepath.Join(dst, tt.name)
			tt.setup(t, srcPath)
			if tt.hardlink != "" {
				must(t, os.Link(srcPath, filepath.Join(src, tt.hardlink)))
			}
			setTimes(t, srcPath)
			m, err := Read(srcPath, names)
			must(t, err)
			if msg := tt.want(m); msg != "" {
				t.Errorf("source: %s: %+v", msg, m)
			}
			if m.Atime != testAtime || m.Mtime != testMtime {
				t.Errorf("source times %d, %d", m.Atime, m.Mtime)
			}

			if m.Type == TypeFile {
				content, err := os.ReadFile(srcPath)
				must(t, err)
				must(t, os.WriteFile(dstPath, content, 0o600))
			} else {
				must(t, Create(dstPath, m))
			}
			must(t, Apply(dstPath, m, ApplyOptions{}))
			if tt.hardlink != "" {
				must(t, os.Link(dstPath, filepath.Join(dst, tt.hardlink)))
			}

			got, err := Read(dstPath, names)
			must(t, err)
			if diff := metaDiff(got, m); diff != "" {
				t.Errorf("restored copy differs: %s\ngot  %+v\nwant %+v", diff, got, m)
			}
		})
	}
}

func check(ok bool, what string) string {
	if ok {
		return ""
	}
	return "want " + what
}

// metaDiff compares everything a restore can reproduce: not ctime, and not
// the inode and device, which belong to the new file.
func metaDiff(got, want Meta) string {
	got.Ctime, got.Inode, got.DeviceID = 0, 0, 0
	want.Ctime, want.Inode, want.DeviceID = 0, 0, 0
	gv, wv := reflect.ValueOf(got), reflect.ValueOf(want)
	var diffs []string
	for i := range gv.NumField() {
		if !reflect.DeepEqual(gv.Field(i).Interface(), wv.Field(i).Interface()) {
			diffs = append(diffs, gv.Type().Field(i).Name)
		}
	}
	return strings.Join(diffs, ", ")
}

func TestReadUnsupportedType(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sock")
	l, err := net.Listen("unix", path)
	must(t, err)
	defer l.Close()
	m, err := Read(path, nil)
	var ute *UnsupportedTypeError
	if !errors.Is(err, ErrUnsupportedType) || !errors.As(err, &ute) || ute.Path != path || ute.Type != TypeSocket {
		t.Fatalf("error %v, want UnsupportedTypeError for a socket at %s", err, path)
	}
	if m.Type != TypeSocket || m.Inode == 0 {
		t.Errorf("want the stat fields of the socket, got %+v", m)
	}
	if !strings.Contains(err.Error(), "socket") {
		t.Errorf("error %q does not say socket", err)
	}
}

func TestReadErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name  string
		path  string
		op    string
		errno error
	}{
		{"missing", filepath.Join(dir, "nope"), "lstat", unix.ENOENT},
		{"through a file", filepath.Join(dir, "f", "x"), "lstat", unix.ENOTDIR},
	}
	must(t, os.WriteFile(filepath.Join(dir, "f"), nil, 0o600))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Read(tt.path, nil)
			var pe *os.PathError
			if !errors.As(err, &pe) || pe.Op != tt.op || !errors.Is(err, tt.errno) {
				t.Errorf("error %v, want %s %v", err, tt.op, tt.errno)
			}
		})
	}
}

func TestReadLongSymlink(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l")
	target := strings.Repeat("d/", 1500) + "end"
	must(t, os.Symlink(target, path))
	m, err := Read(path, nil)
	must(t, err)
	if m.LinkTarget != target {
		t.Errorf("target of %d bytes read as %d bytes", len(target), len(m.LinkTarget))
	}
}

func TestApplyOwner(t *testing.T) {
	requireRoot(t)
	names := NewIDNames(0)
	names.lookupUID = func(name string) (uint32, bool) { return 4321, name == "alice" }
	names.lookupGID = func(name string) (uint32, bool) { return 8765, name == "staff" }
	tests := []struct {
		name     string
		meta     Meta
		opts     ApplyOptions
		uid, gid uint32
	}{
		{"numeric ignores names", Meta{UID: 1, GID: 2, User: "alice", Group: "staff"}, ApplyOptions{Names: names}, 1, 2},
		{"by name", Meta{UID: 1, GID: 2, User: "alice", Group: "staff"}, ApplyOptions{Owner: OwnerByName, Names: names}, 4321, 8765},
		{"by name, unknown here", Meta{UID: 1, GID: 2, User: "bob", Group: "wheel"}, ApplyOptions{Owner: OwnerByName, Names: names}, 1, 2},
		{"by name, no names stored", Meta{UID: 1, GID: 2}, ApplyOptions{Owner: OwnerByName, Names: names}, 1, 2},
		{"keep", Meta{UID: 1, GID: 2}, ApplyOptions{Owner: OwnerKeep}, 77, 88},
	}
	dir := t.TempDir()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.name)
			must(t, os.WriteFile(path, nil, 0o600))
			must(t, os.Chown(path, 77, 88))
			tt.meta.Type, tt.meta.Mode = TypeFile, 0o644
			must(t, Apply(path, tt.meta, tt.opts))
			m, err := Read(path, nil)
			must(t, err)
			if m.UID != tt.uid || m.GID != tt.gid {
				t.Errorf("owner %d:%d, want %d:%d", m.UID, m.GID, tt.uid, tt.gid)
			}
		})
	}
}

func TestApplyRefusesTypeMismatch(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	link := filepath.Join(dir, "link")
	must(t, os.WriteFile(target, nil, 0o600))
	must(t, os.Symlink(target, link))
	err := Apply(link, Meta{Type: TypeFile, Mode: 0o777}, ApplyOptions{Owner: OwnerKeep})
	if err == nil || !strings.Contains(err.Error(), "is a symlink, metadata is for a file") {
		t.Fatalf("error %v, want a type mismatch", err)
	}
	if m, _ := Read(target, nil); m.Mode != 0o600 {
		t.Errorf("Apply changed the symlink's target to %#o", m.Mode)
	}
}

// A file created under a directory with a default ACL inherits an access
// ACL; restoring a file that had none must drop it, or its permissions
// would differ from the backup's.
func TestApplyRemovesInheritedACL(t *testing.T) {
	requireRoot(t)
	parent := t.TempDir()
	requireXattrs(t, parent)
	def := aclBytes(aclEntry{aclUserObj, 7, aclNoID}, aclEntry{aclUser, 7, 1234}, aclEntry{aclGroupObj, 5, aclNoID},
		aclEntry{aclMask, 7, aclNoID}, aclEntry{aclOther, 5, aclNoID})
	requireFeature(t, unix.Lsetxattr(parent, aclDefault, def, 0) == nil, "filesystem does not store POSIX ACLs")
	path := filepath.Join(parent, "f")
	must(t, os.WriteFile(path, nil, 0o666))
	if xs, _ := ReadXattrs(path); len(xs) == 0 {
		t.Fatal("test premise: new file did not inherit an ACL")
	}
	must(t, Apply(path, Meta{Type: TypeFile, Mode: 0o640}, ApplyOptions{}))
	m, err := Read(path, nil)
	must(t, err)
	if m.Mode != 0o640 || len(m.Xattrs) != 0 {
		t.Errorf("mode %#o xattrs %v, want 0640 and none", m.Mode, m.Xattrs)
	}
}

func TestApplyReportsEachFailureAndGoesOn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	must(t, os.WriteFile(path, nil, 0o600))
	m := Meta{Type: TypeFile, Mode: 0o640, Mtime: testMtime, Atime: testAtime,
		Xattrs: []Xattr{{"bogus.namespace", []byte("x")}, {"user.ok", []byte("y")}}}
	err := Apply(path, m, ApplyOptions{Owner: OwnerKeep})
	var pe *os.PathError
	if !errors.As(err, &pe) || pe.Op != "lsetxattr bogus.namespace" || !errors.Is(err, unix.EOPNOTSUPP) {
		t.Fatalf("error %v, want lsetxattr bogus.namespace: EOPNOTSUPP", err)
	}
	got, rerr := Read(path, nil)
	must(t, rerr)
	if got.Mode != 0o640 || got.Mtime != testMtime || got.Atime != testAtime {
		t.Errorf("later steps skipped after a failure: %+v", got)
	}
}

func TestCreateRejects(t *testing.T) {
	dir := t.TempDir()
	for _, typ := range []Type{TypeFile, TypeSocket, TypeUnknown} {
		err := Create(filepath.Join(dir, typ.String()), Meta{Type: typ})
		if err == nil || !strings.Contains(err.Error(), "cannot create") {
			t.Errorf("Create(%v): %v, want refusal", typ, err)
		}
	}
	must(t, os.Mkdir(filepath.Join(dir, "exists"), 0o700))
	if err := Create(filepath.Join(dir, "exists"), Meta{Type: TypeDir}); !errors.Is(err, unix.EEXIST) {
		t.Errorf("Create over an existing entry: %v, want EEXIST", err)
	}
}

func TestCreateStartsOwnerOnly(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	for _, typ := range []Type{TypeDir, TypeFIFO, TypeCharDev, TypeBlockDev} {
		path := filepath.Join(dir, typ.String())
		must(t, Create(path, Meta{Type: typ, Mode: 0o777, Rdev: unix.Mkdev(1, 3)}))
		m, err := Read(path, nil)
		must(t, err)
		if m.Type != typ || m.Mode&0o077 != 0 {
			t.Errorf("%v created as %v mode %#o, want owner-only", typ, m.Type, m.Mode)
		}
	}
}
