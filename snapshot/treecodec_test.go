package snapshot

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
)

// updateGolden is the package's one -update flag; other golden tests in
// package snapshot should reuse it rather than define their own.
var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata")

func testID(seed byte) blob.ID {
	var id blob.ID
	for i := range id {
		id[i] = seed + byte(i)
	}
	return id
}

// goldenTree sets every field of the format at least once. Never change it:
// the golden file must keep decoding to exactly this.
func goldenTree() *Tree {
	const t0 = 1700000000123456789
	return &Tree{Nodes: []Node{
		{Name: "bin", Type: TypeDir, Mode: 0755, UID: 0, GID: 0, User: "root", Group: "root",
			Mtime: t0, Atime: t0 + 5, Ctime: t0, DeviceID: 0xfd01, Inode: 2, Links: 3,
			Subtree: testID(0x40)},
		{Name: "dev-null", Type: TypeCharDev, Mode: 0666, Mtime: t0, Atime: t0, Ctime: t0,
			DeviceID: 5, Inode: 4, Links: 1, Rdev: 1<<8 | 3},
		{Name: "fifo", Type: TypeFIFO, Mode: 0600, UID: 1000, GID: 1000, Mtime: -1, Atime: 1, Ctime: 2,
			Links: 1},
		{Name: "link", Type: TypeSymlink, Mode: 0777, UID: 1000, GID: 1000, User: "alice", Group: "staff",
			Size: 7, Mtime: t0, Atime: t0, Ctime: t0, DeviceID: 0xfd01, Inode: 77, Links: 1,
			LinkTarget: "bin/ls\xff", Xattrs: []Xattr{{Name: "security.selinux", Value: []byte("system_u:object_r:bin_t:s0\x00")}}},
		{Name: "sda", Type: TypeBlockDev, Mode: 0660, GID: 6, Group: "disk", Mtime: t0, Ctime: t0 + 1e9,
			Links: 1, Rdev: 8 << 8},
		{Name: "sparse \xe9\n.img", Type: TypeFile, Mode: 04755 | 02000 | 01000, UID: 4294967295, GID: 65534,
			User: "nobody", Group: "nogroup", Size: 3<<20 + 100,
			Mtime: t0, Atime: -t0, Ctime: t0 + 999,
			DeviceID: 1<<63 | 1, Inode: 1<<64 - 1, Links: 2,
			Content: []Chunk{{ID: testID(1), Size: 1 << 20}, {Size: 2 << 20}, {ID: testID(2), Size: 100}},
			Xattrs: []Xattr{
				{Name: "security.capability", Value: []byte{1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
				{Name: "system.posix_acl_access", Value: []byte{2, 0, 0, 0, 1, 0, 6, 0, 255, 255, 255, 255}},
				{Name: "user.empty", Value: []byte{}},
			}},
	}}
}

func TestTreeGolden(t *testing.T) {
	path := filepath.Join("testdata", "tree-v1.golden")
	got, err := EncodeTree(goldenTree())
	if err != nil {
		t.Fatal(err)
	}
	if *updateGolden {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestTreeGolden -update once to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("encoding changed: the tree format is frozen; bump the version instead\ngot:\n%s\nwant:\n%s",
			hex.Dump(got), hex.Dump(want))
	}
	decoded, err := DecodeTree(want)
	if err != nil {
		t.Fatalf("golden file no longer decodes: %v", err)
	}
	if !reflect.DeepEqual(decoded, goldenTree()) {
		t.Errorf("golden file decodes to\n%+v\nwant\n%+v", decoded, goldenTree())
	}
}

func TestTreeRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		tree *Tree
		size int // expected encoded size, pinning the compactness claims
	}{
		{"empty", &Tree{}, 2},
		{"minimal node", &Tree{Nodes: []Node{{Name: "a", Type: TypeFile}}}, 2 + 4},
		{"times equal to mtime cost one byte each", &Tree{Nodes: []Node{{Name: "a", Type: TypeFile,
			Mtime: 1700000000123456789, Atime: 1700000000123456789, Ctime: 1700000000123456789}}}, 2 + 5 + 9 + 1 + 1},
		{"hole costs its size only", &Tree{Nodes: []Node{{Name: "a", Type: TypeFile,
			Content: []Chunk{{Size: 1}}}}}, 2 + 4 + 1 + 1 + 1},
		{"extreme times wrap", &Tree{Nodes: []Node{{Name: "a", Type: TypeFile,
			Mtime: -1 << 63, Atime: 1<<63 - 1, Ctime: 1}}}, 0},
		{"golden", goldenTree(), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := EncodeTree(tt.tree)
			if err != nil {
				t.Fatal(err)
			}
			if tt.size != 0 && len(b) != tt.size {
				t.Errorf("encoded size %d, want %d: % x", len(b), tt.size, b)
			}
			got, err := DecodeTree(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.tree) {
				t.Errorf("round trip:\ngot  %+v\nwant %+v", got, tt.tree)
			}
			again, err := EncodeTree(got)
			if err != nil || !bytes.Equal(again, b) {
				t.Errorf("re-encoding differs (err %v)", err)
			}
		})
	}
}

