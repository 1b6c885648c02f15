package lvm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// Runner runs one command and returns its standard output. Everything
// this package does to the system (lvm2, blkid, mount, mkfs) goes through
// it, so tests can record the calls and answer them.
type Runner interface {
	Run(ctx context.Context, name string, args ...string) ([]byte, error)
}

// ExecRunner runs commands as child processes.
type ExecRunner struct{}

// Run runs name with args; a failure is a *CommandError carrying stderr.
func (ExecRunner) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// lvm2 warns on stderr about descriptors it did not open; hindsight's
	// are all close-on-exec, but a hook's caller may have leaked some.
	cmd.Env = append(cmd.Environ(), "LVM_SUPPRESS_FD_WARNINGS=1")
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), &CommandError{Args: append([]string{name}, args...), Stderr: stderr.String(), Err: err}
	}
	return stdout.Bytes(), nil
}

// CommandError is a command that failed: which one, and what it said.
type CommandError struct {
	Args   []string
	Stderr string
	Err    error
}

func (e *CommandError) Error() string {
	msg := fmt.Sprintf("%s: %v", strings.Join(e.Args, " "), e.Err)
	if s := strings.TrimSpace(e.Stderr); s != "" {
		msg += ": " + s
	}
	return msg
}

func (e *CommandError) Unwrap() error { return e.Err }

// VolumeError names the volume an operation failed on.
type VolumeError struct {
	Volume string // "VG/LV", or a device path
	Op     string
	Err    error
}

func (e *VolumeError) Error() string { return e.Volume + ": " + e.Op + ": " + e.Err.Error() }
func (e *VolumeError) Unwrap() error { return e.Err }

func volErr(vol, op string, err error) error {
	if err == nil {
		return nil
	}
	return &VolumeError{Volume: vol, Op: op, Err: err}
}

// Errors a caller can branch on.
var (
	// ErrNoFreeSpace: the volume group has no extents left for a snapshot.
	ErrNoFreeSpace = errors.New("volume group has no free extents for a snapshot")
	// ErrInvalidated: the snapshot overflowed; what was read from it is torn.
	ErrInvalidated = errors.New("snapshot was invalidated (its copy-on-write space overflowed)")
	// ErrNotFound: no such logical volume or volume group.
	ErrNotFound = errors.New("not found")
)
