// Package index is the repository's local Pebble index: where every blob is,
// what every pack holds, which snapshots exist, and the per-file history rows.
// It is a cache: everything in it can be rebuilt from the repository's packs,
// index segments and snapshot records.
//
// # Key schema (version 2)
//
// Every key starts with a one-byte prefix. Integers are big-endian and fixed
// width so that byte order is numeric order; signed times are stored with the
// sign bit flipped so that times before 1970 sort first.
//
//	"v"                                   → schema version, uint32
//	"b" type(1) blobID(32)                → packID(32) offset(4) length(4) rawLength(4) compression(1)
//	"p" packID(32)                        → size(8) blobCount(4)
//	"u" packID(32)                        → (empty) pack not yet listed in an index segment
//	"g" segmentID(32)                     → (empty) index segment already merged into this index
//	"r" remote(len-prefixed) packID(32)   → (empty) the named remote holds this pack
//	"s" snapshotID(32)                    → encrypted-then-decrypted snapshot record bytes (summary cache)
//	"c" packID(32)                        → recordID(16) state(1): the pack is condemned by prune
//	"h" source 0x00 path time(8) snapID(32) → history row value, see HistoryRow
//
// The remote name in "r" keys is a uint16 big-endian length and the name's
// bytes. push (chunkstore/push.go) sets an "r" key, without a sync, after
// each pack it uploads, and for each pack it finds already uploaded; a key
// lost in a crash is set again by the next push, which checks every pack
// against a listing of the remote. A key is a claim to confirm, never
// proof: push trusts only the remote's own listing, and
// 'remote status' reports these keys as what earlier pushes achieved.
//
// A "c" key names a pack that a condemnation record (chunkstore/condemned.go)
// lists: prune found none of its blobs needed and will delete it once no
// process that could still reference them is running. State 0 means the
// pack still exists: its "p" and "b" keys stay, so every blob in it stays
// readable, but LookupLive, the lookup writers deduplicate with, treats its
// blobs as absent. State 1 (a tombstone) means the pack was deleted by a
// process that could not tell this index which blobs it held: the "p" key
// is gone, and "b" keys may still name the pack until they are replaced.
// A condemned pack never displaces another location of a blob: AddPack and
// AddSegment add its blobs only where the index has none, and skip a
// tombstoned pack entirely. The record ID lets a stale "c" key be removed
// only if no newer record condemned the pack again since it was read.
//
// A history path is encoded as its components, each followed by 0x00, then
// one more 0x00. Components are never empty and contain no 0x00, so the byte
// after a directory's components is 0x00 for rows of the directory itself
// and the first byte of a child's name otherwise: the children of a
// directory are one prefix scan, and one child's whole subtree can be skipped
// with a single seek (see HistoryChildren).
package index

import (
	"encoding/binary"
	"strings"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
)

// SchemaVersion is stored under "v"; an index of another version is
// rebuilt, never read.
//
// Version 2 added the "c" keys. A version 1 binary sees no condemnation: it
// would deduplicate against a condemned pack, and add a condemned pack's
// blobs back where a prune dropped them. Such a binary empties an index of
// version 2 and refills it as version 1, which in turn a binary that knows
// condemnations empties and refills, applying the condemnation records
// again: neither trusts what the other wrote.
const SchemaVersion = 2

const (
	prefixVersion  = 'v'
	prefixBlob     = 'b'
	prefixPack     = 'p'
	prefixUnlisted = 'u'
	prefixSegment  = 'g'
	prefixRemote   = 'r'
	prefixSnapshot = 's'
	prefixHistory  = 'h'
	prefixCondemn  = 'c'
)

func versionKey() []byte { return []byte{prefixVersion} }

func blobKey(t blob.Type, id blob.ID) []byte {
	k := make([]byte, 0, 2+blob.IDSize)
	k = append(k, prefixBlob, byte(t))
	return append(k, id[:]...)
}

func idKey(prefix byte, id blob.ID) []byte {
	k := make([]byte, 0, 1+blob.IDSize)
	k = append(k, prefix)
	return append(k, id[:]...)
}

func remoteKey(remote string, pack blob.ID) []byte {
	k := remotePrefix(remote)
	return append(k, pack[:]...)
}

func remotePrefix(remote string) []byte {
	k := make([]byte, 0, 3+len(remote)+blob.IDSize)
	k = append(k, prefixRemote)
	k = binary.BigEndian.AppendUint16(k, uint16(len(remote)))
	return append(k, remote...)
}

// historySourcePrefix is the prefix of every history key of source.
func historySourcePrefix(source string) []byte {
	k := make([]byte, 0, 2+len(source))
	k = append(k, prefixHistory)
	k = append(k, source...)
	return append(k, 0)
}

// historyPathKey appends the encoded components of path (slash-separated,
// relative, "" for the root) followed by the terminating 0x00.
func historyPathKey(k []byte, source, path string) []byte {
	k = append(k, prefixHistory)
	k = append(k, source...)
	k = append(k, 0)
	k = appendComponents(k, path)
	return append(k, 0)
}

// appendComponents appends each component of path followed by 0x00.
// It allocates nothing: forget and prune build a key for every history
// row they scan.
func appendComponents(k []byte, path string) []byte {
	for path != "" {
		var c string
		c, path, _ = strings.Cut(path, "/")
		if c != "" {
			k = append(k, c...)
			k = append(k, 0)
		}
	}
	return k
}

// appendHistoryKey appends the key of the history row of source, path
// (as historyPathKey takes it), time t and snapshot snap to k.
func appendHistoryKey(k []byte, source, path string, t int64, snap blob.ID) []byte {
	k = historyPathKey(k, source, path)
	k = binary.BigEndian.AppendUint64(k, uint64(t)^(1<<63))
	return append(k, snap[:]...)
}

// The scratch database of one prune run (Scratch, scratch.go) is another
// Pebble directory next to the index, deleted when the run ends. Its keys:
//
//	"m" type(1) blobID(32)  → (empty) the blob is referenced by a snapshot;
//	                          for a tree, its subtree has been walked
//	"s" snapshotID(32)      → (empty) the snapshot's trees have been walked
//	"a" packID(32)          → used(8) total(8): bytes of the blobs the index
//	                          places in the pack, and of those referenced;
//	                          written with a merge operator that adds
//	"k" packID(32)          → size(8): a pack prune may condemn this run
//	"g" type(1) blobID(32)  → packID(32): the blob's indexed location is in
//	                          a pack about to be deleted
//	"o" type(1) blobID(32)  → location: a copy of such a blob in a pack
//	                          that stays, where the index will point
//
// Marks live on disk, not in a map, so that prune's memory does not grow
// with the repository; the merge operator lets the usage of every pack be
// summed from one scan of the blobs, in their order, without reads.

// prefixEnd returns the smallest key greater than every key starting with p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil // p is all 0xff: no upper bound
}
