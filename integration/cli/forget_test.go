package cli

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hindsight-backup/hindsight/chunkstore/lock"
	"github.com/hindsight-backup/hindsight/integration/testtree"
	"github.com/hindsight-backup/hindsight/remote/local"
)

const forgetHost = "forgettest"

// TestForgetHistoryAndMount makes four snapshots of a tree that changes
// between them, then forgets the second, the first and the last, and
// checks after each step what 'hindsight history' and the mount's
// .history directory show: exactly the versions the remaining snapshots
// hold, each under the first remaining snapshot that holds it, even where
// that snapshot was backed up against the forgotten one and saw no
// change.
func TestForgetHistoryAndMount(t *testing.T) {
	requireFUSE(t)
	repo := filepath.Join(t.TempDir(), "repo")
	initRepo(t, repo)
	src := filepath.Join(t.TempDir(), "src")
	steps := []map[string]string{
		{"f.txt": "v1", "g.txt": "g1", "d/keep.txt": "k"},
		{"f.txt": "v2 two", "d/keep.txt": "k"},
		{"f.txt": "v2 two", "d/keep.txt": "k", "new.txt": "n"},
		{"f.txt": "v3 three", "d/keep.txt": "k", "new.txt": "n"},
	}
	var ids []string
	for i, files := range steps {
		if i > 0 {
			time.Sleep(time.Second) // distinct names in the mount, which have seconds
		}
		setFiles(t, src, files)
		r := mustHS(t, "backup", "--repo", repo, "--host", forgetHost, "--json", src)
		ids = append(ids, parseBackup(t, r).Snapshot)
	}
	names := snapshotNames(t, repo, src) // the mount's name of each snapshot, by ID
	type version struct{ snap, content string }
	check := func(t *testing.T, want map[string][]version) {
		t.Helper()
		for file, vs := range want {
			var wantHist []string
			for _, v := range vs {
				wantHist = append(wantHist, v.snap[:8])
			}
			if got := historyIDs(t, repo, filepath.Join(src, file)); !slices.Equal(got, wantHist) {
				t.Errorf("history %s: %q, want %q", file, got, wantHist)
			}
		}
		withMount(t, repo, func(mnt string) {
			hist := filepath.Join(mnt, forgetHost+strings.ReplaceAll(src, "/", "-"), ".history")
			var top []string
			for file, vs := range want {
				if len(vs) > 0 {
					top = append(top, strings.Split(file, "/")[0])
				}
				var got, wantDir []string
				for _, v := range vs {
					if v.content != "" { // a deletion: history lists it, the mount does not
						wantDir = append(wantDir, names[v.snap]+"="+v.content)
					}
				}
				es, _ := os.ReadDir(filepath.Join(hist, file))
				for _, e := range es {
					b, err := os.ReadFile(filepath.Join(hist, file, e.Name()))
					if err != nil {
						t.Errorf("%s/%s: %v", file, e.Name(), err)
					}
					got = append(got, e.Name()+"="+string(b))
				}
				if !slices.Equal(got, wantDir) {
					t.Errorf(".history/%s: %q, want %q", file, got, wantDir)
				}
			}
			slices.Sort(top)
			top = slices.Compact(top)
			var got []string
			es, err := os.ReadDir(hist)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range es {
				got = append(got, e.Name())
			}
			if !slices.Equal(got, top) {
				t.Errorf(".history lists %q, want %q", got, top)
			}
		})
	}

	a, b, c, d := ids[0], ids[1], ids[2], ids[3]
	mustHS(t, "forget", "--repo", repo, b[:8])
	t.Run("middle", func(t *testing.T) {
		check(t, map[string][]version{
			"f.txt":      {{a, "v1"}, {c, "v2 two"}, {d, "v3 three"}},
			"g.txt":      {{a, "g1"}, {c, ""}},
			"new.txt":    {{c, "n"}},
			"d/keep.txt": {{a, "k"}},
		})
	})
	mustHS(t, "forget", "--repo", repo, a[:8])
	t.Run("first", func(t *testing.T) {
		check(t, map[string][]version{
			"f.txt":      {{c, "v2 two"}, {d, "v3 three"}},
			"g.txt":      nil,
			"new.txt":    {{c, "n"}},
			"d/keep.txt": {{c, "k"}},
		})
	})
	mustHS(t, "forget", "--repo", repo, d[:8])
	t.Run("last", func(t *testing.T) {
		check(t, map[string][]version{
			"f.txt":      {{c, "v2 two"}},
			"new.txt":    {{c, "n"}},
			"d/keep.txt": {{c, "k"}},
		})
	})
	mustHS(t, "check", "--repo", repo)
	// A backup's lock keeps forget out; a mount's does not.
	be, err := local.OpenDir(repo)
	if err != nil {
		t.Fatal(err)
	}
	backup, err := lock.Acquire(t.Context(), be, false, "backup", lock.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r := hs(t, "forget", "--repo", repo, c[:8]); r.code != 12 || !strings.Contains(r.stderr, `"backup"`) {
		t.Errorf("forget while a backup runs: %s", r)
	}
	if err := backup.Release(); err != nil {
		t.Fatal(err)
	}
	withMount(t, repo, func(string) {
		mustHS(t, "forget", "--repo", repo, c[:8])
	})
	mustHS(t, "check", "--repo", repo)
}

// setFiles makes dir hold exactly files, leaving unchanged files alone.
func setFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for _, p := range []string{"f.txt", "g.txt", "new.txt"} {
		if _, ok := files[p]; !ok {
			os.Remove(filepath.Join(dir, p))
		}
	}
	for p, content := range files {
		full := filepath.Join(dir, p)
		if b, err := os.ReadFile(full); err == nil && string(b) == content {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// historyIDs is the snapshot ID prefix of each version 'history' lists;
// none when it finds no version.
func historyIDs(t *testing.T, repo, path string) []string {
	t.Helper()
	r := hs(t, "history", "--repo", repo, "--host", forgetHost, "--json", path)
	if r.code != 0 {
		if !strings.Contains(r.stderr, "no versions") {
			t.Fatalf("history: %s", r)
		}
		return nil
	}
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var v struct {
			Snapshot string `json:"snapshot_id"`
		}
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("history --json: %v\n%s", err, r)
		}
		out = append(out, v.Snapshot[:8])
	}
	return out
}

// snapshotNames returns the directory name the mount gives each snapshot
// of src, by ID: the source's entries other than latest and .history,
// in time order like the snapshots.
func snapshotNames(t *testing.T, repo, src string) map[string]string {
	t.Helper()
	snaps := listSnapshots(t, repo)
	out := make(map[string]string)
	withMount(t, repo, func(mnt string) {
		es, err := os.ReadDir(filepath.Join(mnt, forgetHost+strings.ReplaceAll(src, "/", "-")))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range es {
			if e.Name() != "latest" && e.Name() != ".history" {
				names = append(names, e.Name())
			}
		}
		if len(names) != len(snaps) {
			t.Fatalf("mount lists %q for %d snapshots", names, len(snaps))
		}
		for i, s := range snaps {
			out[s.ID] = names[i]
		}
	})
	return out
}

func requireFUSE(t testing.TB) {
	t.Helper()
	requireRoot(t)
	_, err := os.Stat("/dev/fuse")
	testtree.Require(t, err == nil, "/dev/fuse: %v", err)
	_, err = exec.LookPath("fusermount3")
	testtree.Require(t, err == nil, "fusermount3 (Debian package fuse3): %v", err)
}

// withMount mounts the repository in the foreground, runs fn, unmounts,
// and waits for the mount to exit, which releases its lock.
func withMount(t *testing.T, repo string, fn func(mnt string)) {
	t.Helper()
	mnt := t.TempDir()
	p := start(t, "mount", "--repo", repo, mnt)
	// /proc/mounts lists the mount before go-fuse's own first request (its
	// poll probe holds a file open) is done; an unmount then fails with
	// EBUSY. The command says when it is ready, as a person would wait for.
	ready := "mounted at " + mnt + ";"
	waitFor(t, 30*time.Second, "the mount", func() bool {
		return isMountPoint(mnt) && strings.Contains(p.stderr.String(), ready) || p.exited()
	})
	if p.exited() {
		t.Fatalf("mount exited: %s", p.wait(t))
	}
	defer func() {
		if out, err := exec.Command("fusermount3", "-u", mnt).CombinedOutput(); err != nil {
			t.Errorf("fusermount3 -u: %v: %s", err, out)
		}
		if r := p.wait(t); r.code != 0 {
			t.Errorf("mount: %s", r)
		}
	}()
	fn(mnt)
}
