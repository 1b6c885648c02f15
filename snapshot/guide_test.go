package snapshot_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/snapshot"
)

// TestGuideCutsLikeTheChunker changes an image and a file in the ways
// volumes and files change, backs each up again with its parent as the
// guide, and compares the chunks with those of a backup without a parent:
// the guide may only save work, never change a cut or an ID.
func TestGuideCutsLikeTheChunker(t *testing.T) {
	overwrite := func(b []byte) []byte {
		copy(b[9*mib+333:], bytes.Repeat([]byte{7}, 5000))
		return b
	}
	tests := []struct {
		name   string
		change func([]byte) []byte
		guided bool // whether at least half the bytes must have come from the guide
		size   int  // default 24 MiB
	}{
		{"unchanged", func(b []byte) []byte { return b }, true, 0},
		{"overwritten in place", overwrite, true, 0},
		{"zeroed", func(b []byte) []byte { clear(b[3*mib : 4*mib]); return b }, true, 0},
		{"bytes inserted", func(b []byte) []byte { return slices.Insert(b, 5*mib, []byte("inserted")...) }, true, 0},
		{"bytes removed", func(b []byte) []byte { return slices.Delete(b, 5*mib, 5*mib+100) }, true, 0},
		{"appended", func(b []byte) []byte { return append(b, random(9, 3*mib)...) }, true, 0},
		{"truncated", func(b []byte) []byte { return b[:20*mib+17] }, true, 0},
		{"all new", func(b []byte) []byte { return random(10, len(b)) }, false, 0},
		// Past 128 MiB, where pieces end and the parent's cut is forced.
		{"bytes inserted before a piece boundary", func(b []byte) []byte { return slices.Insert(b, 100*mib, 1, 2, 3) }, true, 130 * mib},
	}
	for _, image := range []bool{true, false} {
		for _, tc := range tests {
			name := "file/" + tc.name
			if image {
				name = "image/" + tc.name
			}
			t.Run(name, func(t *testing.T) {
				repo, _ := chunkstore.TestRepository(t, chunkstore.InitOptions{})
				dir := t.TempDir()
				if tc.size == 0 {
					tc.size = 24 * mib
				}
				data := random(8, tc.size)
				clear(data[15*mib : 17*mib]) // zero chunks: holes in images
				writeFile(t, filepath.Join(dir, "src", "disk"), data)
				first := imageOrFileContent(t, repo, dir, image, "a", nil)
				data = tc.change(data)
				writeFile(t, filepath.Join(dir, "src", "disk"), data)
				var prog snapshot.Progress
				guided := imageOrFileContent(t, repo, dir, image, "a", &prog)
				fresh := imageOrFileContent(t, repo, dir, image, "b", nil)
				if !slices.Equal(guided, fresh) {
					t.Fatalf("guided backup cut %d chunks, the chunker alone %d, or their IDs differ", len(guided), len(fresh))
				}
				if len(first) < 10 {
					t.Fatalf("only %d chunks: the test needs more", len(first))
				}
				g, read := prog.GuidedBytes.Load(), prog.ReadBytes.Load()
				t.Logf("%d of %d bytes read came from the guide", g, read)
				if tc.guided && g < read/2 || !tc.guided && g != 0 {
					t.Errorf("%d of %d bytes came from the guide (want at least half: %v)", g, read, tc.guided)
				}
			})
		}
	}
}

// imageOrFileContent backs up dir/src/disk as an image or a file, for host, and
// returns the chunks it was cut into.
func imageOrFileContent(t *testing.T, repo snapshot.Repo, dir string, image bool, host string, prog *snapshot.Progress) []snapshot.Chunk {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(dir, "src", "disk")
	if image {
		res, err := snapshot.BackupImage(ctx, repo, path, snapshot.ImageOptions{Host: host, Source: "lvm:vg0/disk"}, prog)
		if err != nil {
			t.Fatal(err)
		}
		n, err := snapshot.ImageNode(ctx, repo, res.Record)
		if err != nil {
			t.Fatal(err)
		}
		return n.Content
	}
	// A new mtime, as a writer would leave, so that the file is read.
	now := time.Now()
	os.Chtimes(path, now, now)
	res := backup(t, repo, filepath.Join(dir, "src"), snapshot.BackupOptions{Host: host}, prog)
	n, err := snapshot.Lookup(ctx, repo, res.Record, "disk")
	if err != nil {
		t.Fatal(err)
	}
	return n.Content
}
