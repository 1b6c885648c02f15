package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/integration/testtree"
	"github.com/hindsight-backup/hindsight/snapshot"
)

// TestRoundTripExact backs up a tree holding every kind of file and
// metadata and restores it into an empty directory: the restore must be
// indistinguishable from the source, atimes and hole maps included, except
// for the socket, which is listed as skipped instead.
func TestRoundTripExact(t *testing.T) {
	repo, _ := chunkstore.TestRepository(t, chunkstore.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	m := testtree.Build(t, src)

	var prog snapshot.Progress
	res := backup(t, repo, src, &prog)

	var sockets []string
	for _, e := range m.WithKind(testtree.Socket) {
		sockets = append(sockets, e.Path)
	}
	if len(sockets) == 0 {
		t.Fatal("the test tree has no socket; the skip path is not exercised")
	}
	for _, s := range sockets {
		if !slices.Contains(res.Record.Skipped, s) {
			t.Errorf("socket %q is not in Record.Skipped %q", s, res.Record.Skipped)
		}
	}
	if want := len(m.WithKind(testtree.File)); res.Record.Stats.Files != uint64(want) {
		t.Errorf("Stats.Files = %d, the tree has %d regular files", res.Record.Stats.Files, want)
	}

	dst := filepath.Join(t.TempDir(), "dst")
	restore(t, repo, res.Record, dst)
	sameTree(t, src, dst, exact)
	for _, s := range sockets {
		err := testtree.At(dst, s, func(d int, n string) error {
			var st unix.Stat_t
			return unix.Fstatat(d, n, &st, unix.AT_SYMLINK_NOFOLLOW)
		})
		if err == nil {
			t.Errorf("socket %q was restored", s)
		}
	}
	var excl []string
	for _, s := range sockets {
		excl = append(excl, "--exclude=/"+s)
	}
	rsyncSame(t, src, dst, excl...)
}

// TestRestoreSubtree restores single directories of a snapshot: each must
// equal its source directory, its own metadata applied to the target, and
// hardlinks kept among the names inside it.
func TestRestoreSubtree(t *testing.T) {
	repo, _ := chunkstore.TestRepository(t, chunkstore.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	m := testtree.Build(t, src)
	res := backup(t, repo, src, nil)

	long := m.WithTag(testtree.TagLongPath)
	if len(long) == 0 {
		t.Fatal("the test tree has no path beyond PATH_MAX")
	}
	deepDir := filepath.Dir(long[0].Path)
	for _, sub := range []string{"hardlinks", "perms", "sparse", "acl", "names", deepDir} {
		dst := filepath.Join(t.TempDir(), "dst")
		warnings, err := snapshot.Restore(context.Background(), repo, res.Record, sub, dst, snapshot.RestoreOptions{Verify: true}, nil)
		if err != nil {
			t.Errorf("restore of %s: %v", short(sub), err)
			continue
		}
		for _, w := range warnings {
			t.Errorf("restore of %s: warning %s: %v", short(sub), short(w.Path), w.Err)
		}
		// The source directory is reached through a descriptor chain, since
		// deepDir is longer than any path a system call takes.
		err = testtree.At(src, sub, func(d int, n string) error {
			fd, err := unix.Openat(d, n, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				return err
			}
			defer unix.Close(fd)
			sameTree(t, fmt.Sprintf("/proc/self/fd/%d", fd), dst, exact)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestLargeFileRoundTrip backs up files larger than the piece size in which
// the archiver chunks big files in parallel: one dense, one sparse with data
// across piece boundaries. They must restore exactly, holes included, and
// a small change must cost a few chunks, not the file.
func TestLargeFileRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and backs up 300 MB")
	}
	const mib = 1 << 20
	repo, _ := chunkstore.TestRepository(t, chunkstore.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	randomTree(t, src, 17, 270*mib)
	dense := filepath.Join(src, "d0", fileName(0))
	sparse := filepath.Join(src, "sparse")
	f, err := os.Create(sparse)
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{120 * mib, 255 * mib, 384*mib - 4096} {
		if _, err := f.WriteAt(bytes.Repeat([]byte{byte(off >> 20), 1, 2, 3}, 4*mib), off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(400 * mib); err != nil {
		t.Fatal(err)
	}
	f.Close()

	res := backup(t, repo, src, nil)
	dst := filepath.Join(t.TempDir(), "dst")
	restore(t, repo, res.Record, dst)
	sameTree(t, src, dst, exact)

	// Change 16 bytes in the second piece of the dense file.
	g, err := os.OpenFile(dense, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.WriteAt(bytes.Repeat([]byte{0xAA}, 16), 200*mib); err != nil {
		t.Fatal(err)
	}
	g.Close()
	var prog snapshot.Progress
	res = backup(t, repo, src, &prog)
	if n := prog.NewBytes.Load(); n > 3*8*mib {
		t.Errorf("16 changed bytes cost %d new bytes", n)
	}
	dst = filepath.Join(t.TempDir(), "dst")
	restore(t, repo, res.Record, dst)
	sameTree(t, src, dst, exact)
}
