package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func (a *app) repairCommand() *cobra.Command {
	var legacy repairPacksOptions
	cmd := &cobra.Command{
		Use:   "repair index | snapshots | packs",
		Short: "Heal the damage check finds",
		Long: `Heal what 'hindsight check' reports:

  repair index       build the index again from the repository, as 'index
                     rebuild' does, and write an index segment for packs no
                     segment lists: for a damaged index or lost segments
  repair packs       replace missing and damaged packs with the copies of a
                     replica ('hindsight push' made it) that verify
  repair snapshots   write unreadable snapshot records again from a replica,
                     and record snapshots whose data is lost for good anew
                     without it (lost files are zero-filled and listed)

Repair packs before snapshots, which gives up data a replica may still
hold, and before index, which leaves out packs it cannot read.

'hindsight repair --from REMOTE' is the old spelling of 'repair packs
--from REMOTE' and still works.`,
		Example: `  hindsight repair index
  hindsight repair packs --from offsite
  hindsight repair snapshots --from offsite --dry-run`,
		Args: groupArgs,
		RunE: a.action(func(cmd *cobra.Command, _ []string) error {
			if legacy.from == "" {
				return usagef("say what to repair: hindsight repair index | snapshots | packs")
			}
			fmt.Fprintln(a.stderr, "hindsight: 'repair --from' is now 'repair packs --from'; running that")
			return a.runRepairPacks(cmd.Context(), legacy)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&legacy.from, "from", "", "the `REMOTE` to fetch packs from")
	f.BoolVar(&legacy.dryRun, "dry-run", false, "report only")
	f.IntVar(&legacy.jobs, "jobs", 4, "packs at once")
	for _, name := range []string{"from", "dry-run", "jobs"} {
		_ = f.MarkHidden(name)
	}
	cmd.AddCommand(a.rebuildIndexCommand("index", "hindsight repair index"), a.repairPacksCommand(), a.repairSnapshotsCommand())
	return cmd
}
