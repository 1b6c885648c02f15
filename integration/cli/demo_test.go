package cli

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hindsight-backup/hindsight/integration/testtree"
)

// TestDemo runs README's first command as a user would: the script builds
// the binary itself, so it also proves the README's build step works.
func TestDemo(t *testing.T) {
	_, err := exec.LookPath("bash")
	testtree.Require(t, err == nil, "bash not installed")
	script, err := filepath.Abs(filepath.Join("..", "scripts", "demo.sh"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", script)
	tmp := t.TempDir()
	cmd.Env = append(hsEnv(testPassword), "TMPDIR="+tmp)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo.sh: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if last := lines[len(lines)-1]; last != "demo OK" {
		t.Fatalf("demo.sh exited 0 but its last line is %q, not \"demo OK\":\n%s", last, out)
	}
	// Its throw-away directory is its own business, but it must not leave
	// one behind in TMPDIR.
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("demo.sh left %d entries in TMPDIR", len(left))
	}
}
