package snapshot_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/snapshot"
)

const mib = 1 << 20

// writeImage writes an image made of segments: random data, explicit
// zeros, or a sparse hole.
func writeImage(t testing.TB, path string, seed uint64, segs ...imgSeg) []byte {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rnd := rand.New(rand.NewPCG(seed, 1))
	var all []byte
	for _, s := range segs {
		b := make([]byte, s.n)
		switch s.kind {
		case 'r':
			for i := range b {
				b[i] = byte(rnd.Uint32())
			}
			fallthrough
		case 'z':
			if _, err := f.Write(b); err != nil {
				t.Fatal(err)
			}
		case 'h':
			if _, err := f.Seek(int64(s.n), 1); err != nil {
				t.Fatal(err)
			}
		}
		all = append(all, b...)
	}
	if err := f.Truncate(int64(len(all))); err != nil {
		t.Fatal(err)
	}
	return all
}

type imgSeg struct {
	kind byte // r(andom), z(eros written), h(ole)
	n    int
}

func holeBytes(n *snapshot.Node) (h uint64) {
	for _, c := range n.Content {
		if c.IsHole() {
			h += c.Size
		}
	}
	return h
}

func TestImageRoundTrip(t *testing.T) {
	tests := []struct {
		name      string
		segs      []imgSeg
		wantHoles uint64 // at least
	}{
		{"random", []imgSeg{{'r', 3*mib + 17}}, 0},
		{"written zeros become holes", []imgSeg{{'r', 2 * mib}, {'z', 24 * mib}, {'r', mib}}, 16 * mib},
		{"sparse file", []imgSeg{{'h', 40 * mib}, {'r', mib}, {'h', 9*mib + 1}}, 48 * mib},
		{"empty", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			repo, _ := chunkstore.TestRepository(t, chunkstore.InitOptions{})
			dir := t.TempDir()
			src := filepath.Join(dir, "disk")
			want := writeImage(t, src, 1, tt.segs...)
			res, err := snapshot.BackupImage(ctx, repo, src, snapshot.ImageOptions{Host: "h", Source: "lvm:vg0/disk",
				Volume: &snapshot.Volume{FSType: "ext4"}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			rec := res.Record
			if rec.Kind != snapshot.KindImage || rec.Source != "lvm:vg0/disk" || rec.Volume.Size != uint64(len(want)) || rec.Volume.FSType != "ext4" {
				t.Errorf("record %+v, volume %+v", rec, rec.Volume)
			}
			n, err := snapshot.ImageNode(ctx, repo, rec)
			if err != nil {
				t.Fatal(err)
			}
			if n.Name != "disk.img" || n.Size != uint64(len(want)) {
				t.Errorf("image node %q of %d bytes, want disk.img of %d", n.Name, n.Size, len(want))
			}
			if h := holeBytes(n); h < tt.wantHoles {
				t.Errorf("%d bytes of holes, want at least %d", h, tt.wantHoles)
			}
			if stored := rec.Stats.NewBytes; stored > uint64(len(want))-tt.wantHoles {
				t.Errorf("stored %d new bytes of %d with %d in holes", stored, len(want), tt.wantHoles)
			}
			// Over an existing file full of garbage: holes must read as zeros.
			dst := filepath.Join(dir, "restored")
			if err := os.WriteFile(dst, bytes.Repeat([]byte{0xAA}, len(want)+5*mib), 0o600); err != nil {
				t.Fatal(err)
			}
			prog := &snapshot.RestoreProgress{}
			if err := snapshot.RestoreImage(ctx, repo, rec, dst, snapshot.ImageRestoreOptions{}, prog); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(dst)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("restored image differs (%d bytes, want %d)", len(got), len(want))
			}
			if prog.Bytes.Load() != uint64(len(want)) {
				t.Errorf("progress %d bytes, want %d", prog.Bytes.Load(), len(want))
			}
		})
	}
}

