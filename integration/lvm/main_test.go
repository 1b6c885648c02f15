package lvm

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/hindsight-backup/hindsight/integration/hsrun"
	"github.com/hindsight-backup/hindsight/integration/lvm/lvmenv"
)

const password = "lvm-test-password"

var (
	binDir string // fakelvm under each lvm2 command's name
	hsBin  string
)

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "hindsight-lvm-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = dir
	if err := lvmenv.Build(binDir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return hsrun.Main(m, &hsBin)
}

// env is one test's world: a fake volume group, a repository, a state dir.
type env = lvmenv.Env

// newEnv makes a volume group vg0 of vgSize bytes and a repository.
func newEnv(t *testing.T, vgSize int64) *env {
	t.Helper()
	e := lvmenv.New(t, binDir, hsBin, password, vgSize)
	e.MustHS("init", "--repo", e.Repo)
	return e
}

func jsonLine(s string, v any) error {
	return json.Unmarshal([]byte(strings.TrimSpace(s)), v)
}
