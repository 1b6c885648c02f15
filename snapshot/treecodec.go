package snapshot

// Tree blob format, version 1. This comment is the specification; the golden
// file testdata/tree-v1.golden pins it.
//
// Notation: uvarint is encoding/binary's unsigned varint and must be minimal
// (no trailing 0x80 groups); bytes is a uvarint length followed by that many
// raw bytes; zigzag is encoding/binary's signed varint mapping.
//
//	tree     = version:u8(=1) count:uvarint node{count}
//	node     = name:bytes type:u8 fields:uvarint field* [ext]
//
// fields is a bitmap. A set bit means the field follows, in bit order; a clear
// bit means the field is the zero value (0, "", empty list, zero ID), so an
// absent field costs nothing. A set bit for a zero value is rejected, which
// makes the encoding of a Tree unique.
//
//	bit  field       encoding
//	0    Mode        uvarint, only bits 07777
//	1    UID         uvarint
//	2    GID         uvarint
//	3    User        bytes
//	4    Group       bytes
//	5    Size        uvarint
//	6    Mtime       zigzag nanoseconds
//	7    Atime       zigzag (Atime - Mtime), wrapping int64 arithmetic
//	8    Ctime       zigzag (Ctime - Mtime), wrapping int64 arithmetic
//	9    DeviceID    uvarint
//	10   Inode       uvarint
//	11   Links       uvarint
//	12   Content     count:uvarint(>0) chunk{count}
//	13   Subtree     32 raw bytes, not all zero
//	14   LinkTarget  bytes
//	15   Rdev        uvarint
//	16   Xattrs      count:uvarint(>0) (name:bytes value:bytes){count}
//	17   ext         count:uvarint(>0) (tag:uvarint data:bytes){count}
//	18+  reserved; a decoder rejects them
//
//	chunk    = uvarint(Size<<1 | hole) [id:32 raw bytes, only when hole == 0]
//
// The bit order puts the fields of a typical file or directory in bits 0-13,
// so their bitmap fits in two bytes. Atime and Ctime are stored relative to
// Mtime because they are usually equal or close to it.
//
// Rules both the encoder and the decoder enforce: names are non-empty, contain
// neither '/' nor NUL, are not "." or "..", and strictly increase in byte
// order; the type is one of the NodeType constants; Content only on files,
// Subtree only on directories, LinkTarget (without NUL) only on symlinks, Rdev
// only on devices; chunk sizes are non-zero and below 2^63; a data chunk's ID
// is not zero (that would be a hole); xattr names are non-empty, NUL-free and
// strictly increase. The sum of the chunk sizes is not checked against Size: a
// file that changed while it was read keeps the size stat reported.
//
// Evolution. Fields that later versions of format 1 add go into ext records.
// A tag's low bit says whether a reader must understand it: a decoder that
// meets an unknown tag with the low bit set fails with ErrFormatVersion
// (restoring without that field would be wrong); one with the low bit clear is
// skipped, so an older hindsight can still list, mount and restore what it
// understands. Tags strictly increase. Changes an old decoder cannot skip bump
// the version byte.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unsafe"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
)

// TreeFormatVersion is the version byte EncodeTree writes.
const TreeFormatVersion = 1

var (
	// ErrInvalidTree is wrapped by every error about a tree that breaks the
	// format's rules, whether found while encoding or decoding.
	ErrInvalidTree = errors.New("invalid tree")
	// ErrFormatVersion is wrapped when encoded data needs a newer hindsight.
	ErrFormatVersion = errors.New("unsupported format version")
)

const (
	fMode = 1 << iota
	fUID
	fGID
	fUser
	fGroup
	fSize
	fMtime
	fAtime
	fCtime
	fDeviceID
	fInode
	fLinks
	fContent
	fSubtree
	fLinkTarget
	fRdev
	fXattrs
	fExt
	fAll = fExt<<1 - 1
)

// minNodeLen is the smallest encoded node: name length, one name byte, type
// and bitmap. Decoders use it to bound counts before allocating.
const minNodeLen = 4

// EncodeTree returns the canonical encoding of t: equal trees give equal
// bytes, which is what lets identical directories deduplicate.
func EncodeTree(t *Tree) ([]byte, error) {
	if err := validateTree(t); err != nil {
		return nil, err
	}
	size := 16
	for i := range t.Nodes {
		size += sizeHint(&t.Nodes[i])
	}
	b := make([]byte, 0, size)
	b = append(b, TreeFormatVersion)
	b = binary.AppendUvarint(b, uint64(len(t.Nodes)))
	for i := range t.Nodes {
		b = appendNode(b, &t.Nodes[i])
	}
	return b, nil
}

