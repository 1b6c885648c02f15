package crypto

import (
	"bytes"
	"sync"
	"testing"

	"github.com/zeebo/blake3"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
)

func testKey(t testing.TB) *Key {
	t.Helper()
	k, err := NewRandomKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestNewRandomKeyDiffers(t *testing.T) {
	a, b := testKey(t), testKey(t)
	if a.Equal(b) {
		t.Fatal("two random keys are equal")
	}
	if a.Encrypt == a.ID {
		t.Fatal("the two halves of a random key are equal")
	}
	if !a.Equal(a) {
		t.Fatal("a key is not Equal to itself")
	}
}

func TestBlobID(t *testing.T) {
	k := &Key{}
	for i := range k.ID {
		k.ID[i] = byte(i)
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"one byte", []byte{0}},
		{"one BLAKE3 chunk plus one", bytes.Repeat([]byte("x"), 1025)},
		{"1 MiB", bytes.Repeat([]byte("hindsight"), 1<<20/9)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := blake3.NewKeyed(k.ID[:])
			if err != nil {
				t.Fatal(err)
			}
			_, _ = h.Write(tt.data)
			var want blob.ID
			copy(want[:], h.Sum(nil))
			// Twice, so the second call runs on a pooled, reset hasher.
			for range 2 {
				if got := k.BlobID(tt.data); got != want {
					t.Fatalf("BlobID = %s, want %s", got, want)
				}
			}
			if unkeyed := blob.ID(blake3.Sum256(tt.data)); k.BlobID(tt.data) == unkeyed {
				t.Fatal("BlobID equals the unkeyed hash")
			}
		})
	}
}

func TestBlobIDKeyMatters(t *testing.T) {
	a, b := testKey(t), testKey(t)
	if a.BlobID([]byte("same")) == b.BlobID([]byte("same")) {
		t.Fatal("different ID keys give the same blob ID")
	}
}

func TestBlobIDConcurrent(t *testing.T) {
	k := testKey(t)
	data := bytes.Repeat([]byte{7}, 100_000)
	want := k.BlobID(data)
	var wg sync.WaitGroup
	errs := make(chan blob.ID, 8)
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if got := k.BlobID(data); got != want {
					errs <- got
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for got := range errs {
		t.Errorf("concurrent BlobID = %s, want %s", got, want)
	}
}

func TestBlobIDAllocs(t *testing.T) {
	k := testKey(t)
	data := make([]byte, 64<<10)
	k.BlobID(data) // fill the pool
	if n := testing.AllocsPerRun(100, func() { k.BlobID(data) }); n > 0 {
		t.Fatalf("BlobID allocates %.1f times per call, want 0", n)
	}
}

func BenchmarkBlobID(b *testing.B) {
	k := testKey(b)
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<20/16)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			k.BlobID(data)
		}
	})
}
