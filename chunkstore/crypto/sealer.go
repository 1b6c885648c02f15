package crypto

import (
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"unsafe"

	"golang.org/x/crypto/chacha20poly1305"
)

// ErrAuth reports a sealed message that does not authenticate: it was
// tampered with, truncated, sealed under another key, or opened with other
// associated data than it was sealed with.
var ErrAuth = errors.New("crypto: message authentication failed")

// Sealer names of the registry. They are stored in the repository config, so
// they never change.
const (
	XAES256GCM        = "xaes-256-gcm"
	XChaCha20Poly1305 = "xchacha20-poly1305"
	NoEncryption      = "none"

	DefaultSealer = XAES256GCM
)

// Sealer is authenticated encryption with associated data. Implementations
// are safe for concurrent use.
type Sealer interface {
	// Name is the registry name, as stored in the repository config.
	Name() string
	// Overhead is how many bytes longer a sealed message is than its
	// plaintext.
	Overhead() int
	// PayloadOffset is where a sealed message's payload starts. Open
	// decrypts in place when dst's spare capacity starts there.
	PayloadOffset() int
	// Seal appends the sealed form of plaintext to dst and returns the
	// extended slice. The plaintext may lie anywhere, including in dst's
	// spare capacity: callers build it in place there to save a copy.
	Seal(dst, plaintext, ad []byte) []byte
	// Open appends the plaintext of sealed to dst and returns the extended
	// slice, or dst and an error wrapping ErrAuth.
	Open(dst, sealed, ad []byte) ([]byte, error)
}

// SealerNames lists the registry names, default first.
func SealerNames() []string { return []string{XAES256GCM, XChaCha20Poly1305, NoEncryption} }

// NewSealer returns the registered sealer called name, keyed with k.Encrypt.
func NewSealer(name string, k *Key) (Sealer, error) {
	switch name {
	case XAES256GCM:
		return newXAES(k.Encrypt[:]), nil
	case XChaCha20Poly1305:
		return newXChaCha(k.Encrypt[:]), nil
	case NoEncryption:
		return noneSealer{}, nil
	}
	return nil, fmt.Errorf("crypto: unknown sealer %q (known: %q)", name, SealerNames())
}

// nonceSealer seals with an AEAD of random nonces, stored in front of the
// ciphertext: nonce | ciphertext | tag.
type nonceSealer struct {
	name string
	aead cipher.AEAD
}

func newXChaCha(key []byte) nonceSealer {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		// Only a wrong key length fails, and every caller passes KeySize.
		panic(fmt.Errorf("crypto: NewX with a %d-byte key: %w", len(key), err))
	}
	return nonceSealer{XChaCha20Poly1305, aead}
}

func (s nonceSealer) Name() string { return s.name }

func (s nonceSealer) Overhead() int { return s.aead.NonceSize() + s.aead.Overhead() }

func (s nonceSealer) PayloadOffset() int { return s.aead.NonceSize() }

func (s nonceSealer) Seal(dst, plaintext, ad []byte) []byte {
	nonceSize := s.aead.NonceSize()
	n := len(dst)
	dst = slices.Grow(dst, s.Overhead()+len(plaintext))
	out := dst[n : n+s.Overhead()+len(plaintext)]
	body := out[nonceSize : nonceSize+len(plaintext)]
	if overlap(out, plaintext) && !samePlace(body, plaintext) {
		// The AEAD only encrypts in place when input and output start at the
		// same address; move the plaintext there (copy is overlap-safe).
		copy(body, plaintext)
		plaintext = body
	}
	_, _ = rand.Read(out[:nonceSize])
	s.aead.Seal(body[:0], out[:nonceSize], plaintext, ad)
	return dst[:n+len(out)]
}

func (s nonceSealer) Open(dst, sealed, ad []byte) ([]byte, error) {
	nonceSize := s.aead.NonceSize()
	if len(sealed) < s.Overhead() {
		return dst, fmt.Errorf("%w: %d bytes is shorter than nonce and tag", ErrAuth, len(sealed))
	}
	nonce, ct := sealed[:nonceSize], sealed[nonceSize:]
	if spare := dst[len(dst):cap(dst)]; overlap(spare, sealed) && !samePlace(spare, ct) {
		// The AEAD decrypts in place (dst's spare room starting where
		// the ciphertext does) but panics on partial overlap; take the
		// slow, safe path.
		plain, err := s.aead.Open(nil, nonce, ct, ad)
		if err != nil {
			return dst, ErrAuth
		}
		return append(dst, plain...), nil
	}
	out, err := s.aead.Open(dst, nonce, ct, ad)
	if err != nil {
		return dst, ErrAuth
	}
	return out, nil
}

// noneSealer stores plaintext as is, for repositories on trusted disks.
type noneSealer struct{}

func (noneSealer) Name() string  { return NoEncryption }
func (noneSealer) Overhead() int { return 0 }

func (noneSealer) PayloadOffset() int { return 0 }

func (noneSealer) Seal(dst, plaintext, _ []byte) []byte {
	n := len(dst)
	dst = slices.Grow(dst, len(plaintext))[:n+len(plaintext)]
	copy(dst[n:], plaintext)
	return dst
}

func (noneSealer) Open(dst, sealed, _ []byte) ([]byte, error) {
	n := len(dst)
	dst = slices.Grow(dst, len(sealed))[:n+len(sealed)]
	copy(dst[n:], sealed)
	return dst, nil
}

// overlap reports whether a and b share memory.
func overlap(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	pa := uintptr(unsafe.Pointer(unsafe.SliceData(a)))
	pb := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return pa < pb+uintptr(len(b)) && pb < pa+uintptr(len(a))
}

// samePlace reports whether a and b start at the same address.
func samePlace(a, b []byte) bool {
	return len(a) > 0 && len(b) > 0 && unsafe.SliceData(a) == unsafe.SliceData(b)
}
