//go:build !lvmvm_guest

package lvmvm

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hindsight-backup/hindsight/integration/testtree"
)

// vmTimeout bounds one VM run: boot 10-25 s under TCG, the guest tests a
// few minutes; a hang must fail, not eat CI's budget.
const vmTimeout = 15 * time.Minute

func TestRealLVM(t *testing.T) {
	testtree.Require(t, os.Geteuid() == 0, "root (apt, the VM cache)")
	dir := t.TempDir()
	payload := filepath.Join(dir, "payload")
	if err := os.Mkdir(payload, 0o755); err != nil {
		t.Fatal(err)
	}
	guest := filepath.Join(dir, "guest.test")
	for _, args := range [][]string{
		{"build", "-o", filepath.Join(payload, "hindsight"), "github.com/hindsight-backup/hindsight/cmd/hindsight"},
		{"test", "-c", "-tags", "lvmvm_guest", "-o", guest, "github.com/hindsight-backup/hindsight/integration/lvmvm"},
	} {
		cmd := exec.Command(goTool(), args...)
		// The guest has no C library: everything must be static.
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), vmTimeout+time.Minute)
	defer cancel()
	script, err := filepath.Abs("../scripts/lvm-vm.sh")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "bash", script, "--mem", "1536", "--disks", "2", "--disk-size", "2G",
		"--timeout", strconv.Itoa(int(vmTimeout.Seconds())), "--dir", payload, guest, "--", "-test.v")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("VM run took %s", time.Since(start).Round(time.Second))
	if err != nil || !strings.Contains(string(out), "LVMVM-RESULT: PASS") {
		t.Fatalf("real-LVM tests in the VM failed (%v):\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "--- ") || strings.Contains(line, "LVMVM-RESULT") {
			t.Log(strings.TrimSpace(line))
		}
	}
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}
