// Package lvm drives LVM2 for backups: it snapshots logical volumes,
// guarantees that the snapshots go away again, mounts them read-only with
// the right options per filesystem, and creates fresh volumes to restore
// onto. It talks to LVM only through the lvm2 commands' JSON reports,
// never their human output, and runs every command through a Runner. It
// knows nothing of the repository.
package lvm

import (
	"os"
	"path/filepath"
)

// Manager does LVM work through a Runner.
type Manager struct {
	run Runner
	// StateDir holds one lock file per live snapshot (held with flock for
	// the snapshot's lifetime, so a dead process's locks are free) and
	// the mount points of snapshots being backed up.
	StateDir string
	// MountInfo is the kernel's mount table, read to unmount leftovers.
	MountInfo string
	// Proc is the process table, where cleanup looks for commands still
	// working on snapshots.
	Proc string
}

// DefaultStateDir is on tmpfs: after a reboot no snapshot is in use.
const DefaultStateDir = "/run/hindsight/lvm"

// New returns a Manager that keeps its state under stateDir.
func New(r Runner, stateDir string) *Manager {
	return &Manager{run: r, StateDir: stateDir, MountInfo: "/proc/self/mountinfo", Proc: "/proc"}
}

func (m *Manager) lockPath(snapName string) string {
	return filepath.Join(m.StateDir, "locks", snapName)
}

// MountPoint is where the snapshot of VG/LV is mounted during a backup. It
// is the same on every run, so the snapshot tree's top directory keeps its
// name and each backup finds its predecessor's tree.
func (m *Manager) MountPoint(vg, lv string) string {
	return filepath.Join(m.StateDir, "mnt", vg, lv)
}

func mkdirAll(dir string) error { return os.MkdirAll(dir, 0o700) }
