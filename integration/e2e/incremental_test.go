package e2e

import (
	"context"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
	"github.com/hindsight-backup/hindsight/integration/testtree"
	"github.com/hindsight-backup/hindsight/snapshot"
)

// TestIncremental backs up a tree, mutates a tenth of it in every way an
// incremental backup can get wrong (content changed behind an unchanged
// mtime, metadata only, type changes, deletions, additions), and backs it up
// again. Both snapshots must restore to the tree as it was at their time,
// the second must read only what changed, and the history must list a
// version exactly where content or type changed.
func TestIncremental(t *testing.T) {
	ctx := context.Background()
	repo, _ := chunkstore.TestRepository(t, chunkstore.InitOptions{})
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	m := testtree.Build(t, src)

	a := backup(t, repo, src, nil)
	// The restore of A taken now is the tree as it was at A; it is the
	// reference for restoring A again after B.
	dstA := filepath.Join(tmp, "a-then")
	restore(t, repo, a.Record, dstA)
	sameTree(t, src, dstA, exact)

	changes := testtree.Mutate(t, src, 1)
	var prog snapshot.Progress
	b := backup(t, repo, src, &prog)
	if b.Record.Parent != a.ID {
		t.Fatalf("B's parent is %s, want A %s", b.Record.Parent.Short(), a.ID.Short())
	}

	dstB := filepath.Join(tmp, "b")
	restore(t, repo, b.Record, dstB)
	sameTree(t, src, dstB, exact)
	dstA2 := filepath.Join(tmp, "a-later")
	restore(t, repo, a.Record, dstA2)
	sameTree(t, dstA, dstA2, exact)

	// Only files whose size, mtime, ctime or inode moved may be read: the
	// changed paths (a file turned directory holds one new file).
	var changedBytes uint64
	for _, c := range changes {
		p := c.Path
		if c.Op == testtree.OpToDir {
			p += "/inside"
		}
		if st, ok := lstat(src, p); ok && st.Mode&unix.S_IFMT == unix.S_IFREG {
			changedBytes += uint64(st.Size)
		}
	}
	read, total := prog.ReadBytes.Load(), prog.Bytes.Load()
	t.Logf("B read %d of %d content bytes; changed files hold %d", read, total, changedBytes)
	if read > changedBytes {
		t.Errorf("B read %d bytes, more than the %d bytes of changed files", read, changedBytes)
	}
	if read == 0 || read >= total {
		t.Errorf("B read %d of %d bytes", read, total)
	}

	source := snapshot.HistorySource(testHost, src)
	history := func(p string) []snapshot.Version {
		v, err := snapshot.History(ctx, repo, source, p)
		if err != nil {
			t.Fatalf("history of %s: %v", short(p), err)
		}
		return v
	}
	changed := map[string]bool{}
	for _, c := range changes {
		changed[c.Path] = true
		v := history(c.Path)
		want := []step{{index.KindFile, "A"}}
		switch c.Op {
		case testtree.OpContent, testtree.OpAppend:
			want = append(want, step{index.KindFile, "B"})
		case testtree.OpDelete:
			want = append(want, step{index.KindDeleted, "B"})
		case testtree.OpToDir:
			want = append(want, step{index.KindDir, "B"})
			if iv := history(c.Path + "/inside"); len(iv) != 1 || iv[0].Kind != index.KindFile || iv[0].Snapshot != b.ID {
				t.Errorf("history of %s/inside: %s", short(c.Path), versions(iv, a, b))
			}
		case testtree.OpToSymlink:
			want = append(want, step{index.KindSymlink, "B"})
		case testtree.OpAdd:
			want[0].snap = "B"
		}
		ok := len(v) == len(want)
		for i := 0; ok && i < len(v); i++ {
			id := a.ID
			if want[i].snap == "B" {
				id = b.ID
			}
			ok = v[i].Kind == want[i].kind && v[i].Snapshot == id
		}
		if !ok {
			t.Errorf("history of %s after %s: %s, want %v", short(c.Path), c.Op, versions(v, a, b), want)
		}
		if c.Op == testtree.OpContent || c.Op == testtree.OpAppend {
			if len(v) == 2 && v[0].Content == v[1].Content {
				t.Errorf("history of %s: both versions have content hash %s", short(c.Path), v[0].Content.Short())
			}
		}
	}
	var unchanged int
	for _, e := range m.WithKind(testtree.File) {
		if changed[e.Path] || unchanged >= 20 {
			continue
		}
		unchanged++
		if v := history(e.Path); len(v) != 1 || v[0].Snapshot != a.ID || v[0].Kind != index.KindFile {
			t.Errorf("history of unchanged %s: %s", short(e.Path), versions(v, a, b))
		}
	}
}

// step is one expected history version: its kind and snapshot ("A" or "B").
type step struct {
	kind index.Kind
	snap string
}

func versions(v []snapshot.Version, a, b *snapshot.Result) string {
	s := "["
	for i, x := range v {
		if i > 0 {
			s += " "
		}
		name := x.Snapshot.Short()
		switch x.Snapshot {
		case a.ID:
			name = "A"
		case b.ID:
			name = "B"
		}
		s += name + ":" + kindName(x.Kind)
	}
	return s + "]"
}

func kindName(k index.Kind) string {
	return map[index.Kind]string{index.KindDeleted: "deleted", index.KindFile: "file", index.KindDir: "dir",
		index.KindSymlink: "symlink", index.KindOther: "other"}[k]
}

// lstat stats rel below root at any path length.
func lstat(root, rel string) (unix.Stat_t, bool) {
	var st unix.Stat_t
	err := testtree.At(root, rel, func(d int, n string) error { return unix.Fstatat(d, n, &st, unix.AT_SYMLINK_NOFOLLOW) })
	return st, err == nil
}
