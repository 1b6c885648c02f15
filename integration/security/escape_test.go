package security

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/remote/local"
	"github.com/hindsight-backup/hindsight/snapshot"
)

// craftedTree is a tree blob the encoder would refuse: it is encoded with
// placeholder names, which are then overwritten, byte for byte, with the
// names wanted. A placeholder is found with the length the encoding puts
// before it: a short one alone also turns up in the tree's random bytes
// (blob IDs, which are keyed hashes), about one run in ten for "z". Only someone holding the key can store such a blob; the
// restorer must still never write outside its target because of one.
type craftedTree struct {
	nodes []snapshot.Node   // with placeholder names
	names map[string]string // placeholder → wanted name, same length
	sub   *craftedTree      // the first directory node's subtree, if any
	files map[string][]byte // content of file nodes, by placeholder
}

// store saves the tree (and its subtree and file contents) and returns its
// blob ID.
func (c *craftedTree) store(t *testing.T, ctx context.Context, r *chunkstore.Repository) blob.ID {
	t.Helper()
	tree := &snapshot.Tree{Nodes: slices.Clone(c.nodes)}
	for i := range tree.Nodes {
		n := &tree.Nodes[i]
		switch {
		case n.Type == snapshot.TypeDir && c.sub != nil:
			n.Subtree = c.sub.store(t, ctx, r)
		case n.Type == snapshot.TypeFile:
			data := c.files[n.Name]
			id := r.BlobID(data)
			if _, err := r.SaveBlob(ctx, blob.Data, id, data); err != nil {
				t.Fatal(err)
			}
			n.Size, n.Content = uint64(len(data)), []snapshot.Chunk{{ID: id, Size: uint64(len(data))}}
		}
	}
	b, err := snapshot.EncodeTree(tree)
	if err != nil {
		t.Fatal(err)
	}
	for from, to := range c.names {
		encFrom := append(binary.AppendUvarint(nil, uint64(len(from))), from...)
		encTo := append(binary.AppendUvarint(nil, uint64(len(to))), to...)
		if len(from) != len(to) || bytes.Count(b, encFrom) != 1 {
			t.Fatalf("placeholder %q must occur once and be as long as %q", from, to)
		}
		b = bytes.Replace(b, encFrom, encTo, 1)
	}
	id := r.BlobID(b)
	if _, err := r.SaveBlob(ctx, blob.Tree, id, b); err != nil {
		t.Fatal(err)
	}
	return id
}

// storeSnapshot records a snapshot of tree and returns its ID.
func storeSnapshot(t *testing.T, ctx context.Context, r *chunkstore.Repository, root blob.ID) blob.ID {
	t.Helper()
	rec, err := snapshot.EncodeRecord(&snapshot.Record{Time: time.Now().UTC(), Host: "crafted", Source: "/crafted",
		Paths: []string{"/crafted"}, Kind: snapshot.KindFiles, Tree: root})
	if err != nil {
		t.Fatal(err)
	}
	var id blob.ID
	rand.Read(id[:])
	if err := r.SaveSnapshot(ctx, id, rec); err != nil {
		t.Fatal(err)
	}
	return id
}

func file(placeholder string) snapshot.Node {
	return snapshot.Node{Name: placeholder, Type: snapshot.TypeFile, Mode: 0o644}
}

func dir(placeholder string) snapshot.Node {
	return snapshot.Node{Name: placeholder, Type: snapshot.TypeDir, Mode: 0o755}
}