func TestEncodeTreeRejects(t *testing.T) {
	file := func(name string) Node { return Node{Name: name, Type: TypeFile} }
	tests := []struct {
		name string
		tree Tree
		msg  string
	}{
		{"empty name", Tree{Nodes: []Node{file("")}}, "empty name"},
		{"dot", Tree{Nodes: []Node{file(".")}}, `name "."`},
		{"dotdot", Tree{Nodes: []Node{file("..")}}, `name ".."`},
		{"slash", Tree{Nodes: []Node{file("a/b")}}, "contains '/'"},
		{"nul", Tree{Nodes: []Node{file("a\x00")}}, "NUL"},
		{"unsorted", Tree{Nodes: []Node{file("b"), file("a")}}, "sorted"},
		{"duplicate", Tree{Nodes: []Node{file("a"), file("a")}}, "sorted"},
		{"byte order not UTF-8 order", Tree{Nodes: []Node{file("\xff"), file("z")}}, "sorted"},
		{"unknown type", Tree{Nodes: []Node{{Name: "a", Type: 7}}}, "unknown type"},
		{"zero type", Tree{Nodes: []Node{{Name: "a"}}}, "unknown type"},
		{"mode with type bits", Tree{Nodes: []Node{{Name: "a", Type: TypeFile, Mode: 0100644}}}, "07777"},
		{"content on dir", Tree{Nodes: []Node{{Name: "a", Type: TypeDir, Content: []Chunk{{Size: 1}}}}}, "content"},
		{"subtree on file", Tree{Nodes: []Node{{Name: "a", Type: TypeFile, Subtree: testID(1)}}}, "subtree"},
		{"target on file", Tree{Nodes: []Node{{Name: "a", Type: TypeFile, LinkTarget: "x"}}}, "link target"},
		{"target with NUL", Tree{Nodes: []Node{{Name: "a", Type: TypeSymlink, LinkTarget: "x\x00"}}}, "NUL"},
		{"rdev on fifo", Tree{Nodes: []Node{{Name: "a", Type: TypeFIFO, Rdev: 1}}}, "device number"},
		{"empty chunk", Tree{Nodes: []Node{{Name: "a", Type: TypeFile, Content: []Chunk{{ID: testID(1)}}}}}, "size 0"},
		{"huge chunk", Tree{Nodes: []Node{{Name: "a", Type: TypeFile, Content: []Chunk{{Size: 1 << 63}}}}}, "out of range"},
		{"xattr unsorted", Tree{Nodes: []Node{{Name: "a", Type: TypeFile,
			Xattrs: []Xattr{{Name: "user.b"}, {Name: "user.a"}}}}}, "sorted"},
		{"xattr duplicate", Tree{Nodes: []Node{{Name: "a", Type: TypeFile,
			Xattrs: []Xattr{{Name: "user.a"}, {Name: "user.a"}}}}}, "sorted"},
		{"xattr empty name", Tree{Nodes: []Node{{Name: "a", Type: TypeFile, Xattrs: []Xattr{{}}}}}, "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := EncodeTree(&tt.tree)
			if err == nil {
				t.Fatalf("encoded % x, want error", b)
			}
			if !errors.Is(err, ErrInvalidTree) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q: want ErrInvalidTree mentioning %q", err, tt.msg)
			}
		})
	}
}

