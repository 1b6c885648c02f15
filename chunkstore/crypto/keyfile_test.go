package crypto

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// cheapParams keeps argon2 to a few milliseconds in tests.
func cheapParams() KDFParams {
	return KDFParams{Time: 1, MemoryKiB: 64, Threads: 1, Salt: bytes.Repeat([]byte{9}, MinSaltSize)}
}

var testCreated = time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)

func testKeyFile(t testing.TB, master *Key, password string) *KeyFile {
	t.Helper()
	kf, err := WrapKey(master, []byte(password), cheapParams(), "host", "user", testCreated)
	if err != nil {
		t.Fatal(err)
	}
	return kf
}

func TestDefaultKDFParams(t *testing.T) {
	a, err := DefaultKDFParams()
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Validate(); err != nil {
		t.Fatalf("default params invalid: %v", err)
	}
	// Every command derives a key when it opens a repository: more memory
	// than this would be prune's peak (see DefaultKDFParams).
	if a.MemoryKiB > 12<<10 {
		t.Fatalf("default memory %d KiB is over the 12 MiB budget", a.MemoryKiB)
	}
	// OWASP's weakest recommended argon2id setting is 19 MiB with 2 passes.
	if uint64(a.MemoryKiB)*uint64(a.Time) < 2*19<<10 {
		t.Fatalf("default %d KiB x %d passes is below OWASP's 19 MiB x 2", a.MemoryKiB, a.Time)
	}
	b, _ := DefaultKDFParams()
	if bytes.Equal(a.Salt, b.Salt) {
		t.Fatal("two default params share a salt")
	}
}

func TestWrapUnwrap(t *testing.T) {
	master := testKey(t)
	kf := testKeyFile(t, master, "secret")
	got, err := kf.Unwrap([]byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(master) {
		t.Fatal("unwrapped key differs from the master key")
	}
	// The same master key under a second password: another key file.
	kf2 := testKeyFile(t, master, "other")
	if bytes.Equal(kf.Data, kf2.Data) {
		t.Fatal("two key files have the same sealed data")
	}
	if got, err := kf2.Unwrap([]byte("other")); err != nil || !got.Equal(master) {
		t.Fatalf("second key file: %v", err)
	}
}

func TestUnwrapRejects(t *testing.T) {
	master := testKey(t)
	tests := []struct {
		name     string
		password string
		edit     func(*KeyFile)
		want     error
	}{
		{"wrong password", "Secret", func(*KeyFile) {}, ErrWrongPassword},
		{"empty password", "", func(*KeyFile) {}, ErrWrongPassword},
		{"data bit", "secret", func(kf *KeyFile) { kf.Data[40] ^= 0x80 }, ErrWrongPassword},
		{"salt changed", "secret", func(kf *KeyFile) { kf.Params.Salt[0]++ }, ErrWrongPassword},
		{"time changed", "secret", func(kf *KeyFile) { kf.Params.Time++ }, ErrWrongPassword},
		{"data truncated", "secret", func(kf *KeyFile) { kf.Data = kf.Data[:len(kf.Data)-1] }, nil},
		{"unknown kdf", "secret", func(kf *KeyFile) { kf.KDF = "scrypt" }, nil},
		{"bad params", "secret", func(kf *KeyFile) { kf.Params.Threads = 0 }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kf := testKeyFile(t, master, "secret")
			tt.edit(kf)
			k, err := kf.Unwrap([]byte(tt.password))
			if err == nil || k != nil {
				t.Fatalf("Unwrap = %v, %v; want an error", k, err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Unwrap error = %v, want %v", err, tt.want)
			}
			if tt.want == nil && errors.Is(err, ErrWrongPassword) {
				t.Fatalf("structural damage reported as a wrong password: %v", err)
			}
		})
	}
}

func TestKDFParamsValidate(t *testing.T) {
	ok := cheapParams()
	tests := []struct {
		name  string
		edit  func(*KDFParams)
		valid bool
	}{
		{"cheap test params", func(*KDFParams) {}, true},
		{"max memory", func(p *KDFParams) { p.MemoryKiB = MaxKDFMemoryKiB }, true},
		{"max salt", func(p *KDFParams) { p.Salt = make([]byte, MaxSaltSize) }, true},
		{"time 0", func(p *KDFParams) { p.Time = 0 }, false},
		{"time absurd", func(p *KDFParams) { p.Time = MaxKDFTime + 1 }, false},
		{"threads 0", func(p *KDFParams) { p.Threads = 0 }, false},
		{"memory over 4 GiB", func(p *KDFParams) { p.MemoryKiB = MaxKDFMemoryKiB + 1 }, false},
		{"memory under 8 KiB per thread", func(p *KDFParams) { p.Threads = 9 }, false},
		{"memory 0", func(p *KDFParams) { p.MemoryKiB = 0 }, false},
		{"salt 15 bytes", func(p *KDFParams) { p.Salt = p.Salt[:15] }, false},
		{"no salt", func(p *KDFParams) { p.Salt = nil }, false},
		{"salt too long", func(p *KDFParams) { p.Salt = make([]byte, MaxSaltSize+1) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := ok
			p.Salt = bytes.Clone(ok.Salt)
			tt.edit(&p)
			if err := p.Validate(); (err == nil) != tt.valid {
				t.Fatalf("Validate() = %v, want valid=%v", err, tt.valid)
			}
		})
	}
}

func TestKeyFileEncodeDecode(t *testing.T) {
	master := testKey(t)
	kf := testKeyFile(t, master, "secret")
	b, err := EncodeKeyFile(kf)
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]any
	if err := json.Unmarshal(b, &fields); err != nil {
		t.Fatal(err)
	}
	if fields["version"] != float64(1) || fields["kdf"] != "argon2id" {
		t.Fatalf("encoded key file lacks version 1 or kdf: %s", b)
	}
	got, err := DecodeKeyFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Created.Equal(kf.Created) || got.Host != "host" || got.User != "user" ||
		!bytes.Equal(got.Data, kf.Data) || !bytes.Equal(got.Params.Salt, kf.Params.Salt) {
		t.Fatalf("decoded key file differs:\n got %+v\nwant %+v", got, kf)
	}
	k, err := got.Unwrap([]byte("secret"))
	if err != nil || !k.Equal(master) {
		t.Fatalf("decoded key file does not unwrap: %v", err)
	}
}

