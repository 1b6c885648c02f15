package crypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"fmt"
)

// xaesNonceSize is XAES-256-GCM's nonce: the first half picks the message
// key, the second half is that key's AES-256-GCM nonce.
const xaesNonceSize = 24

// xaesGCM is XAES-256-GCM (https://c2sp.org/XAES-256-GCM) as a cipher.AEAD:
// AES-256-GCM under a key derived from the input key and the nonce's first
// 12 bytes with the NIST SP 800-108r1 counter KDF over AES-256-CMAC.
type xaesGCM struct {
	// block is AES-256 under the input key: key derivation runs it twice
	// per message, so it is expanded once.
	block cipher.Block
	// k1 is the CMAC subkey; every KDF input is a single full block, so the
	// other subkey is never needed.
	k1 [aes.BlockSize]byte
}

func newXAES(key []byte) nonceSealer {
	block, err := aes.NewCipher(key)
	if err != nil {
		// Only a wrong key length fails, and every caller passes KeySize.
		panic(fmt.Errorf("crypto: AES with a %d-byte key: %w", len(key), err))
	}
	x := &xaesGCM{block: block}
	var l [aes.BlockSize]byte
	block.Encrypt(l[:], l[:])
	for i := range len(l) - 1 {
		x.k1[i] = l[i]<<1 | l[i+1]>>7
	}
	// The reduction is masked, not branched on, to keep the subkey's timing
	// independent of its bits.
	x.k1[len(l)-1] = l[len(l)-1]<<1 ^ 0x87&-(l[0]>>7)
	return nonceSealer{XAES256GCM, x}
}

func (*xaesGCM) NonceSize() int { return xaesNonceSize }

func (*xaesGCM) Overhead() int { return 16 }

func (x *xaesGCM) Seal(dst, nonce, plaintext, ad []byte) []byte {
	return x.messageAEAD(nonce).Seal(dst, nonce[12:], plaintext, ad)
}

func (x *xaesGCM) Open(dst, nonce, ciphertext, ad []byte) ([]byte, error) {
	return x.messageAEAD(nonce).Open(dst, nonce[12:], ciphertext, ad)
}

// messageAEAD returns AES-256-GCM under the message key of the nonce.
func (x *xaesGCM) messageAEAD(nonce []byte) cipher.AEAD {
	key := x.messageKey(nonce)
	block, err := aes.NewCipher(key[:])
	if err != nil {
		panic(fmt.Errorf("crypto: AES with a derived key: %w", err))
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		// Go's FIPS 140-only mode refuses caller-chosen GCM nonces.
		panic(fmt.Errorf("crypto: AES-GCM with a derived key: %w", err))
	}
	return gcm
}

// messageKey derives the key that the nonce's first half picks:
// AES_K(M1 ^ K1) || AES_K(M2 ^ K1), where Mi is the counter i (two bytes),
// the label 'X', a zero byte and the 12 nonce bytes.
func (x *xaesGCM) messageKey(nonce []byte) [2 * aes.BlockSize]byte {
	if len(nonce) != xaesNonceSize {
		panic(fmt.Sprintf("crypto: XAES-256-GCM nonce of %d bytes, want %d", len(nonce), xaesNonceSize))
	}
	var key [2 * aes.BlockSize]byte
	m1, m2 := key[:aes.BlockSize], key[aes.BlockSize:]
	copy(m1, x.k1[:])
	m1[1] ^= 1
	m1[2] ^= 'X'
	subtle.XORBytes(m1[4:], m1[4:], nonce[:12])
	copy(m2, m1)
	m2[1] ^= 1 ^ 2
	x.block.Encrypt(m1, m1)
	x.block.Encrypt(m2, m2)
	return key
}
