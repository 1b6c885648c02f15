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
	addThinDelta(t, filepath.Join(payload, "thin"))
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
		// Results, and what the guest tests measured (t.Log).
		if l := strings.TrimSpace(line); strings.HasPrefix(l, "--- ") || strings.HasPrefix(l, "guest_test.go:") || strings.Contains(line, "LVMVM-RESULT") {
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

// addThinDelta copies the host's thin_delta (thin-provisioning-tools) and
// the libraries it loads into dir, with a script named thin_delta that
// runs it there: the VM's initramfs has lvm2 but not it.
func addThinDelta(t *testing.T, dir string) {
	t.Helper()
	bin, err := exec.LookPath("thin_delta")
	testtree.Require(t, err == nil, "thin_delta (thin-provisioning-tools) on PATH")
	if bin, err = filepath.EvalSymlinks(bin); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ldd", bin).Output()
	if err != nil {
		t.Fatalf("ldd %s: %v", bin, err)
	}
	files := []string{bin}
	for _, f := range strings.Fields(string(out)) {
		if strings.HasPrefix(f, "/") {
			files = append(files, f)
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var loader string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o755)
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(filepath.Base(f), "ld-linux") {
			loader = filepath.Base(f)
		}
	}
	// pdata_tools runs the tool its first argument names.
	g := "/payload/dir/thin/"
	script := "#!/bin/sh\nexec " + g + loader + " --library-path " + g + " " + g + filepath.Base(bin) + " thin_delta \"$@\"\n"
	if err := os.WriteFile(filepath.Join(dir, "thin_delta"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}
