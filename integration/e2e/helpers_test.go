// Package e2e holds the end-to-end tests of the core path: archiver →
// repository → restorer, through the library API and the real filesystem.
// Every restore is judged with treecmp (exact) and, where rsync can cope,
// with rsync as a second opinion.
package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/integration/testtree"
	"github.com/hindsight-backup/hindsight/integration/treecmp"
	"github.com/hindsight-backup/hindsight/remote/local"
	"github.com/hindsight-backup/hindsight/snapshot"
)

const testHost = "e2e-host"

// openRepo opens the local repository at dir the way the CLI will: index and
// scratch space inside it. Closed when the test ends unless closed earlier.
func openRepo(t testing.TB, dir string) *chunkstore.Repository {
	t.Helper()
	be, err := local.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := chunkstore.Open(context.Background(), be, chunkstore.LocalOptions(dir, []byte(chunkstore.TestPassword)))
	if err != nil {
		t.Fatalf("open repository %s: %v", dir, err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// initRepo makes a repository in dir (which may be a mount point) rather than
// in a fresh temporary directory as chunkstore.TestRepository does.
func initRepo(t testing.TB, dir string, o chunkstore.InitOptions) *chunkstore.Repository {
	t.Helper()
	if o.KDF == nil {
		o.KDF = chunkstore.TestKDF()
	}
	be, err := local.Create(vfs.Default, dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chunkstore.Init(context.Background(), be, []byte(chunkstore.TestPassword), o); err != nil {
		t.Fatal(err)
	}
	return openRepo(t, dir)
}

// backupTimeout bounds every backup here: a deadlocked archiver must fail
// its test, with the stacks that show where, not stall the test binary.
const backupTimeout = 3 * time.Minute

func backup(t testing.TB, repo snapshot.Repo, src string, prog *snapshot.Progress) *snapshot.Result {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The stacks are taken before the cancellation unblocks anything.
	stacks := make(chan []byte, 1)
	timer := time.AfterFunc(backupTimeout, func() {
		var b bytes.Buffer
		pprof.Lookup("goroutine").WriteTo(&b, 2)
		stacks <- b.Bytes()
		cancel()
	})
	res, err := snapshot.Backup(ctx, repo, src, snapshot.BackupOptions{Host: testHost}, prog)
	if !timer.Stop() {
		t.Fatalf("backup of %s did not finish in %v (%v); goroutines in our code at that moment:\n%s",
			src, backupTimeout, err, ourFrames(<-stacks))
	}
	if err != nil {
		t.Fatalf("backup of %s: %v", src, err)
	}
	if len(res.Record.Incomplete) > 0 {
		t.Fatalf("backup of %s incomplete: %q", src, res.Record.Incomplete)
	}
	return res
}

func restore(t testing.TB, repo snapshot.Repo, rec *snapshot.Record, dst string) {
	t.Helper()
	warnings, err := snapshot.Restore(context.Background(), repo, rec, "", dst, snapshot.RestoreOptions{Verify: true}, nil)
	if err != nil {
		t.Fatalf("restore into %s: %v", dst, err)
	}
	for _, w := range warnings {
		t.Errorf("restore warning: %s: %v", w.Path, w.Err)
	}
}

// exact is how a restore of a testtree is judged: everything, holes and
// atimes included; sockets are skipped by design.
var exact = treecmp.Options{Holes: true, Atime: true, Exclude: treecmp.SkipSockets}

// sameTree fails the test with every difference between a and b.
func sameTree(t testing.TB, a, b string, o treecmp.Options) {
	t.Helper()
	diffs, err := treecmp.Compare(a, b, o)
	if err != nil {
		t.Fatalf("compare %s %s: %v", a, b, err)
	}
	for i, d := range diffs {
		if i == 50 {
			t.Errorf("... and %d more differences", len(diffs)-i)
			break
		}
		t.Errorf("%s", d)
	}
}

// rsyncSame asks rsync for a second opinion; it cannot handle the part of a
// testtree deeper than PATH_MAX, nor a socket a restore rightly leaves out.
func rsyncSame(t testing.TB, a, b string, extra ...string) {
	t.Helper()
	_, err := exec.LookPath("rsync")
	testtree.Require(t, err == nil, "rsync not found: %v", err)
	args := append([]string{"--exclude=/long/"}, extra...)
	out, err := treecmp.RsyncDryRun(a, b, args...)
	if err != nil {
		t.Fatalf("rsync: %v", err)
	}
	if out != "" {
		t.Errorf("rsync sees differences between %s and %s:\n%s", a, b, out)
	}
}

// randomTree writes files of the given sizes, named f000, f001, ... in
// order, with incompressible content.
func randomTree(t testing.TB, dir string, seed uint64, sizes ...int) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	rng := rand.NewChaCha8(s)
	for i, n := range sizes {
		buf := make([]byte, n)
		rng.Read(buf)
		sub := filepath.Join(dir, "d"+string(rune('0'+i%4)))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sub, fileName(i)), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func fileName(i int) string {
	return fmt.Sprintf("f%03d", i)
}

func repeat(n, size int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = size
	}
	return out
}

// packFiles lists REPO/packs/xx/<id> with their sizes.
func packFiles(t testing.TB, repoDir string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	err := filepath.WalkDir(filepath.Join(repoDir, "packs"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.Type().IsRegular() && !strings.HasPrefix(d.Name(), ".") {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			out[p] = fi.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sum(m map[string]int64) (n int64) {
	for _, v := range m {
		n += v
	}
	return n
}

// finding is one problem a check reported.
type finding struct {
	msg string
	// harmless marks what loses nothing, such as a pack an interrupted
	// backup stored but never indexed.
	harmless bool
}

// checkRepo runs both checks, reading every blob, and returns what they
// report; a clean repository returns nothing.
func checkRepo(t testing.TB, repo *chunkstore.Repository) []finding {
	t.Helper()
	ctx := context.Background()
	var out []finding
	err := repo.CheckPacks(ctx, chunkstore.CheckOptions{ReadData: chunkstore.Subset{All: true}}, func(p chunkstore.Problem) { out = append(out, finding{p.String(), p.Harmless}) })
	if err != nil {
		t.Fatalf("check packs: %v", err)
	}
	snaps, err := snapshot.List(ctx, repo)
	if err != nil {
		t.Fatalf("list snapshots: %v", err)
	}
	err = snapshot.Check(ctx, repo, snaps, snapshot.Damage{}, func(p snapshot.Problem) { out = append(out, finding{msg: p.String()}) })
	if err != nil {
		t.Fatalf("check snapshots: %v", err)
	}
	return out
}

func requireClean(t testing.TB, repo *chunkstore.Repository) {
	t.Helper()
	for _, f := range checkRepo(t, repo) {
		t.Errorf("check: %s", f.msg)
	}
}

func listSnapshots(t testing.TB, repo snapshot.Repo) []snapshot.Snapshot {
	t.Helper()
	snaps, err := snapshot.List(context.Background(), repo)
	if err != nil {
		t.Fatalf("list snapshots: %v", err)
	}
	return snaps
}

// fileNodes maps every regular file of a snapshot (path relative to the
// backed-up directory) to its node.
func fileNodes(t testing.TB, repo snapshot.Repo, rec *snapshot.Record) map[string]snapshot.Node {
	t.Helper()
	ctx := context.Background()
	root, err := snapshot.RootNode(ctx, repo, rec)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]snapshot.Node{}
	var walk func(rel string, id blob.ID)
	walk = func(rel string, id blob.ID) {
		tr, err := snapshot.LoadTree(ctx, repo, id)
		if err != nil {
			t.Fatalf("tree of %q: %v", rel, err)
		}
		for _, n := range tr.Nodes {
			p := filepath.Join(rel, n.Name)
			switch n.Type {
			case snapshot.TypeDir:
				walk(p, n.Subtree)
			case snapshot.TypeFile:
				out[p] = n
			}
		}
	}
	walk("", root.Subtree)
	return out
}

// nodeDiffs names every path whose node differs between two snapshots'
// trees, with the fields that differ: what makes a tree ID change.
func nodeDiffs(t testing.TB, repo snapshot.Repo, a, b blob.ID) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	var walk func(rel string, a, b blob.ID)
	walk = func(rel string, a, b blob.ID) {
		if a == b {
			return
		}
		ta, err := snapshot.LoadTree(ctx, repo, a)
		if err != nil {
			t.Fatal(err)
		}
		tb, err := snapshot.LoadTree(ctx, repo, b)
		if err != nil {
			t.Fatal(err)
		}
		for i := range ta.Nodes {
			na := &ta.Nodes[i]
			p := filepath.Join(rel, na.Name)
			nb := tb.Find(na.Name)
			if nb == nil {
				out = append(out, short(p)+": only in the first")
				continue
			}
			if f := nodeFields(na, nb); len(f) > 0 {
				out = append(out, short(p)+": "+strings.Join(f, ", "))
			}
			if na.Type == snapshot.TypeDir && nb.Type == snapshot.TypeDir {
				walk(p, na.Subtree, nb.Subtree)
			}
		}
		for _, nb := range tb.Nodes {
			if ta.Find(nb.Name) == nil {
				out = append(out, short(filepath.Join(rel, nb.Name))+": only in the second")
			}
		}
	}
	walk("", a, b)
	return out
}

func nodeFields(a, b *snapshot.Node) []string {
	var f []string
	add := func(name string, differ bool) {
		if differ {
			f = append(f, name)
		}
	}
	add("type", a.Type != b.Type)
	add("mode", a.Mode != b.Mode)
	add("owner", a.UID != b.UID || a.GID != b.GID || a.User != b.User || a.Group != b.Group)
	add("size", a.Size != b.Size)
	add("atime", a.Atime != b.Atime)
	add("mtime", a.Mtime != b.Mtime)
	add("ctime", a.Ctime != b.Ctime)
	add("inode", a.DeviceID != b.DeviceID || a.Inode != b.Inode || a.Links != b.Links)
	add("target", a.LinkTarget != b.LinkTarget)
	add("xattrs", !slices.EqualFunc(a.Xattrs, b.Xattrs, func(x, y snapshot.Xattr) bool { return x.Name == y.Name && string(x.Value) == string(y.Value) }))
	add("content", !slices.Equal(a.Content, b.Content))
	return f
}

// short quotes a path for a log line, abbreviating the testtree's paths
// beyond PATH_MAX.
func short(p string) string {
	if len(p) <= 160 {
		return strconv.Quote(p)
	}
	return fmt.Sprintf("%s...%s (%d bytes)", strconv.Quote(p[:60]), strconv.Quote(p[len(p)-60:]), len(p))
}
