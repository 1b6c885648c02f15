package snapshot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/chunkstore/blob"
)

// sparseFile stores a file of: 100 data bytes, a 50-byte hole, 30 data
// bytes, a 20-byte hole; and returns its node and its bytes.
func sparseFile(t *testing.T) (*View, *Node, []byte) {
	repo, _ := chunkstore.TestRepository(t, chunkstore.InitOptions{})
	ctx := context.Background()
	var want []byte
	n := &Node{Type: TypeFile}
	for _, part := range []struct {
		size int
		hole bool
	}{{100, false}, {50, true}, {30, false}, {20, true}} {
		b := make([]byte, part.size)
		c := Chunk{Size: uint64(part.size)}
		if !part.hole {
			for i := range b {
				b[i] = byte(len(want) + i)
			}
			c.ID = repo.BlobID(b)
			if _, err := repo.SaveBlob(ctx, blob.Data, c.ID, b); err != nil {
				t.Fatal(err)
			}
		}
		want = append(want, b...)
		n.Content = append(n.Content, c)
	}
	if err := repo.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	n.Size = uint64(len(want))
	return NewView(repo, ViewOptions{BlobCache: 64}), n, want
}

// readAt copies what ReadVec returns into p, as the kernel gets it.
func readAt(ctx context.Context, r *FileReader, p []byte, off int64) (int, error) {
	vec, done, err := r.ReadVec(ctx, p, off)
	defer done()
	n := 0
	for _, b := range vec {
		n += copy(p[n:], b)
	}
	return n, err
}

func TestFileReaderReadVec(t *testing.T) {
	v, n, want := sparseFile(t)
	r := v.Open(n)
	tests := []struct {
		name    string
		off     int64
		size    int
		wantN   int
		wantEOF bool
	}{
		{"all", 0, 200, 200, false},
		{"within a chunk", 10, 20, 20, false},
		{"across data, hole and data", 90, 70, 70, false},
		{"inside a hole", 110, 10, 10, false},
		{"past the end", 190, 20, 10, true},
		{"at the end", 200, 5, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := bytes.Repeat([]byte{0xee}, tc.size)
			k, err := readAt(context.Background(), r, p, tc.off)
			if k != tc.wantN || (err == io.EOF) != tc.wantEOF || (err != nil && err != io.EOF) {
				t.Fatalf("ReadVec(%d, %d) = %d, %v", tc.off, tc.size, k, err)
			}
			if !bytes.Equal(p[:k], want[tc.off:tc.off+int64(k)]) {
				t.Errorf("wrong bytes")
			}
		})
	}
}

func TestFileReaderSeek(t *testing.T) {
	v, n, _ := sparseFile(t)
	r := v.Open(n)
	tests := []struct {
		off      int64
		data     int64
		dataOK   bool
		nextHole int64
	}{
		{0, 0, true, 100},
		{99, 99, true, 100},
		{100, 150, true, 100},
		{149, 150, true, 149},
		{150, 150, true, 180},
		{180, 0, false, 180},
		{199, 0, false, 199},
	}
	for _, tc := range tests {
		d, ok := r.NextData(tc.off)
		if d != tc.data || ok != tc.dataOK {
			t.Errorf("NextData(%d) = %d, %v; want %d, %v", tc.off, d, ok, tc.data, tc.dataOK)
		}
		if h := r.NextHole(tc.off); h != tc.nextHole {
			t.Errorf("NextHole(%d) = %d, want %d", tc.off, h, tc.nextHole)
		}
	}
}

