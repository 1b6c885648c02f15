package crypto

import (
	"bytes"
	"crypto/sha3"
	"encoding/hex"
	"strconv"
	"testing"
)

// The vectors are C2SP's (https://c2sp.org/XAES-256-GCM): one whose CMAC
// subkey takes the reduction and one whose does not, with and without
// associated data.
func TestXAESVectors(t *testing.T) {
	nonce := []byte("ABCDEFGHIJKLMNOPQRSTUVWX")
	plain := []byte("XAES-256-GCM")
	tests := []struct {
		name    string
		keyByte byte
		ad      string
		k1      string
		derived string
		sealed  string // what the spec calls the ciphertext: ciphertext | tag
	}{
		{
			"MSB(L)=0", 0x01, "",
			"e531954aca063d5b8d9c47a47d4cc6f0",
			"c8612c9ed53fe43e8e005b828a1631a0bbcb6ab2f46514ec4f439fcfd0fa969b",
			"ce546ef63c9cc60765923609b33a9a1974e96e52daf2fcf7075e2271",
		},
		{
			"MSB(L)=1", 0x03, "c2sp.org/XAES-256-GCM",
			"23810ec50edb99f374409466ed1f4b7b",
			"e9c621d4cdd9b11b00a6427ad7e559aeedd66b3857646677748f8ca796cb3fd8",
			"986ec1832593df5443a179437fd083bf3fdb41abd740a21f71eb769d",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := &Key{}
			for i := range k.Encrypt {
				k.Encrypt[i] = tt.keyByte
			}
			s, err := NewSealer(XAES256GCM, k)
			if err != nil {
				t.Fatal(err)
			}
			x := s.(nonceSealer).aead.(*xaesGCM)
			if got := hex.EncodeToString(x.k1[:]); got != tt.k1 {
				t.Errorf("K1 = %s, want %s", got, tt.k1)
			}
			if key := x.messageKey(nonce); hex.EncodeToString(key[:]) != tt.derived {
				t.Errorf("derived key = %x, want %s", key, tt.derived)
			}
			want, _ := hex.DecodeString(tt.sealed)
			if got := x.Seal(nil, nonce, plain, []byte(tt.ad)); !bytes.Equal(got, want) {
				t.Errorf("Seal = %x, want %x", got, want)
			}
			// The stored form is the nonce followed by the spec's ciphertext.
			got, err := s.Open(nil, append(bytes.Clone(nonce), want...), []byte(tt.ad))
			if err != nil || !bytes.Equal(got, plain) {
				t.Errorf("Open = %q, %v; want %q", got, err, plain)
			}
		})
	}
}

// TestXAESAccumulated runs C2SP's accumulated randomized test: keys,
// nonces, plaintexts and associated data of 0-255 bytes from one SHAKE-128
// stream, every sealed message hashed into another.
func TestXAESAccumulated(t *testing.T) {
	tests := []struct {
		iterations int
		sum        string
	}{
		{10_000, "e6b9edf2df6cec60c8cbd864e2211b597fb69a529160cd040d56c0c210081939"},
		{1_000_000, "2163ae1445985a30b60585ee67daa55674df06901b890593e824b8a7c885ab15"},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.iterations), func(t *testing.T) {
			if tt.iterations > 10_000 && testing.Short() {
				t.Skip("long; skipped with -short")
			}
			rng, hash := sha3.NewSHAKE128(), sha3.NewSHAKE128()
			var key [KeySize]byte
			var nonce [xaesNonceSize]byte
			var n [1]byte
			plain, ad := make([]byte, 256), make([]byte, 256)
			var sealed, opened []byte
			read := func(b []byte) []byte {
				_, _ = rng.Read(n[:])
				_, _ = rng.Read(b[:n[0]])
				return b[:n[0]]
			}
			for range tt.iterations {
				_, _ = rng.Read(key[:])
				_, _ = rng.Read(nonce[:])
				plain, ad := read(plain), read(ad)
				x := newXAES(key[:]).aead
				sealed = x.Seal(sealed[:0], nonce[:], plain, ad)
				_, _ = hash.Write(sealed)
				var err error
				if opened, err = x.Open(opened[:0], nonce[:], sealed, ad); err != nil || !bytes.Equal(opened, plain) {
					t.Fatalf("Open of a sealed message: %v", err)
				}
			}
			sum := make([]byte, 32)
			_, _ = hash.Read(sum)
			if got := hex.EncodeToString(sum); got != tt.sum {
				t.Fatalf("hash after %d iterations = %s, want %s", tt.iterations, got, tt.sum)
			}
		})
	}
}
