package s3

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// hsBin is the hindsight binary TestMain builds: the kill test needs a
// process of its own to kill.
var hsBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hindsight-s3-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	hsBin = filepath.Join(dir, "hindsight")
	out, err := exec.Command("go", "build", "-o", hsBin, "github.com/hindsight-backup/hindsight/cmd/hindsight").CombinedOutput()
	code := 1
	if err != nil {
		fmt.Fprintf(os.Stderr, "building hindsight: %v\n%s", err, out)
	} else {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}
