package crash

import (
	"os"
	"testing"

	"github.com/hindsight-backup/hindsight/integration/lvm/lvmenv"
)

var (
	hsBin  string
	binDir string // fakelvm under each lvm2 command's name
)

func TestMain(m *testing.M) { os.Exit(lvmenv.Main(m, &binDir, &hsBin)) }
