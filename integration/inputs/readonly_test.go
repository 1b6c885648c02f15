package inputs

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/hindsight-backup/hindsight/integration/hsrun"
	"github.com/hindsight-backup/hindsight/integration/testtree"
	"github.com/hindsight-backup/hindsight/integration/treecmp"
)

// repoState lists every entry of a repository with its mode, size and
// modification time: what any write would change.
func repoState(t testing.TB, repo string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(repo, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(repo, p)
		out = append(out, fmt.Sprintf("%s %v %d %d", rel, fi.Mode(), fi.Size(), fi.ModTime().UnixNano()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestReadOnlyRepository points hindsight at a repository it cannot write:
// a read-only bind mount (as root), and a tree of read-only modes (as
// nobody, whom modes bind). A backup must fail with an error that says
// why and names the place, and change nothing. A restore must either be
// exact or fail the same way.
func TestReadOnlyRepository(t *testing.T) {
	requireRoot(t)
	tests := []struct {
		name string
		// protect makes repo unwritable and returns the runner's
		// settings and the path hindsight is given.
		protect func(t *testing.T, repo string) (string, *syscall.SysProcAttr)
		msg     string
	}{
		{name: "read-only bind mount", msg: "read-only file system", protect: func(t *testing.T, repo string) (string, *syscall.SysProcAttr) {
			ro := repo + "-ro"
			if err := os.Mkdir(ro, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{{"--bind", repo, ro}, {"-o", "remount,bind,ro", ro}} {
				out, err := exec.Command("mount", args...).CombinedOutput()
				testtree.Require(t, err == nil, "mount %v: %v: %s", args, err, out)
			}
			t.Cleanup(func() { unmount(t, ro) })
			return ro, nil
		}},
		{name: "read-only modes", msg: "permission denied", protect: func(t *testing.T, repo string) (string, *syscall.SysProcAttr) {
			err := filepath.WalkDir(repo, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				mode := os.FileMode(0o444)
				if d.IsDir() {
					mode = 0o555
				}
				if err := os.Chown(p, nobody, nobody); err != nil {
					return err
				}
				return os.Chmod(p, mode)
			})
			if err != nil {
				t.Fatal(err)
			}
			return repo, &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := nobodyDir(t)
			src := filepath.Join(home, "src")
			write(t, filepath.Join(src, "a.txt"), "first\n")
			repo := filepath.Join(home, "repo")
			hs := newRepo(t, repo)
			hs.Must(t, "backup", src)
			write(t, filepath.Join(src, "b.txt"), "added later\n")

			path, attr := tt.protect(t, repo)
			before := repoState(t, repo)
			ro := hs.With("HINDSIGHT_REPOSITORY="+path, "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, "config"),
				"XDG_CACHE_HOME="+filepath.Join(home, "cache"), "XDG_RUNTIME_DIR="+home)
			ro.SysProcAttr = attr
			wantClear(t, ro.Run(t, "backup", src), path, tt.msg)
			target := filepath.Join(home, "restore")
			if r := ro.Run(t, "restore", "latest", "--target", target); r.Code == 0 {
				if err := os.Remove(filepath.Join(src, "b.txt")); err != nil {
					t.Fatal(err)
				}
				sameTree(t, src, target, treecmp.Options{SkipRootMeta: true})
			} else {
				wantClear(t, r, path, tt.msg)
			}
			if after := repoState(t, repo); !slices.Equal(before, after) {
				t.Errorf("the repository changed:\nbefore %q\nafter  %q", before, after)
			}
		})
	}
}

// wantClear demands exit 1 and an error that says msg and names a place
// inside the repository at path.
func wantClear(t *testing.T, r hsrun.Result, path, msg string) {
	t.Helper()
	if r.Code != exitFailure || !strings.Contains(r.Stderr, msg) || !strings.Contains(r.Stderr, path) {
		t.Errorf("want exit %d and an error saying %q about %s: %s", exitFailure, msg, path, r)
	}
}
