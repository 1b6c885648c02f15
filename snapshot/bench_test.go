package snapshot_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/snapshot"
)

// benchBackup backs up src into a fresh repository once per iteration and
// reports throughput over the bytes of src.
func benchBackup(b *testing.B, src string, size int64) {
	b.SetBytes(size)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		repo, _ := chunkstore.TestRepository(b, chunkstore.InitOptions{})
		b.StartTimer()
		if _, err := snapshot.Backup(context.Background(), repo, src, snapshot.BackupOptions{Host: "bench"}, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBackupIncompressible(b *testing.B) {
	src := b.TempDir()
	const size = 256 << 20
	if err := os.WriteFile(filepath.Join(src, "random"), random(7, size), 0o644); err != nil {
		b.Fatal(err)
	}
	benchBackup(b, src, size)
}

// BenchmarkBackupGoSource backs up Go's own source tree: ~15k small,
// compressible files.
func BenchmarkBackupGoSource(b *testing.B) {
	src := filepath.Join(runtime.GOROOT(), "src")
	var size int64
	filepath.WalkDir(src, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				size += fi.Size()
			}
		}
		return nil
	})
	benchBackup(b, src, size)
}

func BenchmarkRestore(b *testing.B) {
	src := b.TempDir()
	const size = 256 << 20
	if err := os.WriteFile(filepath.Join(src, "random"), random(7, size), 0o644); err != nil {
		b.Fatal(err)
	}
	repo, _ := chunkstore.TestRepository(b, chunkstore.InitOptions{})
	res, err := snapshot.Backup(context.Background(), repo, src, snapshot.BackupOptions{Host: "bench"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dst := filepath.Join(b.TempDir(), "dst")
		if _, err := snapshot.Restore(context.Background(), repo, res.Record, "", dst, snapshot.RestoreOptions{}, nil); err != nil {
			b.Fatal(err)
		}
	}
}
