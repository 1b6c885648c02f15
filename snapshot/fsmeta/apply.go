package fsmeta

import (
	"errors"
	"fmt"
	"os"
	"slices"

	"golang.org/x/sys/unix"
)

// OwnerPolicy says how Apply sets ownership.
type OwnerPolicy int

const (
	// OwnerNumeric restores the stored uid and gid. It is the default
	// because a bare-metal restore runs from a rescue system whose
	// /etc/passwd is not the restored machine's.
	OwnerNumeric OwnerPolicy = iota
	// OwnerByName maps the stored user and group names to this system's
	// ids, and falls back to the stored ids for names it does not know.
	// For restoring onto a different, already installed machine.
	OwnerByName
	// OwnerKeep leaves ownership alone, for restores by a non-root user,
	// who may not give files away.
	OwnerKeep
)

// ApplyOptions tune Apply. The zero value restores numeric ownership.
type ApplyOptions struct {
	Owner OwnerPolicy
	Names *IDNames // for OwnerByName; nil means a resolver of default size
}

// aclXattrs are the attributes a new file can inherit from its parent's
// default ACL. Apply removes them when m lacks them; it leaves other
// attributes it did not set (an SELinux label the policy assigned) alone.
var aclXattrs = []string{aclAccess, aclDefault}

const (
	aclAccess  = "system.posix_acl_access"
	aclDefault = "system.posix_acl_default"
)

// Apply gives the existing file at path (not following a final symlink) the
// ownership, mode, extended attributes and times of m. Content must already
// be written, since writing changes mtime. Call it on a directory only after
// everything inside has been restored: creating entries changes the
// directory's mtime, and restrictive permissions would block writing them.
//
// The order matters: chown clears setuid, setgid and file capabilities, so
// mode and xattrs come after it; times come last because every other step
// changes ctime and some change mtime. Ctime itself cannot be set: it will
// be the time of the restore. Symlinks have no mode on Linux, so they get
// owner, xattrs and times only.
//
// Apply does every step it can and returns the failures joined, each an
// *os.PathError whose Op names the step ("lchown", "chmod", "lsetxattr
// user.foo", "utimensat"), so a caller can, for example, warn about xattrs
// the target filesystem does not support and fail on the rest.
func Apply(path string, m Meta, opts ApplyOptions) error {
	var st unix.Stat_t
	if err := unix.Fstatat(unix.AT_FDCWD, path, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "lstat", Path: path, Err: err}
	}
	if got := typeOf(st.Mode); got != m.Type {
		// Refusing here keeps chmod from following a symlink that stands
		// where a file was expected.
		return &os.PathError{Op: "apply", Path: path, Err: fmt.Errorf("is a %v, metadata is for a %v", got, m.Type)}
	}
	var errs []error
	fail := func(op string, err error) {
		errs = append(errs, &os.PathError{Op: op, Path: path, Err: err})
	}
	if opts.Owner != OwnerKeep {
		uid, gid := owner(m, opts)
		if err := unix.Fchownat(unix.AT_FDCWD, path, int(uid), int(gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
			fail("lchown", err)
		}
	}
	if m.Type != TypeSymlink {
		removeStrayACLs(path, m, fail)
		if err := unix.Fchmodat(unix.AT_FDCWD, path, m.Mode&07777, 0); err != nil {
			fail("chmod", err)
		}
	}
	for _, x := range m.Xattrs {
		if err := unix.Lsetxattr(path, x.Name, x.Value, 0); err != nil {
			fail("lsetxattr "+x.Name, err)
		}
	}
	ts := []unix.Timespec{unix.NsecToTimespec(m.Atime), unix.NsecToTimespec(m.Mtime)}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, path, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		fail("utimensat", err)
	}
	return errors.Join(errs...)
}

func owner(m Meta, opts ApplyOptions) (uid, gid uint32) {
	uid, gid = m.UID, m.GID
	if opts.Owner != OwnerByName {
		return uid, gid
	}
	names := opts.Names
	if names == nil {
		names = NewIDNames(0)
	}
	if m.User != "" {
		if id, ok := names.UID(m.User); ok {
			uid = id
		}
	}
	if m.Group != "" {
		if id, ok := names.GID(m.Group); ok {
			gid = id
		}
	}
	return uid, gid
}

func removeStrayACLs(path string, m Meta, fail func(string, error)) {
	for _, name := range aclXattrs {
		if name == aclDefault && m.Type != TypeDir {
			continue // only directories have default ACLs
		}
		if slices.ContainsFunc(m.Xattrs, func(x Xattr) bool { return x.Name == name }) {
			continue
		}
		err := unix.Lremovexattr(path, name)
		if err != nil && !errors.Is(err, unix.ENODATA) && !isNotSupported(err) {
			fail("lremovexattr "+name, err)
		}
	}
}

// Create makes the directory, symlink, fifo or device node that m describes
// at path. Its permissions start owner-only (devices and fifos 0600,
// directories 0700) so that nothing can open a device node before Apply
// gives it its real owner and mode. Regular files are not made here: the
// restorer creates them as it writes their content.
func Create(path string, m Meta) error {
	var err error
	op := "mknod"
	switch m.Type {
	case TypeDir:
		op, err = "mkdir", unix.Mkdir(path, 0o700)
	case TypeSymlink:
		op, err = "symlink", unix.Symlink(m.LinkTarget, path)
	case TypeFIFO, TypeCharDev, TypeBlockDev:
		err = unix.Mknod(path, modeBits(m.Type)|0o600, int(m.Rdev))
	default:
		return &os.PathError{Op: "create", Path: path, Err: fmt.Errorf("cannot create a %v", m.Type)}
	}
	if err != nil {
		return &os.PathError{Op: op, Path: path, Err: err}
	}
	return nil
}
