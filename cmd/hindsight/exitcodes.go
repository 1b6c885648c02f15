package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
	"github.com/hindsight-backup/hindsight/chunkstore/lock"
	"github.com/hindsight-backup/hindsight/snapshot"
)

// Exit codes (listed in the package comment). Scripts and hypervisor hooks
// branch on them, so a code never changes meaning. Errors are mapped to
// codes in exitCode and nowhere else.
const (
	exitOK         = 0
	exitFailure    = 1
	exitUsage      = 2
	exitIncomplete = 3
	exitDamage     = 4
	exitNoRepo     = 10
	exitPassword   = 11
	exitLocked     = 12
	exitRunBusy    = 13
)

const exitCodesHelp = `

Exit codes:
  0   success
  1   failure
  2   usage error (unknown command, bad flag or argument)
  3   backup written but incomplete (some files could not be read completely)
  4   check found damage, or repair or index rebuild could not heal all of it
  10  the repository does not exist or is not a hindsight repository
  11  wrong password
  12  the repository is locked by another process
  13  another "hindsight run" is still going (run without --wait)`

func exitCodesTopic() *cobra.Command {
	return &cobra.Command{
		Use:   "exit-codes",
		Short: "What hindsight's exit codes mean",
		Long:  "hindsight exits with one of these codes; scripts may rely on them." + exitCodesHelp,
	}
}

// usageError marks a mistake in the command line itself.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// errDamage is wrapped by the error of a check that ran to the end and
// found problems.
var errDamage = errors.New("damage found")

// errNoRepository says the repository's location holds nothing at all,
// as opposed to chunkstore.ErrNotRepository (something that is not ours).
var errNoRepository = errors.New("repository does not exist")

// errRunBusy is wrapped by run's error when an earlier run holds the lock.
var errRunBusy = errors.New("another hindsight run is still going")

// stepsFailed is run's error when some of its steps failed. It exits with
// their code when they all agree (a wrong password fails every step with
// 11), else with 1.
type stepsFailed struct {
	failed, of int
	code       int
}

func (e stepsFailed) Error() string { return fmt.Sprintf("%d of %d steps failed", e.failed, e.of) }

func exitCode(err error) int {
	var u usageError
	var sf stepsFailed
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &u):
		return exitUsage
	case errors.As(err, &sf):
		return sf.code
	case errors.Is(err, snapshot.ErrIncomplete):
		return exitIncomplete
	case errors.Is(err, errDamage):
		return exitDamage
	case errors.Is(err, errNoRepository), errors.Is(err, chunkstore.ErrNotRepository):
		return exitNoRepo
	case errors.Is(err, chunkstore.ErrWrongPassword):
		return exitPassword
	case isLocked(err):
		return exitLocked
	case errors.Is(err, errRunBusy):
		return exitRunBusy
	}
	return exitFailure
}

func isLocked(err error) bool {
	_, ok := errors.AsType[*lock.LockedError](err)
	// Pebble's directory lock: another hindsight process has this local
	// repository's index open.
	return ok || errors.Is(err, index.ErrLocked) || errors.Is(err, chunkstore.ErrPruneRunning)
}
