package crash

import (
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"
)

// TestCrash kills each command with SIGKILL at random moments, quota
// times (go test -short: a few), and checks after every kill. Each
// command's moments come from the seed and its place in the list alone,
// so one command's run replays on its own.
func TestCrash(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("HINDSIGHT_TEST_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("HINDSIGHT_TEST_SEED: %v", err)
		}
	}
	t.Logf("seed %d; replay: HINDSIGHT_TEST_SEED=%d go test -count=1 -v -run 'TestCrash/^<command>$' ./integration/crash", seed, seed)
	quota := 26
	if testing.Short() {
		quota = 3
	}
	commands := []struct {
		name string
		run  func(*harness)
	}{{"backup", crashBackup}, {"push", crashPush}, {"prune", crashPrune}, {"lvm-backup", crashLVM}}
	start := time.Now()
	var all []*stats
	kills := 0
	for i, c := range commands {
		st := &stats{name: c.name}
		all = append(all, st)
		t.Run(c.name, func(t *testing.T) {
			c.run(newHarness(t, rand.New(rand.NewPCG(seed, uint64(i))), quota, st))
			t.Logf("%s", st)
			// Else the reruns' bounds judged nothing.
			if !testing.Short() && st.durable == 0 {
				t.Errorf("none of %d killed runs had made anything durable", st.kills)
			}
		})
		kills += st.kills
	}
	var restores int
	var lost int64
	ranAll := true // not so when -run picks some
	for _, st := range all {
		restores += st.restores
		lost += st.lostBytes
		ranAll = ranAll && st.rounds > 0
	}
	t.Logf("SUMMARY seed %d: %d kills (backup %d, push %d, prune %d, lvm backup %d), %d restores verified, %d bytes lost, in %s",
		seed, kills, all[0].kills, all[1].kills, all[2].kills, all[3].kills, restores, lost, time.Since(start).Round(time.Second))
	if ranAll && !testing.Short() && !t.Failed() && kills < 100 {
		t.Errorf("%d kills in all, want at least 100", kills)
	}
}
