package index

import (
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// markerSyncFS syncs a directory before Pebble creates a marker file in it.
// Pebble v2.1.7 rotates its MANIFEST by creating the new MANIFEST, then a
// marker naming it, and syncs the directory once, after both
// (cockroachdb/pebble#5825, fixed upstream by #5915 after v2.1.7). On a
// filesystem that does not order metadata updates, a power cut between the
// two can keep the marker without the MANIFEST, and the index then fails
// to open until 'index rebuild'. Syncing first makes the MANIFEST's entry
// durable before any marker can name it. Drop this once the Pebble we use
// has its own fix.
type markerSyncFS struct{ vfs.FS }

func (fs markerSyncFS) Create(name string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	if strings.HasPrefix(fs.PathBase(name), "marker.") {
		if err := syncDir(fs.FS, fs.PathDir(name)); err != nil {
			return nil, err
		}
	}
	return fs.FS.Create(name, cat)
}

func (fs markerSyncFS) Unwrap() vfs.FS { return fs.FS }

func syncDir(fs vfs.FS, dir string) error {
	d, err := fs.OpenDir(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
