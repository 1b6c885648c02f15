package crashfs

import (
	"io"
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func syncDir(t *testing.T, fs vfs.FS, dir string) {
	t.Helper()
	d, err := fs.OpenDir(dir)
	must(t, err)
	must(t, d.Sync())
	must(t, d.Close())
}

func write(t *testing.T, f vfs.File, s string) {
	t.Helper()
	_, err := f.Write([]byte(s))
	must(t, err)
}

// read returns name's content in fs, or "<absent>".
func read(t *testing.T, fs vfs.FS, name string) string {
	t.Helper()
	f, err := fs.Open(name)
	if err != nil {
		return "<absent>"
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	must(t, err)
	return string(b)
}

// TestCrashKeepsWhatWasSynced cuts one recorded run at each of its
// interesting points and checks what a crash there keeps of a file that is
// written, synced, renamed through an open handle, and written again.
func TestCrashKeepsWhatWasSynced(t *testing.T) {
	fs := New()
	must(t, fs.MkdirAll("/d", 0o755))
	syncDir(t, fs, "/")
	f, err := fs.Create("/d/a", vfs.WriteCategoryUnspecified)
	must(t, err)
	write(t, f, "hello")
	must(t, f.Sync())
	beforeDirSync := fs.Changes()
	syncDir(t, fs, "/d")
	synced := fs.Changes()
	must(t, fs.Rename("/d/a", "/d/b"))
	write(t, f, " world") // through the handle opened as /d/a
	renamed := fs.Changes()
	must(t, f.Sync())
	syncDir(t, fs, "/d")
	must(t, f.Close())
	end := fs.Changes()

	tests := []struct {
		name string
		cut  int
		keep int // UnsyncedDataPercent
		a, b string
	}{
		{"nothing", 0, 0, "<absent>", "<absent>"},
		{"file synced, directory not", beforeDirSync, 0, "<absent>", "<absent>"},
		{"file and directory synced", synced, 0, "hello", "<absent>"},
		{"rename and append not synced", renamed, 0, "hello", "<absent>"},
		// MemFS keeps a synced entry until its directory is synced again,
		// so the old name survives beside the new one, as a hard link.
		{"rename and append kept anyway", renamed, 100, "hello world", "hello world"},
		{"all synced", end, 0, "<absent>", "hello world"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := vfs.CrashCloneCfg{UnsyncedDataPercent: tt.keep, RNG: rand.New(rand.NewPCG(1, 2))}
			mem, err := fs.Crash(tt.cut, cfg)
			must(t, err)
			if got := read(t, mem, "/d/a"); got != tt.a {
				t.Errorf("/d/a = %q, want %q", got, tt.a)
			}
			if got := read(t, mem, "/d/b"); got != tt.b {
				t.Errorf("/d/b = %q, want %q", got, tt.b)
			}
		})
	}
}

// TestWriteAfterRead checks that a Write lands where the file's offset is
// after reads, which the record does not replay.
func TestWriteAfterRead(t *testing.T) {
	fs := New()
	f, err := fs.Create("/f", vfs.WriteCategoryUnspecified)
	must(t, err)
	write(t, f, "abcdef")
	must(t, f.Close())
	f, err = fs.OpenReadWrite("/f", vfs.WriteCategoryUnspecified)
	must(t, err)
	_, err = f.Read(make([]byte, 2))
	must(t, err)
	write(t, f, "XY")
	must(t, f.Close())
	mem, err := fs.Crash(fs.Changes(), vfs.CrashCloneCfg{UnsyncedDataPercent: 100, RNG: rand.New(rand.NewPCG(1, 2))})
	must(t, err)
	if got, want := read(t, mem, "/f"), read(t, fs, "/f"); got != want || want != "abXYef" {
		t.Errorf("replayed %q, live %q; want both abXYef", got, want)
	}
}
