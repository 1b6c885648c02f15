package crypto

import (
	"crypto/rand"
	"crypto/subtle"
	"sync"

	"github.com/zeebo/blake3"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
)

// KeySize is the size of each half of the master key.
const KeySize = 32

// Key is a repository's master key. Use it by pointer: it carries a cache
// that must not be copied (go vet reports copies), so compare keys with
// [Key.Equal]. Do not change the fields after the first call to BlobID: the
// cache holds hashers keyed with the old ID.
type Key struct {
	Encrypt [KeySize]byte // sealer key
	ID      [KeySize]byte // BLAKE3 key for blob IDs

	// hashers caches keyed BLAKE3 states: a fresh one is a ~10 KiB
	// allocation, which BlobID would otherwise pay for every chunk.
	hashers sync.Pool
}

// NewRandomKey returns a fresh master key from the operating system's CSPRNG.
func NewRandomKey() (*Key, error) {
	k := new(Key)
	// crypto/rand.Read never fails since Go 1.24: it crashes the program
	// rather than return short or predictable bytes.
	_, _ = rand.Read(k.Encrypt[:])
	_, _ = rand.Read(k.ID[:])
	return k, nil
}

// Equal reports whether k and o hold the same key material, in constant time.
func (k *Key) Equal(o *Key) bool {
	return subtle.ConstantTimeCompare(k.Encrypt[:], o.Encrypt[:])&
		subtle.ConstantTimeCompare(k.ID[:], o.ID[:]) == 1
}

// BlobID returns the ID of a blob with the given plaintext: BLAKE3-256 keyed
// with k.ID. It is safe for concurrent use.
func (k *Key) BlobID(data []byte) blob.ID {
	h, _ := k.hashers.Get().(*blake3.Hasher)
	if h == nil {
		// The key is 32 bytes by type, so NewKeyed cannot fail.
		h, _ = blake3.NewKeyed(k.ID[:])
	}
	_, _ = h.Write(data)
	var id blob.ID
	h.Sum(id[:0])
	h.Reset()
	k.hashers.Put(h)
	return id
}
