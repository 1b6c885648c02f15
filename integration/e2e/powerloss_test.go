package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/integration/crashfs"
	"github.com/hindsight-backup/hindsight/remote/local"
	"github.com/hindsight-backup/hindsight/snapshot"
)

// Environment variables that repeat or widen a TestPowerLoss run. The
// seed fixes the cut points and what each crash keeps of unsynced data;
// the recorded run itself differs each time (random keys, IDs, polynomial
// and goroutine timing), so a failure's log names the cut's change too.
const (
	powerLossSeedEnv = "HINDSIGHT_POWERLOSS_SEED"
	powerLossCutsEnv = "HINDSIGHT_POWERLOSS_CUTS"
)

// powerLossRepo is where the repository lives on the recorded filesystem.
const powerLossRepo = "/repo"

// commit is a snapshot whose Backup returned, and so was reported
// committed to the user.
type commit struct {
	id blob.ID
	at int // changes recorded when Backup returned
	// golden is a restore made right after the backup and found equal to
	// the source, which has changed since.
	golden string
}

type powerRun struct {
	fs      *crashfs.FS
	initAt  int // changes recorded when Init returned
	commits []commit
	src     string
}

// TestPowerLoss checks DESIGN.md's order of durability against power
// cuts. It records every change a series of backups makes to the
// repository's files and its Pebble index, then rebuilds the state after
// each of many randomly chosen changes, keeping only what was fsynced, or
// that plus a random share of unsynced blocks and directory entries. From
// each such state the repository must open as the product opens it, both
// checks (reading every blob) must find nothing worse than unreferenced
// packs, every snapshot reported committed before the cut must restore
// exactly, no other snapshot may appear but a complete one that was being
// committed, and a new backup must work and check clean.
func TestPowerLoss(t *testing.T) {
	seed := envUint(t, powerLossSeedEnv, uint64(time.Now().UnixNano()))
	ncuts := int(envUint(t, powerLossCutsEnv, 60))
	t.Logf("seed %d (%s=%d repeats these cuts)", seed, powerLossSeedEnv, seed)
	run := recordBackups(t)
	rng := rand.New(rand.NewPCG(seed, 0x706f776572))
	total := run.fs.Changes()
	for i, c := range run.commits {
		t.Logf("snapshot %d (%s) reported committed after change %d of %d", i+1, c.id.Short(), c.at, total)
	}
	for i := range ncuts {
		at := rng.IntN(total + 1)
		// A third of the cuts fall just before a commit was reported,
		// where packs, index batches, segments and the record are made
		// durable one after another and the order matters most.
		if i%3 == 0 {
			c := run.commits[rng.IntN(len(run.commits))]
			at = max(c.at-rng.IntN(60), 0)
		}
		keep := 0
		if rng.IntN(2) == 1 {
			keep = 1 + rng.IntN(99)
		}
		// Every fourth cut loses the index too, as when the repository
		// is copied or pushed without its cache: what the index segments
		// and records hold must then be enough.
		dropIndex := i%4 == 1
		cfg := vfs.CrashCloneCfg{UnsyncedDataPercent: keep, RNG: rand.New(rand.NewPCG(seed, uint64(i)))}
		name := fmt.Sprintf("cut%02d-change%d-keep%d", i, at, keep)
		if dropIndex {
			name += "-noindex"
		}
		t.Run(name, func(t *testing.T) {
			checkPowerLoss(t, run, at, cfg, dropIndex)
		})
	}
}

func envUint(t *testing.T, name string, def uint64) uint64 {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return v
}

// recordBackups makes a repository on a recording filesystem and runs on
// it: two backups, a reopen, a backup that fails just before its record,
// and a backup that picks up what the failed one stored. The source is
// on the real disk; packs of 1 MiB make several per backup.
func recordBackups(t *testing.T) *powerRun {
	ctx := context.Background()
	tmp := t.TempDir()
	run := &powerRun{fs: crashfs.New(), src: filepath.Join(tmp, "src")}
	be, err := local.Create(run.fs, powerLossRepo)
	if err != nil {
		t.Fatal(err)
	}
	o := chunkstore.InitOptions{PackSize: 1 << 20, KDF: chunkstore.TestKDF()}
	if _, err := chunkstore.Init(ctx, be, []byte(chunkstore.TestPassword), o); err != nil {
		t.Fatal(err)
	}
	run.initAt = run.fs.Changes()
	repo := openOn(t, run.fs)

	sizes := make([]int, 14)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range sizes {
		sizes[i] = 16<<10 + rng.IntN(500<<10)
	}
	randomTree(t, run.src, 1, sizes...)
	run.commit(t, repo, backup(t, repo, run.src, nil), tmp)
	mutateTree(t, run.src, 2)
	run.commit(t, repo, backup(t, repo, run.src, nil), tmp)

	if err := repo.Close(); err != nil {
		t.Fatal(err)
	}
	repo = openOn(t, run.fs)
	mutateTree(t, run.src, 3)
	refuse := errors.New("refused before the record")
	_, err = snapshot.Backup(ctx, repo, run.src, snapshot.BackupOptions{Host: testHost,
		BeforeCommit: func(context.Context) error { return refuse }}, nil)
	if !errors.Is(err, refuse) {
		t.Fatalf("backup refused before its record returned %v", err)
	}
	run.commit(t, repo, backup(t, repo, run.src, nil), tmp)
	if err := repo.Close(); err != nil {
		t.Fatal(err)
	}
	return run
}

