package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/hindsight-backup/hindsight/lvm"
)

// The hook commands follow UrBackup's create_filesystem_snapshot and
// remove_filesystem_snapshot scripts: the snapshot ID and the mount point
// come in as arguments, the mounted snapshot goes out as a "SNAPSHOT=DIR"
// line on stdout, and further arguments are accepted and ignored.

func (a *app) lvmHookCreateCommand(newManager func() *lvm.Manager) *cobra.Command {
	var fl snapshotFlags
	cmd := &cobra.Command{
		Use:   "snapshot-create ID MOUNTPOINT [IGNORED...]",
		Short: "Hook: snapshot the volume mounted at MOUNTPOINT and mount it read-only",
		Long: `Snapshot the logical volume whose filesystem is mounted at MOUNTPOINT,
mount the snapshot read-only, and print "SNAPSHOT=DIR" with where. The
snapshot stays until "hindsight lvm snapshot-remove ID".

This is UrBackup's create_filesystem_snapshot: point its
/etc/urbackup/snapshot.cfg at hindsight (docs/hypervisors.md), or call it from any
backup tool's pre-backup hook.`,
		Example: `  hindsight lvm snapshot-create 3f2a9c /srv/www`,
		Args:    cobra.MinimumNArgs(2),
		RunE: a.action(func(cmd *cobra.Command, args []string) error {
			so, err := fl.options()
			if err != nil {
				return err
			}
			dir, err := newManager().CreateHookSnapshot(cmd.Context(), args[0], args[1], so)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "SNAPSHOT=%s\n", dir)
			return nil
		}),
	}
	fl.register(cmd)
	return cmd
}

func (a *app) lvmHookRemoveCommand(newManager func() *lvm.Manager) *cobra.Command {
	return &cobra.Command{
		Use:   "snapshot-remove ID [IGNORED...]",
		Short: "Hook: unmount and remove a snapshot made by snapshot-create",
		Long: `Unmount and remove the snapshot that "hindsight lvm snapshot-create ID"
made. This is UrBackup's remove_filesystem_snapshot.`,
		Example: `  hindsight lvm snapshot-remove 3f2a9c`,
		Args:    cobra.MinimumNArgs(1),
		RunE: a.action(func(cmd *cobra.Command, args []string) error {
			return newManager().RemoveHookSnapshot(cmd.Context(), args[0])
		}),
	}
}
