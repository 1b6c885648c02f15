package cli

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// TestUnreadableSourceFile backs up a tree in which one file's reads fail
// with EIO, as on a disk with a bad sector. As root every file opens, so
// the failure is made below the filesystem: btrfs checksums file data, and
// a byte flipped in the image under one data block makes reads of that
// block fail with EIO while every other file reads normally. (ext4 has no
// data checksums and would return the flipped byte; there is no
// device-mapper "error" target on the test machines.)
//
// The backup must still be written, list the file as incomplete, and exit
// 3; the readable files must restore exactly.
func TestUnreadableSourceFile(t *testing.T) {
	mnt, img := loopMount(t, "btrfs", 128*mib, "-q")
	content := make([]byte, 256<<10)
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], 77)
	if _, err := io.ReadFull(rand.NewChaCha8(key), content); err != nil {
		t.Fatal(err)
	}
	// Well above btrfs's 2 KiB inline limit, so the data lives in extents
	// of its own, in the image exactly once.
	if err := os.WriteFile(filepath.Join(mnt, "bad.bin"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{"good.txt": "readable\n", "sub/other.txt": "also readable\n"} {
		p := filepath.Join(mnt, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	umount(t, mnt)
	corruptImage(t, img, content[128<<10:132<<10])
	mount(t, img, mnt, "loop,ro")
	_, err := os.ReadFile(filepath.Join(mnt, "bad.bin"))
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("reading the damaged file: got %v, want EIO: the test cannot make an unreadable file", err)
	}

	repo := filepath.Join(t.TempDir(), "repo")
	initRepo(t, repo)
	r := hs(t, "backup", "--repo", repo, mnt)
	if r.code != 3 {
		t.Fatalf("backup with an unreadable file: want exit 3: %s", r)
	}
	if !strings.Contains(r.stdout, "incomplete") || !strings.Contains(r.stdout, "bad.bin") {
		t.Errorf("the summary should list bad.bin as incomplete: %s", r)
	}
	snaps := listSnapshots(t, repo)
	if len(snaps) != 1 {
		t.Fatalf("%d snapshots after a backup that exited 3, want 1", len(snaps))
	}
	// Entries are "PATH: reason".
	if !slices.ContainsFunc(snaps[0].Incomplete, func(p string) bool { return strings.HasPrefix(p, "bad.bin: ") }) {
		t.Errorf("the snapshot record should list bad.bin as incomplete: %v", snaps[0].Incomplete)
	}
	dst := filepath.Join(t.TempDir(), "restore")
	mustHS(t, "restore", "--repo", repo, "latest", "--target", dst)
	for _, name := range []string{"good.txt", "sub/other.txt"} {
		want, err := os.ReadFile(filepath.Join(mnt, name))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := os.ReadFile(filepath.Join(dst, name)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("restored %s: %q, %v; want %q", name, got, err, want)
		}
	}
	if r := hs(t, "check", "--repo", repo, "--read-data"); r.code != 0 {
		t.Errorf("check of a repository with an incomplete snapshot: %s", r)
	}
}

// corruptImage flips one byte of block, which must occur exactly once in
// the unmounted filesystem image.
func corruptImage(t testing.TB, img string, block []byte) {
	t.Helper()
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(data, block)
	if i < 0 || bytes.Contains(data[i+1:], block) {
		t.Fatalf("the block to corrupt is not in %s exactly once (found at %d)", img, i)
	}
	f, err := os.OpenFile(img, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte{data[i+100] ^ 0xff}, int64(i+100)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
