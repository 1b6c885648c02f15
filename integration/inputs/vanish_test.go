package inputs

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// content is the deterministic content of the file named rel, so that a
// file deleted from the source can still be checked in a restore.
func content(rel string) []byte {
	var seed [32]byte
	copy(seed[:], rel)
	b := make([]byte, 256<<10+len(rel))
	rand.NewChaCha8(seed).Read(b)
	binary.LittleEndian.PutUint64(b, uint64(len(rel)))
	return b
}

// TestSourceVanishing deletes parts of the source while it is backed up:
// every other directory, one after another, and then, in a second run,
// the whole source. The backup must end on its own with a clear result
// (exit 0, or 3 with the vanished paths listed), and its snapshot must
// restore exactly every file that was never deleted; a deleted file it
// did save must have its exact content.
func TestSourceVanishing(t *testing.T) {
	requireRoot(t)
	const dirs, perDir = 24, 16 // 100 MiB: long enough to delete during
	tests := []struct {
		name   string
		vanish func(src string)
	}{
		{name: "subtrees", vanish: func(src string) {
			for d := 0; d < dirs; d += 2 {
				os.RemoveAll(filepath.Join(src, fmt.Sprintf("d%02d", d)))
				time.Sleep(20 * time.Millisecond)
			}
		}},
		{name: "whole source", vanish: func(src string) {
			time.Sleep(50 * time.Millisecond)
			os.RemoveAll(src)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := tmpfs(t, "512m", 0)
			src := filepath.Join(root, "src")
			var all []string
			for d := range dirs {
				for f := range perDir {
					rel := fmt.Sprintf("d%02d/f%02d", d, f)
					write(t, filepath.Join(src, rel), string(content(rel)))
					all = append(all, rel)
				}
			}
			repo := filepath.Join(t.TempDir(), "repo")
			hs := newRepo(t, repo)
			p := hs.Start(t, "backup", "--json", src)
			// The lock is taken just before the walk starts: deleting
			// earlier would only make a smaller source.
			deadline := time.Now().Add(time.Minute)
			for locked := false; !locked; time.Sleep(time.Millisecond) {
				es, _ := os.ReadDir(filepath.Join(repo, "locks"))
				locked = len(es) > 0
				if _, stderr := p.Output(); !locked && (stderr != "" || time.Now().After(deadline)) {
					t.Fatalf("the backup took no lock within a minute, or failed first: %s", stderr)
				}
			}
			tt.vanish(src)
			r := p.Wait(t)
			t.Logf("backup exit %d after %s", r.Code, r.Took.Round(time.Millisecond))
			if r.Code == 1 && tt.name == "whole source" && strings.Contains(r.Stderr, "no such file or directory") {
				// Gone before the walk reached it (a slow start on a
				// loaded machine): nothing to back up is an error.
				return
			}
			if r.Code != 0 && r.Code != exitIncomplete {
				t.Fatalf("want exit 0 or %d: %s", exitIncomplete, r)
			}
			b := parseBackup(t, r)
			if r.Code == exitIncomplete && len(b.Incomplete) == 0 {
				t.Errorf("exit %d without an incomplete path: %s", exitIncomplete, r)
			}
			incomplete := func(rel string) bool {
				for _, s := range b.Incomplete {
					if p, _, _ := strings.Cut(s, ": "); p == rel || strings.HasPrefix(rel, p+"/") {
						return true
					}
				}
				return false
			}

			target := filepath.Join(root, "restore")
			hs.Must(t, "restore", b.ID, "--target", target)
			for _, rel := range all {
				got, err := os.ReadFile(filepath.Join(target, rel))
				_, serr := os.Stat(filepath.Join(src, rel))
				switch {
				case err == nil && !bytes.Equal(got, content(rel)) && !incomplete(rel):
					t.Errorf("%s restored with wrong content and not listed incomplete", rel)
				case err != nil && serr == nil:
					t.Errorf("%s was never deleted, but is not restored: %v", rel, err)
				}
			}
			// Nothing may appear that the source never had.
			filepath.WalkDir(target, func(p string, d fs.DirEntry, err error) error {
				rel, _ := filepath.Rel(target, p)
				if err == nil && d.Type().IsRegular() && !strings.HasPrefix(rel, "d") {
					t.Errorf("restore holds %s, which the source never had", rel)
				}
				return nil
			})
		})
	}
}
