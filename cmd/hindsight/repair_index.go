package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/hindsight-backup/hindsight/snapshot"
)

// rebuildIndexCommand is 'repair index' and, under its older name,
// 'index rebuild': one command, two places to find it.
func (a *app) rebuildIndexCommand(use, example string) *cobra.Command {
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   use,
		Short: "Rebuild the index from the repository",
		Long: `Build a new index from the repository's index segments, reading the
trailer of every pack that no segment lists, and write an index segment
that lists those; then write every snapshot's file history again. The old
index is replaced only when the new one is complete. Takes an exclusive
lock. 'hindsight index rebuild' and 'hindsight repair index' are the same
command.

Packs whose trailer cannot be read, and packs a segment lists that are
gone, are listed and left out, so that the next backup stores their data
anew; the exit code is then 4 ('hindsight check' tells which snapshots
they hurt, 'hindsight repair packs' fetches them from a replica).`,
		Example: "  " + example,
		Args:    cobra.NoArgs,
		RunE: a.action(func(cmd *cobra.Command, _ []string) error {
			return a.rebuildIndex(cmd.Context(), jsonOut)
		}),
	}
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print the result as one JSON object")
	return cmd
}

func (a *app) rebuildIndex(ctx context.Context, jsonOut bool) error {
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
	// Packs known only from their trailers go into a new index segment
	// now, not with the next backup: until then a new machine would have
	// to read their trailers too, and check reports them.
	if err := s.repo.Flush(s.ctx); err != nil {
		return s.err(fmt.Errorf("writing an index segment: %w", err))
	}
	dropped, err := s.repo.RemoveDamagedSegments(s.ctx)
	if err != nil {
		return s.err(fmt.Errorf("removing damaged index segments: %w", err))
	}
	if err := snapshot.RebuildHistory(s.ctx, s.repo); err != nil {
		return s.err(fmt.Errorf("rebuilding file history: %w", err))
	}
	broken := idStrings(st.BrokenPacks)
	if jsonOut {
		err = writeJSON(a.stdout, struct {
			Segments     int      `json:"segments"`
			BadSegments  int      `json:"bad_segments"`
			SegmentPacks int      `json:"segment_packs"`
			TrailerPacks int      `json:"trailer_packs"`
			BrokenPacks  []string `json:"broken_packs"`
			Blobs        int      `json:"blobs"`
			MissingPacks []string `json:"missing_packs"`
			Removed      []string `json:"removed_segments"`
		}{st.Segments, st.BadSegments, st.SegmentPacks, st.TrailerPacks, broken, st.Blobs, idStrings(st.MissingPacks), idStrings(dropped)})
	} else if !a.quiet {
		fmt.Fprintf(a.stdout, "index rebuilt: %d blobs in %d packs\n", st.Blobs, st.SegmentPacks+st.TrailerPacks)
		fmt.Fprintf(a.stdout, "  %d index segments read, %d unreadable (skipped)\n", st.Segments, st.BadSegments)
		fmt.Fprintf(a.stdout, "  %d packs known from segments, %d read from their trailers\n", st.SegmentPacks, st.TrailerPacks)
		for _, id := range dropped {
			fmt.Fprintf(a.stdout, "  index segment %s was damaged: removed (a new segment lists its packs)\n", id)
		}
	}
	if err != nil {
		return err
	}
	for _, id := range broken {
		fmt.Fprintf(a.stderr, "hindsight: pack %s: trailer unreadable, left out of the index\n", id)
	}
	for _, id := range st.MissingPacks {
		fmt.Fprintf(a.stderr, "hindsight: pack %s: listed in an index segment but missing, left out of the index ('hindsight repair packs' fetches it from a replica)\n", id)
	}
	if n := len(broken) + len(st.MissingPacks); n > 0 {
		return fmt.Errorf("%w: %d packs unreadable or missing", errDamage, n)
	}
	return nil
}
