package snapshot

import (
	"bytes"
	"context"
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

// TestPrefetchTrees decodes the trees it is given into the cache in the
// background, so that a later Tree call finds them there.
func TestPrefetchTrees(t *testing.T) {
	repo, _ := chunkstore.TestRepository(t, chunkstore.InitOptions{})
	ctx := context.Background()
	var ids []blob.ID
	for _, name := range []string{"a", "b", "c"} {
		b, err := EncodeTree(&Tree{Nodes: []Node{{Name: name, Type: TypeFile}}})
		if err != nil {
			t.Fatal(err)
		}
		id := repo.BlobID(b)
		if _, err := repo.SaveBlob(ctx, blob.Tree, id, b); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := repo.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	v := NewView(repo, ViewOptions{})
	v.PrefetchTrees(ctx, ids)
	cached := func() int {
		v.trees.mu.Lock()
		defer v.trees.mu.Unlock()
		n := 0
		for _, id := range ids {
			if _, ok := v.trees.items[id]; ok {
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
	tr, err := v.Tree(ctx, ids[1])
	if err != nil || len(tr.Nodes) != 1 || tr.Nodes[0].Name != "b" {
		t.Fatalf("prefetched tree: %+v, %v", tr, err)
	}
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
