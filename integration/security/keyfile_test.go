package security

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestForeignKeyFile puts another repository's key file into a
// repository, as someone with write access to its remote could, or an
// operator copying keys/ between repositories by mistake. The foreign key
// opens with its own password but wraps another master key: nothing may
// be read or written with it, and the repository's own key must keep
// working beside it whichever of the two is tried first.
func TestForeignKeyFile(t *testing.T) {
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(src, "file.txt"), []byte("repository A's data\n"))
	const samePassword = "used for both"
	tests := []struct {
		name             string
		foreignPassword  string
		keepOwn          bool   // leave A's own key file in place
		foreignName      string // "" keeps the file's own name
		wantOpen         bool   // whether A opens with foreignPassword
		wantCode         int
		wantMsg          string
		ownPasswordWorks bool
	}{
		{name: "replaces ours", foreignPassword: "other password",
			wantCode: exitFailure, wantMsg: "fails authentication"},
		{name: "beside ours, other password", foreignPassword: "other password", keepOwn: true,
			wantCode: exitFailure, wantMsg: "fails authentication", ownPasswordWorks: true},
		// Reused passwords: the foreign key opens with A's password too,
		// and must not hide A's own key from it.
		{name: "beside ours, same password, tried first", foreignPassword: samePassword, keepOwn: true,
			foreignName: strings.Repeat("0", 64), wantOpen: true, ownPasswordWorks: true},
		{name: "beside ours, same password, tried last", foreignPassword: samePassword, keepOwn: true,
			foreignName: strings.Repeat("f", 64), wantOpen: true, ownPasswordWorks: true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := filepath.Join(tmp, fmt.Sprintf("a%d", i))
			b := filepath.Join(tmp, fmt.Sprintf("b%d", i))
			own := "A's password"
			if tt.foreignPassword == samePassword {
				own = samePassword
			}
			ha := runner(t, a, own)
			ha.Must(t, "init")
			ha.Must(t, "backup", src)
			runner(t, b, tt.foreignPassword).Must(t, "init")
			ownKeys := objects(t, a, "keys")
			foreign := objects(t, b, "keys")[0]
			if !tt.keepOwn {
				for _, k := range ownKeys {
					if err := os.Remove(filepath.Join(a, k)); err != nil {
						t.Fatal(err)
					}
				}
			}
			name := filepath.Base(foreign)
			if tt.foreignName != "" {
				name = tt.foreignName
			}
			kb, err := os.ReadFile(filepath.Join(b, foreign))
			if err != nil {
				t.Fatal(err)
			}
			write(t, filepath.Join(a, "keys", name), kb)

			before := contentState(t, a)
			hf := runner(t, a, tt.foreignPassword)
			target := filepath.Join(t.TempDir(), "restore")
			if tt.wantOpen {
				hf.Must(t, "restore", "latest", "--target", target)
				sameTree(t, src, target)
			} else {
				wantFailure(t, hf.Run(t, "backup", src), tt.wantCode, []string{tt.wantMsg})
				wantFailure(t, hf.Run(t, "restore", "latest", "--target", target), tt.wantCode, []string{tt.wantMsg})
				if after := contentState(t, a); !slices.Equal(before, after) {
					t.Errorf("a backup with the foreign key changed the repository:\nbefore %q\nafter  %q", before, after)
				}
			}
			if tt.ownPasswordWorks {
				ha.Must(t, "backup", src)
				target := filepath.Join(t.TempDir(), "own")
				ha.Must(t, "restore", "latest", "--target", target)
				sameTree(t, src, target)
			}
		})
	}
}

// contentState lists the repository's objects with their sizes: what a
// write would add to or change. The index and locks are left out; they
// are local state, not content.
func contentState(t testing.TB, repo string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(repo, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(repo, p)
		if rel == "index" || rel == "locks" {
			return filepath.SkipDir
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, fmt.Sprintf("%s %d", rel, fi.Size()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
