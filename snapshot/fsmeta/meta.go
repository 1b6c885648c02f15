// Package fsmeta reads Linux file metadata for backup and applies it on
// restore: type, ownership, mode with setuid/setgid/sticky, nanosecond
// times, device numbers, symlink targets and every extended attribute the
// kernel shows (POSIX ACLs and file capabilities included, stored raw).
//
// It imports none of hindsight's packages, so snapshot can import it; the
// conversion to snapshot.Node lives in snapshot.
package fsmeta

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Type is the kind of a file. Values 1-6 equal snapshot.NodeType's so that
// the conversion is a plain cast.
type Type uint8

const (
	TypeUnknown  Type = 0
	TypeFile     Type = 1
	TypeDir      Type = 2
	TypeSymlink  Type = 3
	TypeFIFO     Type = 4
	TypeCharDev  Type = 5
	TypeBlockDev Type = 6
	TypeSocket   Type = 7 // read, reported, never backed up
)

func (t Type) String() string {
	switch t {
	case TypeFile:
		return "file"
	case TypeDir:
		return "directory"
	case TypeSymlink:
		return "symlink"
	case TypeFIFO:
		return "fifo"
	case TypeCharDev:
		return "character device"
	case TypeBlockDev:
		return "block device"
	case TypeSocket:
		return "socket"
	}
	return fmt.Sprintf("unknown type %d", uint8(t))
}

// Meta is everything about a file except its content.
type Meta struct {
	Type  Type
	Mode  uint32 // permission bits with setuid, setgid and sticky (07777)
	UID   uint32
	GID   uint32
	User  string // owner's name, "" if unknown or not looked up
	Group string

	Size  uint64 // regular files and symlinks; 0 for other types
	Atime int64  // nanoseconds since the Unix epoch
	Mtime int64
	Ctime int64 // read only: no system call sets it

	DeviceID uint64
	Inode    uint64
	Links    uint64
	Rdev     uint64 // character and block devices

	LinkTarget string
	Xattrs     []Xattr // sorted by name
}

// Xattr is one extended attribute, name and value as the kernel has them.
type Xattr struct {
	Name  string
	Value []byte
}

// ErrUnsupportedType matches (errors.Is) an *UnsupportedTypeError.
var ErrUnsupportedType = errors.New("unsupported file type")

// UnsupportedTypeError reports a file that cannot be backed up by type,
// such as a socket. The caller should list it as skipped and go on.
type UnsupportedTypeError struct {
	Path string
	Type Type
}

func (e *UnsupportedTypeError) Error() string {
	return fmt.Sprintf("%s: %v: %v", e.Path, e.Type, ErrUnsupportedType)
}

func (e *UnsupportedTypeError) Is(target error) bool { return target == ErrUnsupportedType }

func typeOf(mode uint32) Type {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return TypeFile
	case unix.S_IFDIR:
		return TypeDir
	case unix.S_IFLNK:
		return TypeSymlink
	case unix.S_IFIFO:
		return TypeFIFO
	case unix.S_IFCHR:
		return TypeCharDev
	case unix.S_IFBLK:
		return TypeBlockDev
	case unix.S_IFSOCK:
		return TypeSocket
	}
	return TypeUnknown
}

// modeBits maps a Type back to the S_IFMT bits mknod wants.
func modeBits(t Type) uint32 {
	switch t {
	case TypeFIFO:
		return unix.S_IFIFO
	case TypeCharDev:
		return unix.S_IFCHR
	case TypeBlockDev:
		return unix.S_IFBLK
	}
	return 0
}
