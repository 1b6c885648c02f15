package crash

import (
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/integration/hsrun"
)

// treeSlack bounds what a killed backup and its rerun store beyond the
// content of the change: the directory trees and the packs' own overhead.
// A rerun that stored the killed run's work again would exceed it by the
// size of that work.
const treeSlack = 256 << 10

// backupCommand is a command that backs a tree up, and what to do right
// before and after a kill.
type backupCommand struct {
	args   []string // prints the backup's JSON summary
	ready  string   // on stderr once the repository is open; "": none
	onKill func(p *hsrun.Proc) func()
}

// crashBackup kills backups of a changing tree into a local repository.
func crashBackup(h *harness) {
	dir := h.t.TempDir()
	repo := filepath.Join(dir, "repo")
	initRepo(h.t, repo)
	h.hs = hsrun.New(h.t, hsBin, "HINDSIGHT_PASSWORD="+chunkstore.TestPassword, "HINDSIGHT_REPOSITORY="+repo)
	tr := newTree(h.t, filepath.Join(dir, "src"), h.rng)
	h.backups(tr, repo, backupCommand{args: []string{"backup", "--verbose", "--json", tr.dir}, ready: "backup starting"})
}

// backups runs the rounds of c, which backs tr up into repo: change the
// tree, run c, kill it, check, restore, run c again to its end.
func (h *harness) backups(tr *tree, repo string, c backupCommand) {
	t := h.t
	first := h.keep(tr)
	r, span := h.complete(c.ready, c.args...)
	h.expected[parseBackup(t, r).Snapshot] = first
	for h.more() {
		change := tr.mutate(t)
		h.forget()
		saw := h.keep(tr)
		before := packs(t, repo)
		p := h.hs.Start(t, c.args...)
		var after func()
		var onKill func()
		if c.onKill != nil {
			onKill = func() { after = c.onKill(p) }
		}
		if !h.kill(p, c.ready, span, onKill) {
			h.claim(saw, []string{parseBackup(t, h.ended(p)).Snapshot})
			continue
		}
		if after != nil {
			after()
		}
		ids := h.snapshots()
		h.claim(saw, ids)
		unindexed := h.check("--read-data")
		h.restore(ids)
		durable := indexedNew(before, packs(t, repo), unindexed)

		var r hsrun.Result
		r, span = h.complete(c.ready, c.args...)
		b := parseBackup(t, r)
		h.claim(saw, []string{b.Snapshot})
		// new_bytes counts file content only: the rerun's plus what the
		// killed run left indexed make the change, and the directory
		// trees and pack overhead in those packs; more is work done twice.
		again := b.NewBytes + durable - change
		h.st.durable += durable
		h.st.again += max(again, 0)
		t.Logf("kill %d: the killed run left %d bytes of packs indexed; the rerun stored %d new bytes of a %d-byte change",
			h.st.kills, durable, b.NewBytes, change)
		if again > treeSlack {
			t.Errorf("kill %d: the rerun stored %d bytes more than the change less what the killed run had made durable",
				h.st.kills, again)
		}
	}
	h.scratchCleared(repo, c)
}

// scratchCleared runs c once more after the killed runs' claims on scratch
// packs have aged past the grace chunkstore gives a claim being made (the
// harness's reruns come sooner), and fails unless it removed every pack
// the killed runs left half-written.
func (h *harness) scratchCleared(repo string, c backupCommand) {
	t := h.t
	dir := filepath.Join(repo, "tmp")
	old := time.Now().Add(-time.Hour)
	entries, _ := os.ReadDir(dir)
	left := 0
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "pack-") {
			left++
		}
		if err := os.Chtimes(filepath.Join(dir, e.Name()), old, old); err != nil {
			t.Fatal(err)
		}
	}
	h.complete(c.ready, c.args...)
	entries, _ = os.ReadDir(dir)
	for _, e := range entries {
		t.Errorf("%s left in the scratch directory after a backup", e.Name())
	}
	t.Logf("%d scratch packs of killed runs were removed", left)
}
