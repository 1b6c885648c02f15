package run

import (
	"os"
	"testing"

	"github.com/hindsight-backup/hindsight/integration/lvm/lvmenv"
)

var binDir, hsBin string // fakelvm under each lvm2 command's name; hindsight

func TestMain(m *testing.M) { os.Exit(lvmenv.Main(m, &binDir, &hsBin)) }
