package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// runHook runs one hook command with sh, its output going to run's stderr
// (the log). A hook that outlives timeout is killed with every process it
// started: it runs in a process group of its own, and a hung hook must not
// hold up the night's backups, nor leave a child behind holding the job's
// resources.
func (a *app) runHook(ctx context.Context, command string, timeout time.Duration, env []string) error {
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(hctx, "sh", "-c", command)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A background child that keeps the output open must not keep run
	// waiting once the hook itself has exited.
	cmd.WaitDelay = 5 * time.Second
	cmd.Stdout, cmd.Stderr = a.stderr, a.stderr
	cmd.Env = append(os.Environ(), env...)
	err := cmd.Run()
	switch {
	case errors.Is(hctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("hook %q: killed after the hook timeout of %s", command, timeout)
	case err != nil:
		return fmt.Errorf("hook %q: %w", command, err)
	}
	return nil
}
