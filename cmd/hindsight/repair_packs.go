package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/remote"
)

type repairPacksOptions struct {
	from   string
	dryRun bool
	jobs   int
	packs  []blob.ID
}

func (a *app) repairPacksCommand() *cobra.Command {
	var o repairPacksOptions
	cmd := &cobra.Command{
		Use:   "packs [PACK...]",
		Short: "Replace missing and damaged packs with a replica's copies",
		Long: `Find every pack the index knows that is missing here, has the wrong size,
or whose bytes do not hash to its name (this reads every pack whole; name
packs, as check reports them, to look at those only), and replace it with
the copy on REMOTE, a replica made by 'hindsight push', once that copy
hashes to the pack's name. A damaged copy here is only ever replaced by a
sound one. --from may be left out when one remote is configured.

Exit code 4 means some packs could not be repaired: the remote lacks them
or holds them damaged too ('hindsight check' tells which snapshots they
hurt; 'hindsight repair snapshots' gives up what is lost).`,
		Example: `  hindsight repair packs --from offsite --dry-run
  hindsight repair packs --from offsite
  hindsight repair packs 3f2a…  (a pack check named)`,
		RunE: a.action(func(cmd *cobra.Command, args []string) error {
			for _, arg := range args {
				id, err := blob.ParseID(arg)
				if err != nil {
					return usagef("pack %q: %v", arg, err)
				}
				o.packs = append(o.packs, id)
			}
			if o.jobs < 1 {
				return usagef("--jobs must be at least 1")
			}
			return a.runRepairPacks(cmd.Context(), o)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&o.from, "from", "", "the `REMOTE` to fetch from (default: the only remote)")
	f.BoolVar(&o.dryRun, "dry-run", false, "report what is missing or damaged and recoverable; fetch nothing")
	f.IntVar(&o.jobs, "jobs", 4, "examine and fetch `N` packs at once")
	return cmd
}

func (a *app) runRepairPacks(ctx context.Context, o repairPacksOptions) error {
	s, err := a.openRepo(ctx, openOptions{lock: sharedLock, purpose: "repair packs"})
	if err != nil {
		return err
	}
	defer s.close()
	if o.from, err = defaultRemote(s, o.from); err != nil {
		return err
	}
	url, err := s.repo.Remote(s.ctx, o.from)
	if err != nil {
		return usageError{err}
	}
	src, err := a.remoteBackend(s.ctx, url, remote.WrapOptions{Connections: o.jobs})
	if err != nil {
		return err
	}
	defer src.Close()
	var done, total atomic.Int64
	stop := a.startStatus(func(time.Duration) (string, string) {
		return fmt.Sprintf("verifying packs: %d of %d", done.Load(), total.Load()), ""
	})
	st, err := s.repo.RepairPacks(s.ctx, src, chunkstore.RepairOptions{Jobs: o.jobs, DryRun: o.dryRun, Packs: o.packs,
		Progress: func(d, t int) { done.Store(int64(d)); total.Store(int64(t)) }})
	stop()
	if err != nil {
		return s.err(err)
	}
	verb := "fetched"
	if o.dryRun {
		verb = "would fetch"
	}
	fmt.Fprintf(a.stdout, "%d packs examined: %d missing, %d damaged; %s %d from %s (%s)\n",
		st.Packs, st.Missing, st.Damaged, verb, len(st.Recoverable), o.from, formatBytes(uint64(st.Bytes)))
	if len(st.Lost) == 0 {
		return nil
	}
	lost := make([]string, len(st.Lost))
	for i, l := range st.Lost {
		lost[i] = fmt.Sprintf("%s: %s", l.Pack, l.Reason)
	}
	printCapped(a.stdout, "cannot be repaired from "+o.from+":", lost, 0, 20)
	return fmt.Errorf("%w: %d packs are damaged or lost here and cannot be repaired from %s", errDamage, len(st.Lost), o.from)
}

// defaultRemote is name, or else the repository's only remote.
func defaultRemote(s *session, name string) (string, error) {
	if name != "" {
		return name, nil
	}
	all, err := s.repo.Remotes(s.ctx)
	if err != nil {
		return "", err
	}
	names := slices.Sorted(maps.Keys(all))
	if len(names) != 1 {
		return "", usagef("give --from REMOTE (configured remotes: %v)", names)
	}
	return names[0], nil
}

func idStrings(ids []blob.ID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.String()
	}
	return out
}
