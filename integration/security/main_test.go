package security

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/hindsight-backup/hindsight/integration/hsrun"
	"github.com/hindsight-backup/hindsight/integration/testtree"
)

var bin string // built by TestMain

func TestMain(m *testing.M) { os.Exit(hsrun.Main(m, &bin)) }

// marker returns a string that occurs nowhere by chance, so that finding
// it in a file means the file holds what it was made from.
func marker(kind string) string {
	var b [8]byte
	rand.Read(b[:])
	return kind + "-" + hex.EncodeToString(b[:])
}

func requireRoot(t testing.TB) {
	t.Helper()
	testtree.Require(t, os.Geteuid() == 0, "needs root")
}

// leaks returns, for each secret found in data, a description naming
// where.
func leaks(where string, data []byte, secrets []string) []string {
	var out []string
	for _, s := range secrets {
		if i := bytes.Index(data, []byte(s)); i >= 0 {
			out = append(out, fmt.Sprintf("%s holds %q at byte %d", where, short(s), i))
		}
	}
	return out
}

// leaksInDir reads every regular file below dir, except those skip
// accepts, and reports each secret found.
func leaksInDir(t testing.TB, dir string, secrets []string, skip func(rel string) bool) (found []string, files int) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		found = append(found, leaks("the name "+rel, []byte(rel), secrets)...)
		if skip != nil && skip(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		found = append(found, leaks(rel, b, secrets)...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found, files
}

func short(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
