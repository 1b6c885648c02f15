package crypto

import (
	"bytes"
	"errors"
	"slices"
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

// testEncryptingSealers is testSealers without "none", which neither
// randomizes nor authenticates.
func testEncryptingSealers(t testing.TB) []Sealer {
	t.Helper()
	return slices.DeleteFunc(testSealers(t), func(s Sealer) bool { return s.Name() == NoEncryption })
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
	for _, s := range testEncryptingSealers(t) {
		a := s.Seal(nil, []byte("same"), nil)
		b := s.Seal(nil, []byte("same"), nil)
		if bytes.Equal(a, b) {
			t.Fatalf("%s: sealing the same message twice gave the same bytes", s.Name())
		}
	}
}

func TestOpenRejects(t *testing.T) {
	other := testKey(t)
	for _, s := range testEncryptingSealers(t) {
		otherKey, _ := NewSealer(s.Name(), other)
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
			// The first half of an XAES nonce picks the message key, the
			// second is its GCM nonce.
			{"nonce bit 2nd half", s, flip(s.PayloadOffset() - 1), "ad"},
			{"ciphertext bit", s, flip(30), "ad"},
			{"tag bit", s, flip(len(sealed) - 1), "ad"},
			{"truncated by one", s, sealed[:len(sealed)-1], "ad"},
			{"shorter than overhead", s, sealed[:10], "ad"},
			{"empty", s, nil, "ad"},
			{"extended", s, append(bytes.Clone(sealed), 0), "ad"},
			{"other ad", s, sealed, "ae"},
			{"no ad", s, sealed, ""},
			{"other key", otherKey, sealed, "ad"},
		}
		for _, tt := range tests {
			t.Run(s.Name()+"/"+tt.name, func(t *testing.T) {
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
	sealers := testEncryptingSealers(f)
	for i := range sealers {
		// The key is fixed, so that the seeds stay genuine messages.
		sealers[i], _ = NewSealer(sealers[i].Name(), k)
		f.Add(sealers[i].Seal(nil, []byte("seed"), []byte("ad")), []byte("ad"))
	}
	f.Add([]byte{}, []byte{})
	f.Add(make([]byte, 40), []byte("ad"))
	f.Fuzz(func(t *testing.T, sealed, ad []byte) {
		for _, s := range sealers {
			plain, err := s.Open(nil, sealed, ad)
			if err != nil {
				if !errors.Is(err, ErrAuth) {
					t.Fatalf("%s: Open error %v does not wrap ErrAuth", s.Name(), err)
				}
				continue
			}
			// Only a genuine message opens; re-sealing it must round-trip.
			again, err := s.Open(nil, s.Seal(nil, plain, ad), ad)
			if err != nil || !bytes.Equal(again, plain) {
				t.Fatalf("%s: re-seal round trip failed: %v", s.Name(), err)
			}
		}
	})
}

// FuzzSealOpen round-trips arbitrary plaintexts and associated data
// through every sealer in one buffer, as the codec uses them: the plaintext
// is sealed from shift bytes into dst's spare capacity (the payload offset
// is in place) and opened in place.
func FuzzSealOpen(f *testing.F) {
	f.Add([]byte{}, []byte{}, uint8(0))
	f.Add([]byte("plain"), []byte("ad"), uint8(3))
	f.Add(bytes.Repeat([]byte{0xa5}, 5000), []byte{}, uint8(24))
	sealers := testSealers(f)
	f.Fuzz(func(t *testing.T, plain, ad []byte, shift uint8) {
		for _, s := range sealers {
			buf := make([]byte, 0, int(shift)+len(plain)+s.Overhead())
			at := buf[shift : int(shift)+len(plain)]
			copy(at, plain)
			sealed := s.Seal(buf, at, ad)
			if len(sealed) != len(plain)+s.Overhead() {
				t.Fatalf("%s: sealed %d bytes, want %d+%d", s.Name(), len(sealed), len(plain), s.Overhead())
			}
			off := s.PayloadOffset()
			got, err := s.Open(sealed[off:off], sealed, ad)
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("%s: in-place round trip failed: %v", s.Name(), err)
			}
		}
	})
}

// BenchmarkSealers reports each encrypting sealer's cost per message:
// small messages show the per-message setup (XAES derives a key and
// expands it), large ones the cipher's throughput.
func BenchmarkSealers(b *testing.B) {
	for _, s := range testEncryptingSealers(b) {
		for _, size := range []struct {
			name string
			n    int
		}{{"256B", 256}, {"4KiB", 4 << 10}, {"1MiB", 1 << 20}} {
			plain := bytes.Repeat([]byte{7}, size.n)
			sealed := s.Seal(nil, plain, []byte("ad"))
			name := s.Name() + "/" + size.name
			b.Run(name+"/seal", func(b *testing.B) {
				b.SetBytes(int64(size.n))
				b.ReportAllocs()
				dst := make([]byte, 0, len(sealed))
				for b.Loop() {
					s.Seal(dst, plain, []byte("ad"))
				}
			})
			b.Run(name+"/open", func(b *testing.B) {
				b.SetBytes(int64(size.n))
				b.ReportAllocs()
				dst := make([]byte, 0, size.n)
				for b.Loop() {
					if _, err := s.Open(dst, sealed, []byte("ad")); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