func appendNode(b []byte, n *Node) []byte {
	b = appendBytes(b, n.Name)
	b = append(b, byte(n.Type))
	b = binary.AppendUvarint(b, fieldsOf(n))
	b = appendNonZero(b, uint64(n.Mode))
	b = appendNonZero(b, uint64(n.UID))
	b = appendNonZero(b, uint64(n.GID))
	b = appendNonEmpty(b, n.User)
	b = appendNonEmpty(b, n.Group)
	b = appendNonZero(b, n.Size)
	if n.Mtime != 0 {
		b = binary.AppendVarint(b, n.Mtime)
	}
	if n.Atime != 0 {
		b = binary.AppendVarint(b, n.Atime-n.Mtime)
	}
	if n.Ctime != 0 {
		b = binary.AppendVarint(b, n.Ctime-n.Mtime)
	}
	b = appendNonZero(b, n.DeviceID)
	b = appendNonZero(b, n.Inode)
	b = appendNonZero(b, n.Links)
	if len(n.Content) > 0 {
		b = binary.AppendUvarint(b, uint64(len(n.Content)))
		for _, c := range n.Content {
			if c.IsHole() {
				b = binary.AppendUvarint(b, c.Size<<1|1)
			} else {
				b = binary.AppendUvarint(b, c.Size<<1)
				b = append(b, c.ID[:]...)
			}
		}
	}
	if !n.Subtree.IsZero() {
		b = append(b, n.Subtree[:]...)
	}
	b = appendNonEmpty(b, n.LinkTarget)
	b = appendNonZero(b, n.Rdev)
	if len(n.Xattrs) > 0 {
		b = binary.AppendUvarint(b, uint64(len(n.Xattrs)))
		for _, x := range n.Xattrs {
			b = appendBytes(b, x.Name)
			b = appendBytes(b, string(x.Value))
		}
	}
	return b
}

// sizeHint bounds a node's encoded size from above for the usual field
// values, so that EncodeTree allocates its output once.
func sizeHint(n *Node) int {
	size := 96 + len(n.Name) + len(n.User) + len(n.Group) + len(n.LinkTarget) + len(n.Content)*(10+blob.IDSize)
	for _, x := range n.Xattrs {
		size += 20 + len(x.Name) + len(x.Value)
	}
	return size
}

func fieldsOf(n *Node) uint64 {
	var f uint64
	set := func(bit uint64, present bool) {
		if present {
			f |= bit
		}
	}
	set(fMode, n.Mode != 0)
	set(fUID, n.UID != 0)
	set(fGID, n.GID != 0)
	set(fUser, n.User != "")
	set(fGroup, n.Group != "")
	set(fSize, n.Size != 0)
	set(fMtime, n.Mtime != 0)
	set(fAtime, n.Atime != 0)
	set(fCtime, n.Ctime != 0)
	set(fDeviceID, n.DeviceID != 0)
	set(fInode, n.Inode != 0)
	set(fLinks, n.Links != 0)
	set(fContent, len(n.Content) > 0)
	set(fSubtree, !n.Subtree.IsZero())
	set(fLinkTarget, n.LinkTarget != "")
	set(fRdev, n.Rdev != 0)
	set(fXattrs, len(n.Xattrs) > 0)
	return f
}

func appendBytes(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendNonZero(b []byte, v uint64) []byte {
	if v == 0 {
		return b
	}
	return binary.AppendUvarint(b, v)
}

func appendNonEmpty(b []byte, s string) []byte {
	if s == "" {
		return b
	}
	return appendBytes(b, s)
}

func treeErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidTree, fmt.Sprintf(format, args...))
}

func validateTree(t *Tree) error {
	for i := range t.Nodes {
		n := &t.Nodes[i]
		if err := validateName(n.Name); err != nil {
			return treeErr("node %d: %v", i, err)
		}
		if i > 0 && t.Nodes[i-1].Name >= n.Name {
			return treeErr("node %d: name %q not after %q: names must be sorted and unique", i, n.Name, t.Nodes[i-1].Name)
		}
		if err := validateNode(n); err != nil {
			return treeErr("node %q: %v", n.Name, err)
		}
	}
	return nil
}

// validateName rejects what cannot be one path element on Linux, so that a
// tree can never make the restorer write outside its target directory.
func validateName(name string) error {
	switch {
	case name == "":
		return errors.New("empty name")
	case name == "." || name == "..":
		return fmt.Errorf("name %q", name)
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("name %q contains '/' or NUL", name)
	}
	return nil
}

