// Package hsrun runs the hindsight binary in tests the way an operator or
// cron does: a separate process built from this checkout, an environment
// without the developer's HINDSIGHT_* settings or config file, and a
// deadline that fails the test with the command's output rather than
// letting it hang until go test's global timeout.
package hsrun

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Timeout bounds every run unless the Runner sets its own.
const Timeout = 3 * time.Minute

// Main builds the binary into a temporary directory, stores its path in
// *bin, runs the tests and cleans up; TestMain's whole body. A build
// failure fails the package: without the binary nothing means anything.
func Main(m *testing.M, bin *string) int {
	dir, err := os.MkdirTemp("", "hindsight-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	// Tests run the binary as other users too.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	*bin = filepath.Join(dir, "hindsight")
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go" // an IDE's PATH may lack it
	}
	out, err := exec.Command(goBin, "build", "-o", *bin, "github.com/hindsight-backup/hindsight/cmd/hindsight").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building hindsight: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// Runner runs one binary with one environment.
type Runner struct {
	Bin     string
	Env     []string
	Timeout time.Duration // 0: Timeout
	// SysProcAttr, when set, is given to every process: to run as
	// another user, say.
	SysProcAttr *syscall.SysProcAttr
}

// New returns a runner whose environment is this process's without any
// HINDSIGHT_*, XDG_* or NOTIFY_SOCKET setting, plus env. XDG_CONFIG_HOME
// points at an empty directory of t's, so no config file applies.
func New(t testing.TB, bin string, env ...string) Runner {
	t.Helper()
	var e []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "HINDSIGHT_") || strings.HasPrefix(kv, "XDG_") || strings.HasPrefix(kv, "NOTIFY_SOCKET=") {
			continue
		}
		e = append(e, kv)
	}
	tmp := t.TempDir()
	e = append(e, "XDG_CONFIG_HOME="+filepath.Join(tmp, "config"), "XDG_CACHE_HOME="+filepath.Join(tmp, "cache"),
		"XDG_RUNTIME_DIR="+tmp)
	return Runner{Bin: bin, Env: append(e, env...)}
}

// With returns a copy of r with env added (later settings win).
func (r Runner) With(env ...string) Runner {
	r.Env = append(append([]string(nil), r.Env...), env...)
	return r
}

// Result is one finished run.
type Result struct {
	Args           []string
	Code           int
	Stdout, Stderr string
	Took           time.Duration
	MaxRSS         int64 // peak resident memory, bytes
}

func (r Result) String() string {
	return fmt.Sprintf("hindsight %s: exit %d after %s\nstdout:\n%s\nstderr:\n%s",
		strings.Join(r.Args, " "), r.Code, r.Took.Round(time.Millisecond), r.Stdout, r.Stderr)
}

// Run runs the binary to completion.
func (r Runner) Run(t testing.TB, args ...string) Result {
	t.Helper()
	return r.Start(t, args...).Wait(t)
}

// Must runs the binary and fails the test unless it exits 0.
func (r Runner) Must(t testing.TB, args ...string) Result {
	t.Helper()
	res := r.Run(t, args...)
	if res.Code != 0 {
		t.Fatalf("want exit 0: %s", res)
	}
	return res
}

// Proc is a running hindsight.
type Proc struct {
	Cmd *exec.Cmd
	// The output goes to files, not pipes: a daemon the command starts
	// inherits them, and Wait must not wait for the daemon to close them.
	stdout, stderr *os.File
	args           []string
	start, end     time.Time
	done           chan struct{}
	err            error
	timedOut       func() bool
	cancel         context.CancelFunc
}

// Start starts the binary. A process still running when the test ends is
// killed. One that outlives the timeout gets SIGQUIT, so that the Go
// runtime prints where it hung, then SIGKILL.
func (r Runner) Start(t testing.TB, args ...string) *Proc {
	t.Helper()
	timeout := r.Timeout
	if timeout == 0 {
		timeout = Timeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	cmd := exec.CommandContext(ctx, r.Bin, args...)
	cmd.Env = r.Env
	cmd.SysProcAttr = r.SysProcAttr
	p := &Proc{Cmd: cmd, args: args, done: make(chan struct{}), cancel: cancel,
		timedOut: func() bool { return errors.Is(ctx.Err(), context.DeadlineExceeded) }}
	dir := t.TempDir()
	for _, f := range []**os.File{&p.stdout, &p.stderr} {
		var err error
		if *f, err = os.CreateTemp(dir, "out"); err != nil {
			cancel()
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { p.stdout.Close(); p.stderr.Close() })
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGQUIT) }
	cmd.WaitDelay = 10 * time.Second // for the SIGKILL after SIGQUIT
	p.start = time.Now()
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start hindsight %v: %v", args, err)
	}
	go func() {
		p.err = cmd.Wait()
		p.end = time.Now()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
		cancel()
	})
	return p
}

// Output returns what the process wrote so far.
func (p *Proc) Output() (stdout, stderr string) {
	o, _ := os.ReadFile(p.stdout.Name())
	e, _ := os.ReadFile(p.stderr.Name())
	return string(o), string(e)
}

// Wait waits for the process to exit. Death by a signal or the timeout
// fails the test: hindsight must always exit with a code of its own.
func (p *Proc) Wait(t testing.TB) Result {
	t.Helper()
	<-p.done
	p.cancel()
	res := Result{Args: p.args, Code: -1, Took: p.end.Sub(p.start)}
	res.Stdout, res.Stderr = p.Output()
	if p.timedOut() {
		t.Fatalf("killed after %s (SIGQUIT for a stack dump): %s", res.Took.Round(time.Second), res)
	}
	if ru, ok := p.Cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		res.MaxRSS = ru.Maxrss << 10 // Linux counts KiB
	}
	var ee *exec.ExitError
	switch {
	case p.err == nil:
		res.Code = 0
	case errors.As(p.err, &ee):
		res.Code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			t.Fatalf("died of signal %v: %s", ws.Signal(), res)
		}
	default:
		t.Fatalf("waiting for hindsight: %v: %s", p.err, res)
	}
	return res
}

// Done is closed once the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Kill sends SIGKILL and waits for the process to end. It reports whether
// the signal ended it; false means the process had exited on its own, and
// Wait tells how.
func (p *Proc) Kill(t testing.TB) bool {
	t.Helper()
	if err := p.Cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("kill hindsight %v: %v", p.args, err)
	}
	<-p.done
	ws, ok := p.Cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}
