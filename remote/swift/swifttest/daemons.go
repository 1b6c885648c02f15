package swifttest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"text/template"
	"time"
)

// daemons are the processes of one server, each logging to
// DIR/log/NAME.log.
type daemons struct {
	Dir   string
	procs []*proc
}

type proc struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{}
}

// skipOrFail skips t, or fails it under CI=true, so that CI cannot pass
// by testing nothing.
func skipOrFail(t testing.TB, what, missing string) {
	t.Helper()
	msg := fmt.Sprintf("%s not installed (%s missing): run integration/scripts/install-test-deps.sh", what, missing)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// requireFiles calls skipOrFail for the first of files that is missing.
func requireFiles(t testing.TB, what string, files ...string) {
	t.Helper()
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			skipOrFail(t, what, f)
		}
	}
}

func render(path, tmpl string, data any) error {
	var buf bytes.Buffer
	if err := template.Must(template.New(path).Parse(tmpl)).Execute(&buf, data); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// spawn starts cmd as daemon name, logging to log/NAME.log. Pdeathsig
// takes it down with a test binary that dies without running its
// cleanups (a timeout, a crash): the Swift servers call setsid, so
// nothing else would.
func (d *daemons) spawn(name string, cmd *exec.Cmd) (*proc, error) {
	logf, err := os.Create(filepath.Join(d.Dir, "log", name+".log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, exited: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(p.exited)
	}()
	d.procs = append(d.procs, p)
	return p, nil
}

// exitedEarly names a daemon that has stopped, with its log's tail.
func (d *daemons) exitedEarly() error {
	for _, p := range d.procs {
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited at start: %s", p.name, d.logTail(p.name))
		default:
		}
	}
	return nil
}

func (d *daemons) logTail(name string) string {
	p, err := os.ReadFile(filepath.Join(d.Dir, "log", name+".log"))
	if err != nil {
		return err.Error()
	}
	return string(p[max(0, len(p)-2000):])
}

// stop sends SIGTERM to every daemon at once, and SIGKILL to those
// still running after 5 s.
func (d *daemons) stop() {
	for _, p := range d.procs {
		p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range d.procs {
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
			p.cmd.Process.Kill()
			<-p.exited
		}
	}
	d.procs = nil
}

// freePorts returns n distinct ports free on 127.0.0.1 a moment ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	var errs []error
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, errors.Join(errs...)
}
