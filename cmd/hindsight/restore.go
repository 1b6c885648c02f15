package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/hindsight-backup/hindsight/snapshot"
	"github.com/hindsight-backup/hindsight/snapshot/fsmeta"
)

type restoreFlags struct {
	target  string
	verify  bool
	numeric bool
	byName  bool
	noOwner bool
	json    bool
}

func (a *app) restoreCommand() *cobra.Command {
	var fl restoreFlags
	cmd := &cobra.Command{
		Use:   "restore SNAP[:PATH] --target DIR",
		Short: "Restore a snapshot, or part of it, into a directory",
		Long: `Restore the snapshot SNAP, or only PATH within it (relative to the
backed-up directory), into DIR, which is created if missing. Files already
in DIR are replaced; nothing else in DIR is removed.

Ownership: by default, when run as root, files get the numeric uid and gid
they had (--numeric-owner): right for a bare-metal restore from a rescue
system whose /etc/passwd is not the restored machine's. --owner-by-name
maps the recorded user and group names to this system's ids instead, for
restoring onto another installed machine. --no-owner leaves ownership to
the restoring user, and is the default when not run as root.

--verify reads every restored file back and checks it against the
snapshot. Metadata that the target filesystem refuses (an xattr, an ACL)
is reported as a warning and does not fail the restore.`,
		Example: `  hindsight restore latest --target /mnt/newroot
  hindsight restore 3fa8c1d2:etc/nginx --target /tmp/nginx --verify
  hindsight restore latest:home/alice --target /home/alice-restored --owner-by-name`,
		Args: cobra.ExactArgs(1),
		RunE: a.action(func(cmd *cobra.Command, args []string) error {
			if fl.target == "" {
				return usagef("restore needs --target DIR")
			}
			return a.runRestore(cmd.Context(), args[0], fl)
		}),
	}
	f := cmd.Flags()
	f.StringVarP(&fl.target, "target", "t", "", "restore into `DIR`")
	f.BoolVar(&fl.verify, "verify", false, "read restored files back and compare them with the snapshot")
	f.BoolVar(&fl.numeric, "numeric-owner", false, "restore the recorded numeric uid and gid (default as root)")
	f.BoolVar(&fl.byName, "owner-by-name", false, "map recorded user and group names to this system's ids")
	f.BoolVar(&fl.noOwner, "no-owner", false, "leave ownership to the restoring user (default when not root)")
	f.BoolVar(&fl.json, "json", false, "print the summary as one JSON object on stdout")
	cmd.MarkFlagsMutuallyExclusive("numeric-owner", "owner-by-name", "no-owner")
	return cmd
}

func (fl restoreFlags) ownerPolicy() fsmeta.OwnerPolicy {
	switch {
	case fl.byName:
		return fsmeta.OwnerByName
	case fl.noOwner:
		return fsmeta.OwnerKeep
	case fl.numeric:
		return fsmeta.OwnerNumeric
	case os.Geteuid() != 0:
		// Only root may give files away; trying would turn every file
		// into a warning.
		return fsmeta.OwnerKeep
	}
	return fsmeta.OwnerNumeric
}

func (a *app) runRestore(ctx context.Context, arg string, fl restoreFlags) error {
	ref, sub := splitSnapshotPath(arg)
	s, err := a.openRepo(ctx, openOptions{lock: sharedLock, purpose: "restore", readOnly: true})
	if err != nil {
		return err
	}
	defer s.close()
	sn, err := s.resolve(ref)
	if err != nil {
		return err
	}
	prog := &snapshot.RestoreProgress{}
	stop := a.startProgress(func(elapsed time.Duration) progressLine {
		// The snapshot's size is the total of a whole restore; of a part,
		// the total grows as the walk finds files.
		total := prog.TotalBytes.Load()
		if cleanPath(sub) == "" {
			total = max(total, sn.Record.Stats.Bytes)
		}
		return progressLine{counts: fmt.Sprintf("%d files, %d dirs, %s of %s, %s", prog.Files.Load(), prog.Dirs.Load(),
			formatBytes(prog.Bytes.Load()), formatBytes(total), formatRate(prog.Bytes.Load(), elapsed)),
			done: prog.Bytes.Load(), total: total}
	})
	start := time.Now()
	warnings, err := snapshot.Restore(s.ctx, s.repo, sn.Record, cleanPath(sub), fl.target,
		snapshot.RestoreOptions{Verify: fl.verify, Owner: fl.ownerPolicy()}, prog)
	stop()
	elapsed := time.Since(start)
	for _, w := range warnings {
		fmt.Fprintf(a.stderr, "hindsight: warning: %s: %v\n", quote(displayPath(w.Path)), w.Err)
	}
	if err != nil {
		if errors.Is(err, snapshot.ErrVerify) {
			return fmt.Errorf("verify: %w", err)
		}
		return s.err(err)
	}
	if fl.json {
		return writeJSON(a.stdout, struct {
			Snapshot    string  `json:"snapshot_id"`
			Target      string  `json:"target"`
			Files       uint64  `json:"files"`
			Dirs        uint64  `json:"dirs"`
			Others      uint64  `json:"others"`
			Bytes       uint64  `json:"bytes"`
			Warnings    int     `json:"warnings"`
			DurationSec float64 `json:"duration_seconds"`
		}{sn.ID.String(), fl.target, prog.Files.Load(), prog.Dirs.Load(), prog.Others.Load(),
			prog.Bytes.Load(), len(warnings), elapsed.Seconds()})
	}
	if !a.quiet {
		fmt.Fprintf(a.stdout, "restored snapshot %s to %s: %d files, %d dirs, %d others, %s in %s",
			sn.ID.Short(), fl.target, prog.Files.Load(), prog.Dirs.Load(), prog.Others.Load(),
			formatBytes(prog.Bytes.Load()), formatDuration(elapsed))
		if len(warnings) > 0 {
			fmt.Fprintf(a.stdout, ", %d warnings", len(warnings))
		}
		fmt.Fprintln(a.stdout)
	}
	return nil
}
