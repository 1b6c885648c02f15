package crash

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/integration/hsrun"
	"github.com/hindsight-backup/hindsight/integration/treecmp"
	"github.com/hindsight-backup/hindsight/remote/local"
)

// stats are one command's figures.
type stats struct {
	name      string
	kills     int
	rounds    int   // runs started to be killed; some end first
	restores  int   // snapshots restored and compared
	lostBytes int64 // content of files a restore got wrong or lost
	durable   int64 // bytes the killed runs had made durable
	again     int64 // bytes the reruns stored or sent again (an upper bound)
}

func (s *stats) String() string {
	return fmt.Sprintf("%s: %d kills in %d runs, %d restores verified, %d bytes lost, %d durable bytes of killed runs, %d redone",
		s.name, s.kills, s.rounds, s.restores, s.lostBytes, s.durable, s.again)
}

// harness runs one command's rounds: each starts the command, kills it at
// a moment drawn from rng, and checks what it left.
type harness struct {
	t     *testing.T
	rng   *rand.Rand
	quota int // kills to reach
	st    *stats
	hs    hsrun.Runner
	// expected holds, for each snapshot the repository may list, a copy
	// of the tree it saw.
	expected map[string]string
	copies   string // where the copies go
	kept     int    // copies made
}

func newHarness(t *testing.T, rng *rand.Rand, quota int, st *stats) *harness {
	return &harness{t: t, rng: rng, quota: quota, st: st, expected: map[string]string{}, copies: t.TempDir()}
}

// more says whether another round is needed: until the quota of kills,
// within three times as many runs (a run may end before its kill).
func (h *harness) more() bool {
	if h.st.kills >= h.quota {
		return false
	}
	if h.st.rounds >= 3*h.quota {
		h.t.Fatalf("only %d of %d runs were killed before they ended", h.st.kills, h.st.rounds)
	}
	h.st.rounds++
	return true
}

// waitReady waits for ready ("": none) on p's stderr and reports when it
// showed, after p's start; false if p ended first.
func waitReady(p *hsrun.Proc, ready string, start time.Time) (time.Duration, bool) {
	for ready != "" {
		if _, stderr := p.Output(); strings.Contains(stderr, ready) {
			break
		}
		select {
		case <-p.Done():
			return 0, false
		case <-time.After(2 * time.Millisecond):
		}
	}
	return time.Since(start), true
}

// kill waits for ready on p's stderr ("": none), then a random part of
// span, and kills p with SIGKILL unless it ended first; onKill, if not
// nil, runs just before. It reports whether the kill ended p.
func (h *harness) kill(p *hsrun.Proc, readyOn string, span time.Duration, onKill func()) bool {
	h.t.Helper()
	if _, ok := waitReady(p, readyOn, time.Now()); !ok {
		return false
	}
	select {
	case <-p.Done():
		return false
	case <-time.After(time.Duration(h.rng.Int64N(int64(span) + 1))):
	}
	if onKill != nil {
		onKill()
	}
	if !p.Kill(h.t) {
		return false
	}
	h.st.kills++
	return true
}

// complete runs args to a successful end and returns its result and the
// time it spent after ready showed: the span to draw the next kill from.
func (h *harness) complete(readyOn string, args ...string) (hsrun.Result, time.Duration) {
	h.t.Helper()
	start := time.Now()
	p := h.hs.Start(h.t, args...)
	at, _ := waitReady(p, readyOn, start)
	r := p.Wait(h.t)
	if r.Code != 0 {
		h.t.Fatalf("want exit 0: %s", r)
	}
	return r, r.Took - at
}

// ended checks a run that ended before its kill.
func (h *harness) ended(p *hsrun.Proc) hsrun.Result {
	h.t.Helper()
	r := p.Wait(h.t)
	if r.Code != 0 {
		h.t.Fatalf("a run that was not killed failed: %s", r)
	}
	return r
}

// initRepo makes a local repository with the smallest packs, so that a
// few MB of change fill several, and a fast key derivation.
func initRepo(t testing.TB, dir string) {
	t.Helper()
	be, err := local.Create(vfs.Default, dir)
	if err == nil {
		_, err = chunkstore.Init(context.Background(), be, []byte(chunkstore.TestPassword),
			chunkstore.InitOptions{PackSize: 1 << 20, KDF: chunkstore.TestKDF()})
	}
	if err != nil {
		t.Fatal(err)
	}
}

