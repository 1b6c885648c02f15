package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/chunkstore/lock"
	"github.com/hindsight-backup/hindsight/remote"
)

type pushFlags struct {
	limitUpload string
	jobs        int
	json        bool
}

func (a *app) pushCommand() *cobra.Command {
	var fl pushFlags
	cmd := &cobra.Command{
		Use:   "push REMOTE",
		Short: "Replicate the repository to a remote",
		Long: `Upload to the remote (a name given to 'hindsight remote add') what it
lacks: packs first, then the index segments that list them, then the
snapshot records, so that the remote is a consistent repository at every
moment and a snapshot appears there only once everything it needs has.

Push can be interrupted at any point, even killed: the next push uploads
only what is missing (each pack is checked on the remote and recorded in
the local index; a half-sent pack is never a visible object). It takes a
shared lock, so backups run while it pushes; what they add is pushed next
time. Failed requests are retried with backoff.`,
		Example: `  hindsight push offsite
  hindsight push offsite --limit-upload 8M --jobs 8`,
		Args: cobra.ExactArgs(1),
		RunE: a.action(func(cmd *cobra.Command, args []string) error {
			return a.runPush(cmd.Context(), args[0], fl)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&fl.limitUpload, "limit-upload", "", "cap the upload at `RATE` bytes per second (suffixes K, M, G: powers of 1024)")
	f.IntVar(&fl.jobs, "jobs", 4, "upload `N` objects at once")
	f.BoolVar(&fl.json, "json", false, "print the result as one JSON object")
	return cmd
}

func (a *app) runPush(ctx context.Context, name string, fl pushFlags) error {
	rate, err := parseRate(fl.limitUpload)
	if err != nil {
		return usagef("--limit-upload: %v", err)
	}
	if fl.jobs < 1 {
		return usagef("--jobs must be at least 1")
	}
	s, dst, err := a.openWithRemote(ctx, "push", name, remote.WrapOptions{UploadRate: rate, Connections: fl.jobs})
	if err != nil {
		return err
	}
	defer s.close()
	defer dst.Close()
	// A shared lock on the remote keeps a prune there from deleting what
	// this push relies on; restores and other pushes may run alongside.
	rl, err := lock.Acquire(s.ctx, dst, false, "push", lock.Options{Logger: a.log})
	if err != nil {
		return err
	}
	defer func() {
		if err := rl.Release(); err != nil {
			a.log.Warn("could not remove the lock on the remote", "err", err)
		}
	}()
	var last atomic.Pointer[chunkstore.PushProgress]
	last.Store(&chunkstore.PushProgress{})
	stop := a.startProgress(func(time.Duration) progressLine { return pushProgress(*last.Load()) })
	st, err := s.repo.Push(s.ctx, dst, chunkstore.PushOptions{
		Remote: name, Jobs: fl.jobs, Logger: a.log,
		Progress: func(p chunkstore.PushProgress) { last.Store(&p) },
	})
	stop()
	if err != nil {
		return s.err(fmt.Errorf("push to %s: %w", dst.Location(), err))
	}
	elapsed := last.Load().Elapsed
	if fl.json {
		return writeJSON(a.stdout, struct {
			Remote        string  `json:"remote"`
			Packs         int     `json:"packs"`
			PacksPresent  int     `json:"packs_present"`
			PacksSent     int     `json:"packs_sent"`
			BytesSent     int64   `json:"bytes_sent"`
			SegmentsSent  int     `json:"segments_sent"`
			SnapshotsSent int     `json:"snapshots_sent"`
			Lost          int     `json:"packs_lost_by_remote"`
			Seconds       float64 `json:"seconds"`
		}{name, st.Packs, st.PacksPresent, st.PacksSent, st.BytesSent, st.SegmentsSent, st.SnapshotsSent, st.Lost, elapsed.Seconds()})
	}
	if !a.quiet {
		fmt.Fprintf(a.stdout, "pushed to %s: %d packs (%s) in %s, %s; %d index segments, %d snapshots\n",
			name, st.PacksSent, formatBytes(uint64(st.BytesSent)), formatDuration(elapsed),
			formatRate(uint64(st.BytesSent), last.Load().SendElapsed), st.SegmentsSent, st.SnapshotsSent)
		fmt.Fprintf(a.stdout, "  %d of %d packs were there already\n", st.PacksPresent, st.Packs)
		if st.Lost > 0 {
			fmt.Fprintf(a.stdout, "  %d packs the remote had lost were sent again\n", st.Lost)
		}
	}
	return nil
}

// pushProgress is the progress line of a push; while packs are sent, the
// bar and ETA are of their bytes.
func pushProgress(p chunkstore.PushProgress) progressLine {
	switch p.Phase {
	case chunkstore.PushChecking:
		return progressLine{counts: fmt.Sprintf("checking the remote: %d of %d packs, %d missing", p.PacksChecked, p.Packs, p.PacksToSend)}
	case chunkstore.PushPacks:
		line := progressLine{counts: fmt.Sprintf("packs %d/%d  %s/%s  %s", p.PacksSent, p.PacksToSend,
			formatBytes(uint64(p.BytesSent)), formatBytes(uint64(p.BytesToSend)),
			formatRate(uint64(p.BytesSent), p.SendElapsed)), done: uint64(p.BytesSent), total: uint64(p.BytesToSend)}
		line.eta, line.etaKnown = p.ETA()
		line.eta = line.eta.Round(time.Second)
		return line
	}
	return progressLine{counts: "uploading " + p.Phase.String()}
}

// parseRate reads a byte rate such as 800K, 8M, 1.5G or 8MiB, in powers
// of 1024 as rsync and rclone read them. "" and "0" mean no limit.
func parseRate(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	num := strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(s), "B"), "I")
	mult := 1.0
	if i := len(num) - 1; i >= 0 {
		if k := strings.IndexByte("KMGT", num[i]); k >= 0 {
			mult = float64(int64(1) << (10 * (k + 1)))
			num = num[:i]
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%q is not a rate like 800K, 8M or 1.5G", s)
	}
	return int64(v * mult), nil
}