// enc builds test inputs byte by byte: ints become minimal uvarints, strings
// are appended raw, []byte is appended as is (for deliberately bad varints).
func enc(parts ...any) []byte {
	var b []byte
	for _, p := range parts {
		switch v := p.(type) {
		case int:
			b = binary.AppendUvarint(b, uint64(v))
		case uint64:
			b = binary.AppendUvarint(b, v)
		case string:
			b = append(b, v...)
		case []byte:
			b = append(b, v...)
		default:
			panic(fmt.Sprintf("enc: %T", p))
		}
	}
	return b
}

func TestDecodeTreeRejects(t *testing.T) {
	id := testID(9)
	tests := []struct {
		name    string
		in      []byte
		version bool // want ErrFormatVersion rather than ErrInvalidTree
		msg     string
	}{
		{"empty", nil, false, "empty input"},
		{"version 0", enc(0, 0), true, "version 0"},
		{"version 2", enc(2, 0), true, "version 2"},
		{"no count", enc(1), false, "truncated"},
		{"count beyond input", enc(1, 2, 1, "a", 1, 0), false, "count 2"},
		{"huge count", enc(1, uint64(1)<<60), false, "exceeds"},
		{"varint overflow", enc(1, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}), false, "overflow"},
		{"non-minimal count", enc(1, []byte{0x80, 0x00}), false, "non-minimal"},
		{"trailing garbage", enc(1, 0, "x"), false, "trailing"},
		{"truncated node", enc(1, 1, 2, "ab", 1), false, "truncated"},
		{"name length beyond input", enc(1, 1, 9, "a", 1, 0), false, "length 9"},
		{"empty name", enc(1, 1, 0, 1, 0, "xx"), false, "empty name"},
		{"slash name", enc(1, 1, 1, "/", 1, 0), false, "'/'"},
		{"dotdot", enc(1, 1, 2, "..", 1, 0), false, `".."`},
		{"unsorted", enc(1, 2, 1, "b", 1, 0, 1, "a", 1, 0), false, "not after"},
		{"duplicate", enc(1, 2, 1, "a", 1, 0, 1, "a", 1, 0), false, "not after"},
		{"unknown type", enc(1, 1, 1, "a", 9, 0), false, "unknown type"},
		{"reserved bit", enc(1, 1, 1, "a", 1, 1<<18), false, "reserved"},
		{"present zero", enc(1, 1, 1, "a", 1, fUID, 0), false, "holds zero"},
		{"present empty string", enc(1, 1, 1, "a", 1, fUser, 0), false, "is empty"},
		{"present zero mtime", enc(1, 1, 1, "a", 1, fMtime, 0), false, "zero"},
		{"present zero atime", enc(1, 1, 1, "a", 1, fMtime|fAtime, 2, 1), false, "zero"},
		{"mode too big", enc(1, 1, 1, "a", 1, fMode, 010000), false, "above"},
		{"uid too big", enc(1, 1, 1, "a", 1, fUID, 1<<32), false, "above"},
		{"empty content", enc(1, 1, 1, "a", 1, fContent, 0), false, "empty content"},
		{"content count beyond input", enc(1, 1, 1, "a", 1, fContent, 5, 3), false, "count 5"},
		{"data chunk zero ID", enc(1, 1, 1, "a", 1, fContent, 1, 2, string(make([]byte, 32))), false, "zero ID"},
		{"data chunk truncated ID", enc(1, 1, 1, "a", 1, fContent, 1, 2, "short"), false, "need 32"},
		{"zero-size hole", enc(1, 1, 1, "a", 1, fContent, 1, 1), false, "size 0"},
		{"content on dir", enc(1, 1, 1, "a", 2, fContent, 1, 3), false, "not a file"},
		{"zero subtree", enc(1, 1, 1, "a", 2, fSubtree, string(make([]byte, 32))), false, "zero subtree"},
		{"subtree on symlink", enc(1, 1, 1, "a", 3, fSubtree, string(id[:])), false, "not a directory"},
		{"rdev on file", enc(1, 1, 1, "a", 1, fRdev, 5), false, "not a device"},
		{"xattr unsorted", enc(1, 1, 1, "a", 1, fXattrs, 2, 1, "b", 0, 1, "a", 0), false, "sorted"},
		{"xattr NUL", enc(1, 1, 1, "a", 1, fXattrs, 1, 2, "a\x00", 0), false, "NUL"},
		{"xattr value beyond input", enc(1, 1, 1, "a", 1, fXattrs, 1, 1, "b", 200, "x"), false, "length 200"},
		{"empty ext", enc(1, 1, 1, "a", 1, fExt, 0), false, "empty ext"},
		{"ext tags unsorted", enc(1, 1, 1, "a", 1, fExt, 2, 4, 0, 2, 0), false, "not after"},
		{"critical ext", enc(1, 1, 1, "a", 1, fExt, 1, 3, 1, "x"), true, "must be understood"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tree, err := DecodeTree(tt.in)
			if err == nil {
				t.Fatalf("decoded %+v, want error", tree)
			}
			want := ErrInvalidTree
			if tt.version {
				want = ErrFormatVersion
			}
			if !errors.Is(err, want) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q: want %v mentioning %q", err, want, tt.msg)
			}
			if _, eerr := eachNodes(tt.in); eerr == nil || eerr.Error() != err.Error() {
				t.Errorf("eachNode: error %v, want %v", eerr, err)
			}
		})
	}
}

