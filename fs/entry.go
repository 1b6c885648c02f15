package fs

import "github.com/hanwen/go-fuse/v2/fuse"

func fillAttr(a *fuse.Attr, e *Entry) {
	a.Mode = e.Mode
	a.Owner = fuse.Owner{Uid: e.UID, Gid: e.GID}
	a.Size = e.Size
	a.Blocks = e.Blocks
	a.Blksize = 4096
	a.Nlink = max(e.Nlink, 1)
	// glibc's dev_t agrees with the kernel's 32-bit encoding for every
	// major below 4096 and minor below 2^20, all that FUSE can carry.
	a.Rdev = uint32(e.Rdev)
	a.Atime, a.Atimensec = splitNs(e.Atime)
	a.Mtime, a.Mtimensec = splitNs(e.Mtime)
	a.Ctime, a.Ctimensec = splitNs(e.Ctime)
}

// splitNs splits nanoseconds since the epoch into seconds and nanoseconds
// as struct stat has them; the seconds of a time before 1970 are negative
// and the nanoseconds still count up.
func splitNs(ns int64) (uint64, uint32) {
	s, n := ns/1e9, ns%1e9
	if n < 0 {
		s, n = s-1, n+1e9
	}
	return uint64(s), uint32(n)
}