func TestDecodeKeyFileRejects(t *testing.T) {
	good, err := EncodeKeyFile(testKeyFile(t, testKey(t), "pw"))
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(m map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(good, &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		b, _ := json.Marshal(m)
		return b
	}
	params := func(m map[string]any) map[string]any { return m["params"].(map[string]any) }
	tests := []struct {
		name string
		in   []byte
		want string // in the error message
	}{
		{"not json", []byte("key"), "JSON"},
		{"empty", nil, "JSON"},
		{"no version", edit(func(m map[string]any) { delete(m, "version") }), "no version"},
		{"version 2", edit(func(m map[string]any) { m["version"] = 2 }), "version 2"},
		{"version string", edit(func(m map[string]any) { m["version"] = "1" }), "JSON"},
		{"unknown kdf", edit(func(m map[string]any) { m["kdf"] = "pbkdf2" }), `"pbkdf2"`},
		{"huge memory", edit(func(m map[string]any) { params(m)["memory_kib"] = 1 << 30 }), "memory"},
		{"time 0", edit(func(m map[string]any) { params(m)["time"] = 0 }), "time"},
		{"threads 0", edit(func(m map[string]any) { params(m)["threads"] = 0 }), "threads"},
		{"threads overflow", edit(func(m map[string]any) { params(m)["threads"] = 256 }), "key file"},
		{"short salt", edit(func(m map[string]any) { params(m)["salt"] = "AAAA" }), "salt"},
		{"short data", edit(func(m map[string]any) { m["data"] = "AAAA" }), "data"},
		{"data not base64", edit(func(m map[string]any) { m["data"] = "!!" }), "key file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kf, err := DecodeKeyFile(tt.in)
			if err == nil || kf != nil {
				t.Fatalf("DecodeKeyFile = %+v, nil; want an error", kf)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func FuzzDecodeKeyFile(f *testing.F) {
	good, err := EncodeKeyFile(testKeyFile(f, &Key{}, "pw"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{"version":1,"kdf":"argon2id","params":{"time":1,"memory_kib":8,"threads":1,"salt":"AAAAAAAAAAAAAAAAAAAAAA=="},"data":""}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		kf, err := DecodeKeyFile(b)
		if err != nil {
			return
		}
		if err := kf.Params.Validate(); err != nil {
			t.Fatalf("decoded params are invalid: %v", err)
		}
		again, err := EncodeKeyFile(kf)
		if err != nil {
			t.Fatalf("re-encode a decoded key file: %v", err)
		}
		kf2, err := DecodeKeyFile(again)
		if err != nil {
			t.Fatalf("decode a re-encoded key file: %v", err)
		}
		if !kf2.Created.Equal(kf.Created) || kf2.Host != kf.Host || kf2.User != kf.User ||
			kf2.KDF != kf.KDF || kf2.Params.Time != kf.Params.Time ||
			kf2.Params.MemoryKiB != kf.Params.MemoryKiB || kf2.Params.Threads != kf.Params.Threads ||
			!bytes.Equal(kf2.Params.Salt, kf.Params.Salt) || !bytes.Equal(kf2.Data, kf.Data) {
			t.Fatalf("round trip changed the key file:\n%+v\n%+v", kf, kf2)
		}
	})
}
