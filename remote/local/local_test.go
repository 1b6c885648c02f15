package local

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/hindsight-backup/hindsight/remote"
	"github.com/hindsight-backup/hindsight/remote/remotetest"
)

func TestConformance(t *testing.T) {
	tests := []struct {
		name string
		new  func(t *testing.T) remote.Backend
	}{
		{"disk", func(t *testing.T) remote.Backend {
			b, err := OpenDir(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return b
		}},
		{"mem", func(t *testing.T) remote.Backend { return create(t, vfs.NewMem(), "/repo") }},
		// The crashable MemFS tracks synced state, a different code path
		// from NewMem's.
		{"crashable mem", func(t *testing.T) remote.Backend { return create(t, vfs.NewCrashableMem(), "/repo") }},
		// The retry wrapper must keep the contract it wraps.
		{"retry over mem", func(t *testing.T) remote.Backend {
			return remote.WithRetry(create(t, vfs.NewMem(), "/repo"), remote.RetryOptions{MaxAttempts: 2})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { remotetest.Run(t, tt.new) })
	}
}

func create(t *testing.T, fsys vfs.FS, root string) *Backend {
	t.Helper()
	b, err := Create(fsys, root)
	if err != nil {
		t.Fatalf("Create(%s): %v", root, err)
	}
	return b
}

func data(seed uint64, n int) []byte {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	p := make([]byte, n)
	rand.NewChaCha8(key).Read(p)
	return p
}

func save(t *testing.T, b *Backend, name string, p []byte) {
	t.Helper()
	if err := b.Save(t.Context(), name, bytes.NewReader(p), int64(len(p))); err != nil {
		t.Fatalf("Save(%s): %v", name, err)
	}
}

// content returns the object's bytes, or nil with ok false when it is
// absent.
func content(t *testing.T, b *Backend, name string) (p []byte, ok bool) {
	t.Helper()
	rc, err := b.Load(t.Context(), name, 0, 0)
	if errors.Is(err, remote.ErrNotExist) {
		return nil, false
	}
	if err != nil {
		t.Fatalf("Load(%s): %v", name, err)
	}
	defer rc.Close()
	p, err = io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Load(%s): %v", name, err)
	}
	return p, true
}

// writeUnsynced creates a file the way a careless writer would: no fsync of
// the file or its directory.
func writeUnsynced(t *testing.T, fsys vfs.FS, path string, p []byte) {
	t.Helper()
	f, err := fsys.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(slices.Clone(p)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// writeSynced creates a finished temp file as a pack writer would before
// handing it to SaveFile.
func writeSynced(t *testing.T, fsys vfs.FS, path string, p []byte) {
	t.Helper()
	f, err := fsys.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	// MemFS under -race scribbles over written buffers to catch reuse.
	if _, err := f.Write(slices.Clone(p)); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := syncDir(fsys, fsys.PathDir(path)); err != nil {
		t.Fatal(err)
	}
}

// TestCrashKeepsWhatReturned checks that whatever Save, SaveFile and Remove
// reported as done survives a simulated power loss that keeps only fsynced
// data and directory entries.
func TestCrashKeepsWhatReturned(t *testing.T) {
	fsys := vfs.NewCrashableMem()
	b := create(t, fsys, "/srv/repo")
	ctx := t.Context()

	save(t, b, "config", data(1, 100))
	save(t, b, "packs/ab/ab01", data(2, 1<<20+3))
	save(t, b, "snapshots/s1", data(3, 10))
	save(t, b, "snapshots/gone", data(4, 10))
	if err := b.Remove(ctx, "snapshots/gone"); err != nil {
		t.Fatal(err)
	}
	if err := fsys.MkdirAll("/tmp", 0o700); err != nil {
		t.Fatal(err)
	}
	writeSynced(t, fsys, "/tmp/pack", data(5, 5000))
	if err := b.SaveFile(ctx, "packs/cd/cd01", "/tmp/pack"); err != nil {
		t.Fatal(err)
	}
	// The control: the same crash must lose a write that was never synced,
	// or this test could not tell a durable Save from a lucky one.
	writeUnsynced(t, fsys, "/srv/repo/unsynced", data(6, 10))

	crashed := fsys.CrashClone(vfs.CrashCloneCfg{})
	after, err := Open(crashed, "/srv/repo")
	if err != nil {
		t.Fatalf("Open after crash: %v", err)
	}
	tests := []struct {
		name string
		want []byte // nil: must be absent
	}{
		{"config", data(1, 100)},
		{"packs/ab/ab01", data(2, 1<<20+3)},
		{"snapshots/s1", data(3, 10)},
		{"snapshots/gone", nil},
		{"packs/cd/cd01", data(5, 5000)},
		{"unsynced", nil},
	}
	for _, tt := range tests {
		got, ok := content(t, after, tt.name)
		switch {
		case tt.want == nil && ok:
			t.Errorf("%s: present after crash; want absent", tt.name)
		case tt.want != nil && !bytes.Equal(got, tt.want):
			t.Errorf("%s: after crash present=%v with %d bytes; want %d bytes", tt.name, ok, len(got), len(tt.want))
		}
	}
}

// TestCrashDuringSave stops the disk at every operation of a Save in turn,
// as a power cut would, and checks that the object is afterwards either
// absent or complete, never partial, whatever unsynced data the crash kept.
func TestCrashDuringSave(t *testing.T) {
	const name = "packs/ab/ab01"
	want := data(7, 2<<20+5)
	for stopAt := int64(0); ; stopAt++ {
		mem := vfs.NewCrashableMem()
		create(t, mem, "/repo")
		var ops atomic.Int64
		var armed atomic.Bool
		dead := errorfs.InjectorFunc(func(op errorfs.Op) error {
			if armed.Load() && ops.Add(1) > stopAt {
				return syscall.EIO
			}
			return nil
		})
		b, err := Open(errorfs.Wrap(mem, dead), "/repo")
		if err != nil {
			t.Fatal(err)
		}
		armed.Store(true)
		saveErr := b.Save(t.Context(), name, bytes.NewReader(want), int64(len(want)))
		for seed := range uint64(4) {
			cfg := vfs.CrashCloneCfg{UnsyncedDataPercent: int(seed * 33), RNG: rand.New(rand.NewPCG(seed, uint64(stopAt)))}
			after, err := Open(mem.CrashClone(cfg), "/repo")
			if err != nil {
				t.Fatalf("stop at op %d: Open after crash: %v", stopAt, err)
			}
			got, ok := content(t, after, name)
			if ok && !bytes.Equal(got, want) {
				t.Fatalf("stop at op %d, %d%% unsynced kept: object present with %d bytes, not the %d saved", stopAt, cfg.UnsyncedDataPercent, len(got), len(want))
			}
			if saveErr == nil && !ok {
				t.Fatalf("stop at op %d: Save returned nil but the object is lost", stopAt)
			}
			var listed []string
			if err := after.List(t.Context(), "", func(fi remote.FileInfo) error {
				listed = append(listed, fi.Name)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if len(listed) > 1 || len(listed) == 1 && listed[0] != name {
				t.Fatalf("stop at op %d: List after crash = %q", stopAt, listed)
			}
		}
		if saveErr == nil {
			if stopAt < 5 {
				t.Fatalf("Save finished within %d operations; the fault injection is not reaching it", stopAt)
			}
			return
		}
	}
}

func TestSaveErrors(t *testing.T) {
	tests := []struct {
		name      string
		kind      errorfs.OpKind
		errno     syscall.Errno
		permanent bool
	}{
		{"disk full on write", errorfs.OpFileWrite, syscall.ENOSPC, true},
		{"quota on create", errorfs.OpCreate, syscall.EDQUOT, true},
		{"read-only on mkdir", errorfs.OpMkdirAll, syscall.EROFS, true},
		{"permission on create", errorfs.OpCreate, syscall.EACCES, true},
		{"I/O error on sync", errorfs.OpFileSync, syscall.EIO, false},
		{"I/O error on rename", errorfs.OpRename, syscall.EIO, false},
		{"I/O error on write", errorfs.OpFileWrite, syscall.EIO, false},
		{"I/O error syncing a new directory's parent", errorfs.OpOpenDir, syscall.EIO, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := vfs.NewMem()
			create(t, mem, "/repo")
			inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
				if op.Kind == tt.kind {
					return &os.PathError{Op: "injected", Path: op.Path, Err: tt.errno}
				}
				return nil
			})
			b, err := Open(errorfs.Wrap(mem, inj), "/repo")
			if err != nil {
				t.Fatal(err)
			}
			p := data(8, 3<<20)
			err = b.Save(t.Context(), "packs/ab/x", bytes.NewReader(p), int64(len(p)))
			if !errors.Is(err, tt.errno) {
				t.Fatalf("Save = %v; want %v", err, tt.errno)
			}
			if got := remote.IsPermanent(err); got != tt.permanent {
				t.Errorf("IsPermanent(%v) = %v; want %v", err, got, tt.permanent)
			}
			if !strings.Contains(err.Error(), "packs/ab/x") {
				t.Errorf("error %q does not name the object", err)
			}
			if left := filesUnder(t, mem, "/repo"); len(left) != 0 {
				t.Errorf("files left after failed Save: %q", left)
			}
		})
	}
}

// filesUnder returns every non-directory below dir, temp files included.
func filesUnder(t *testing.T, fsys vfs.FS, dir string) []string {
	t.Helper()
	names, err := fsys.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, n := range names {
		p := fsys.PathJoin(dir, n)
		fi, err := fsys.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.IsDir() {
			files = append(files, filesUnder(t, fsys, p)...)
		} else {
			files = append(files, p)
		}
	}
	return files
}

func TestSaveFile(t *testing.T) {
	tests := []struct {
		name     string
		crossDev bool
	}{
		{"same filesystem renames", false},
		{"cross-device copies", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := vfs.NewCrashableMem()
			create(t, mem, "/repo")
			if err := mem.MkdirAll("/scratch", 0o700); err != nil {
				t.Fatal(err)
			}
			p := data(9, 100_000)
			writeSynced(t, mem, "/scratch/pack", p)
			var renamesOfSource atomic.Int32
			inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
				if op.Kind == errorfs.OpRename && op.Path == "/scratch/pack" {
					renamesOfSource.Add(1)
					if tt.crossDev {
						return &os.LinkError{Op: "rename", Old: op.Path, Err: syscall.EXDEV}
					}
				}
				return nil
			})
			b, err := Open(errorfs.Wrap(mem, inj), "/repo")
			if err != nil {
				t.Fatal(err)
			}
			if err := b.SaveFile(t.Context(), "packs/ef/ef01", "/scratch/pack"); err != nil {
				t.Fatalf("SaveFile: %v", err)
			}
			if renamesOfSource.Load() != 1 {
				t.Errorf("source renamed %d times; want one attempt", renamesOfSource.Load())
			}
			if _, err := mem.Stat("/scratch/pack"); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("source still present after SaveFile (stat: %v)", err)
			}
			after, err := Open(mem.CrashClone(vfs.CrashCloneCfg{}), "/repo")
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := content(t, after, "packs/ef/ef01"); !bytes.Equal(got, p) {
				t.Errorf("after crash got %d bytes; want the %d adopted", len(got), len(p))
			}
		})
	}
}

