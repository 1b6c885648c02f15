package fsmeta

import (
	"errors"
	"os"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// Read returns the metadata of path without following a final symlink.
// names resolves owner names; nil leaves User and Group empty.
//
// For a socket or an unknown type it returns the stat fields together with
// an *UnsupportedTypeError, so the caller can report what it skipped.
// Other errors are *os.PathError naming the failed call.
//
// Read does not change atime, except a symlink's: readlink(2) updates it and
// nothing can prevent that. See ReadReusing.
func Read(path string, names *IDNames) (Meta, error) {
	m, _, err := ReadReusing(path, names, nil)
	return m, err
}

// ReadReusing is Read, except that when unchanged reports, from the stat
// fields alone, that the file is as the caller saw it before, it skips
// readlink and listxattr and returns reused = true with LinkTarget and
// Xattrs empty, for the caller to fill in from what it saw then. A backup
// passes "same inode, size, mtime and ctime as in the previous snapshot":
// every change to a target or an attribute moves ctime. That spares an
// unchanged tree a listxattr per file and keeps backups from moving
// symlink atimes.
func ReadReusing(path string, names *IDNames, unchanged func(*Meta) bool) (m Meta, reused bool, err error) {
	var st unix.Stat_t
	if err := ignoringEINTR(func() error { return unix.Fstatat(unix.AT_FDCWD, path, &st, unix.AT_SYMLINK_NOFOLLOW) }); err != nil {
		return Meta{}, false, &os.PathError{Op: "lstat", Path: path, Err: err}
	}
	m = fromStat(&st)
	if m.Type == TypeSocket || m.Type == TypeUnknown {
		return m, false, &UnsupportedTypeError{Path: path, Type: m.Type}
	}
	if unchanged != nil && unchanged(&m) {
		reused = true
	} else {
		if m.Type == TypeSymlink {
			if m.LinkTarget, err = readlink(path, st.Size); err != nil {
				return m, false, err
			}
		}
		if m.Xattrs, err = ReadXattrs(path); err != nil {
			return m, false, err
		}
	}
	if names != nil {
		m.User = names.User(m.UID)
		m.Group = names.Group(m.GID)
	}
	return m, reused, nil
}

func fromStat(st *unix.Stat_t) Meta {
	m := Meta{
		Type:     typeOf(st.Mode),
		Mode:     st.Mode & 07777,
		UID:      st.Uid,
		GID:      st.Gid,
		Atime:    st.Atim.Nano(),
		Mtime:    st.Mtim.Nano(),
		Ctime:    st.Ctim.Nano(),
		DeviceID: uint64(st.Dev),
		Inode:    st.Ino,
		Links:    uint64(st.Nlink),
	}
	switch m.Type {
	case TypeFile, TypeSymlink:
		// A directory's st_size is filesystem bookkeeping that a restore
		// cannot reproduce, so only these two carry a size.
		m.Size = uint64(st.Size)
	case TypeCharDev, TypeBlockDev:
		m.Rdev = uint64(st.Rdev)
	}
	return m
}

// readlink reads a symlink's target without trusting st_size, which is 0
// for the magic links in /proc and may be stale if the link was replaced.
func readlink(path string, size int64) (string, error) {
	n := max(int(size)+1, 128)
	for {
		buf := make([]byte, n)
		var got int
		err := ignoringEINTR(func() (err error) { got, err = unix.Readlink(path, buf); return err })
		if err != nil {
			return "", &os.PathError{Op: "readlink", Path: path, Err: err}
		}
		if got < len(buf) {
			return string(buf[:got]), nil
		}
		n *= 2
	}
}

// ReadXattrs returns every extended attribute of path (not following a
// final symlink) that the kernel lists to this process, sorted by name. A
// filesystem without xattr support yields none and no error.
func ReadXattrs(path string) ([]Xattr, error) {
	list, err := readGrowing(func(buf []byte) (int, error) { return unix.Llistxattr(path, buf) })
	if err != nil {
		if isNotSupported(err) {
			return nil, nil
		}
		return nil, &os.PathError{Op: "llistxattr", Path: path, Err: err}
	}
	var xs []Xattr
	for name := range strings.SplitSeq(string(list), "\x00") {
		if name == "" {
			continue
		}
		value, err := readGrowing(func(buf []byte) (int, error) { return unix.Lgetxattr(path, name, buf) })
		if errors.Is(err, unix.ENODATA) {
			continue // removed since it was listed
		}
		if err != nil {
			return nil, &os.PathError{Op: "lgetxattr " + name, Path: path, Err: err}
		}
		xs = append(xs, Xattr{Name: name, Value: value})
	}
	slices.SortFunc(xs, func(a, b Xattr) int { return strings.Compare(a.Name, b.Name) })
	return xs, nil
}

// readGrowing calls an xattr system call that fails with ERANGE when the
// buffer is too small: ask for the size first, then retry while the value
// keeps growing between the two calls.
func readGrowing(call func([]byte) (int, error)) ([]byte, error) {
	for range 10 {
		var size int
		err := ignoringEINTR(func() (err error) { size, err = call(nil); return err })
		if err != nil {
			return nil, err
		}
		// One spare byte tells a value that grew to exactly our size apart
		// from one that fits.
		buf := make([]byte, size+1)
		var n int
		err = ignoringEINTR(func() (err error) { n, err = call(buf); return err })
		if errors.Is(err, unix.ERANGE) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n:n], nil
	}
	return nil, unix.ERANGE
}

func isNotSupported(err error) bool {
	return errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP)
}

func ignoringEINTR(call func() error) error {
	for {
		err := call()
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}
