package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// pruneJSON is the part of `prune --json` the tests judge.
type pruneJSON struct {
	Snapshots   int      `json:"snapshots"`
	UnusedPacks int      `json:"unused_packs"`
	Orphans     int      `json:"orphan_packs"`
	RepackPacks int      `json:"repacked_packs"`
	Condemned   int      `json:"condemned_packs"`
	Deleted     int      `json:"deleted_packs"`
	Pardoned    int      `json:"pardoned_packs"`
	Waiting     int      `json:"waiting_packs"`
	WaitingFor  []string `json:"waiting_for"`
}

func parsePrune(t testing.TB, r result) pruneJSON {
	t.Helper()
	var p pruneJSON
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil {
		t.Fatalf("prune --json printed no JSON object: %v\n%s", err, r)
	}
	return p
}

// pruneEnv is hsEnv with a cache directory of the test's own: prune
// --remote keeps the remote's index there.
func pruneEnv(t testing.TB, extra ...string) []string {
	return append(hsEnv(testPassword), append([]string{"XDG_CACHE_HOME=" + filepath.Join(scratch, "cache-"+t.Name())}, extra...)...)
}

// treeWorker owns one source directory and changes a few of its files
// before each backup; the rest stay, so that backups reuse their parent's
// content. It keeps a copy of the tree as each snapshot saw it.
type treeWorker struct {
	src, expected string
	n             int
	iter          int
}

func newTreeWorker(t testing.TB, dir string, n int) *treeWorker {
	w := &treeWorker{src: filepath.Join(dir, "src"), expected: filepath.Join(dir, "expected"), n: n}
	for i := range 6 {
		writeRandomFile(t, w.file(i), int64(256<<10+i*(192<<10)), uint64(n*1_000_000+i))
	}
	if err := os.MkdirAll(w.expected, 0o755); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *treeWorker) file(i int) string {
	return filepath.Join(w.src, fmt.Sprintf("d%d", i%2), fmt.Sprintf("f%d.bin", i))
}

// mutate rewrites two of the six files with content never seen before.
func (w *treeWorker) mutate() error {
	w.iter++
	for _, i := range []int{w.iter % 6, (w.iter + 3) % 6} {
		if err := randomFile(w.file(i), int64(128<<10+w.iter%5*(100<<10)), uint64(w.n*1_000_000+w.iter*100+i)); err != nil {
			return err
		}
	}
	return nil
}

// backup makes a snapshot of the tree and keeps a copy of what it saw.
func (w *treeWorker) backup(t testing.TB, repo string) (string, error) {
	r := hsWith(t, pruneEnv(t), "backup", "--repo", repo, "--json", w.src)
	if r.code != 0 {
		return "", fmt.Errorf("%s", r)
	}
	var b backupJSON
	if err := json.Unmarshal([]byte(r.stdout), &b); err != nil {
		return "", fmt.Errorf("%v: %s", err, r)
	}
	out, err := exec.Command("cp", "-a", w.src, filepath.Join(w.expected, b.Snapshot)).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("cp: %v: %s", err, out)
	}
	return b.Snapshot, nil
}

// forgetAllBut removes the records of all but the newest keep snapshots
// of each source, as forget would, and returns the IDs kept.
func forgetAllBut(t testing.TB, repo string, keep int) []string {
	t.Helper()
	bySource := map[string][]snapshotJSON{}
	for _, s := range listSnapshots(t, repo) {
		bySource[s.Source] = append(bySource[s.Source], s)
	}
	var kept []string
	for _, snaps := range bySource {
		slices.SortFunc(snaps, func(a, b snapshotJSON) int { return a.Time.Compare(b.Time) })
		for i, s := range snaps {
			if i >= len(snaps)-keep {
				kept = append(kept, s.ID)
				continue
			}
			if err := os.Remove(filepath.Join(repo, "snapshots", s.ID)); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
		}
	}
	return kept
}

// keepOnly removes the snapshot records of repo not in ids.
func keepOnly(t testing.TB, repo string, ids []string) {
	t.Helper()
	for _, name := range filesIn(t, filepath.Join(repo, "snapshots")) {
		if !slices.Contains(ids, name) {
			if err := os.Remove(filepath.Join(repo, "snapshots", name)); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
		}
	}
}

// verifyRestores restores every snapshot of repo and compares it with the
// copy kept when it was made.
func verifyRestores(t testing.TB, repo string, workers []*treeWorker) {
	t.Helper()
	snaps := listSnapshots(t, repo)
	if len(snaps) == 0 {
		t.Fatalf("%s has no snapshots left to restore", repo)
	}
	for _, s := range snaps {
		var want string
		for _, w := range workers {
			if p := filepath.Join(w.expected, s.ID); exists(p) {
				want = p
			}
		}
		if want == "" {
			t.Fatalf("snapshot %s of %s: no copy of its tree was kept", s.ID, repo)
		}
		target := filepath.Join(t.TempDir(), "restore")
		mustHS(t, "restore", "--repo", repo, s.ID, "--target", target)
		compareTree(t, want, target)
	}
}

// checkClean runs check and fails on any problem, notices included.
func checkClean(t testing.TB, repo string, args ...string) {
	t.Helper()
	r := hsWith(t, pruneEnv(t), append([]string{"check", "--repo", repo, "--json"}, args...)...)
	// Notices are not damage: a replica opened as a repository of its own
	// builds its index first, and says so.
	if r.code != 0 || strings.Contains(r.stdout, `"level":"damage"`) {
		t.Fatalf("check of %s is not clean: %s", repo, r)
	}
}

// nothingLeft runs a dry-run prune of dir (args say which: --repo, or
// --remote too) and fails unless it finds nothing to delete, repack or
// wait for, and dir holds no condemnation record.
func nothingLeft(t testing.TB, dir string, args ...string) {
	t.Helper()
	p := parsePrune(t, mustHSWith(t, pruneEnv(t), append([]string{"prune", "--dry-run", "--json", "--max-unused", "0"}, args...)...))
	if p.UnusedPacks+p.Orphans+p.RepackPacks+p.Waiting+p.Deleted != 0 {
		t.Fatalf("after the final prune, a dry run still finds work in %s: %+v", dir, p)
	}
	if recs := filesIn(t, filepath.Join(dir, "condemned")); len(recs) != 0 {
		t.Fatalf("condemnation records left in %s: %v", dir, recs)
	}
}

func mustHSWith(t testing.TB, env []string, args ...string) result {
	t.Helper()
	r := hsWith(t, env, args...)
	if r.code != 0 {
		t.Fatalf("expected exit 0 from %s", r)
	}
	return r
}
