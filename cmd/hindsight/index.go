package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/hindsight-backup/hindsight/snapshot"
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
	var jsonOut bool
	rebuild := &cobra.Command{
		Use:   "rebuild",
		Short: "Rebuild the index from the repository",
		Long: `Build a new index from the repository's index segments, reading the
trailer of every pack that no segment lists, then write every snapshot's
file history again. The old index is replaced only when the new one is
complete. Takes an exclusive lock.

Packs whose trailer cannot be read are listed and left out; the exit code
is then 4 ('hindsight check' tells which snapshots they hurt).`,
		Example: `  hindsight index rebuild`,
		Args:    cobra.NoArgs,
		RunE: a.action(func(cmd *cobra.Command, _ []string) error {
			return a.indexRebuild(cmd.Context(), jsonOut)
		}),
	}
	rebuild.Flags().BoolVar(&jsonOut, "json", false, "print the result as one JSON object")
	cmd.AddCommand(rebuild)
	return cmd
}

func (a *app) indexRebuild(ctx context.Context, jsonOut bool) error {
	s, err := a.openRepo(ctx, openOptions{lock: exclusiveLock, purpose: "index rebuild", noIndex: true})
	if err != nil {
		return err
	}
	defer s.close()
	var done, total atomic.Int64
	stop := a.startStatus(func(time.Duration) (string, string) {
		return fmt.Sprintf("reading index segments and packs: %d of %d", done.Load(), total.Load()), ""
	})
	st, err := s.repo.RebuildIndex(s.ctx, func(d, t int) { done.Store(int64(d)); total.Store(int64(t)) })
	stop()
	if err != nil {
		return s.err(fmt.Errorf("rebuilding index: %w", err))
	}
	if err := snapshot.RebuildHistory(s.ctx, s.repo); err != nil {
		return s.err(fmt.Errorf("rebuilding file history: %w", err))
	}
	broken := make([]string, len(st.BrokenPacks))
	for i, id := range st.BrokenPacks {
		broken[i] = id.String()
	}
	if jsonOut {
		err = writeJSON(a.stdout, struct {
			Segments     int      `json:"segments"`
			BadSegments  int      `json:"bad_segments"`
			SegmentPacks int      `json:"segment_packs"`
			TrailerPacks int      `json:"trailer_packs"`
			BrokenPacks  []string `json:"broken_packs"`
			Blobs        int      `json:"blobs"`
		}{st.Segments, st.BadSegments, st.SegmentPacks, st.TrailerPacks, broken, st.Blobs})
	} else if !a.quiet {
		fmt.Fprintf(a.stdout, "index rebuilt: %d blobs in %d packs\n", st.Blobs, st.SegmentPacks+st.TrailerPacks)
		fmt.Fprintf(a.stdout, "  %d index segments read, %d unreadable (skipped)\n", st.Segments, st.BadSegments)
		fmt.Fprintf(a.stdout, "  %d packs known from segments, %d read from their trailers\n", st.SegmentPacks, st.TrailerPacks)
	}
	if err != nil {
		return err
	}
	for _, id := range broken {
		fmt.Fprintf(a.stderr, "hindsight: pack %s: trailer unreadable, left out of the index\n", id)
	}
	if len(broken) > 0 {
		return fmt.Errorf("%w: %d packs unreadable", errDamage, len(broken))
	}
	return nil
}
