package inputs

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/hindsight-backup/hindsight/integration/hsrun"
)

const nobody = 65534

// nobodyDir makes a directory that nobody owns, outside t.TempDir (whose
// parent only root may enter).
func nobodyDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hindsight-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chown(dir, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestPermissionDeniedAsNobody backs up, as the unprivileged user nobody,
// a tree with a root-only file and a root-only directory. The backup must
// save what nobody may read, exit 3, and name both paths it could not
// read; the snapshot must list them too.
func TestPermissionDeniedAsNobody(t *testing.T) {
	requireRoot(t)
	home := nobodyDir(t)
	src := filepath.Join(home, "src")
	files := map[string]os.FileMode{"readable.txt": 0o644, "secret.txt": 0o600, "private/inner.txt": 0o644, "sub/ok.txt": 0o644}
	for name, mode := range files {
		p := filepath.Join(src, name)
		write(t, p, "content of "+name+"\n")
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(src, "private"), 0o700); err != nil {
		t.Fatal(err)
	}
	// The repository and everything hindsight writes belong to nobody.
	for _, d := range []string{"repo", "config", "cache", "run"} {
		if err := os.Mkdir(filepath.Join(home, d), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(filepath.Join(home, d), nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}
	hs := hsrun.New(t, bin, "HOME="+home, "HINDSIGHT_REPOSITORY="+filepath.Join(home, "repo"), "HINDSIGHT_PASSWORD="+testPassword,
		"XDG_CONFIG_HOME="+filepath.Join(home, "config"), "XDG_CACHE_HOME="+filepath.Join(home, "cache"),
		"XDG_RUNTIME_DIR="+filepath.Join(home, "run"))
	hs.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	hs.Must(t, "init")

	r := hs.Run(t, "backup", "--json", src)
	if r.Code != exitIncomplete {
		t.Fatalf("want exit %d: %s", exitIncomplete, r)
	}
	b := parseBackup(t, r)
	for _, want := range []string{"secret.txt", "private"} {
		if !slices.ContainsFunc(b.Incomplete, func(s string) bool { return strings.HasPrefix(s, want+": ") }) {
			t.Errorf("the backup's incomplete list %q does not name %s", b.Incomplete, want)
		}
	}
	if len(b.Incomplete) != 2 {
		t.Errorf("incomplete: %q, want only secret.txt and private", b.Incomplete)
	}

	target := filepath.Join(home, "restore")
	hs.Must(t, "restore", b.ID, "--target", target)
	for _, name := range []string{"readable.txt", "sub/ok.txt"} {
		got, err := os.ReadFile(filepath.Join(target, name))
		if want := "content of " + name + "\n"; err != nil || string(got) != want {
			t.Errorf("restored %s: %q, %v; want %q", name, got, err, want)
		}
	}
}
