package crash

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/integration/hsrun"
)

// stepDelay is how long prune pauses at each of its steps
// (HINDSIGHT_TEST_PRUNE_STEP_DELAY, cmd/hindsight/prune.go), so that the
// kills spread over all of them.
const stepDelay = 20 * time.Millisecond

// stepLogged starts the line a prune run with --verbose logs at each step.
const stepLogged = "msg=prune step="

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
	h.hs = hsrun.New(t, hsBin, "HINDSIGHT_PASSWORD="+chunkstore.TestPassword, "HINDSIGHT_REPOSITORY="+repo,
		"HINDSIGHT_TEST_PRUNE_STEP_DELAY="+stepDelay.String())
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
	backup()
	h.forget()
	r, span := h.complete(stepLogged, args...)
	steps := map[string]int{} // kills per step of prune's
	for h.more() {
		backup()
		h.forget()
		before := packs(t, repo)
		// Every other kill is drawn from the whole run, where the steps
		// repeated per pack (drop, remove) take most of the time; the
		// others land, in turn, within the pause of one step the last
		// complete run went through, so that the one-off steps are hit
		// too, however the draws fall.
		ready, within := stepLogged, span
		if seen := stepsOf(r.Stderr); h.st.rounds%2 == 0 && len(seen) > 0 {
			ready, within = stepLogged+seen[h.st.rounds/2%len(seen)]+"\n", stepDelay/2
		}
		p := h.hs.Start(t, args...)
		if !h.kill(p, ready, within, nil) {
			h.ended(p)
			continue
		}
		_, stderr := p.Output()
		steps[lastStep(stderr)]++
		killed := packs(t, repo)
		unindexed := h.check("--read-data")
		h.restore(h.snapshots())

		r, span = h.complete(stepLogged, args...)
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
	if s := stepLines(stderr); len(s) > 0 {
		return s[len(s)-1]
	}
	return "open"
}

// stepsOf lists the steps a prune run with --verbose logged, each once,
// in the order they first showed.
func stepsOf(stderr string) []string {
	var steps []string
	for _, s := range stepLines(stderr) {
		if !slices.Contains(steps, s) {
			steps = append(steps, s)
		}
	}
	return steps
}

// stepLines lists the steps logged, in order, repeats included.
func stepLines(stderr string) []string {
	var steps []string
	for line := range strings.Lines(stderr) {
		if _, step, ok := strings.Cut(line, stepLogged); ok {
			steps = append(steps, strings.TrimSuffix(step, "\n"))
		}
	}
	return steps
}