// TestRestoreStaysInTarget restores snapshots whose trees name entries
// "..", ".", "a/../../x", an absolute path, a name with NUL, and a name
// twice (a symlink out of the target, then a directory of that name with a
// file in it): every one must fail, naming the invalid tree. It also asks
// for sub-paths that climb above the root. Nothing may appear outside the
// target.
func TestRestoreStaysInTarget(t *testing.T) {
	tmp := t.TempDir()
	repo := filepath.Join(tmp, "repo")
	hs := runner(t, repo, testPassword)
	hs.Must(t, "init")
	box := filepath.Join(tmp, "box") // holds the targets and outside, nothing else
	outside := filepath.Join(box, "outside")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	// As long as "zz…" placeholders of the same length.
	abs := filepath.Join(outside, "abs")
	payload := map[string][]byte{"esc": []byte("escaped\n")}
	tests := []struct {
		name string
		tree *craftedTree
	}{
		{name: "file named ..", tree: &craftedTree{nodes: []snapshot.Node{file("zz")},
			names: map[string]string{"zz": ".."}, files: map[string][]byte{"zz": []byte("x")}}},
		{name: "directory named ..", tree: &craftedTree{nodes: []snapshot.Node{dir("zz")},
			names: map[string]string{"zz": ".."},
			sub:   &craftedTree{nodes: []snapshot.Node{file("esc")}, files: payload}}},
		{name: "directory named .", tree: &craftedTree{nodes: []snapshot.Node{dir("z")},
			names: map[string]string{"z": "."},
			sub:   &craftedTree{nodes: []snapshot.Node{file("esc")}, files: payload}}},
		{name: "name with slashes", tree: &craftedTree{nodes: []snapshot.Node{file("zz_zz_zz_outside_rel")},
			names: map[string]string{"zz_zz_zz_outside_rel": "../../../outside/rel"},
			files: map[string][]byte{"zz_zz_zz_outside_rel": []byte("escaped\n")}}},
		{name: "absolute name", tree: &craftedTree{nodes: []snapshot.Node{file(strings.Repeat("z", len(abs)))},
			names: map[string]string{strings.Repeat("z", len(abs)): abs},
			files: map[string][]byte{strings.Repeat("z", len(abs)): []byte("escaped\n")}}},
		{name: "name with NUL", tree: &craftedTree{nodes: []snapshot.Node{file("zzzzz")},
			names: map[string]string{"zzzzz": "a\x00/.."}, files: map[string][]byte{"zzzzz": []byte("x")}}},
		{name: "symlink out, then a directory of its name", tree: &craftedTree{
			nodes: []snapshot.Node{
				{Name: "d", Type: snapshot.TypeSymlink, LinkTarget: outside},
				dir("e"),
			},
			names: map[string]string{"e": "d"},
			sub:   &craftedTree{nodes: []snapshot.Node{file("esc")}, files: payload}}},
	}

	ctx := context.Background()
	be, err := local.OpenDir(repo)
	if err != nil {
		t.Fatal(err)
	}
	r, err := chunkstore.Open(ctx, be, chunkstore.LocalOptions(repo, []byte(testPassword)))
	if err != nil {
		t.Fatal(err)
	}
	snaps := make([]blob.ID, len(tests))
	for i, tt := range tests {
		snaps[i] = storeSnapshot(t, ctx, r, tt.tree.store(t, ctx, r))
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := filepath.Join(box, "target")
			t.Cleanup(func() { os.RemoveAll(target) })
			res := hs.Run(t, "restore", snaps[i].String(), "--target", target)
			wantFailure(t, res, exitFailure, []string{"invalid tree"})
			nothingOutside(t, box, outside)
		})
	}

	// A genuine snapshot, restored from below its root.
	src := filepath.Join(tmp, "src")
	if err := os.MkdirAll(filepath.Join(src, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(src, "sub", "f"), []byte("inside\n"))
	hs.Must(t, "backup", src)
	for _, sub := range []string{"..", "sub/../..", "/../..", "sub/../../outside"} {
		t.Run("path "+sub, func(t *testing.T) {
			target := filepath.Join(box, "target")
			t.Cleanup(func() { os.RemoveAll(target) })
			// ".." at the root is the root, as in a shell; either that
			// or an error will do, as long as nothing lands outside.
			if res := hs.Run(t, "restore", "latest:"+sub, "--target", target); res.Code == 0 {
				sameTree(t, src, target)
			}
			nothingOutside(t, box, outside)
		})
	}
}

// nothingOutside fails the test if box holds anything but outside
// (empty) and the restore target.
func nothingOutside(t *testing.T, box, outside string) {
	t.Helper()
	err := filepath.WalkDir(box, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(box, p)
		switch rel {
		case ".", "outside":
			return nil
		case "target":
			return filepath.SkipDir
		}
		t.Errorf("the restore wrote %s, outside its target", p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRestoreOverLinksStaysInTarget restores, into one target, a snapshot
// whose entries are symlinks pointing out of it, then another where the
// same names are a directory with a file in it and a regular file. The
// second restore replaces the links; it must not write through them.
func TestRestoreOverLinksStaysInTarget(t *testing.T) {
	tmp := t.TempDir()
	outside := filepath.Join(tmp, "outside")
	if err := os.Mkdir(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(outside, "victim")
	write(t, victim, []byte("original\n"))
	links, real := filepath.Join(tmp, "links"), filepath.Join(tmp, "real")
	for _, d := range []string{links, filepath.Join(real, "d")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, to := range map[string]string{"d": outside, "f": victim, "rel": "../outside/victim"} {
		if err := os.Symlink(to, filepath.Join(links, name)); err != nil {
			t.Fatal(err)
		}
	}
	write(t, filepath.Join(real, "d", "x"), []byte("into the directory\n"))
	write(t, filepath.Join(real, "f"), []byte("over the file\n"))
	write(t, filepath.Join(real, "rel"), []byte("over the relative link\n"))

	repo := filepath.Join(tmp, "repo")
	hs := runner(t, repo, testPassword)
	hs.Must(t, "init")
	target := filepath.Join(tmp, "target")
	for _, src := range []string{links, real} {
		var out struct {
			ID string `json:"snapshot_id"`
		}
		r := hs.Must(t, "backup", "--json", src)
		if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil {
			t.Fatalf("backup --json: %v: %s", err, r)
		}
		hs.Must(t, "restore", out.ID, "--target", target)
	}
	sameTree(t, real, target)
	es, err := os.ReadDir(outside)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 {
		t.Errorf("the restore wrote into %s: %v", outside, es)
	}
	if b, err := os.ReadFile(victim); err != nil || string(b) != "original\n" {
		t.Errorf("the restore wrote through a symlink to %s: %q, %v", victim, b, err)
	}
}
