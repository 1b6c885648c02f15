package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/hindsight-backup/hindsight/lvm"
)

func (a *app) lvmCleanupCommand(newManager func() *lvm.Manager) *cobra.Command {
	var hooks, afterExit bool
	cmd := &cobra.Command{
		Use:   "cleanup [VG]",
		Short: "Remove snapshots that a killed hindsight left behind",
		Long: `Unmount and remove the snapshots named ` + lvm.SnapshotPrefix + `* in VG (default:
every volume group) that no running hindsight holds: those of a backup
that was killed or crashed. Snapshots of backups still running are left
alone. With --hooks, snapshots made by "lvm snapshot-create" (named
` + lvm.HookPrefix + `*) are removed too: only use it when no backup that
called the hooks is running.`,
		Example: `  hindsight lvm cleanup
  hindsight lvm cleanup vg0 --hooks`,
		Args: cobra.MaximumNArgs(1),
		RunE: a.action(func(cmd *cobra.Command, args []string) error {
			if afterExit {
				return a.runWatchdog(cmd.Context(), newManager())
			}
			vg := ""
			if len(args) == 1 {
				vg = args[0]
			}
			removed, err := newManager().Cleanup(cmd.Context(), vg, hooks)
			for _, r := range removed {
				if !a.quiet {
					fmt.Fprintf(a.stdout, "removed %s\n", r)
				}
			}
			return err
		}),
	}
	cmd.Flags().BoolVar(&hooks, "hooks", false, "also remove snapshots the hook commands made")
	// The watchdog of "lvm backup" (lvm_watchdog.go); not for users.
	cmd.Flags().BoolVar(&afterExit, "after-exit", false, "")
	_ = cmd.Flags().MarkHidden("after-exit")
	return cmd
}
