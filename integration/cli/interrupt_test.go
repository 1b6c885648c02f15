package cli

import (
	"io/fs"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestInterruptedBackup stops a 300 MiB backup with SIGINT (Ctrl-C) and
// SIGTERM (systemd stopping a unit) once it has stored a pack. It must
// exit on its own with an error, record no snapshot, release its lock and
// clean its scratch files; the finished packs are kept, so the next backup
// stores only what is missing.
func TestInterruptedBackup(t *testing.T) {
	root, total := bigTree(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		name := map[syscall.Signal]string{syscall.SIGINT: "SIGINT", syscall.SIGTERM: "SIGTERM"}[sig]
		t.Run(name, func(t *testing.T) {
			repo := filepath.Join(t.TempDir(), "repo")
			initRepo(t, repo)
			p := start(t, "backup", "--repo", repo, "--json", root)
			waitFor(t, time.Minute, "the first finished pack", func() bool {
				return p.exited() || len(packFiles(t, repo)) > 0
			})
			if p.exited() {
				t.Fatalf("the backup ended before it could be interrupted: %s", p.wait(t))
			}
			p.signal(t, sig)
			sigAt := time.Now()
			r := p.wait(t)
			t.Logf("%s after %s; exited %s later with %d", name, sigAt.Sub(p.start).Round(time.Millisecond),
				p.end.Sub(sigAt).Round(time.Millisecond), r.code)
			if r.code == 0 {
				t.Fatalf("an interrupted backup exited 0: %s", r)
			}
			if !strings.Contains(r.stderr, "interrupted") {
				t.Errorf("stderr should say the backup was interrupted: %s", r)
			}
			if strings.Contains(r.stdout, "snapshot_id") {
				t.Errorf("an interrupted backup printed a summary: %s", r)
			}
			if got := filesIn(t, filepath.Join(repo, "snapshots")); len(got) != 0 {
				t.Errorf("interrupted backup recorded snapshots: %v", got)
			}
			if n := len(listSnapshots(t, repo)); n != 0 {
				t.Errorf("snapshots lists %d snapshots after an interrupted backup", n)
			}
			if got := filesIn(t, filepath.Join(repo, "locks")); len(got) != 0 {
				t.Errorf("lock objects left in REPO/locks: %v", got)
			}
			if got := leftovers(t, repo); len(got) != 0 {
				t.Errorf("temporary files left behind: %v", got)
			}
			kept := len(packFiles(t, repo))

			again := parseBackup(t, mustHS(t, "backup", "--repo", repo, "--json", root))
			t.Logf("%d packs kept; the next backup stored %d of %d bytes (new %d)", kept, again.StoredBytes, total, again.NewBytes)
			if again.Bytes != uint64(total) || !again.Complete {
				t.Errorf("the backup after the interruption covered %d bytes (complete %v), want %d", again.Bytes, again.Complete, total)
			}
			// At least one full pack (32 MiB or more) was kept: the next run
			// must not store it again. Half a pack of slack covers the
			// per-blob overhead and the trees.
			if limit := uint64(total - 16*mib); again.NewBytes >= limit || again.StoredBytes >= limit {
				t.Errorf("the backup after the interruption stored %d new bytes (%d stored) of %d: the kept packs were not reused",
					again.NewBytes, again.StoredBytes, total)
			}
			if r := hs(t, "check", "--repo", repo, "--read-data"); r.code != 0 {
				t.Errorf("check after an interrupted and a complete backup: %s", r)
			}
		})
	}
}

// leftovers finds scratch files: packs being written (REPO/tmp/*.tmp) and
// the local backend's half-saved objects (.tmp-*) anywhere outside the
// index.
func leftovers(t testing.TB, repo string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(repo, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(repo, p)
		if rel == "index" {
			return fs.SkipDir
		}
		name := d.Name()
		if !d.IsDir() && (strings.HasSuffix(name, ".tmp") || strings.HasPrefix(name, ".tmp-")) {
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
