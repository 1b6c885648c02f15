package crypto

import (
	"bytes"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// updateGolden is the package's one -update flag; other golden tests in
// package crypto should reuse it rather than define their own.
var updateGolden = flag.Bool("update", false, "write the golden files missing from testdata")

// TestSealedGolden opens a message that each encrypting sealer sealed when
// it was added, under a fixed key: repositories hold such messages for
// good, so every later version must open them. -update seals the files of
// new sealers and never rewrites one: a fixture's bytes are what older
// versions wrote.
func TestSealedGolden(t *testing.T) {
	k := &Key{}
	for i := range k.Encrypt {
		k.Encrypt[i] = byte(i)
	}
	plain := []byte("a message sealed when its sealer was added: it must open for good\n")
	ad := []byte("golden associated data")
	for _, s := range testEncryptingSealers(t) {
		t.Run(s.Name(), func(t *testing.T) {
			s, err := NewSealer(s.Name(), k)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "sealed-"+s.Name()+".golden")
			if _, err := os.Stat(path); *updateGolden && errors.Is(err, fs.ErrNotExist) {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, s.Seal(nil, plain, ad), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			sealed, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestSealedGolden -update once to create it)", err)
			}
			got, err := s.Open(nil, sealed, ad)
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("golden message no longer opens: %q, %v", got, err)
			}
		})
	}
}
