package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/hindsight-backup/hindsight/snapshot"
	"github.com/hindsight-backup/hindsight/snapshot/fsmeta"
)

// An image file on XFS or btrfs is backed up with --reflink through a
// clone of it (see fsmeta.Clone): a consistent copy of a running guest's
// disk at one instant, as an LVM snapshot is for a volume. The clone is
// kept afterwards as the base of the next backup, which then reads only
// what the extent maps say changed since (fsmeta.Unchanged): unchanged
// ranges are still shared between the base and the next clone. Keeping it
// costs metadata alone until the guest overwrites what it shares; then
// the base holds the old blocks, as an LVM snapshot would.

// imageClones are the two hidden clones kept beside an image file, or in
// the directory given (which must be on the same filesystem).
type imageClones struct{ next, base string }

func clonesOf(file, dir string) imageClones {
	if dir == "" {
		dir = filepath.Dir(file)
	}
	name := "." + filepath.Base(file) + ".hindsight-"
	return imageClones{next: filepath.Join(dir, name+"new"), base: filepath.Join(dir, name+"base")}
}

// backupReflinked backs up a clone of file and keeps it as the next
// backup's base once the snapshot is saved. The new clone is removed on
// every other way out: an error, SIGINT or SIGTERM (which cancel the
// context), a panic. One a killed run left behind is reused as the next
// run's clone, and a lock on it keeps two runs apart.
func (a *app) backupReflinked(s *session, file, dir string, o snapshot.ImageOptions) (*snapshot.Result, error) {
	c := clonesOf(file, dir)
	next, err := os.OpenFile(c.next, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	defer next.Close()
	if err := unix.Flock(int(next.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return nil, fmt.Errorf("%s: another backup of %s is running (%w)", c.next, file, err)
	}
	kept := false
	defer func() {
		if !kept {
			os.Remove(c.next)
		}
	}()
	// A clone only replaces the first bytes of a longer file.
	if err := next.Truncate(0); err != nil {
		return nil, err
	}
	if err := fsmeta.Clone(file, next); err != nil {
		return nil, err
	}
	id, err := fsmeta.Identity(next)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.next, err)
	}
	o.Origin = file
	o.Volume = &snapshot.Volume{Clone: id}
	o.Changes = a.changesSince(c.base, next)
	res, err := a.backupImage(s, c.next, o)
	if err != nil {
		return nil, err
	}
	// The snapshot names the clone it read: from now on that is the base.
	if err := os.Rename(c.next, c.base); err != nil {
		fmt.Fprintf(a.stderr, "hindsight: keep %s as the next backup's base: %v; the next backup reads all of %s\n", c.next, err, file)
		return res, nil
	}
	kept = true
	return res, nil
}

// changesSince returns what the clone cur holds unchanged since the base
// clone at path, or nil where nothing is known: no base yet (the first
// backup), or one whose extent map could not be read.
func (a *app) changesSince(path string, cur *os.File) snapshot.ChangeOracle {
	base, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err == nil {
		defer base.Close()
		var c knownChanges
		if c.base, err = fsmeta.Identity(base); err == nil {
			if c.unchanged, err = fsmeta.Unchanged(base, cur); err == nil {
				return c
			}
		}
	}
	fmt.Fprintf(a.stderr, "hindsight: %s: %v; reading all of the image\n", path, err)
	return nil
}

// knownChanges is a snapshot.ChangeOracle over the ranges known to hold
// what they held in the base: those two clones share, or two thin
// volumes map to the same pool blocks.
type knownChanges struct {
	base      string
	unchanged fsmeta.Ranges
}

func (c knownChanges) Base() string                { return c.base }
func (c knownChanges) Unchanged(off, n int64) bool { return c.unchanged.Contain(off, n) }