// TestImageDedup: a second image of the same volume with 1% of its
// blocks changed stores little, and names the first as its parent.
func TestImageDedup(t *testing.T) {
	ctx := context.Background()
	repo, _ := chunkstore.TestRepository(t, chunkstore.InitOptions{})
	src := filepath.Join(t.TempDir(), "disk")
	// The chunker's polynomial is drawn per repository, so the chunks a
	// change falls in are up to 8 MiB, and a moved boundary rewrites the
	// next one too: four changes in 64 MiB stored more than a quarter of
	// it in a CI run. In 256 MiB they rewrite at most 4 x 2 x 8 MiB, a
	// quarter, and only if all eight chunks are of the largest size.
	img := writeImage(t, src, 2, imgSeg{'r', 256 * mib})
	o := snapshot.ImageOptions{Host: "h", Source: "lvm:vg0/disk"}
	first, err := snapshot.BackupImage(ctx, repo, src, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(src, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ { // 16 KiB in four places
		if _, err := f.WriteAt(bytes.Repeat([]byte{byte(i + 1)}, 4096), int64(i)*16*mib+12345); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	second, err := snapshot.BackupImage(ctx, repo, src, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	if second.Record.Parent != first.ID {
		t.Errorf("parent %s, want %s", second.Record.Parent.Short(), first.ID.Short())
	}
	if nb := second.Record.Stats.NewBytes; nb == 0 || nb > uint64(len(img))/4 {
		t.Errorf("second backup stored %d new bytes of %d; want some, at most a quarter", nb, len(img))
	}
}

func TestImageBeforeCommitFails(t *testing.T) {
	ctx := context.Background()
	repo, _ := chunkstore.TestRepository(t, chunkstore.InitOptions{})
	src := filepath.Join(t.TempDir(), "disk")
	writeImage(t, src, 3, imgSeg{'r', 2 * mib})
	overflow := errors.New("snapshot invalidated")
	called := false
	_, err := snapshot.BackupImage(ctx, repo, src, snapshot.ImageOptions{BeforeCommit: func(context.Context) error {
		called = true
		return overflow
	}}, nil)
	if !errors.Is(err, overflow) || !called {
		t.Fatalf("got %v (check called: %v), want the check's error", err, called)
	}
	snaps, err := snapshot.List(ctx, repo)
	if err != nil || len(snaps) != 0 {
		t.Errorf("%d snapshots recorded after a failed check (%v)", len(snaps), err)
	}
}

func TestImageRejectsOtherKinds(t *testing.T) {
	ctx := context.Background()
	repo, _ := chunkstore.TestRepository(t, chunkstore.InitOptions{})
	if _, err := snapshot.BackupImage(ctx, repo, t.TempDir(), snapshot.ImageOptions{}, nil); err == nil {
		t.Error("a directory was backed up as an image")
	}
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := snapshot.Backup(ctx, repo, src, snapshot.BackupOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := snapshot.RestoreImage(ctx, repo, res.Record, filepath.Join(t.TempDir(), "x"), snapshot.ImageRestoreOptions{}, nil); err == nil {
		t.Error("a file snapshot was restored as an image")
	}
}

func TestBackupBeforeCommit(t *testing.T) {
	ctx := context.Background()
	repo, _ := chunkstore.TestRepository(t, chunkstore.InitOptions{})
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	overflow := errors.New("snapshot invalidated")
	_, err := snapshot.Backup(ctx, repo, src, snapshot.BackupOptions{BeforeCommit: func(context.Context) error { return overflow }}, nil)
	if !errors.Is(err, overflow) {
		t.Fatalf("got %v", err)
	}
	if snaps, _ := snapshot.List(ctx, repo); len(snaps) != 0 {
		t.Errorf("%d snapshots recorded after a failed check", len(snaps))
	}
	vol := &snapshot.Volume{Size: 1 << 30, FSType: "xfs"}
	res, err := snapshot.Backup(ctx, repo, src, snapshot.BackupOptions{Volume: vol, BeforeCommit: func(context.Context) error { return nil }}, nil)
	if err != nil || *res.Record.Volume != *vol {
		t.Errorf("got %v, volume %+v", err, res.Record.Volume)
	}
}
