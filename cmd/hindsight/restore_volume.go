package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/hindsight-backup/hindsight/snapshot"
)

// holesFlag is --holes: what an image restore does with the image's holes.
type holesFlag struct{ mode string }

func (f *holesFlag) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.mode, "holes", "zero", "where the image has no data: `zero`, discard or skip (target already reads zeros)")
}

func (f *holesFlag) holeMode() (snapshot.HoleMode, error) {
	switch f.mode {
	case "zero":
		return snapshot.HolesZero, nil
	case "discard":
		return snapshot.HolesDiscard, nil
	case "skip":
		return snapshot.HolesSkip, nil
	}
	return 0, usagef("--holes %q: want zero, discard or skip", f.mode)
}

func (a *app) restoreVolumeCommand() *cobra.Command {
	var holes holesFlag
	cmd := &cobra.Command{
		Use:   "restore-volume SNAP TARGET",
		Short: "Write an image snapshot onto a block device or into a file",
		Long: `Write the image of snapshot SNAP (made by backup-volume or lvm backup
--image) onto TARGET: a block device at least as large as the image, which
must not be mounted, or a file, which is created or replaced. Only the
image's data is written; its holes are zeroed (BLKZEROOUT, cheap on thin
volumes and SSDs), discarded, or skipped, as --holes says.`,
		Example: `  hindsight restore-volume latest /dev/sdc1
  hindsight restore-volume 3fa8c1d2 /tmp/win10.raw`,
		Args: cobra.ExactArgs(2),
		RunE: a.action(func(cmd *cobra.Command, args []string) error {
			mode, err := holes.holeMode()
			if err != nil {
				return err
			}
			s, sn, err := a.openSnapshot(cmd.Context(), "restore-volume", args[0])
			if err != nil {
				return err
			}
			defer s.close()
			return a.restoreImage(s, sn, args[1], mode)
		}),
	}
	holes.register(cmd)
	return cmd
}

// openSnapshot opens the repository for a restore and finds snapshot ref.
func (a *app) openSnapshot(ctx context.Context, purpose, ref string) (*session, snapshot.Snapshot, error) {
	s, err := a.openRepo(ctx, openOptions{lock: sharedLock, purpose: purpose, readOnly: true})
	if err != nil {
		return nil, snapshot.Snapshot{}, err
	}
	sn, err := s.resolve(ref)
	if err != nil {
		s.close()
		return nil, sn, err
	}
	return s, sn, nil
}

// restoreImage writes an image snapshot onto target with a progress line.
func (a *app) restoreImage(s *session, sn snapshot.Snapshot, target string, mode snapshot.HoleMode) error {
	prog := &snapshot.RestoreProgress{}
	stop := a.startProgress(func(elapsed time.Duration) progressLine {
		return progressLine{counts: fmt.Sprintf("%s of %s at %s", formatBytes(prog.Bytes.Load()), formatBytes(prog.TotalBytes.Load()),
			formatRate(prog.Bytes.Load(), elapsed)), current: target, done: prog.Bytes.Load(), total: prog.TotalBytes.Load()}
	})
	start := time.Now()
	err := snapshot.RestoreImage(s.ctx, s.repo, sn.Record, target, snapshot.ImageRestoreOptions{Holes: mode}, prog)
	stop()
	if err != nil {
		return s.err(err)
	}
	if !a.quiet {
		fmt.Fprintf(a.stdout, "restored image %s to %s: %s in %s\n", sn.ID.Short(), target,
			formatBytes(prog.TotalBytes.Load()), formatDuration(time.Since(start)))
	}
	return nil
}
