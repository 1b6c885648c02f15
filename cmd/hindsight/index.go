package main

import (
	"github.com/spf13/cobra"
)

func (a *app) indexCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "index",
		Short: "Maintain the repository's local index",
		Long: `The index (a local cache of where every blob is, of snapshot records and
of each file's history) can always be rebuilt from the repository.`,
		Args: groupArgs,
		RunE: groupRun,
	}
	cmd.AddCommand(a.rebuildIndexCommand("rebuild", "hindsight index rebuild"))
	return cmd
}
