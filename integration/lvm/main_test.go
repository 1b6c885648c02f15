package lvm

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/hindsight-backup/hindsight/integration/lvm/lvmenv"
)

const password = "lvm-test-password"

var (
	binDir string // fakelvm under each lvm2 command's name
	hsBin  string
)

func TestMain(m *testing.M) { os.Exit(lvmenv.Main(m, &binDir, &hsBin)) }

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
