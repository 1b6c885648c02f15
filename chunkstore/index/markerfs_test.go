package index

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
)

// TestCrashDuringManifestRotation cuts power while Pebble, reopening the
// index, has created a new MANIFEST and the marker naming it but not yet
// synced the directory, and keeps a random half of the unsynced directory
// entries, as a filesystem that does not order metadata updates may. The
// index must open from every such state.
func TestCrashDuringManifestRotation(t *testing.T) {
	mem := vfs.NewCrashableMem()
	d, err := Open(mem, "/idx", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.PutSnapshot(id(1), []byte("record")); err != nil {
		t.Fatal(err)
	}
	d.Close()

	var crashes []*vfs.MemFS
	// The old marker is removed after the new one is created and before
	// the directory is synced: the moment the two entries are unsynced.
	inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind == errorfs.OpRemove && strings.Contains(op.Path, "marker.manifest.") && crashes == nil {
			for seed := range uint64(32) {
				crashes = append(crashes, mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 50, RNG: rand.New(rand.NewPCG(seed, 0))}))
			}
		}
		return nil
	})
	d, err = Open(errorfs.Wrap(mem, inj), "/idx", Options{})
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	if crashes == nil {
		t.Fatal("the reopen rotated no MANIFEST")
	}
	for i, fs := range crashes {
		d, err := Open(fs, "/idx", Options{})
		if err != nil {
			t.Fatalf("crash %d: %v", i, err)
		}
		var n int
		if err := d.Snapshots(func(blob.ID, []byte) error { n++; return nil }); n != 1 || err != nil {
			t.Errorf("crash %d: %d snapshot rows (%v), want the one synced", i, n, err)
		}
		d.Close()
	}
}