func validateNode(n *Node) error {
	if n.Type < TypeFile || n.Type > TypeBlockDev {
		return fmt.Errorf("unknown type %d", n.Type)
	}
	if n.Mode&^07777 != 0 {
		return fmt.Errorf("mode %#o has bits outside 07777", n.Mode)
	}
	isDev := n.Type == TypeCharDev || n.Type == TypeBlockDev
	switch {
	case len(n.Content) > 0 && n.Type != TypeFile:
		return errors.New("content on a node that is not a file")
	case !n.Subtree.IsZero() && n.Type != TypeDir:
		return errors.New("subtree on a node that is not a directory")
	case n.LinkTarget != "" && n.Type != TypeSymlink:
		return errors.New("link target on a node that is not a symlink")
	case strings.IndexByte(n.LinkTarget, 0) >= 0:
		return errors.New("link target contains NUL")
	case n.Rdev != 0 && !isDev:
		return errors.New("device number on a node that is not a device")
	}
	for i, c := range n.Content {
		if c.Size == 0 || c.Size >= 1<<63 {
			return fmt.Errorf("chunk %d: size %d out of range", i, c.Size)
		}
	}
	for i, x := range n.Xattrs {
		if x.Name == "" || strings.IndexByte(x.Name, 0) >= 0 {
			return fmt.Errorf("xattr %d: name %q is empty or contains NUL", i, x.Name)
		}
		if i > 0 && n.Xattrs[i-1].Name >= x.Name {
			return fmt.Errorf("xattr %q not after %q: xattrs must be sorted and unique", x.Name, n.Xattrs[i-1].Name)
		}
	}
	return nil
}

// DecodeTree parses a tree blob. It accepts only canonical encodings, so a
// tree that decodes re-encodes to the same bytes (unless it carried optional
// ext records this version skips). Names and other strings share one copy of
// b; the caller may reuse b afterwards.
func DecodeTree(b []byte) (*Tree, error) {
	t, _, err := decodeTree(b)
	return t, err
}

// decodeTree also reports how many optional ext records it skipped, which
// the fuzz test needs to know whether byte-exact re-encoding is expected.
func decodeTree(b []byte) (*Tree, int, error) {
	r, err := newNodeReader(string(b))
	if err != nil {
		return nil, 0, err
	}
	t := &Tree{}
	if r.count > 0 {
		t.Nodes = make([]Node, r.count)
	}
	for i := range t.Nodes {
		if !r.next(&t.Nodes[i]) {
			break
		}
	}
	if err := r.finish(); err != nil {
		return nil, 0, err
	}
	return t, r.d.skipped, nil
}

// eachNode decodes a tree blob one node at a time into the same Node, and
// calls fn with it: a walk that looks at each node once (marking what a
// tree references) allocates no Node per entry, no Content per file, and
// no copy of b. The node's strings share b's bytes, and its Content is
// reused for the next node: they are valid only during fn, and b must not
// change until eachNode returns. It checks what decodeTree checks.
func eachNode(b []byte, fn func(*Node) error) error {
	if len(b) == 0 {
		return treeErr("empty input")
	}
	r, err := newNodeReader(unsafe.String(&b[0], len(b)))
	if err != nil {
		return err
	}
	slab := chunkSlabs.Get().(*[]Chunk)
	r.d.chunks, r.d.reuse = (*slab)[:0], true
	defer func() {
		if cap(r.d.chunks) <= maxPooledChunks {
			*slab = r.d.chunks
			chunkSlabs.Put(slab)
		}
	}()
	var n Node
	for n = (Node{}); r.next(&n); n = (Node{}) {
		if err := fn(&n); err != nil {
			return err
		}
		r.d.chunks = r.d.chunks[:0]
	}
	return r.finish()
}

// chunkSlabs hold eachNode's Content slabs: a prune's walk decodes the
// content lists of every changed directory of every snapshot, and a slab
// per tree was a third of the bytes it allocated. A slab that grew past
// maxPooledChunks (a file of 4 GiB or more) is left to the collector.
var chunkSlabs = sync.Pool{New: func() any { return new([]Chunk) }}

const maxPooledChunks = 4096

// nodeReader decodes a tree's nodes in order, checking that their names
// ascend.
type nodeReader struct {
	d     decoder
	count int
	i     int
	prev  string
}

