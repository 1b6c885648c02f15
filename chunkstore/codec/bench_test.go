package codec

import (
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/crypto"
)

var benchInputs = []struct {
	name string
	data []byte
}{
	{"text-1MiB", text(1<<20, 1)},
	{"random-1MiB", random(1<<20, 1)},
}

// BenchmarkEncode reports the throughput of Encode on one goroutine
// ("serial") and on all of GOMAXPROCS ("parallel").
func BenchmarkEncode(b *testing.B) {
	c := testCodec(b, crypto.DefaultSealer, true)
	for _, in := range benchInputs {
		b.Run(in.name+"/serial", func(b *testing.B) {
			b.SetBytes(int64(len(in.data)))
			var dst []byte
			for b.Loop() {
				dst, _ = c.Encode(dst[:0], blob.Data, testID, in.data)
			}
		})
		b.Run(in.name+"/parallel", func(b *testing.B) {
			b.SetBytes(int64(len(in.data)))
			b.RunParallel(func(pb *testing.PB) {
				var dst []byte
				for pb.Next() {
					dst, _ = c.Encode(dst[:0], blob.Data, testID, in.data)
				}
			})
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	c := testCodec(b, crypto.DefaultSealer, true)
	for _, in := range benchInputs {
		stored, comp := c.Encode(nil, blob.Data, testID, in.data)
		b.Run(in.name+"/parallel", func(b *testing.B) {
			b.SetBytes(int64(len(in.data)))
			b.RunParallel(func(pb *testing.PB) {
				var dst []byte
				for pb.Next() {
					var err error
					if dst, err = c.Decode(dst[:0], blob.Data, testID, comp, len(in.data), stored); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkMemoryHeld reports the heap a codec keeps after four workers
// encoded and decoded maximum-size (8 MiB) blobs: "MB-held" right after the
// work (scratch pool still full), "MB-steady" once the pool has drained.
func BenchmarkMemoryHeld(b *testing.B) {
	data := text(8<<20, 3)
	heap := func() float64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return float64(m.HeapAlloc) / 1e6
	}
	for b.Loop() {
		base := heap()
		c := testCodec(b, crypto.DefaultSealer, true)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for range 3 {
					stored, comp := c.Encode(nil, blob.Data, testID, data)
					if _, err := c.Decode(nil, blob.Data, testID, comp, len(data), stored); err != nil {
						panic(fmt.Errorf("decode: %w", err)) // a benchmark helper goroutine cannot b.Fatal
					}
				}
			})
		}
		wg.Wait()
		held := heap() - base
		steady := heap() - base
		b.ReportMetric(held, "MB-held")
		b.ReportMetric(steady, "MB-steady")
		runtime.KeepAlive(c)
	}
}
