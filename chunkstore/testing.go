package chunkstore

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/hindsight-backup/hindsight/chunkstore/crypto"
	"github.com/hindsight-backup/hindsight/remote/local"
)

// TestPassword opens repositories made by TestRepository.
const TestPassword = "test password"

// TestKDF is a cheap argon2id setting: tests open many repositories.
func TestKDF() *crypto.KDFParams {
	return &crypto.KDFParams{Time: 1, MemoryKiB: 64, Threads: 1, Salt: make([]byte, crypto.MinSaltSize)}
}

// LocalOptions are the Options a local repository at dir is opened with:
// index and scratch space inside the repository, on the same filesystem.
func LocalOptions(dir string, password []byte) Options {
	return Options{
		Password:   password,
		IndexDir:   filepath.Join(dir, "index"),
		ScratchDir: filepath.Join(dir, "tmp"),
	}
}

// TestRepository initialises and opens a local repository in a temporary
// directory, closed when the test ends. Returns the repository and its path.
func TestRepository(t testing.TB, init InitOptions) (*Repository, string) {
	t.Helper()
	dir := t.TempDir()
	if init.KDF == nil {
		init.KDF = TestKDF()
	}
	ctx := context.Background()
	be, err := local.Create(vfs.Default, dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Init(ctx, be, []byte(TestPassword), init); err != nil {
		t.Fatal(err)
	}
	r, err := Open(ctx, be, LocalOptions(dir, []byte(TestPassword)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, dir
}
