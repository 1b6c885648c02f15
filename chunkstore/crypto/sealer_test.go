package crypto

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func testSealers(t testing.TB) []Sealer {
	t.Helper()
	k := testKey(t)
	var out []Sealer
	for _, name := range SealerNames() {
		s, err := NewSealer(name, k)
		if err != nil {
			t.Fatal(err)
		}
		if s.Name() != name {
			t.Fatalf("NewSealer(%q).Name() = %q", name, s.Name())
		}
		out = append(out, s)
	}
	return out
}

func TestNewSealerUnknown(t *testing.T) {
	_, err := NewSealer("rot13", testKey(t))
	if err == nil || !strings.Contains(err.Error(), `"rot13"`) {
		t.Fatalf("NewSealer(rot13) error = %v, want one naming it", err)
	}
}

func TestDefaultSealerIsRegistered(t *testing.T) {
	if SealerNames()[0] != DefaultSealer {
		t.Fatalf("first registered sealer %q is not the default %q", SealerNames()[0], DefaultSealer)
	}
}

func TestSealOpenRoundTrip(t *testing.T) {
	plains := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"one byte", []byte{42}},
		{"text", []byte("the quick brown fox")},
		{"1 MiB", bytes.Repeat([]byte{1, 2, 3}, 1<<20/3)},
	}
	for _, s := range testSealers(t) {
		for _, p := range plains {
			t.Run(s.Name()+"/"+p.name, func(t *testing.T) {
				prefix := []byte("prefix")
				sealed := s.Seal(bytes.Clone(prefix), p.data, []byte("ad"))
				if !bytes.HasPrefix(sealed, prefix) {
					t.Fatal("Seal did not append to dst")
				}
				sealed = sealed[len(prefix):]
				if len(sealed) != len(p.data)+s.Overhead() {
					t.Fatalf("sealed %d bytes, want %d+%d", len(sealed), len(p.data), s.Overhead())
				}
				got, err := s.Open([]byte("x"), sealed, []byte("ad"))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, append([]byte("x"), p.data...)) {
					t.Fatal("Open did not append the plaintext to dst")
				}
			})
		}
	}
}

func TestSealNonceIsFresh(t *testing.T) {
	s, _ := NewSealer(XChaCha20Poly1305, testKey(t))
	a := s.Seal(nil, []byte("same"), nil)
	b := s.Seal(nil, []byte("same"), nil)
	if bytes.Equal(a, b) {
		t.Fatal("sealing the same message twice gave the same bytes")
	}
}

func TestOpenRejects(t *testing.T) {
	k := testKey(t)
	s, _ := NewSealer(XChaCha20Poly1305, k)
	other, _ := NewSealer(XChaCha20Poly1305, testKey(t))
	plain := []byte("attack at dawn")
	sealed := s.Seal(nil, plain, []byte("ad"))
	flip := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 1
		return b
	}
	tests := []struct {
		name   string
		s      Sealer
		sealed []byte
		ad     string
	}{
		{"nonce bit", s, flip(0), "ad"},
		{"ciphertext bit", s, flip(30), "ad"},
		{"tag bit", s, flip(len(sealed) - 1), "ad"},
		{"truncated by one", s, sealed[:len(sealed)-1], "ad"},
		{"shorter than overhead", s, sealed[:10], "ad"},
		{"empty", s, nil, "ad"},
		{"extended", s, append(bytes.Clone(sealed), 0), "ad"},
		{"other ad", s, sealed, "ae"},
		{"no ad", s, sealed, ""},
		{"other key", other, sealed, "ad"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("keep")
			got, err := tt.s.Open(dst, tt.sealed, []byte(tt.ad))
			if !errors.Is(err, ErrAuth) {
				t.Fatalf("Open error = %v, want ErrAuth", err)
			}
			if string(got) != "keep" {
				t.Fatalf("Open returned %q on error, want dst unchanged", got)
			}
		})
	}
}

// TestSealInPlace covers the plaintext sitting in dst's spare capacity, as
// the codec arranges it, at the ciphertext position and elsewhere.
func TestSealInPlace(t *testing.T) {
	for _, s := range testSealers(t) {
		for _, off := range []int{0, 3, s.Overhead() - 16, s.Overhead(), s.Overhead() + 5} {
			if off < 0 {
				continue
			}
			plain := bytes.Repeat([]byte("in place "), 100)
			buf := make([]byte, 2, 2+off+len(plain)+s.Overhead()+16)
			inPlace := buf[2+off : 2+off+len(plain)]
			copy(inPlace, plain)
			sealed := s.Seal(buf, inPlace, []byte("ad"))
			if &sealed[0] != &buf[0] {
				t.Fatalf("%s offset %d: Seal reallocated despite capacity", s.Name(), off)
			}
			got, err := s.Open(nil, sealed[2:], []byte("ad"))
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("%s offset %d: round trip failed: %v", s.Name(), off, err)
			}
		}
	}
}

// TestOpenOverlappingDst makes sure Open never trips the AEAD's overlap
// panic when a caller opens a message that sits in dst's spare capacity.
func TestOpenOverlappingDst(t *testing.T) {
	for _, s := range testSealers(t) {
		plain := []byte("overlapping open")
		buf := make([]byte, 0, 200)
		sealed := s.Seal(buf[5:5], plain, nil)
		got, err := s.Open(buf[:0], sealed, nil)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("%s: Open = %q, %v", s.Name(), got, err)
		}
	}
}

func FuzzOpen(f *testing.F) {
	k := &Key{}
	s, _ := NewSealer(XChaCha20Poly1305, k)
	f.Add(s.Seal(nil, []byte("seed"), []byte("ad")), []byte("ad"))
	f.Add([]byte{}, []byte{})
	f.Add(make([]byte, 40), []byte("ad"))
	f.Fuzz(func(t *testing.T, sealed, ad []byte) {
		plain, err := s.Open(nil, sealed, ad)
		if err != nil {
			if !errors.Is(err, ErrAuth) {
				t.Fatalf("Open error %v does not wrap ErrAuth", err)
			}
			return
		}
		// Only a genuine message opens; re-sealing it must round-trip.
		again, err := s.Open(nil, s.Seal(nil, plain, ad), ad)
		if err != nil || !bytes.Equal(again, plain) {
			t.Fatalf("re-seal round trip failed: %v", err)
		}
	})
}
