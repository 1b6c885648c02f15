package crypto

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
)

// ErrWrongPassword reports a key file that the password does not open. A
// damaged key file is indistinguishable from a wrong password: both fail the
// same authentication check.
var ErrWrongPassword = errors.New("crypto: wrong password (or damaged key file)")

// KDFArgon2id is the only key derivation function so far.
const KDFArgon2id = "argon2id"

// keyFileVersion is the version written; decoding accepts only it.
const keyFileVersion = 1

// keyFileAD binds the sealed master key to its purpose, so it cannot be
// passed off as, or confused with, any other ciphertext.
const keyFileAD = "hindsight key file v1"

// Bounds checked on every key file before argon2 runs: a key file comes from
// storage we do not trust, and argon2 allocates MemoryKiB up front.
const (
	MinSaltSize     = 16
	MaxSaltSize     = 64
	MaxKDFMemoryKiB = 4 << 20 // 4 GiB
	MaxKDFTime      = 100     // passes; the default is 8
)

// sealedKeySize is the size of KeyFile.Data: nonce, both key halves, tag.
const sealedKeySize = chacha20poly1305.NonceSizeX + 2*KeySize + chacha20poly1305.Overhead

// KDFParams are the argon2id cost parameters and salt.
type KDFParams struct {
	Time      uint32 `json:"time"`       // passes over memory
	MemoryKiB uint32 `json:"memory_kib"` // memory in KiB
	Threads   uint8  `json:"threads"`    // lanes
	Salt      []byte `json:"salt"`       // random, per key file
}

// DefaultKDFParams returns the parameters for a new key file with a fresh
// salt: 12 MiB, 8 passes, 2 lanes. OWASP's password storage guidance lists
// argon2id settings of equal strength that trade memory for passes (19 MiB
// and 2 passes, 12 MiB and 3, 9 MiB and 4, 7 MiB and 5, about 36 MiB-passes
// of work per guess each); 12 MiB and 8 passes is 96, close to the 128 of
// the 32 MiB and 4 passes used before, at the same derivation time, while
// the memory every command holds when it opens a repository drops by 20
// MiB. Key files keep the parameters they were written with.
func DefaultKDFParams() (KDFParams, error) {
	p := KDFParams{Time: 8, MemoryKiB: 12 << 10, Threads: 2, Salt: make([]byte, MinSaltSize)}
	_, _ = rand.Read(p.Salt)
	return p, nil
}

// Validate rejects parameters that argon2 cannot use or that would cost
// more than any key file written by hindsight.
func (p KDFParams) Validate() error {
	switch {
	case p.Time == 0 || p.Time > MaxKDFTime:
		return fmt.Errorf("crypto: argon2 time %d outside 1..%d", p.Time, MaxKDFTime)
	case p.Threads == 0:
		return errors.New("crypto: argon2 threads must be at least 1")
	case p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > MaxKDFMemoryKiB:
		return fmt.Errorf("crypto: argon2 memory %d KiB outside %d..%d KiB",
			p.MemoryKiB, 8*uint32(p.Threads), MaxKDFMemoryKiB)
	case len(p.Salt) < MinSaltSize || len(p.Salt) > MaxSaltSize:
		return fmt.Errorf("crypto: salt of %d bytes outside %d..%d", len(p.Salt), MinSaltSize, MaxSaltSize)
	}
	return nil
}

func (p KDFParams) deriveKey(password []byte) []byte {
	return argon2.IDKey(password, p.Salt, p.Time, p.MemoryKiB, p.Threads, KeySize)
}

// KeyFile is one password's wrapping of the master key.
type KeyFile struct {
	Created time.Time
	Host    string
	User    string
	KDF     string // KDFArgon2id
	Params  KDFParams
	Data    []byte // master key sealed under the password-derived key
}

// WrapKey seals master under a key derived from password with p.
func WrapKey(master *Key, password []byte, p KDFParams, host, user string, created time.Time) (*KeyFile, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	derived := p.deriveKey(password)
	defer clear(derived)
	plain := make([]byte, 0, 2*KeySize)
	plain = append(append(plain, master.Encrypt[:]...), master.ID[:]...)
	defer clear(plain)
	p.Salt = bytes.Clone(p.Salt)
	return &KeyFile{
		Created: created,
		Host:    host,
		User:    user,
		KDF:     KDFArgon2id,
		Params:  p,
		Data:    newXChaCha(derived).Seal(nil, plain, []byte(keyFileAD)),
	}, nil
}

// Unwrap derives the key from password and opens the master key. It returns
// an error wrapping ErrWrongPassword when authentication fails.
func (kf *KeyFile) Unwrap(password []byte) (*Key, error) {
	if err := kf.check(); err != nil {
		return nil, err
	}
	derived := kf.Params.deriveKey(password)
	defer clear(derived)
	plain, err := newXChaCha(derived).Open(nil, kf.Data, []byte(keyFileAD))
	if err != nil {
		return nil, ErrWrongPassword
	}
	defer clear(plain)
	k := new(Key)
	copy(k.Encrypt[:], plain[:KeySize])
	copy(k.ID[:], plain[KeySize:])
	return k, nil
}

// check validates everything a key file's decoder can: all but the password.
func (kf *KeyFile) check() error {
	if kf.KDF != KDFArgon2id {
		return fmt.Errorf("crypto: key file uses unknown KDF %q (known: %q)", kf.KDF, KDFArgon2id)
	}
	if err := kf.Params.Validate(); err != nil {
		return err
	}
	if len(kf.Data) != sealedKeySize {
		return fmt.Errorf("crypto: key file data is %d bytes, want %d", len(kf.Data), sealedKeySize)
	}
	return nil
}

// keyFileJSON is the on-disk shape; see the package documentation.
type keyFileJSON struct {
	Version int       `json:"version"`
	Created time.Time `json:"created"`
	Host    string    `json:"host,omitempty"`
	User    string    `json:"user,omitempty"`
	KDF     string    `json:"kdf"`
	Params  KDFParams `json:"params"`
	Data    []byte    `json:"data"`
}

// EncodeKeyFile returns the JSON form of kf after checking it.
func EncodeKeyFile(kf *KeyFile) ([]byte, error) {
	if err := kf.check(); err != nil {
		return nil, err
	}
	return json.MarshalIndent(keyFileJSON{
		Version: keyFileVersion,
		Created: kf.Created,
		Host:    kf.Host,
		User:    kf.User,
		KDF:     kf.KDF,
		Params:  kf.Params,
		Data:    kf.Data,
	}, "", "  ")
}

// DecodeKeyFile parses and checks a key file. It reads the version first so
// that a key file from a newer release gets a version error, not a confusing
// complaint about its fields.
func DecodeKeyFile(b []byte) (*KeyFile, error) {
	var v struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("crypto: key file is not valid JSON: %w", err)
	}
	switch {
	case v.Version == nil:
		return nil, errors.New("crypto: key file has no version")
	case *v.Version != keyFileVersion:
		return nil, fmt.Errorf("crypto: key file version %d is not supported (want %d)", *v.Version, keyFileVersion)
	}
	var j keyFileJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("crypto: key file: %w", err)
	}
	kf := &KeyFile{Created: j.Created, Host: j.Host, User: j.User, KDF: j.KDF, Params: j.Params, Data: j.Data}
	if err := kf.check(); err != nil {
		return nil, err
	}
	return kf, nil
}
