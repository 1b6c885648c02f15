package repair

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hindsight-backup/hindsight/integration/hsrun"
)

// hsBin is the hindsight binary TestMain builds.
var hsBin string

func TestMain(m *testing.M) { os.Exit(hsrun.Main(m, &hsBin)) }

// result is one finished run of the binary.
type result struct {
	args           []string
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("hindsight %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// hs runs the binary in env to completion; a run that hangs is killed.
func hs(t testing.TB, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, hsBin, args...)
	cmd.Env = env
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{args: args, stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("timed out: %s", r)
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("run: %v: %s", err, r)
	}
	return r
}

// want runs the binary and fails the test unless it exits with code.
func want(t testing.TB, code int, env []string, args ...string) result {
	t.Helper()
	r := hs(t, env, args...)
	if r.code != code {
		t.Fatalf("want exit %d: %s", code, r)
	}
	return r
}