func newNodeReader(s string) (*nodeReader, error) {
	if len(s) == 0 {
		return nil, treeErr("empty input")
	}
	if s[0] != TreeFormatVersion {
		return nil, fmt.Errorf("tree format version %d, this hindsight reads %d: %w", s[0], TreeFormatVersion, ErrFormatVersion)
	}
	r := &nodeReader{d: decoder{s: s, off: 1}}
	r.count = r.d.count(minNodeLen)
	return r, nil
}

// next decodes the next node into n, which must be zero; it reports false
// after the last node or at the first error (finish returns it).
func (r *nodeReader) next(n *Node) bool {
	if r.d.err != nil || r.i == r.count {
		return false
	}
	r.d.node(n)
	if r.d.err == nil && r.i > 0 && r.prev >= n.Name {
		r.d.fail("name %q not after %q", n.Name, r.prev)
	}
	if r.d.err != nil {
		r.d.err = fmt.Errorf("node %d: %w", r.i, r.d.err)
		return false
	}
	r.prev = n.Name
	r.i++
	return true
}

// finish checks that the whole input was read and returns the first error.
func (r *nodeReader) finish() error {
	d := &r.d
	if d.err == nil && d.off != len(d.s) {
		d.fail("%d bytes of trailing garbage", len(d.s)-d.off)
	}
	if d.err != nil {
		if errors.Is(d.err, ErrFormatVersion) {
			return d.err
		}
		return fmt.Errorf("%w: %w", ErrInvalidTree, d.err)
	}
	return nil
}

// decoder reads from one string so that every decoded name is a substring
// of it rather than a separate allocation. After the first error every
// method is a no-op returning zero values, which keeps the call sites flat.
type decoder struct {
	s       string
	off     int
	err     error
	skipped int
	chunks  []Chunk // slab that the nodes' Content slices are cut from
	reuse   bool    // chunks is emptied after each node (eachNode)
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%s at byte %d", fmt.Sprintf(format, args...), d.off)
	}
}

func (d *decoder) remaining() int { return len(d.s) - d.off }

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	var v uint64
	for shift, i := uint(0), d.off; ; shift, i = shift+7, i+1 {
		if i >= len(d.s) {
			d.fail("truncated varint")
			return 0
		}
		c := d.s[i]
		if shift == 63 && c > 1 {
			d.fail("varint overflows 64 bits")
			return 0
		}
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			if c == 0 && i > d.off {
				d.fail("non-minimal varint")
				return 0
			}
			d.off = i + 1
			return v
		}
	}
}

func (d *decoder) nonZero() uint64 {
	v := d.uvarint()
	if v == 0 {
		d.fail("field marked present holds zero")
	}
	return v
}

func (d *decoder) varint() int64 {
	u := d.uvarint()
	return int64(u>>1) ^ -int64(u&1)
}

// count reads a list length and rejects one that could not fit in the rest
// of the input, so a short garbage input cannot make us allocate much.
func (d *decoder) count(minItem int) int {
	v := d.uvarint()
	if d.err == nil && v > uint64(d.remaining()/minItem) {
		d.fail("count %d exceeds what %d remaining bytes can hold", v, d.remaining())
		return 0
	}
	return int(v)
}

func (d *decoder) take(n int) string {
	if d.err != nil {
		return ""
	}
	if n > d.remaining() {
		d.fail("need %d bytes, have %d", n, d.remaining())
		return ""
	}
	s := d.s[d.off : d.off+n]
	d.off += n
	return s
}

func (d *decoder) bytes() string {
	v := d.uvarint()
	if d.err == nil && v > uint64(d.remaining()) {
		d.fail("length %d exceeds %d remaining bytes", v, d.remaining())
		return ""
	}
	return d.take(int(v))
}

func (d *decoder) nonEmpty() string {
	s := d.bytes()
	if d.err == nil && s == "" {
		d.fail("field marked present is empty")
	}
	return s
}

func (d *decoder) node(n *Node) {
	n.Name = d.bytes()
	if d.err == nil {
		if err := validateName(n.Name); err != nil {
			d.fail("%v", err)
		}
	}
	if t := d.take(1); t != "" {
		n.Type = NodeType(t[0])
	}
	f := d.uvarint()
	if f&^fAll != 0 {
		d.fail("reserved field bits %#x set", f&^fAll)
	}
	if d.err != nil {
		return
	}
	d.fields(n, f)
	if d.err == nil {
		if err := validateNode(n); err != nil {
			d.fail("%v", err)
		}
	}
}

