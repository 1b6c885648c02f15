package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/hindsight-backup/hindsight/lvm"
)

func (a *app) lvmCleanupCommand(newManager func() *lvm.Manager) *cobra.Command {
	var k lvm.Kinds
	var afterExit bool
	cmd := &cobra.Command{
		Use:   "cleanup [VG]",
		Short: "Remove snapshots that a killed hindsight left behind",
		Long: `Unmount and remove the snapshots named ` + lvm.SnapshotPrefix + `* in VG (default:
every volume group) that no running hindsight holds: those of a backup
that was killed or crashed. Snapshots of backups still running are left
alone. With --hooks, snapshots made by "lvm snapshot-create" (named
` + lvm.HookPrefix + `*) are removed too: only use it when no backup that
called the hooks is running. With --bases, so are the thin snapshots
"lvm backup --image" keeps as the next backup's base (named
` + lvm.BasePrefix + `LV), releasing the pool space they hold; the next
backup of each volume then reads all of it.`,
		Example: `  hindsight lvm cleanup
  hindsight lvm cleanup vg0 --hooks
  hindsight lvm cleanup --bases`,
		Args: cobra.MaximumNArgs(1),
		RunE: a.action(func(cmd *cobra.Command, args []string) error {
			if afterExit {
				return a.runWatchdog(cmd.Context(), newManager())
			}
			vg := ""
			if len(args) == 1 {
				vg = args[0]
			}
			removed, err := newManager().Cleanup(cmd.Context(), vg, k)
			for _, r := range removed {
				if !a.quiet {
					fmt.Fprintf(a.stdout, "removed %s\n", r)
				}
			}
			return err
		}),
	}
	cmd.Flags().BoolVar(&k.Hooks, "hooks", false, "also remove snapshots the hook commands made")
	cmd.Flags().BoolVar(&k.Bases, "bases", false, "also remove the thin snapshots kept as the next image backup's base")
	// The watchdog of "lvm backup" (lvm_watchdog.go); not for users.
	cmd.Flags().BoolVar(&afterExit, "after-exit", false, "")
	_ = cmd.Flags().MarkHidden("after-exit")
	return cmd
}
