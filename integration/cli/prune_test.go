package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestPruneWhileBackingUp runs backups of two changing trees and pushes to
// a remote in loops, while the main goroutine forgets old snapshots (on
// both sides) and prunes the repository and the remote again and again.
// Nothing may fail, and at the end both check clean with --read-data and
// restore every remaining snapshot bit-exact.
func TestPruneWhileBackingUp(t *testing.T) {
	dir := t.TempDir()
	repo, offsite := filepath.Join(dir, "repo"), filepath.Join(dir, "offsite")
	initRepo(t, repo)
	if err := os.Mkdir(offsite, 0o700); err != nil {
		t.Fatal(err)
	}
	mustHS(t, "remote", "add", "--repo", repo, "offsite", offsite)
	workers := []*treeWorker{newTreeWorker(t, filepath.Join(dir, "w0"), 0), newTreeWorker(t, filepath.Join(dir, "w1"), 1)}
	for _, w := range workers {
		if _, err := w.backup(t, repo); err != nil {
			t.Fatal(err)
		}
	}
	mustHSWith(t, pruneEnv(t), "push", "offsite", "--repo", repo)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	loop := func(what string, fn func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					t.Logf("%s: %d runs", what, n)
					return
				default:
				}
				err := fn()
				if err != nil && recordVanished(err) {
					continue
				}
				if err != nil {
					t.Errorf("%s: %v", what, err)
					return
				}
			}
		}()
	}
	for _, w := range workers {
		loop("backup of "+w.src, func() error {
			if err := w.mutate(); err != nil {
				return err
			}
			_, err := w.backup(t, repo)
			return err
		})
	}
	loop("push", func() error {
		if r := hsWith(t, pruneEnv(t), "push", "offsite", "--repo", repo); r.code != 0 {
			return fmt.Errorf("%s", r)
		}
		return nil
	})

	var total pruneJSON
	deadline := time.Now().Add(40 * time.Second)
	for round := 0; round < 4 || time.Now().Before(deadline); round++ {
		if t.Failed() {
			break
		}
		kept := forgetAllBut(t, repo, 2)
		keepOnly(t, offsite, kept)
		for _, args := range [][]string{{"prune", "--repo", repo, "--json"}, {"prune", "--remote", "offsite", "--repo", repo, "--json"}} {
			p := parsePrune(t, mustHSWith(t, pruneEnv(t), args...))
			t.Logf("round %d %v: %+v", round, args[1:3], p)
			total.Deleted += p.Deleted
			total.Waiting += p.Waiting
			total.Pardoned += p.Pardoned
			total.RepackPacks += p.RepackPacks
		}
	}
	close(stop)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("during the loops: %d packs deleted, %d repacked, %d pardoned; condemned packs waited %d times",
		total.Deleted, total.RepackPacks, total.Pardoned, total.Waiting)
	if total.Deleted == 0 || total.Waiting == 0 {
		t.Errorf("the loops did not exercise deletion (%d) and waiting for writers (%d)", total.Deleted, total.Waiting)
	}

	// With nothing else running, one more round settles everything.
	mustHSWith(t, pruneEnv(t), "push", "offsite", "--repo", repo)
	kept := forgetAllBut(t, repo, 2)
	keepOnly(t, offsite, kept)
	mustHSWith(t, pruneEnv(t), "prune", "--repo", repo, "--max-unused", "0")
	mustHSWith(t, pruneEnv(t), "prune", "--remote", "offsite", "--repo", repo, "--max-unused", "0")
	nothingLeft(t, repo, "--repo", repo)
	nothingLeft(t, offsite, "--remote", "offsite", "--repo", repo)
	checkClean(t, repo, "--read-data")
	checkClean(t, offsite, "--read-data")
	verifyRestores(t, repo, workers)
	verifyRestores(t, offsite, workers)
	// The index rebuilt from what prune left says the same.
	mustHSWith(t, pruneEnv(t), "index", "rebuild", "--repo", repo)
	checkClean(t, repo)
	verifyRestores(t, repo, workers)
}

// TestPruneRemovesStaleTempFiles: a process killed in the middle of
// writing an object leaves a temporary file in a local repository. The
// next backup or prune removes those whose last write is older than a
// stale lock, and leaves younger ones, which a live writer may still be
// writing.
func TestPruneRemovesStaleTempFiles(t *testing.T) {
	dir := t.TempDir()
	repo, src := filepath.Join(dir, "repo"), filepath.Join(dir, "src")
	initRepo(t, repo)
	if err := os.MkdirAll(src, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "a"), []byte("a"), 0o600); err != nil {
		t.Fatal(err)
	}
	leave := func(name string, age time.Duration) string {
		p := filepath.Join(repo, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("half a pack"), 0o600); err != nil {
			t.Fatal(err)
		}
		when := time.Now().Add(-age)
		if err := os.Chtimes(p, when, when); err != nil {
			t.Fatal(err)
		}
		return p
	}
	exists := func(p string) bool {
		_, err := os.Stat(p)
		return err == nil
	}
	for _, cmd := range [][]string{{"backup", "--repo", repo, src}, {"prune", "--repo", repo}} {
		stale := leave("packs/00/.tmp-STALE"+cmd[0], 31*time.Minute)
		young := leave("snapshots/.tmp-YOUNG"+cmd[0], 29*time.Minute)
		mustHSWith(t, pruneEnv(t), cmd...)
		if exists(stale) {
			t.Errorf("%s left %s, written 31 minutes ago", cmd[0], stale)
		}
		if !exists(young) {
			t.Errorf("%s removed %s, written 29 minutes ago", cmd[0], young)
		}
	}
}

// recordVanished reports a run that failed because forgetAllBut removed a
// snapshot record it had just listed. forgetAllBut does so without the
// lock the real forget takes, which keeps backups and pushes out while it
// removes records; the failure is the test's doing, and the run is
// repeated.
func recordVanished(err error) bool {
	return strings.Contains(err.Error(), "snapshots/") && strings.Contains(err.Error(), "does not exist")
}
