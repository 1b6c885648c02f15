package cli

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestPruneKilled SIGKILLs prune at random moments of its run, 24 times,
// each time after a backup and a forget made new garbage. After each kill
// the repository must check clean; at the end one prune must finish the
// work of all the killed ones and leave nothing unreferenced. Prune is
// slowed down at each of its steps (HINDSIGHT_TEST_PRUNE_STEP_DELAY) so
// that the kills spread over all of them. HINDSIGHT_TEST_SEED repeats a
// run's kill times.
func TestPruneKilled(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("HINDSIGHT_TEST_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("seed %d (HINDSIGHT_TEST_SEED=%d repeats these kill times)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	initRepo(t, repo)
	w := newTreeWorker(t, filepath.Join(dir, "w"), 0)
	garbage := func() {
		t.Helper()
		if err := w.mutate(); err != nil {
			t.Fatal(err)
		}
		if _, err := w.backup(t, repo); err != nil {
			t.Fatal(err)
		}
		forgetAllBut(t, repo, 3)
	}
	for range 4 {
		garbage()
	}
	env := pruneEnv(t, pruneStepDelay+"=25ms")
	args := []string{"prune", "--repo", repo, "--max-unused", "20%", "--verbose"}

	// The kills are drawn from the time a whole run spends in its steps,
	// counted from the first: before it, prune only opens the repository.
	garbage()
	span := stepSpan(t, mustHSWith(t, env, args...).stderr)
	t.Logf("an uninterrupted prune spends %s in its steps", span.Round(time.Millisecond))

	// A run that ends before its kill (a short one, after a run that
	// finished the work) is checked like the others but not counted.
	killed, steps := 0, map[string]int{}
	for i := 0; killed < 24 && i < 60; i++ {
		garbage()
		after := time.Duration(rng.Int64N(int64(span)))
		p := startWith(t, env, args...)
		waitFor(t, time.Minute, "prune's first step", func() bool {
			return p.exited() || strings.Contains(p.stderr.String(), "msg=prune step=")
		})
		if !p.waitUpTo(after) {
			if err := p.cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			<-p.done
			killed++
			steps[lastStep(p.stderr.String())]++
		} else if r := p.wait(t); r.code != 0 {
			t.Fatalf("run %d: %s", i, r)
		}
		check := []string{"check", "--repo", repo}
		if i%6 == 5 {
			check = append(check, "--read-data")
		}
		if r := hsWith(t, env, check...); r.code != 0 {
			t.Fatalf("run %d, killed after %s: %s", i, after.Round(time.Millisecond), r)
		}
	}
	t.Logf("%d runs killed, in these steps: %v", killed, steps)
	if killed < 24 || len(steps) < 6 {
		t.Errorf("only %d runs were killed before they ended, in %d different steps", killed, len(steps))
	}

	mustHSWith(t, env, "prune", "--repo", repo, "--max-unused", "0")
	nothingLeft(t, repo, "--repo", repo)
	// A SIGKILL during a save leaves the local backend's temporary file
	// (.tmp-*), which no listing shows: harmless, and not prune's to find.
	checkClean(t, repo, "--read-data")
	verifyRestores(t, repo, []*treeWorker{w})
}

// pruneStepDelay is the variable that slows prune down at each step
// (cmd/hindsight/prune.go).
const pruneStepDelay = "HINDSIGHT_TEST_PRUNE_STEP_DELAY"

// lastStep is the step a prune run with --verbose logged last ("" before
// the first).
func lastStep(stderr string) string {
	i := strings.LastIndex(stderr, "msg=prune step=")
	if i < 0 {
		return "open"
	}
	step, _, _ := strings.Cut(stderr[i+len("msg=prune step="):], "\n")
	return step
}

// stepSpan is the time between the first and the last step a prune run
// with --verbose logged.
func stepSpan(t testing.TB, stderr string) time.Duration {
	t.Helper()
	var first, last time.Time
	for _, line := range strings.Split(stderr, "\n") {
		if !strings.Contains(line, "msg=prune step=") {
			continue
		}
		v, _, _ := strings.Cut(strings.TrimPrefix(line, "time="), " ")
		at, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			t.Fatalf("prune log line without a time: %q", line)
		}
		if first.IsZero() {
			first = at
		}
		last = at
	}
	if !last.After(first) {
		t.Fatalf("prune logged no steps:\n%s", stderr)
	}
	return last.Sub(first)
}
