package chunkstore

import (
	"sync/atomic"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
)

// Stats are repository totals from the index.
type Stats struct {
	Packs       uint64
	PackBytes   uint64 // bytes of all packs, trailers included
	Blobs       uint64
	DataBlobs   uint64
	TreeBlobs   uint64
	StoredBytes uint64 // blob bytes as stored (compressed, encrypted)
	RawBytes    uint64 // blob bytes before compression
}

// Stats scans the index. Memory stays flat; time grows with the number of
// blobs.
func (r *Repository) Stats() (Stats, error) {
	var st Stats
	err := r.idx.Packs(func(p index.PackInfo) error {
		st.Packs++
		st.PackBytes += uint64(p.Size)
		return nil
	})
	if err != nil {
		return st, err
	}
	err = r.idx.Blobs(func(b index.BlobEntry) error {
		st.Blobs++
		if b.Type == blob.Data {
			st.DataBlobs++
		} else {
			st.TreeBlobs++
		}
		st.StoredBytes += uint64(b.Length)
		st.RawBytes += uint64(b.RawLength)
		return nil
	})
	return st, err
}

// WriteCounters count what this Repository has added since it was opened.
type WriteCounters struct {
	Blobs       atomic.Uint64
	RawBytes    atomic.Uint64 // plaintext bytes of new blobs
	StoredBytes atomic.Uint64 // what they take in packs
}

// Written returns the counters of blobs added since Open.
func (r *Repository) Written() *WriteCounters { return &r.written }
