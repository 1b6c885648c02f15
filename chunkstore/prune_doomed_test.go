package chunkstore

import (
	"math/rand/v2"
	"testing"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
)

// TestBlobFilterRates holds filterBits' comment to its numbers: the
// filter never forgets a blob, and its false positives stay under 1% up to
// 600,000 blobs and about 3% at a million.
func TestBlobFilterRates(t *testing.T) {
	rng := rand.NewChaCha8([32]byte{7})
	ref := func() index.BlobRef {
		var id blob.ID
		rng.Read(id[:])
		return index.BlobRef{Type: blob.Type(rng.Uint64() & 1), ID: id}
	}
	var f blobFilter
	added := make([]index.BlobRef, 0, 1_000_000)
	falsePositives := func() float64 {
		const probes = 200_000
		n := 0
		for range probes {
			if f.mayHold(ref()) {
				n++
			}
		}
		return float64(n) / probes
	}
	for _, c := range []struct {
		blobs    int
		min, max float64
	}{
		{0, 0, 0},
		{600_000, 0.005, 0.01},
		{1_000_000, 0.02, 0.035},
	} {
		for len(added) < c.blobs {
			r := ref()
			f.add(r)
			added = append(added, r)
		}
		for _, r := range added {
			if !f.mayHold(r) {
				t.Fatalf("after %d blobs: the filter lost %v", c.blobs, r)
			}
		}
		if got := falsePositives(); got < c.min || got > c.max {
			t.Errorf("after %d blobs: %.2f%% false positives, want %.1f%% to %.1f%%", c.blobs, 100*got, 100*c.min, 100*c.max)
		} else {
			t.Logf("after %d blobs: %.2f%% false positives", c.blobs, 100*got)
		}
	}
}