func TestSaveFileMissingSource(t *testing.T) {
	b := create(t, vfs.NewMem(), "/repo")
	err := b.SaveFile(t.Context(), "packs/x", "/nowhere")
	if err == nil {
		t.Fatal("SaveFile of a missing file succeeded")
	}
	if errors.Is(err, remote.ErrNotExist) {
		t.Errorf("SaveFile = %v; a missing source is the caller's fault, not a missing object", err)
	}
}

func TestListHidesTempFiles(t *testing.T) {
	mem := vfs.NewMem()
	b := create(t, mem, "/repo")
	save(t, b, "packs/ab/ab01", data(10, 10))
	// What a crash mid-Save leaves behind.
	writeUnsynced(t, mem, "/repo/packs/ab/.tmp-LEFTOVER", data(11, 10))
	var names []string
	if err := b.List(t.Context(), "", func(fi remote.FileInfo) error {
		names = append(names, fi.Name)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names, []string{"packs/ab/ab01"}) {
		t.Errorf("List = %q; want only the real object", names)
	}
}

// TestListReadsOnlyMatchingDirs makes every listing of packs/ fail, so a
// listing of snapshots/ that wandered into it would fail too.
func TestListReadsOnlyMatchingDirs(t *testing.T) {
	mem := vfs.NewMem()
	create(t, mem, "/repo")
	seed, err := Open(mem, "/repo")
	if err != nil {
		t.Fatal(err)
	}
	save(t, seed, "packs/ab/ab01", data(12, 10))
	save(t, seed, "snapshots/s1", data(13, 10))
	inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind == errorfs.OpList && strings.HasPrefix(op.Path, "/repo/packs") {
			return errors.New("listed packs")
		}
		return nil
	})
	b, err := Open(errorfs.Wrap(mem, inj), "/repo")
	if err != nil {
		t.Fatal(err)
	}
	for _, prefix := range []string{"snapshots/", "snap", "snapshots/s1"} {
		n := 0
		if err := b.List(t.Context(), prefix, func(remote.FileInfo) error { n++; return nil }); err != nil {
			t.Errorf("List(%q) = %v", prefix, err)
		}
		if n != 1 {
			t.Errorf("List(%q) found %d objects; want 1", prefix, n)
		}
	}
	if err := b.List(t.Context(), "", func(remote.FileInfo) error { return nil }); err == nil {
		t.Error("List(\"\") did not reach packs/; the injection is not working")
	}
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		root     string
		notExist bool
	}{
		{"missing", filepath.Join(dir, "missing"), true},
		{"file", file, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := OpenDir(tt.root)
			if err == nil {
				t.Fatalf("OpenDir(%s) succeeded", tt.root)
			}
			if got := errors.Is(err, remote.ErrNotExist); got != tt.notExist {
				t.Errorf("OpenDir = %v; ErrNotExist %v, want %v", err, got, tt.notExist)
			}
		})
	}
	b, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if b.Location() != dir {
		t.Errorf("Location = %q; want %q", b.Location(), dir)
	}
}

