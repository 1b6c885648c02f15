package snapshot_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
	"github.com/hindsight-backup/hindsight/snapshot"
	"github.com/hindsight-backup/hindsight/snapshot/fsmeta"
)

func writeFile(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func random(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

// sampleTree builds a small tree with the kinds a unit test can check
// cheaply; integration/ covers every metadata kind with an exact comparer.
func sampleTree(t *testing.T) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	writeFile(t, filepath.Join(src, "a.txt"), []byte("hello\n"))
	writeFile(t, filepath.Join(src, "big.bin"), random(1, 3<<20))
	writeFile(t, filepath.Join(src, "dir/sub/c.txt"), bytes.Repeat([]byte("compressible "), 100000))
	writeFile(t, filepath.Join(src, "empty"), nil)
	os.MkdirAll(filepath.Join(src, "emptydir"), 0o750)
	os.Symlink("a.txt", filepath.Join(src, "link"))
	os.Link(filepath.Join(src, "a.txt"), filepath.Join(src, "dir/hard"))
	unix.Mkfifo(filepath.Join(src, "fifo"), 0o640)
	writeFile(t, filepath.Join(src, "weird\nname\xff"), []byte("x"))
	// Sparse: 8 MiB with data only at 1 MiB and at the end.
	f, _ := os.Create(filepath.Join(src, "sparse"))
	f.WriteAt(random(2, 64<<10), 1<<20)
	f.WriteAt([]byte("end"), 8<<20-3)
	f.Close()
	return src
}

func backup(t *testing.T, repo snapshot.Repo, src string, o snapshot.BackupOptions, prog *snapshot.Progress) *snapshot.Result {
	t.Helper()
	if o.Host == "" {
		o.Host = "testhost"
	}
	res, err := snapshot.Backup(context.Background(), repo, src, o, prog)
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	return res
}

func sameFile(t *testing.T, a, b string) {
	t.Helper()
	da, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	db, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(da, db) {
		t.Fatalf("%s and %s differ", a, b)
	}
}

func TestBackupRestore(t *testing.T) {
	repo, _ := chunkstore.TestRepository(t, chunkstore.InitOptions{})
	src := sampleTree(t)
	res := backup(t, repo, src, snapshot.BackupOptions{}, nil)
	if res.Record.Stats.Files != 7 || res.Record.Stats.Dirs != 4 || res.Record.Stats.Others != 2 {
		t.Fatalf("stats %+v", res.Record.Stats)
	}

	dst := filepath.Join(t.TempDir(), "dst")
	warnings, err := snapshot.Restore(context.Background(), repo, res.Record, "", dst, snapshot.RestoreOptions{Verify: true}, nil)
	if err != nil || len(warnings) != 0 {
		t.Fatalf("restore: %v %v", err, warnings)
	}
	for _, name := range []string{"a.txt", "big.bin", "dir/sub/c.txt", "empty", "weird\nname\xff", "sparse"} {
		sameFile(t, filepath.Join(src, name), filepath.Join(dst, name))
	}
	if target, _ := os.Readlink(filepath.Join(dst, "link")); target != "a.txt" {
		t.Fatalf("symlink target %q", target)
	}
	var s1, s2 unix.Stat_t
	unix.Lstat(filepath.Join(dst, "a.txt"), &s1)
	unix.Lstat(filepath.Join(dst, "dir/hard"), &s2)
	if s1.Ino != s2.Ino || s1.Nlink != 2 {
		t.Fatal("hardlink not restored as a hardlink")
	}
	unix.Lstat(filepath.Join(dst, "fifo"), &s1)
	if s1.Mode&unix.S_IFMT != unix.S_IFIFO || s1.Mode&0o7777 != 0o640 {
		t.Fatalf("fifo mode %o", s1.Mode)
	}
	fi, _ := os.Stat(filepath.Join(dst, "emptydir"))
	if fi.Mode().Perm() != 0o750 {
		t.Fatalf("emptydir mode %v", fi.Mode())
	}
	sf, _ := os.Open(filepath.Join(dst, "sparse"))
	defer sf.Close()
	exts, err := fsmeta.DataExtents(sf, 8<<20)
	if err != nil {
		t.Fatal(err)
	}
	var data int64
	for _, e := range exts {
		data += e.Len
	}
	if data > 1<<20 {
		t.Fatalf("restored sparse file has %d data bytes of 8 MiB: holes lost", data)
	}
	srcTimes, _ := os.Lstat(filepath.Join(src, "dir/sub/c.txt"))
	dstTimes, _ := os.Lstat(filepath.Join(dst, "dir/sub/c.txt"))
	if !srcTimes.ModTime().Equal(dstTimes.ModTime()) {
		t.Fatal("mtime not restored")
	}

	// A sub-path restores just that subtree.
	dst2 := t.TempDir()
	if _, err := snapshot.Restore(context.Background(), repo, res.Record, "dir/sub", dst2, snapshot.RestoreOptions{}, nil); err != nil {
		t.Fatal(err)
	}
	sameFile(t, filepath.Join(src, "dir/sub/c.txt"), filepath.Join(dst2, "c.txt"))
}

func TestIncremental(t *testing.T) {
	repo, _ := chunkstore.TestRepository(t, chunkstore.InitOptions{})
	src := sampleTree(t)
	first := backup(t, repo, src, snapshot.BackupOptions{}, nil)

	var prog snapshot.Progress
	second := backup(t, repo, src, snapshot.BackupOptions{}, &prog)
	if prog.ReadBytes.Load() != 0 {
		t.Fatalf("unchanged backup read %d bytes", prog.ReadBytes.Load())
	}
	if second.Record.Parent != first.ID {
		t.Fatal("parent not found automatically")
	}
	// The first backup's readlink moved the symlink's atime (nothing can
	// prevent that); from then on an unchanged tree keeps its tree ID.
	again := backup(t, repo, src, snapshot.BackupOptions{}, nil)
	if again.Record.Tree != second.Record.Tree {
		t.Fatal("unchanged tree got a new tree ID")
	}

	// An attribute change moves only ctime; the next backup must see it
	// without reading the content again.
	if err := unix.Lsetxattr(filepath.Join(src, "empty"), "user.note", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	prog = snapshot.Progress{}
	withXattr := backup(t, repo, src, snapshot.BackupOptions{}, &prog)
	n, err := snapshot.Lookup(context.Background(), repo, withXattr.Record, "empty")
	if err != nil || len(n.Xattrs) != 1 || n.Xattrs[0].Name != "user.note" || prog.ReadBytes.Load() != 0 {
		t.Fatalf("xattr change: node %+v, err %v, read %d", n, err, prog.ReadBytes.Load())
	}

	time.Sleep(10 * time.Millisecond) // a distinct mtime
	writeFile(t, filepath.Join(src, "a.txt"), []byte("changed\n"))
	os.Remove(filepath.Join(src, "dir/sub/c.txt"))
	prog = snapshot.Progress{}
	third := backup(t, repo, src, snapshot.BackupOptions{}, &prog)
	if got := prog.ReadBytes.Load(); got != 16 {
		t.Fatalf("changed backup read %d bytes, want only the changed file's 8, twice: a.txt and its hardlink dir/hard", got)
	}

	source := snapshot.HistorySource("testhost", src)
	versions, err := snapshot.History(context.Background(), repo, source, "a.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(versions) != 2 || versions[0].Snapshot != first.ID || versions[1].Snapshot != third.ID || versions[1].Size != 8 {
		t.Fatalf("a.txt versions: %+v", versions)
	}
	versions, _ = snapshot.History(context.Background(), repo, source, "dir/sub/c.txt")
	if len(versions) != 2 || versions[1].Kind != index.KindDeleted {
		t.Fatalf("deleted file versions: %+v", versions)
	}

	// Rebuilding the history from the snapshots gives the same versions.
	before, _ := snapshot.History(context.Background(), repo, source, "a.txt")
	for _, id := range []blob.ID{first.ID, second.ID, again.ID, withXattr.ID, third.ID} {
		repo.Index().DeleteHistory(source, id)
	}
	if v, _ := snapshot.History(context.Background(), repo, source, "a.txt"); len(v) != 0 {
		t.Fatalf("history rows survived DeleteHistory: %+v", v)
	}
	if err := snapshot.RebuildHistory(context.Background(), repo); err != nil {
		t.Fatal(err)
	}
	after, _ := snapshot.History(context.Background(), repo, source, "a.txt")
	if len(after) != len(before) || after[1].Content != before[1].Content {
		t.Fatalf("rebuilt history %+v, want %+v", after, before)
	}
}

func TestExcludes(t *testing.T) {
	repo, _ := chunkstore.TestRepository(t, chunkstore.InitOptions{})
	src := sampleTree(t)
	writeFile(t, filepath.Join(src, "cache/CACHEDIR.TAG"), []byte("Signature: 8a477f597d28d172789f06886806bc55\n"))
	writeFile(t, filepath.Join(src, "cache/junk"), []byte("junk"))
	res := backup(t, repo, src, snapshot.BackupOptions{Excludes: []string{"*.bin", "dir/sub"}, ExcludeCaches: true}, nil)
	ctx := context.Background()
	for _, p := range []string{"big.bin", "dir/sub", "cache/junk"} {
		if _, err := snapshot.Lookup(ctx, repo, res.Record, p); err == nil {
			t.Errorf("%s was not excluded", p)
		}
	}
	for _, p := range []string{"a.txt", "dir/hard", "cache"} {
		if _, err := snapshot.Lookup(ctx, repo, res.Record, p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}

func TestChangingFileIsIncomplete(t *testing.T) {
	repo, _ := chunkstore.TestRepository(t, chunkstore.InitOptions{})
	src := sampleTree(t)
	p := filepath.Join(src, "growing")
	writeFile(t, p, random(3, 4<<20))
	f, _ := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	var stop atomic.Bool
	var wrote atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !stop.Load() {
			f.Write([]byte("more"))
			wrote.Add(1)
		}
	}()
	for wrote.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	res, err := snapshot.Backup(context.Background(), repo, src, snapshot.BackupOptions{Host: "h"}, nil)
	stop.Store(true)
	<-done
	f.Close()
	if !errors.Is(err, snapshot.ErrIncomplete) || res == nil {
		t.Fatalf("backup of a growing file: %v", err)
	}
	if len(res.Record.Incomplete) == 0 || !strings.HasPrefix(res.Record.Incomplete[0], "growing") {
		t.Fatalf("incomplete list %q", res.Record.Incomplete)
	}
	// The snapshot was written and names the file.
	if _, err := snapshot.Resolve(context.Background(), repo, res.ID.String(), snapshot.Filter{}); err != nil {
		t.Fatal(err)
	}
}

func TestResolve(t *testing.T) {
	repo, _ := chunkstore.TestRepository(t, chunkstore.InitOptions{})
	ctx := context.Background()
	if _, err := snapshot.Resolve(ctx, repo, "latest", snapshot.Filter{}); !errors.Is(err, snapshot.ErrNoSnapshot) {
		t.Fatalf("latest of nothing: %v", err)
	}
	src := sampleTree(t)
	a := backup(t, repo, src, snapshot.BackupOptions{Time: time.Unix(100, 0)}, nil)
	b := backup(t, repo, src, snapshot.BackupOptions{Time: time.Unix(200, 0)}, nil)
	tests := []struct {
		ref  string
		want blob.ID
		ok   bool
	}{
		{"latest", b.ID, true},
		{a.ID.String()[:8], a.ID, true},
		{strings.ToUpper(b.ID.String()[:10]), b.ID, true},
		{"zzzz", blob.ID{}, false},
		{"ab", blob.ID{}, false},
	}
	for _, tc := range tests {
		s, err := snapshot.Resolve(ctx, repo, tc.ref, snapshot.Filter{})
		if (err == nil) != tc.ok || (tc.ok && s.ID != tc.want) {
			t.Errorf("Resolve(%q) = %v, %v", tc.ref, s.ID.Short(), err)
		}
	}
}
