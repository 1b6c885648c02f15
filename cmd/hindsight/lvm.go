package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/hindsight-backup/hindsight/lvm"
	"github.com/hindsight-backup/hindsight/snapshot"
)

func (a *app) lvmCommand() *cobra.Command {
	stateDir := lvm.DefaultStateDir
	cmd := &cobra.Command{
		Use:   "lvm",
		Short: "Back up LVM logical volumes through snapshots, and restore onto fresh ones",
		Long: `Back up LVM logical volumes through short-lived snapshots, and restore
snapshots onto freshly created volumes.

Every snapshot hindsight creates is named ` + lvm.SnapshotPrefix + `LV-RUNID and is
removed however the backup ends: success, error, SIGINT, SIGTERM by the
backup itself; a crash, a panic or SIGKILL by its watchdog, a second
process that waits for the backup to end. If both are killed (the host
going down), "hindsight lvm cleanup", and the next "hindsight lvm backup"
of the same volume group, find and remove the snapshot. The one exception
is kept on purpose: the thin snapshot an image backup of a thin volume read
stays as ` + lvm.BasePrefix + `LV, the base of the next backup (see "lvm
backup --help"). Only lvm2's commands are used, with JSON reports.`,
		Args: groupArgs,
		RunE: groupRun,
	}
	cmd.PersistentFlags().StringVar(&stateDir, "state-dir", stateDir, "keep snapshot locks and mount points under `DIR`")
	newManager := func() *lvm.Manager { return lvm.New(lvm.ExecRunner{}, stateDir) }
	cmd.AddCommand(a.lvmBackupCommand(newManager), a.lvmCleanupCommand(newManager), a.lvmRestoreCommand(newManager),
		a.lvmHookCreateCommand(newManager), a.lvmHookRemoveCommand(newManager))
	return cmd
}

// snapshotFlags size the snapshots of the commands that take them.
type snapshotFlags struct {
	size    string
	reserve int
}

func (f *snapshotFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.size, "snapshot-size", "", "give each snapshot `SIZE` (like 2G) instead of what the volume group can spare")
	cmd.Flags().IntVar(&f.reserve, "snapshot-reserve", lvm.DefaultReservePercent, "leave `PERCENT` of the volume group's free space to others")
}

func (f *snapshotFlags) options() (lvm.SnapshotOptions, error) {
	size, err := parseSize(f.size)
	if err != nil {
		return lvm.SnapshotOptions{}, usagef("--snapshot-size: %v", err)
	}
	if f.reserve < 0 || f.reserve > 99 {
		return lvm.SnapshotOptions{}, usagef("--snapshot-reserve %d: want 0 to 99", f.reserve)
	}
	return lvm.SnapshotOptions{Size: uint64(size), ReservePercent: f.reserve}, nil
}

// parseSize reads a size such as 512M or 2G, in powers of 1024.
func parseSize(s string) (int64, error) {
	n, err := parseRate(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size like 512M or 2G", s)
	}
	return n, nil
}

// hostName is --host, or this machine's name.
func hostName(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	h, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("host name: %w (give --host)", err)
	}
	return h, nil
}

// volumeOf is the record's description of a filesystem on a volume.
func volumeOf(size uint64, fs lvm.Filesystem) *snapshot.Volume {
	return &snapshot.Volume{Size: size, FSType: fs.Type, FSUUID: fs.UUID, FSLabel: fs.Label}
}
