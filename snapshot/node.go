package snapshot

import (
	"github.com/hindsight-backup/hindsight/chunkstore/blob"
)

// NodeType is the kind of a directory entry. The values are part of the
// tree encoding and never change.
type NodeType uint8

const (
	TypeFile     NodeType = 1
	TypeDir      NodeType = 2
	TypeSymlink  NodeType = 3
	TypeFIFO     NodeType = 4
	TypeCharDev  NodeType = 5
	TypeBlockDev NodeType = 6
)

// Node is one directory entry with everything needed to restore it exactly.
type Node struct {
	Name string // one path element: any bytes but '/' and NUL, not necessarily UTF-8
	Type NodeType

	Mode  uint32 // permission bits including setuid, setgid and sticky (07777)
	UID   uint32
	GID   uint32
	User  string // owner's name on the backed-up host, "" if unknown
	Group string

	Size  uint64 // bytes of content (logical size for sparse files)
	Atime int64  // nanoseconds since the Unix epoch
	Mtime int64
	Ctime int64

	DeviceID uint64 // st_dev of the source filesystem
	Inode    uint64 // st_ino; with DeviceID, identifies hardlinked files
	Links    uint64 // st_nlink; > 1 marks a possible hardlink group
	Rdev     uint64 // device number of character and block devices

	LinkTarget string  // symlink target, raw bytes
	Xattrs     []Xattr // sorted by Name; includes system.posix_acl_* and security.*

	Content []Chunk // regular files: the content in order, holes included
	Subtree blob.ID // directories: the tree blob of the directory's entries
}

// Xattr is one extended attribute.
type Xattr struct {
	Name  string
	Value []byte
}

// Chunk is one piece of a file's content: a data blob of Size plaintext
// bytes, or, when ID is zero, a hole of Size bytes that reads as zeros.
type Chunk struct {
	ID   blob.ID
	Size uint64
}

// IsHole reports whether c stands for a run of zeros that was not stored.
func (c Chunk) IsHole() bool { return c.ID.IsZero() }

// Tree is the decoded form of one tree blob: a directory's entries, sorted
// by the bytes of their names, names unique.
type Tree struct {
	Nodes []Node
}
