package fs

import (
	"encoding/binary"
	"hash/fnv"
)

// Inode numbers are derived, never allocated: a path in a snapshot gets
// the same number in every mount, so tools that remember inodes (rsync -H,
// find -samefile, NFS exports, backup tools reading the mount) see a
// stable filesystem. A snapshot's root hashes its ID; every other entry
// hashes its parent's number with its name; the names of one hardlinked
// file share the number of the snapshot's link group. 64-bit hashes make
// a collision among the entries the kernel holds at once improbable.

const rootIno = 1

// ino hashes a kind tag, a parent number and a name.
func ino(tag string, parent uint64, name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(tag))
	h.Write(binary.LittleEndian.AppendUint64(nil, parent))
	h.Write([]byte(name))
	x := mix(h.Sum64())
	if x <= rootIno {
		x += 2
	}
	return x
}

// mix is splitmix64's finalizer: FNV's low bits depend weakly on the last
// bytes hashed, and go-fuse's tables and the kernel's hash inode numbers.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

func childIno(parent uint64, name string) uint64 { return ino("c", parent, name) }

func linkIno(snapshot, link uint64) uint64 {
	return ino("l", snapshot, string(binary.LittleEndian.AppendUint64(nil, link)))
}

func snapshotIno(id string) uint64 { return ino("s", 0, id) }

// entryIno is the number of entry e found in a directory numbered parent
// of the snapshot numbered snap.
func entryIno(snap, parent uint64, e *Entry) uint64 {
	if e.Link != 0 {
		return linkIno(snap, e.Link)
	}
	return childIno(parent, e.Name)
}