func TestCreateIsDurable(t *testing.T) {
	mem := vfs.NewCrashableMem()
	b := create(t, mem, "/a/b/repo")
	save(t, b, "config", data(14, 10))
	if _, err := Create(mem, "/a/b/repo"); err != nil {
		t.Errorf("Create of an existing root = %v; want nil", err)
	}
	after, err := Open(mem.CrashClone(vfs.CrashCloneCfg{}), "/a/b/repo")
	if err != nil {
		t.Fatalf("Open after crash: %v", err)
	}
	if _, ok := content(t, after, "config"); !ok {
		t.Error("config lost in crash")
	}
}

func TestLoadReaderCloseTwice(t *testing.T) {
	b := create(t, vfs.NewMem(), "/repo")
	save(t, b, "x", data(15, 10))
	rc, err := b.Load(t.Context(), "x", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := rc.Close(); err != nil {
			t.Errorf("Close #%d = %v", i+1, err)
		}
	}
}

func TestErrorNamesObject(t *testing.T) {
	b := create(t, vfs.NewMem(), "/repo")
	_, err := b.Stat(t.Context(), "snapshots/abc")
	if err == nil || !strings.Contains(err.Error(), "snapshots/abc") {
		t.Errorf("Stat error %v does not name the object", err)
	}
}

// TestSparseReads: a load marked sparse (readahead off on a real disk,
// no-op on MemFS) returns the same bytes as any other.
func TestSparseReads(t *testing.T) {
	dir, err := OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []remote.Backend{dir, create(t, vfs.NewMem(), "/repo")} {
		ctx := context.Background()
		p := data(3, 1<<20)
		if err := b.Save(ctx, "packs/ab/abcd", bytes.NewReader(p), int64(len(p))); err != nil {
			t.Fatal(err)
		}
		rd, err := b.Load(remote.WithSparseReads(ctx), "packs/ab/abcd", 4096, 300_000)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rd)
		rd.Close()
		if err != nil || !bytes.Equal(got, p[4096:304096]) {
			t.Fatalf("sparse load: %d bytes, %v", len(got), err)
		}
	}
}
