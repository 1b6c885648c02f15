package run

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hindsight-backup/hindsight/integration/testtree"
)

// TestSystemdUnits checks the shipped units with systemd-analyze verify,
// pointed at the binary just built: systemd-analyze insists that
// ExecStart's program exists.
func TestSystemdUnits(t *testing.T) {
	_, err := exec.LookPath("systemd-analyze")
	testtree.Require(t, err == nil, "systemd-analyze on PATH (Debian package systemd)")
	dir := t.TempDir()
	var units []string
	for _, name := range []string{"hindsight.service", "hindsight.timer"} {
		b, err := os.ReadFile(filepath.Join("../../docs/examples/systemd", name))
		if err != nil {
			t.Fatal(err)
		}
		text := strings.ReplaceAll(string(b), "/usr/local/bin/hindsight", hsBin)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		units = append(units, filepath.Join(dir, name))
	}
	out, err := exec.Command("systemd-analyze", append([]string{"verify"}, units...)...).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestHookScripts checks the example hooks' shell syntax.
func TestHookScripts(t *testing.T) {
	scripts, _ := filepath.Glob("../../docs/examples/hooks/*")
	for _, s := range scripts {
		if strings.HasSuffix(s, ".cfg") {
			continue
		}
		if out, err := exec.Command("sh", "-n", s).CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", s, err, out)
		}
	}
	if len(scripts) < 5 {
		t.Errorf("only %d hook examples", len(scripts))
	}
}
