package chunkstore

import (
	"encoding/binary"
	"sync"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
)

// doomedFilter is a Bloom filter of the blobs doomed in this run, of a
// fixed size: looking for other copies of doomed blobs asks about every
// blob of every segment, and nearly all are not doomed; the filter answers
// those without a lookup in the scratch database. Blob IDs are uniform
// hashes already, so their bytes serve as the filter's hashes.
type doomedFilter struct {
	mu   sync.Mutex
	bits []uint64
}

// doomedBits is the filter's size: 1 MiB, under 1% false positives up to
// a million doomed blobs.
const doomedBits = 8 << 20

func (f *doomedFilter) positions(r index.BlobRef) [3]uint64 {
	var p [3]uint64
	for i := range p {
		p[i] = (binary.LittleEndian.Uint64(r.ID[8*i:]) ^ uint64(r.Type)) % doomedBits
	}
	return p
}

func (f *doomedFilter) add(r index.BlobRef) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.bits == nil {
		f.bits = make([]uint64, doomedBits/64)
	}
	for _, p := range f.positions(r) {
		f.bits[p/64] |= 1 << (p % 64)
	}
}

// mayHold reports false only for a blob never added.
func (f *doomedFilter) mayHold(r index.BlobRef) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.bits == nil {
		return false
	}
	for _, p := range f.positions(r) {
		if f.bits[p/64]&(1<<(p%64)) == 0 {
			return false
		}
	}
	return true
}

// doom records that the blob's indexed copy is in pack, about to go.
func (p *pruner) doom(r index.BlobRef, pack blob.ID) error {
	p.doomed.add(r)
	return p.scratch.Doom(r, pack)
}