func (d *decoder) fields(n *Node, f uint64) {
	if f&fMode != 0 {
		n.Mode = uint32(d.smallNonZero(07777))
	}
	if f&fUID != 0 {
		n.UID = uint32(d.smallNonZero(1<<32 - 1))
	}
	if f&fGID != 0 {
		n.GID = uint32(d.smallNonZero(1<<32 - 1))
	}
	if f&fUser != 0 {
		n.User = d.nonEmpty()
	}
	if f&fGroup != 0 {
		n.Group = d.nonEmpty()
	}
	if f&fSize != 0 {
		n.Size = d.nonZero()
	}
	if f&fMtime != 0 {
		n.Mtime = d.varint()
		d.requireNonZero(n.Mtime)
	}
	if f&fAtime != 0 {
		n.Atime = n.Mtime + d.varint()
		d.requireNonZero(n.Atime)
	}
	if f&fCtime != 0 {
		n.Ctime = n.Mtime + d.varint()
		d.requireNonZero(n.Ctime)
	}
	if f&fDeviceID != 0 {
		n.DeviceID = d.nonZero()
	}
	if f&fInode != 0 {
		n.Inode = d.nonZero()
	}
	if f&fLinks != 0 {
		n.Links = d.nonZero()
	}
	if f&fContent != 0 {
		n.Content = d.content()
	}
	if f&fSubtree != 0 {
		copy(n.Subtree[:], d.take(blob.IDSize))
		if d.err == nil && n.Subtree.IsZero() {
			d.fail("zero subtree ID marked present")
		}
	}
	if f&fLinkTarget != 0 {
		n.LinkTarget = d.nonEmpty()
	}
	if f&fRdev != 0 {
		n.Rdev = d.nonZero()
	}
	if f&fXattrs != 0 {
		n.Xattrs = d.xattrs()
	}
	if f&fExt != 0 {
		d.ext()
	}
}

func (d *decoder) smallNonZero(max uint64) uint64 {
	v := d.nonZero()
	if v > max {
		d.fail("value %d above %d", v, max)
	}
	return v
}

func (d *decoder) requireNonZero(v int64) {
	if v == 0 {
		d.fail("time marked present is zero")
	}
}

func (d *decoder) content() []Chunk {
	// A hole chunk is at least one byte.
	count := d.count(1)
	if d.err == nil && count == 0 {
		d.fail("empty content list marked present")
	}
	if d.err != nil {
		return nil
	}
	if cap(d.chunks)-len(d.chunks) < count {
		// Guess about one chunk per typical node (~64 bytes) still to
		// come, unless the slab serves one node at a time.
		n := count
		if !d.reuse {
			n = max(count, d.remaining()/64)
		}
		d.chunks = make([]Chunk, 0, n)
	}
	// The capacity limit keeps an append to one node's Content from
	// overwriting the next node's.
	cs := d.chunks[len(d.chunks) : len(d.chunks)+count : len(d.chunks)+count]
	d.chunks = d.chunks[:len(d.chunks)+count]
	for i := range cs {
		v := d.uvarint()
		cs[i] = Chunk{Size: v >> 1} // a reused slab holds old IDs
		if v&1 == 0 {
			copy(cs[i].ID[:], d.take(blob.IDSize))
			if d.err == nil && cs[i].ID.IsZero() {
				d.fail("chunk %d: data chunk with zero ID", i)
			}
		}
		if d.err != nil {
			return nil
		}
	}
	return cs
}

func (d *decoder) xattrs() []Xattr {
	// name length, one name byte, value length.
	count := d.count(3)
	if d.err == nil && count == 0 {
		d.fail("empty xattr list marked present")
	}
	if d.err != nil {
		return nil
	}
	xs := make([]Xattr, count)
	for i := range xs {
		xs[i].Name = d.bytes()
		xs[i].Value = []byte(d.bytes())
	}
	return xs
}

func (d *decoder) ext() {
	// tag, data length.
	count := d.count(2)
	if d.err == nil && count == 0 {
		d.fail("empty ext list marked present")
	}
	var prev uint64
	for i := 0; d.err == nil && i < count; i++ {
		tag := d.uvarint()
		if d.err == nil && i > 0 && tag <= prev {
			d.fail("ext tag %d not after %d", tag, prev)
		}
		prev = tag
		d.bytes()
		if d.err == nil && tag&1 == 1 {
			d.err = fmt.Errorf("ext field %d must be understood and this hindsight does not know it: %w", tag, ErrFormatVersion)
		}
		d.skipped++
	}
}
