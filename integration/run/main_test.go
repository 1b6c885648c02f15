package run

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

var binDir string // hindsight, and fakelvm under each lvm2 command's name

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "hindsight-run-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = filepath.Join(dir, "bin")
	for pkg, out := range map[string]string{"cmd/hindsight": "hindsight", "integration/lvm/fakelvm": "fakelvm"} {
		build := exec.Command(goTool(), "build", "-o", filepath.Join(binDir, out), "github.com/hindsight-backup/hindsight/"+pkg)
		if b, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", pkg, err, b)
			return 1
		}
	}
	for _, name := range []string{"lvs", "vgs", "lvcreate", "lvremove"} {
		if err := os.Symlink("fakelvm", filepath.Join(binDir, name)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return m.Run()
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}
