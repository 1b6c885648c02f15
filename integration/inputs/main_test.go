package inputs

import (
	"encoding/json"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/hindsight-backup/hindsight/integration/hsrun"
	"github.com/hindsight-backup/hindsight/integration/testtree"
	"github.com/hindsight-backup/hindsight/integration/treecmp"
)

var bin string // built by TestMain

func TestMain(m *testing.M) { os.Exit(hsrun.Main(m, &bin)) }

const testPassword = "inputs-test-password"

// Exit codes (cmd/hindsight/main.go documents them).
const (
	exitFailure    = 1
	exitIncomplete = 3
)

func requireRoot(t testing.TB) {
	t.Helper()
	testtree.Require(t, os.Geteuid() == 0, "needs root")
}

// newRepo initialises a repository at dir and returns a runner for it.
func newRepo(t testing.TB, dir string) hsrun.Runner {
	t.Helper()
	hs := hsrun.New(t, bin, "HINDSIGHT_REPOSITORY="+dir, "HINDSIGHT_PASSWORD="+testPassword)
	hs.Must(t, "init")
	return hs
}

// backupJSON is what the tests judge of 'backup --json'.
type backupJSON struct {
	ID         string   `json:"snapshot_id"`
	Files      uint64   `json:"files"`
	Dirs       uint64   `json:"dirs"`
	Incomplete []string `json:"incomplete"`
}

func parseBackup(t testing.TB, r hsrun.Result) backupJSON {
	t.Helper()
	var b backupJSON
	if err := json.Unmarshal([]byte(r.Stdout), &b); err != nil || len(b.ID) != 64 {
		t.Fatalf("backup --json printed no snapshot: %v: %s", err, r)
	}
	return b
}

func sameTree(t testing.TB, want, got string, o treecmp.Options) {
	t.Helper()
	diffs, err := treecmp.Compare(want, got, o)
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range diffs {
		if i == 20 {
			t.Errorf("... and %d more differences", len(diffs)-i)
			break
		}
		t.Errorf("%s differs: %s", got, d)
	}
}

// tmpfs mounts a tmpfs of size bytes and nrInodes inodes, for trees whose
// cost on disk would be the test's whole run time.
func tmpfs(t testing.TB, size string, nrInodes int) string {
	t.Helper()
	requireRoot(t)
	dir := t.TempDir()
	opts := "size=" + size
	if nrInodes > 0 {
		opts += ",nr_inodes=" + strconv.Itoa(nrInodes)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", opts, "tmpfs", dir).CombinedOutput()
	testtree.Require(t, err == nil, "mount tmpfs: %v: %s", err, out)
	t.Cleanup(func() { unmount(t, dir) })
	return dir
}

func unmount(t testing.TB, dir string) {
	t.Helper()
	if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil && !strings.Contains(string(out), "not mounted") {
		t.Errorf("umount %s: %v: %s", dir, err, out)
		_ = exec.Command("umount", "-l", dir).Run()
	}
}
