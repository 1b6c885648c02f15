package s3

import (
	"os"
	"testing"

	"github.com/hindsight-backup/hindsight/integration/hsrun"
)

// hsBin is the hindsight binary TestMain builds: the kill test needs a
// process of its own to kill.
var hsBin string

func TestMain(m *testing.M) { os.Exit(hsrun.Main(m, &hsBin)) }
