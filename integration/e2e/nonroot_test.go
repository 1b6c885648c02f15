package e2e

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/integration/testtree"
	"github.com/hindsight-backup/hindsight/integration/treecmp"
	"github.com/hindsight-backup/hindsight/snapshot"
	"github.com/hindsight-backup/hindsight/snapshot/fsmeta"
)

const nonRootChildEnv = "HINDSIGHT_E2E_NONROOT_CHILD"

// nobody is the unprivileged user the restore runs as.
const nobody = 65534

// nonRootRestore backs up, as root, the tree that build makes, and restores
// its subtree sub as an unprivileged user keeping ownership
// (fsmeta.OwnerKeep, the documented policy for restores by a non-root
// user). It returns the source, the target and the child's error and
// output.
func nonRootRestore(t *testing.T, build func(t *testing.T, src string), sub string) (src, dst string, out []byte, err error) {
	t.Helper()
	testtree.Require(t, os.Geteuid() == 0, "switching to an unprivileged user needs root")
	// Everything the child touches must be reachable by it.
	tmp := t.TempDir()
	for _, d := range []string{tmp, filepath.Dir(tmp)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	src = filepath.Join(tmp, "src")
	build(t, src)
	repoDir := filepath.Join(tmp, "repo")
	repo := initRepo(t, repoDir, chunkstore.InitOptions{})
	backup(t, repo, src, nil)
	repo.Close()

	bin := filepath.Join(tmp, "e2e.test")
	copyFile(t, os.Args[0], bin, 0o755)
	dst = filepath.Join(tmp, "dst")
	if err := os.Mkdir(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{repoDir, dst} {
		if out, err := exec.Command("chown", "-R", "65534:65534", p).CombinedOutput(); err != nil {
			t.Fatalf("chown: %v: %s", err, out)
		}
	}
	cmd := exec.Command(bin, "-test.run=^"+t.Name()+"$", "-test.v")
	cmd.Env = append(os.Environ(), nonRootChildEnv+"="+strings.Join([]string{repoDir, dst, sub}, "\n"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	out, err = cmd.CombinedOutput()
	return src, dst, out, err
}

// TestRestoreAsNonRootClosedDirs restores directories without search or
// write permission as an unprivileged user. Their contents must still get
// their own modes and times, although the directories are closed to that
// user once their own mode is applied.
func TestRestoreAsNonRootClosedDirs(t *testing.T) {
	if os.Getenv(nonRootChildEnv) != "" {
		nonRootChild(t)
		return
	}
	src, dst, out, err := nonRootRestore(t, closedDirs, "")
	if err != nil {
		t.Fatalf("restore as uid %d: %v\n%s", nobody, err, out)
	}
	for _, sub := range []string{"no-access", "no-search", "read-only"} {
		// Owners cannot be kept by nobody; modes and times can.
		diffs, err := treecmp.Compare(filepath.Join(src, sub), filepath.Join(dst, sub), treecmp.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range diffs {
			switch d.Field {
			case treecmp.FieldUID, treecmp.FieldGID:
			default:
				t.Errorf("in %s, restored as uid %d: %s", sub, nobody, d)
			}
		}
	}
}

// closedDirs makes directories an unprivileged user cannot enter (or
// write) once their mode is applied, each holding a file large enough to
// be still in the restorer's pipeline when its directory is finished.
func closedDirs(t *testing.T, src string) {
	for i, d := range []struct {
		name string
		mode os.FileMode
	}{{"no-access", 0o000}, {"no-search", 0o600}, {"read-only", 0o500}} {
		dir := filepath.Join(src, d.name)
		randomTree(t, dir, uint64(40+i), 24<<20)
		// Directly inside: the restorer reaches a file through its parent.
		file := filepath.Join(dir, "big")
		if err := os.Rename(filepath.Join(dir, "d0", fileName(0)), file); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(file, 0o640); err != nil {
			t.Fatal(err)
		}
		old := time.Date(2011, 3, 4, 5, 6, 7, 8, time.UTC)
		for _, p := range []string{file, filepath.Join(dir, "d0"), dir} {
			if err := os.Chtimes(p, old, old); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chmod(dir, d.mode); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRestoreAsNonRootSkipsDevices restores a whole tree as an unprivileged
// user: device nodes cannot be made without privilege, and must be
// warnings, not the end of the restore.
func TestRestoreAsNonRootSkipsDevices(t *testing.T) {
	if os.Getenv(nonRootChildEnv) != "" {
		nonRootChild(t)
		return
	}
	_, dst, out, err := nonRootRestore(t, func(t *testing.T, src string) { testtree.Build(t, src) }, "")
	if err != nil {
		t.Errorf("restore as uid %d: %v\n%s", nobody, err, out)
	}
	// The last directory in walk order must have been restored.
	if _, err := os.Lstat(filepath.Join(dst, "xattrs", "file")); err != nil {
		t.Errorf("restore as uid %d stopped early: %v", nobody, err)
	}
}

// nonRootChild is the unprivileged side of the tests above, run in a child
// process that nonRootRestore starts.
func nonRootChild(t *testing.T) {
	p := strings.Split(os.Getenv(nonRootChildEnv), "\n")
	repo := openRepo(t, p[0])
	snaps := listSnapshots(t, repo)
	if len(snaps) != 1 {
		t.Fatalf("%d snapshots", len(snaps))
	}
	warnings, err := snapshot.Restore(context.Background(), repo, snaps[0].Record, p[2], p[1],
		snapshot.RestoreOptions{Owner: fsmeta.OwnerKeep}, nil)
	for _, w := range warnings {
		t.Logf("warning: %s: %v", short(w.Path), w.Err)
	}
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