// packs lists the pack files of a local repository with their sizes.
func packs(t testing.TB, repo string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	err := filepath.Walk(filepath.Join(repo, "packs"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() && !strings.HasPrefix(fi.Name(), ".") {
			out[fi.Name()] = fi.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// check runs check with args and fails the test on any damage. It
// returns the packs check found outside the index: those a killed run
// stored but had not indexed yet, which the next run cannot know of.
func (h *harness) check(args ...string) (unindexed map[string]bool) {
	h.t.Helper()
	r := h.hs.Run(h.t, append([]string{"check", "--json"}, args...)...)
	if r.Code != 0 || strings.Contains(r.Stdout, `"level":"damage"`) {
		h.t.Fatalf("check after a kill is not clean: %s", r)
	}
	unindexed = map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
		var l struct {
			Pack    string `json:"pack"`
			Message string `json:"message"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Pack != "" && strings.HasPrefix(l.Message, "not in the index") {
			unindexed[l.Pack] = true
		}
	}
	return unindexed
}

// indexedNew is the size of the packs in after but not in before that
// the index knows: what a killed run made durable for the next to reuse.
func indexedNew(before, after map[string]int64, unindexed map[string]bool) int64 {
	var n int64
	for name, size := range after {
		if _, ok := before[name]; !ok && !unindexed[name] {
			n += size
		}
	}
	return n
}

// snapshots lists the IDs of the snapshots in the repository args name
// (none: the runner's).
func (h *harness) snapshots(args ...string) []string {
	h.t.Helper()
	r := h.hs.Must(h.t, append([]string{"snapshots", "--json"}, args...)...)
	var ids []string
	dec := json.NewDecoder(strings.NewReader(r.Stdout))
	for dec.More() {
		var s struct {
			ID string `json:"id"`
		}
		if err := dec.Decode(&s); err != nil {
			h.t.Fatalf("snapshots --json: %v\n%s", err, r)
		}
		ids = append(ids, s.ID)
	}
	return ids
}

// keep copies tr as it is now, for the snapshots about to be taken of it.
func (h *harness) keep(tr *tree) string {
	h.t.Helper()
	h.kept++
	dir := filepath.Join(h.copies, strconv.Itoa(h.kept))
	tr.keep(h.t, dir)
	return dir
}

// claim records copy as the tree of every listed snapshot not known yet:
// a run killed after its snapshot record was durable committed it.
func (h *harness) claim(copy string, ids []string) {
	for _, id := range ids {
		if _, ok := h.expected[id]; !ok {
			h.expected[id] = copy
		}
	}
}

// restore restores each of ids (from the repository args name) and
// compares it with the copy of the tree it saw.
func (h *harness) restore(ids []string, args ...string) {
	h.t.Helper()
	for _, id := range ids {
		want, ok := h.expected[id]
		if !ok {
			h.t.Fatalf("snapshot %s is listed, but no run that could have made it was started", id)
		}
		target := filepath.Join(h.t.TempDir(), "restore")
		h.hs.Must(h.t, append([]string{"restore", id, "--target", target}, args...)...)
		diffs, err := treecmp.Compare(want, target, treecmp.Options{SkipRootMeta: true})
		if err != nil {
			h.t.Fatal(err)
		}
		for _, d := range diffs {
			h.t.Errorf("snapshot %s restores wrong: %s", id, d)
			if fi, err := os.Lstat(filepath.Join(want, d.Path)); err == nil && fi.Mode().IsRegular() {
				h.st.lostBytes += fi.Size()
			}
		}
		h.st.restores++
		if err := os.RemoveAll(target); err != nil {
			h.t.Fatal(err)
		}
	}
}

// forget keeps the newest two snapshots, so that restoring them all
// after each kill stays cheap, and drops the copies no snapshot needs.
func (h *harness) forget() {
	h.t.Helper()
	r := h.hs.Must(h.t, "forget", "--keep-last", "2", "--json")
	listed := map[string]bool{}
	dec := json.NewDecoder(strings.NewReader(r.Stdout))
	for dec.More() {
		var s struct {
			ID   string `json:"id"`
			Keep bool   `json:"keep"`
		}
		if err := dec.Decode(&s); err != nil {
			h.t.Fatalf("forget --json: %v\n%s", err, r)
		}
		listed[s.ID] = s.Keep
	}
	used := map[string]bool{}
	for id, dir := range h.expected {
		if listed[id] {
			used[dir] = true
		} else {
			delete(h.expected, id)
		}
	}
	entries, err := os.ReadDir(h.copies)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, e := range entries {
		if dir := filepath.Join(h.copies, e.Name()); !used[dir] {
			if err := os.RemoveAll(dir); err != nil {
				h.t.Fatal(err)
			}
		}
	}
}

// backupJSON is the part of "backup --json" the harness judges.
type backupJSON struct {
	Snapshot string `json:"snapshot_id"`
	NewBytes int64  `json:"new_bytes"`
}

func parseBackup(t testing.TB, r hsrun.Result) backupJSON {
	t.Helper()
	var b backupJSON
	if err := json.Unmarshal([]byte(r.Stdout), &b); err != nil || b.Snapshot == "" {
		t.Fatalf("backup --json printed no summary (%v): %s", err, r)
	}
	return b
}