// eachNodes collects what eachNode yields, as decodeTree would.
func eachNodes(in []byte) ([]Node, error) {
	var nodes []Node
	err := eachNode(in, func(n *Node) error {
		c := *n
		c.Content = slices.Clone(n.Content)
		nodes = append(nodes, c)
		return nil
	})
	return nodes, err
}

func TestDecodeTreeSkipsOptionalExt(t *testing.T) {
	in := enc(1, 1, 1, "a", 1, fMode|fExt, 0644, 2, 2, 3, "abc", 10, 0)
	tree, skipped, err := decodeTree(in)
	if err != nil {
		t.Fatal(err)
	}
	want := &Tree{Nodes: []Node{{Name: "a", Type: TypeFile, Mode: 0644}}}
	if skipped != 2 || !reflect.DeepEqual(tree, want) {
		t.Errorf("got %+v, %d skipped; want %+v, 2 skipped", tree, skipped, want)
	}
}

// A short garbage input must not be able to make the decoder allocate in
// proportion to a length or count it claims.
func TestDecodeTreeBoundedAllocation(t *testing.T) {
	inputs := [][]byte{
		enc(1, uint64(1)<<40),
		enc(1, 1, uint64(1)<<40),
		enc(1, 1, 1, "a", 1, fContent, uint64(1)<<40),
		enc(1, 1, 1, "a", 1, fXattrs, uint64(1)<<40),
		enc(1, 1, 1, "a", 1, fXattrs, 1, 1, "b", uint64(1)<<40),
		enc(1, 1, 1, "a", 1, fExt, uint64(1)<<40),
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for _, in := range inputs {
		if _, err := DecodeTree(in); err == nil {
			t.Errorf("% x decoded", in)
		}
	}
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
		t.Errorf("decoding %d tiny inputs allocated %d bytes", len(inputs), n)
	}
}

