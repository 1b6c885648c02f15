package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/hindsight-backup/hindsight/remote"
	"github.com/hindsight-backup/hindsight/remote/local"
)

// A local repository this process cannot write (a read-only mount, an
// archive disk, another user's directory with a-w modes) is still a
// backup to restore from. Commands that only read it open it as they
// would a remote, and the others stop before they write anything:
//
//   - No lock. A shared lock is an object written into locks/; unable to
//     write one, we cannot tell a prune that we are reading. What a
//     concurrent prune (by whoever can write the repository) can do to us
//     is remove a pack we are about to read: the read fails, naming the
//     pack. It cannot make us read wrong data: every blob is encrypted
//     and authenticated, and looked up by its hash. So reading on,
//     with a notice, is safe; a lock we cannot write would not have
//     protected us anyway.
//   - The index is not opened in place: Pebble writes its LOCK file, a
//     WAL and compactions even to answer reads, and an index left by a
//     crash needs its WAL replayed. A fresh index is filled from the
//     index segments in the user's cache, keyed by the repository's ID,
//     as for a remote repository. The segments are durable before the
//     snapshot records they serve (the durability order of DESIGN.md),
//     so every snapshot that can be listed is covered.

// readOnlyError says that a command that writes was given a repository
// it cannot write.
type readOnlyError struct {
	path string
	err  error // EROFS or EACCES
}

func (e *readOnlyError) Error() string {
	return fmt.Sprintf("repository %s is read-only (%v): this command writes to it; "+
		"commands that only read (snapshots, ls, find, diff, history, stats, check, restore, mount) still work", e.path, e.err)
}

func (e *readOnlyError) Unwrap() error { return e.err }

// localDir returns the directory of be, or of the local backend its
// decorators wrap (clone's source is opened like a remote).
func localDir(be remote.Backend) (string, bool) {
	lb, ok := remote.As[*local.Backend](be)
	if !ok {
		return "", false
	}
	return lb.Location(), true
}

// notWritable returns why dir, a local repository, cannot be written, or
// nil. access(2) answers for this process's user, as root sees a
// read-only mount but not modes, and checks the places every writing
// command writes: the top, the locks and the index.
func notWritable(dir string) error {
	for _, p := range []string{dir, filepath.Join(dir, "locks"), filepath.Join(dir, "index")} {
		err := unix.Access(p, unix.W_OK)
		if errors.Is(err, unix.ENOENT) && p != dir {
			continue
		}
		if errors.Is(err, unix.EROFS) || errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
			return &os.PathError{Op: "write", Path: p, Err: err}
		}
	}
	return nil
}
