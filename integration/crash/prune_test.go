package crash

import (
	"encoding/json"
	"path/filepath"
	"strings"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/integration/hsrun"
)

// pruneStepDelay makes prune pause at each of its steps
// (cmd/hindsight/prune.go), so that the kills spread over all of them.
const pruneStepDelay = "HINDSIGHT_TEST_PRUNE_STEP_DELAY=20ms"

// pruneJSON is the part of "prune --json" the harness judges.
type pruneJSON struct {
	UnusedPacks int `json:"unused_packs"`
	Orphans     int `json:"orphan_packs"`
	RepackPacks int `json:"repacked_packs"`
	Waiting     int `json:"waiting_packs"`
}

func parsePrune(h *harness, r hsrun.Result) pruneJSON {
	h.t.Helper()
	var p pruneJSON
	if err := json.Unmarshal([]byte(r.Stdout), &p); err != nil {
		h.t.Fatalf("prune --json printed no summary (%v): %s", err, r)
	}
	return p
}

// crashPrune kills prunes that have garbage to delete and packs to
// repack, made by backups of a changing tree and forget. The packs the
// killed run wrote and indexed (its repacks) must survive the rerun: a
// rerun that deleted them would have to copy their blobs again.
func crashPrune(h *harness) {
	t := h.t
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	initRepo(t, repo)
	h.hs = hsrun.New(t, hsBin, "HINDSIGHT_PASSWORD="+chunkstore.TestPassword, "HINDSIGHT_REPOSITORY="+repo, pruneStepDelay)
	tr := newTree(t, filepath.Join(dir, "src"), h.rng)
	backup := func() {
		saw := h.keep(tr)
		h.expected[parseBackup(t, h.hs.Must(t, "backup", "--json", tr.dir)).Snapshot] = saw
		tr.mutate(t)
	}
	for range 4 {
		backup()
	}
	args := []string{"prune", "--verbose", "--json", "--max-unused", "0"}
	const stepLogged = "msg=prune step="
	backup()
	h.forget()
	_, span := h.complete(stepLogged, args...)
	steps := map[string]int{} // kills per step of prune's
	for h.more() {
		backup()
		h.forget()
		before := packs(t, repo)
		p := h.hs.Start(t, args...)
		if !h.kill(p, stepLogged, span, nil) {
			h.ended(p)
			continue
		}
		_, stderr := p.Output()
		steps[lastStep(stderr)]++
		killed := packs(t, repo)
		unindexed := h.check("--read-data")
		h.restore(h.snapshots())

		r, took := h.complete(stepLogged, args...)
		span = took
		if w := parsePrune(h, r).Waiting; w != 0 {
			t.Fatalf("the rerun of a killed prune waits for %d packs, with nothing else running: %s", w, r)
		}
		final := packs(t, repo)
		var made, lost int64
		for name, size := range killed {
			if _, old := before[name]; old || unindexed[name] {
				continue
			}
			made += size
			if _, ok := final[name]; !ok {
				lost += size
				t.Errorf("kill %d: the rerun deleted pack %s, which the killed run had written and indexed", h.st.kills, name)
			}
		}
		h.st.durable += made
		h.st.again += lost
	}
	t.Logf("kills per step: %v", steps)
	if h.quota >= 20 && len(steps) < 6 {
		t.Errorf("the kills landed in only %d of prune's steps: %v", len(steps), steps)
	}
	p := parsePrune(h, h.hs.Must(t, "prune", "--dry-run", "--json", "--max-unused", "0"))
	if p.UnusedPacks+p.Orphans+p.RepackPacks+p.Waiting != 0 {
		t.Errorf("after the last rerun, a dry run still finds work: %+v", p)
	}
	h.check("--read-data")
	h.restore(h.snapshots())
}

// lastStep is the step a prune run with --verbose logged last ("open"
// before the first).
func lastStep(stderr string) string {
	i := strings.LastIndex(stderr, "msg=prune step=")
	if i < 0 {
		return "open"
	}
	step, _, _ := strings.Cut(stderr[i+len("msg=prune step="):], "\n")
	return step
}