func FuzzTreeRoundTrip(f *testing.F) {
	for _, tree := range []*Tree{{}, goldenTree(), benchTree(3)} {
		b, err := EncodeTree(tree)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{2, 0})
	f.Add(enc(1, 1, 1, "a", 1, fMode|fExt, 0644, 2, 2, 3, "abc", 10, 0))
	id := testID(1)
	f.Add(enc(1, 1, 1, "a", 1, fContent, 3, 3, 2, string(id[:]), 5))
	f.Fuzz(func(t *testing.T, in []byte) {
		tree, skipped, err := decodeTree(in)
		nodes, eerr := eachNodes(in)
		switch {
		case (err == nil) != (eerr == nil) || err != nil && err.Error() != eerr.Error():
			t.Fatalf("eachNode: error %v, decodeTree: %v", eerr, err)
		case err == nil && !reflect.DeepEqual(nodes, tree.Nodes):
			t.Fatalf("eachNode yields\n%+v\ndecodeTree\n%+v", nodes, tree.Nodes)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidTree) && !errors.Is(err, ErrFormatVersion) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		b, err := EncodeTree(tree)
		if err != nil {
			t.Fatalf("decoded tree does not encode: %v\n%+v", err, tree)
		}
		if skipped == 0 && !bytes.Equal(b, in) {
			t.Fatalf("not canonical:\nin  % x\nout % x", in, b)
		}
		again, err := DecodeTree(b)
		if err != nil {
			t.Fatalf("re-encoded tree does not decode: %v", err)
		}
		if !reflect.DeepEqual(again, tree) {
			t.Fatalf("round trip:\nfirst  %+v\nsecond %+v", tree, again)
		}
	})
}

// benchTree is a directory of n ordinary files as a backup of /usr would
// see them: one owner, one device, mostly one chunk each.
func benchTree(n int) *Tree {
	const t0 = 1700000000123456789
	tree := &Tree{Nodes: make([]Node, n)}
	for i := range tree.Nodes {
		tree.Nodes[i] = Node{
			Name: fmt.Sprintf("file-%06d.conf", i), Type: TypeFile, Mode: 0644,
			UID: 1000, GID: 1000, User: "alice", Group: "alice",
			Size:  uint64(1000 + i*37),
			Mtime: t0 + int64(i)*1e9 + 12345, Atime: t0 + 86400e9 + int64(i)*1234567, Ctime: t0 + int64(i)*1e9 + 12345,
			DeviceID: 0xfd01, Inode: uint64(1_000_000 + i), Links: 1,
			Content: []Chunk{{ID: testID(byte(i)), Size: uint64(1000 + i*37)}},
		}
	}
	return tree
}

func TestTypicalFileNodeSize(t *testing.T) {
	b, err := EncodeTree(benchTree(1000))
	if err != nil {
		t.Fatal(err)
	}
	perNode := float64(len(b)-3) / 1000
	// What is left once the 17-byte name and the 32-byte chunk ID are paid.
	overhead := perNode - 17 - 32
	t.Logf("1000-file directory: %d bytes, %.1f bytes per file node, %.1f of them metadata", len(b), perNode, overhead)
	if overhead > 56 {
		t.Errorf("%.1f bytes of metadata per typical file node, want at most 56", overhead)
	}
}

func BenchmarkEncodeTree1000(b *testing.B) {
	tree := benchTree(1000)
	enc, _ := EncodeTree(tree)
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeTree(tree); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeTree1000(b *testing.B) {
	enc, err := EncodeTree(benchTree(1000))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeTree(enc); err != nil {
			b.Fatal(err)
		}
	}
}
