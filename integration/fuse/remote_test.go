package fuse

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/hindsight-backup/hindsight/remote/s3/s3test"
	"github.com/hindsight-backup/hindsight/remote/swift/swifttest"
)

// TestMountFromRemote mounts a repository that exists only on a real
// MinIO or a real Swift: back up, push, delete the local repository, mount
// the remote and copy files out with cp, as on a machine that has only the
// URL, the credentials and the password.
func TestMountFromRemote(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(t *testing.T) (url string, env []string)
	}{
		{"s3", func(t *testing.T) (string, []string) {
			srv := s3test.Start(t)
			srv.MakeBucket(t, "mounted")
			return srv.URL("mounted", "repo"), srv.Env()
		}},
		{"swift", func(t *testing.T) (string, []string) {
			return "swift:mounted/repo", swifttest.Start(t).Env()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRepo(t)
			url, env := tc.start(t)
			r.env = append(r.env, env...)
			r.env = append(r.env, "XDG_CACHE_HOME="+t.TempDir())
			src := filepath.Join(t.TempDir(), "src")
			small(t, src)
			r.backup(t, src)
			r.run(t, "remote", "add", "offsite", url)
			r.run(t, "push", "offsite")
			if err := os.RemoveAll(r.dir); err != nil {
				t.Fatal(err)
			}

			mnt, _ := r.mount(t, "--repo", url)
			snap := latest(t, mnt, src)
			dst := t.TempDir()
			for _, name := range []string{"public.txt", "big.bin", "sub/notes.txt"} {
				out := filepath.Join(dst, filepath.Base(name))
				if b, err := exec.Command("cp", "-a", filepath.Join(snap, name), out).CombinedOutput(); err != nil {
					t.Fatalf("cp %s out of the mount: %v: %s", name, err, b)
				}
				want, err := os.ReadFile(filepath.Join(src, name))
				if err != nil {
					t.Fatal(err)
				}
				if got, err := os.ReadFile(out); err != nil || !bytes.Equal(got, want) {
					t.Errorf("%s copied from the mount differs from the original (%v)", name, err)
				}
			}
		})
	}
}
