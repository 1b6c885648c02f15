package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/hindsight-backup/hindsight/snapshot"
)

func (a *app) statsCommand() *cobra.Command {
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "stats [SNAP]",
		Short: "Show repository or snapshot statistics",
		Long: `Without SNAP, show the repository's totals from its index: packs, blobs
(data and tree), bytes stored (compressed and encrypted, as on disk) and
raw bytes (before compression), and the number of snapshots.

With SNAP, show the statistics recorded when that snapshot was made.`,
		Example: `  hindsight stats
  hindsight stats latest
  hindsight stats --json`,
		Args: cobra.MaximumNArgs(1),
		RunE: a.action(func(cmd *cobra.Command, args []string) error {
			s, err := a.openRepo(cmd.Context(), openOptions{lock: sharedLock, purpose: "stats", readOnly: true})
			if err != nil {
				return err
			}
			defer s.close()
			if len(args) == 1 {
				return a.snapshotStats(s, args[0], jsonOut)
			}
			return a.repoStats(s.ctx, s, jsonOut)
		}),
	}
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print one JSON object")
	return cmd
}

type repoStatsJSON struct {
	Snapshots   int    `json:"snapshots"`
	Packs       uint64 `json:"packs"`
	PackBytes   uint64 `json:"pack_bytes"`
	DataBlobs   uint64 `json:"data_blobs"`
	TreeBlobs   uint64 `json:"tree_blobs"`
	StoredBytes uint64 `json:"stored_bytes"`
	RawBytes    uint64 `json:"raw_bytes"`
}

func (a *app) repoStats(ctx context.Context, s *session, jsonOut bool) error {
	rs, err := s.repo.Stats()
	if err != nil {
		return err
	}
	st := repoStatsJSON{Packs: rs.Packs, PackBytes: rs.PackBytes, DataBlobs: rs.DataBlobs, TreeBlobs: rs.TreeBlobs,
		StoredBytes: rs.StoredBytes, RawBytes: rs.RawBytes}
	snaps, listErr := snapshot.List(ctx, s.repo)
	if listErr != nil && snaps == nil {
		return s.err(listErr)
	}
	st.Snapshots = len(snaps)
	if jsonOut {
		if err := writeJSON(a.stdout, st); err != nil {
			return err
		}
		return listErr
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 1, ' ', 0)
	fmt.Fprintf(tw, "snapshots:\t%d\n", st.Snapshots)
	fmt.Fprintf(tw, "packs:\t%d\t(%s)\n", st.Packs, formatBytes(st.PackBytes))
	fmt.Fprintf(tw, "blobs:\t%d data, %d tree\n", st.DataBlobs, st.TreeBlobs)
	fmt.Fprintf(tw, "blob bytes stored:\t%s\n", formatBytes(st.StoredBytes))
	fmt.Fprintf(tw, "blob bytes raw:\t%s\n", formatBytes(st.RawBytes))
	if st.StoredBytes > 0 {
		fmt.Fprintf(tw, "compression:\t%.2fx\n", float64(st.RawBytes)/float64(st.StoredBytes))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// A record that could not be read is counted out and reported last.
	return listErr
}

func (a *app) snapshotStats(s *session, ref string, jsonOut bool) error {
	sn, err := s.resolve(ref)
	if err != nil {
		return err
	}
	r := sn.Record
	if jsonOut {
		return writeJSON(a.stdout, struct {
			ID    string    `json:"id"`
			Stats statsJSON `json:"stats"`
			// Counts, not lists: `snapshots --json` has the lists.
			Incomplete uint64 `json:"incomplete"`
			Skipped    uint64 `json:"skipped"`
		}{sn.ID.String(), toStatsJSON(r.Stats), uint64(len(r.Incomplete)) + r.IncompleteMore,
			uint64(len(r.Skipped)) + r.SkippedMore})
	}
	st := r.Stats
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 1, ' ', 0)
	fmt.Fprintf(tw, "snapshot:\t%s\n", sn.ID)
	fmt.Fprintf(tw, "time:\t%s\n", r.Time.Local().Format(timeLayout))
	fmt.Fprintf(tw, "host:\t%s\n", quote(r.Host))
	fmt.Fprintf(tw, "source:\t%s\n", quote(r.Source))
	fmt.Fprintf(tw, "files:\t%d\n", st.Files)
	fmt.Fprintf(tw, "dirs:\t%d\n", st.Dirs)
	fmt.Fprintf(tw, "others:\t%d\n", st.Others)
	fmt.Fprintf(tw, "size:\t%s\n", formatBytes(st.Bytes))
	fmt.Fprintf(tw, "new:\t%s in %d blobs (%s stored)\n", formatBytes(st.NewBytes), st.NewBlobs, formatBytes(st.StoredBytes))
	fmt.Fprintf(tw, "duration:\t%s\n", formatDuration(st.Duration))
	fmt.Fprintf(tw, "incomplete:\t%d\n", uint64(len(r.Incomplete))+r.IncompleteMore)
	fmt.Fprintf(tw, "skipped:\t%d\n", uint64(len(r.Skipped))+r.SkippedMore)
	return tw.Flush()
}