// TestFileReaderConcurrent reads one file from many goroutines through a
// cache smaller than the file, so that chunks are evicted and loaded again
// while others wait for them.
func TestFileReaderConcurrent(t *testing.T) {
	v, n, want := sparseFile(t)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			r := v.Open(n)
			p := make([]byte, 7+i)
			for off := int64(0); off < int64(len(want)); off += int64(len(p)) {
				k, err := readAt(context.Background(), r, p, off)
				if err != nil && err != io.EOF {
					t.Error(err)
					return
				}
				if !bytes.Equal(p[:k], want[off:off+int64(k)]) {
					t.Errorf("reader %d: wrong bytes at %d", i, off)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestTrimIdle drops cached content only after the given idle time, once
// per idle spell, and reads work as before afterwards.
func TestTrimIdle(t *testing.T) {
	v, n, want := sparseFile(t)
	read := func() {
		t.Helper()
		got := make([]byte, len(want))
		if _, err := readAt(context.Background(), v.Open(n), got, 0); err != nil && err != io.EOF {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatal("read other bytes")
		}
	}
	read()
	if v.TrimIdle(time.Hour) {
		t.Error("trimmed before an hour of idleness")
	}
	if !v.TrimIdle(0) || v.chunks.used != 0 {
		t.Errorf("not trimmed: %d bytes still cached", v.chunks.used)
	}
	if v.TrimIdle(0) {
		t.Error("trimmed twice in one idle spell")
	}
	read()
	if v.chunks.used == 0 || !v.TrimIdle(0) {
		t.Error("a read after the trim was not cached, or not trimmed again")
	}
}

// saveTree stores tree t and returns its ID.
func saveTree(t *testing.T, repo *chunkstore.Repository, tr *Tree) blob.ID {
	ctx := context.Background()
	id, err := SaveTree(ctx, repo, tr)
	if err == nil {
		err = repo.Flush(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// dirTree returns a tree of one subdirectory per name, with the subtrees
// ids.
func dirTree(names []string, ids ...blob.ID) *Tree {
	tr := &Tree{}
	for i, name := range names {
		tr.Nodes = append(tr.Nodes, Node{Name: name, Type: TypeDir, Subtree: ids[i]})
	}
	return tr
}

// leaf stores a tree of one file and returns its ID.
func leaf(t *testing.T, repo *chunkstore.Repository, name string) blob.ID {
	return saveTree(t, repo, &Tree{Nodes: []Node{{Name: name, Type: TypeFile}}})
}

// waitCached waits until the view caches the trees ids.
func waitCached(t *testing.T, v *View, ids ...blob.ID) {
	t.Helper()
	cached := func() int {
		n := 0
		for _, id := range ids {
			if _, ok := v.trees.peek(id); ok {
				n++
			}
		}
		return n
	}
	for deadline := time.Now().Add(10 * time.Second); cached() < len(ids); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d trees prefetched after 10 s", cached(), len(ids))
		}
	}
}

// TestPrefetchSubtrees lists a/ and b/ in a walk's order: listing the
// root loads a and b in the background, and listing a loads a's subtree
// and those of b, which the walk enters after a.
func TestPrefetchSubtrees(t *testing.T) {
	repo, _ := chunkstore.TestRepository(t, chunkstore.InitOptions{})
	ctx := context.Background()
	a1, b1, b2 := leaf(t, repo, "a1"), leaf(t, repo, "b1"), leaf(t, repo, "b2")
	a := saveTree(t, repo, dirTree([]string{"a1"}, a1))
	b := saveTree(t, repo, dirTree([]string{"b1", "b2"}, b1, b2))
	rootTree := dirTree([]string{"a", "b"}, a, b)
	root := saveTree(t, repo, rootTree)
	v := NewView(repo, ViewOptions{})
	v.PrefetchSubtrees(ctx, root, rootTree)
	waitCached(t, v, a, b)
	if _, ok := v.trees.peek(b1); ok {
		t.Fatal("listing the root loaded a tree two levels down")
	}
	ta, err := v.Tree(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	v.PrefetchSubtrees(ctx, a, ta)
	waitCached(t, v, a1, b1, b2)
	tr, err := v.Tree(ctx, b2)
	if err != nil || len(tr.Nodes) != 1 || tr.Nodes[0].Name != "b2" {
		t.Fatalf("prefetched tree: %+v, %v", tr, err)
	}
}

// TestPrefetchSubtreesMissing prefetches a batch with a tree the
// repository lacks, which fails the batch: the other trees still load,
// and the missing one fails with the repository's error, as without
// read-ahead.
func TestPrefetchSubtreesMissing(t *testing.T) {
	repo, _ := chunkstore.TestRepository(t, chunkstore.InitOptions{})
	ctx := context.Background()
	ids := []blob.ID{leaf(t, repo, "a"), repo.BlobID([]byte("no such tree")), leaf(t, repo, "c")}
	root := dirTree([]string{"a", "b", "c"}, ids...)
	v := NewView(repo, ViewOptions{})
	v.PrefetchSubtrees(ctx, saveTree(t, repo, root), root)
	if _, err := v.Tree(ctx, ids[1]); !errors.Is(err, chunkstore.ErrBlobMissing) {
		t.Errorf("missing tree: %v, want %v", err, chunkstore.ErrBlobMissing)
	}
	for _, i := range []int{0, 2} {
		tr, err := v.Tree(ctx, ids[i])
		if err != nil || len(tr.Nodes) != 1 || tr.Nodes[0].Name != root.Nodes[i].Name {
			t.Errorf("tree %s: %+v, %v", root.Nodes[i].Name, tr, err)
		}
	}
}

// TestPrefetchSubtreesConcurrent has walkers list a tree at once, reading
// ahead as a mount does, through a tree cache too small to hold it: each
// gets every tree right however its loads and the batches interleave. A
// leaf's tree holds one file named as the directory that points to it.
func TestPrefetchSubtreesConcurrent(t *testing.T) {
	repo, _ := chunkstore.TestRepository(t, chunkstore.InitOptions{})
	ctx := context.Background()
	var names []string
	var dirs []blob.ID
	for i := range 20 {
		var leaves []string
		var ids []blob.ID
		for j := range 5 {
			name := fmt.Sprintf("f%d-%d", i, j)
			leaves = append(leaves, name)
			ids = append(ids, leaf(t, repo, name))
		}
		names = append(names, fmt.Sprintf("d%02d", i))
		dirs = append(dirs, saveTree(t, repo, dirTree(leaves, ids...)))
	}
	root := saveTree(t, repo, dirTree(names, dirs...))
	v := NewView(repo, ViewOptions{TreeCache: 4 << 10})
	var walk func(id blob.ID, want string) error
	walk = func(id blob.ID, want string) error {
		tr, err := v.Tree(ctx, id)
		if err != nil {
			return err
		}
		v.PrefetchSubtrees(ctx, id, tr)
		if tr.Nodes[0].Type == TypeFile {
			if tr.Nodes[0].Name != want {
				return fmt.Errorf("tree %s holds %q, want %q", id.Short(), tr.Nodes[0].Name, want)
			}
			return nil
		}
		for _, n := range tr.Nodes {
			if err := walk(n.Subtree, n.Name); err != nil {
				return err
			}
		}
		return nil
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if err := walk(root, ""); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}

// TestReadAheadFollowsReorderedReads: the kernel's read-ahead requests of
// a sequential reader reach the reader out of order and still fetch the
// chunks after them; a read far from the last one (a seek) fetches
// nothing but its own chunk.
func TestReadAheadFollowsReorderedReads(t *testing.T) {
	const mib = 1 << 20
	repo, _ := chunkstore.TestRepository(t, chunkstore.InitOptions{})
	ctx := context.Background()
	n := &Node{Type: TypeFile}
	for i := range 24 {
		b := bytes.Repeat([]byte{byte(i)}, mib)
		c := Chunk{ID: repo.BlobID(b), Size: mib}
		if _, err := repo.SaveBlob(ctx, blob.Data, c.ID, b); err != nil {
			t.Fatal(err)
		}
		n.Content = append(n.Content, c)
	}
	if err := repo.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	v := NewView(repo, ViewOptions{BlobCache: 64 * mib})
	r := v.Open(n)
	read := func(chunk int) {
		t.Helper()
		p := make([]byte, mib)
		if _, err := readAt(ctx, r, p, int64(chunk)*mib); err != nil || p[0] != byte(chunk) {
			t.Fatalf("read of chunk %d: %v", chunk, err)
		}
	}
	// cachedUpTo waits until chunks 0..last are cached, which also frees
	// the read-ahead slots their fetches held.
	cachedUpTo := func(last int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			v.chunks.mu.Lock()
			k := 0
			for k <= last {
				if _, ok := v.chunks.items[n.Content[k].ID]; !ok {
					break
				}
				k++
			}
			v.chunks.mu.Unlock()
			if k > last && len(v.fetch) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("chunks up to %d not read ahead after 10 s: %d are", last, k)
			}
		}
	}
	read(0)
	cachedUpTo(readAhead)
	read(3) // ahead of chunk 1, as the kernel's read-ahead arrives
	cachedUpTo(3 + readAhead)
	read(20) // a seek
	for i := 21; i < len(n.Content); i++ {
		if len(v.fetch) != 0 || v.chunks.loading(n.Content[i].ID) {
			t.Fatalf("a seek to chunk 20 fetched chunk %d ahead", i)
		}
	}
}
