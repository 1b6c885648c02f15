package crash

import (
	"fmt"
	"os"
	"testing"

	"github.com/hindsight-backup/hindsight/integration/hsrun"
	"github.com/hindsight-backup/hindsight/integration/lvm/lvmenv"
)

var (
	hsBin  string
	binDir string // fakelvm under each lvm2 command's name
)

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "hindsight-crash-")
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
