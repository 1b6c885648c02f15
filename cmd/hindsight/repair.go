package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/remote"
)

func (a *app) repairCommand() *cobra.Command {
	var from string
	var dryRun bool
	var jobs int
	cmd := &cobra.Command{
		Use:   "repair --from REMOTE",
		Short: "Fetch packs this repository lost from a remote it was pushed to",
		Long: `Find every pack the index knows that is missing from the repository (or
has the wrong size), and copy it back from REMOTE, a remote given to
'hindsight remote add' and pushed to before. A fetched pack's trailer is
authenticated before it is kept. --dry-run only reports.

Exit code 4 means some missing packs are not on the remote either
('hindsight check' tells which snapshots they hurt).`,
		Example: `  hindsight repair --from offsite --dry-run
  hindsight repair --from offsite`,
		Args: cobra.NoArgs,
		RunE: a.action(func(cmd *cobra.Command, _ []string) error {
			return a.runRepair(cmd.Context(), from, dryRun, jobs)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "the `REMOTE` to fetch from (required)")
	f.BoolVar(&dryRun, "dry-run", false, "report what is missing and recoverable; fetch nothing")
	f.IntVar(&jobs, "jobs", 4, "fetch `N` packs at once")
	cmd.MarkFlagRequired("from")
	return cmd
}

func (a *app) runRepair(ctx context.Context, from string, dryRun bool, jobs int) error {
	s, src, err := a.openWithRemote(ctx, "repair", from, remote.WrapOptions{Connections: jobs})
	if err != nil {
		return err
	}
	defer s.close()
	defer src.Close()
	st, err := s.repo.RepairPacks(s.ctx, src, jobs, dryRun)
	if err != nil {
		return s.err(err)
	}
	verb := "fetched"
	if dryRun {
		verb = "would fetch"
	}
	fmt.Fprintf(a.stdout, "%d of %d packs missing; %s %d from %s (%s)\n",
		st.Missing, st.Packs, verb, len(st.Recoverable), from, formatBytes(uint64(st.Bytes)))
	if len(st.Unrecoverable) == 0 {
		return nil
	}
	printCapped(a.stdout, "not on the remote either:", idStrings(st.Unrecoverable), 0, 20)
	return fmt.Errorf("%w: %d packs are lost here and not on %s", errDamage, len(st.Unrecoverable), from)
}

func idStrings(ids []blob.ID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.String()
	}
	return out
}
