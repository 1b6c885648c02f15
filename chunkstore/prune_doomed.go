package chunkstore

import (
	"encoding/binary"
	"sync"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
)

// blobFilter is a Bloom filter of blobs, of a fixed size, that answers
// most questions about blobs never added without a lookup in the scratch
// database: looking for other copies of doomed blobs asks about every
// blob of every segment, and nearly all are not doomed; settling asks
// whether the blobs of condemned packs are marked, and nearly all are
// not. Blob IDs are uniform hashes already, so their bytes serve as the
// filter's hashes.
type blobFilter struct {
	mu   sync.Mutex
	bits []uint64
}

// filterBits is the filter's size: 1 MiB. With three hashes that is under
// 1% false positives up to 600,000 blobs and about 3% at a million; past
// that it answers "maybe" more and more often, and the lookups it saves
// are made.
const filterBits = 8 << 20

func (f *blobFilter) positions(r index.BlobRef) [3]uint64 {
	var p [3]uint64
	for i := range p {
		p[i] = (binary.LittleEndian.Uint64(r.ID[8*i:]) ^ uint64(r.Type)) % filterBits
	}
	return p
}

func (f *blobFilter) add(r index.BlobRef) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.bits == nil {
		f.bits = make([]uint64, filterBits/64)
	}
	for _, p := range f.positions(r) {
		f.bits[p/64] |= 1 << (p % 64)
	}
}

// mayHold reports false only for a blob never added.
func (f *blobFilter) mayHold(r index.BlobRef) bool {
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
