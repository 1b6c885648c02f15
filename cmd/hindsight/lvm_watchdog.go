package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"

	"github.com/hindsight-backup/hindsight/lvm"
)

// watchdogDone is what a backup that ended in an orderly way (its own
// deferred code removed its snapshots) tells its watchdog.
const watchdogDone = "done\n"

// startWatchdog starts a second hindsight process that waits for this one
// to end and, unless told that it ended in an orderly way, removes the
// snapshots no running hindsight holds: this process's among them.
// Deferred removal covers errors and signals; the watchdog covers what
// skips deferred code: a panic in any goroutine, a fatal runtime error,
// SIGKILL. It learns of the end from its stdin, a pipe whose only writer
// is this process, which the kernel closes however the process dies. A
// snapshot left behind fills up as its origin changes and would freeze
// the guest once full, so this is worth a process.
//
// done reports the orderly end; call it after the snapshots are removed.
// If the watchdog cannot start, the backup goes on without it: "lvm
// cleanup" and the next backup still find what a crash leaves.
func (a *app) startWatchdog(stateDir string) (done func()) {
	if testing.Testing() {
		return func() {} // the executable is a test binary, not hindsight
	}
	self, err := os.Executable()
	if err != nil {
		a.log.Warn("no snapshot watchdog", "err", err)
		return func() {}
	}
	r, w, err := os.Pipe() // close-on-exec: lvcreate and mount do not inherit w
	if err != nil {
		a.log.Warn("no snapshot watchdog", "err", err)
		return func() {}
	}
	defer r.Close()
	cmd := exec.Command(self, "lvm", "--state-dir", stateDir, "cleanup", "--after-exit")
	cmd.Stdin, cmd.Stderr = r, os.Stderr
	// Its own process group: Ctrl-C at the terminal reaches the backup,
	// which cleans up itself, and not the watchdog.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		a.log.Warn("no snapshot watchdog", "err", err)
		return func() {}
	}
	return func() {
		io.WriteString(w, watchdogDone)
		w.Close()
		cmd.Wait()
	}
}

// runWatchdog is "lvm cleanup --after-exit": it waits for its stdin to end
// and cleans up unless the backup said it ended in an orderly way.
func (a *app) runWatchdog(ctx context.Context, m *lvm.Manager) error {
	// The backup's end, not a signal, ends the watchdog: systemd stopping
	// the unit signals both, and the backup may still be removing its
	// snapshot.
	signal.Ignore(os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	msg, _ := io.ReadAll(os.Stdin)
	if string(msg) == watchdogDone {
		return nil
	}
	removed, err := m.Cleanup(context.WithoutCancel(ctx), "", lvm.Kinds{})
	for _, r := range removed {
		fmt.Fprintf(a.stderr, "hindsight: the backup process died; removed its snapshot %s\n", r)
	}
	return err
}