// commit notes res as reported committed now and keeps a verified restore
// of it to compare later ones with.
func (run *powerRun) commit(t *testing.T, repo *chunkstore.Repository, res *snapshot.Result, tmp string) {
	c := commit{id: res.ID, at: run.fs.Changes(), golden: filepath.Join(tmp, "golden-"+res.ID.Short())}
	restore(t, repo, res.Record, c.golden)
	sameTree(t, run.src, c.golden, exact)
	run.commits = append(run.commits, c)
}

// openOn opens the repository on fsys as the CLI opens a local one: an
// index that is missing is started afresh, refilled from the index
// segments, and its file history rebuilt from the snapshots.
func openOn(t *testing.T, fsys vfs.FS) *chunkstore.Repository {
	t.Helper()
	be, err := local.Open(fsys, powerLossRepo)
	if err != nil {
		t.Fatal(err)
	}
	o := chunkstore.LocalOptions(powerLossRepo, []byte(chunkstore.TestPassword))
	o.FS = fsys
	repo, err := chunkstore.Open(context.Background(), be, o)
	if err != nil {
		t.Fatalf("open repository: %v", err)
	}
	t.Cleanup(func() { repo.Close() })
	if repo.IndexCreated() {
		if err := snapshot.RebuildHistory(context.Background(), repo); err != nil {
			t.Fatalf("rebuild history: %v", err)
		}
	}
	return repo
}

// checkPowerLoss opens the repository as a power cut after change at left
// it, without its index if dropIndex, and checks everything TestPowerLoss
// promises.
func checkPowerLoss(t *testing.T, run *powerRun, at int, cfg vfs.CrashCloneCfg, dropIndex bool) {
	mem, err := run.fs.Crash(at, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if dropIndex {
		if err := mem.RemoveAll(mem.PathJoin(powerLossRepo, "index")); err != nil {
			t.Fatal(err)
		}
	}
	if at < run.initAt && !hasConfig(mem) {
		return // Init had not finished: no repository yet is right
	}
	repo := openOn(t, mem)
	t.Logf("index started afresh: %v", repo.IndexCreated())
	for _, f := range checkRepo(t, repo) {
		if !f.harmless {
			t.Errorf("check: %s", f.msg)
		}
	}
	present := map[blob.ID]*snapshot.Record{}
	for _, s := range listSnapshots(t, repo) {
		present[s.ID] = s.Record
	}
	for i, c := range run.commits {
		rec, ok := present[c.id]
		delete(present, c.id)
		switch {
		case !ok && c.at <= at:
			t.Errorf("snapshot %d (%s), reported committed at change %d, is lost", i+1, c.id.Short(), c.at)
		case ok:
			t.Logf("snapshot %d (%s) present; restoring it", i+1, c.id.Short())
			dst := filepath.Join(t.TempDir(), "restore")
			restore(t, repo, rec, dst)
			sameTree(t, c.golden, dst, exact)
		}
	}
	for id := range present {
		t.Errorf("snapshot %s appeared that no backup committed", id.Short())
	}
	res := backup(t, repo, run.src, nil)
	for _, f := range checkRepo(t, repo) {
		if !f.harmless {
			t.Errorf("check after a new backup (%s): %s", res.ID.Short(), f.msg)
		}
	}
}

func hasConfig(fsys vfs.FS) bool {
	_, err := fsys.Stat(fsys.PathJoin(powerLossRepo, "config"))
	return err == nil
}

// mutateTree changes a randomTree as a day of use would: some files
// rewritten, some grown, some deleted, a few new ones.
func mutateTree(t testing.TB, dir string, seed uint64) {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 3))
	for _, f := range files {
		var err error
		switch rng.IntN(6) {
		case 0:
			err = os.WriteFile(f, randomBytes(rng, 16<<10+rng.IntN(400<<10)), 0o644)
		case 1:
			err = appendFile(f, randomBytes(rng, rng.IntN(200<<10)))
		case 2:
			err = os.Remove(f)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		name := filepath.Join(dir, "new", fmt.Sprintf("s%d-%d", seed, i))
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, randomBytes(rng, rng.IntN(300<<10)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func appendFile(name string, data []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
