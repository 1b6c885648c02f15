package main

import (
	"context"
	"fmt"
	"os"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/spf13/cobra"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/remote"
	"github.com/hindsight-backup/hindsight/remote/local"
)

// originRemote is the name a clone gives its source, so that pushing back
// is 'hindsight push origin'.
const originRemote = "origin"

func (a *app) cloneCommand() *cobra.Command {
	var jobs int
	cmd := &cobra.Command{
		Use:   "clone SOURCE DIR",
		Short: "Copy a repository (from S3, say) into a new local directory",
		Long: `Copy the repository at SOURCE (an s3: URL as for 'hindsight remote add',
or a directory) into DIR, which must not exist or be empty, then build
DIR's index from the copied index segments. The copy is made in the same
order as a push (packs, then index segments, then snapshot records) and
can be resumed: run the same command again after an interruption and
only what is missing is fetched. SOURCE is recorded in the clone as the
remote "origin".

The password is the source repository's.

` + remoteURLHelp,
		Example: `  hindsight clone s3:https://s3.example.com/backups/host1 /srv/backup`,
		Args:    cobra.ExactArgs(2),
		RunE: a.action(func(cmd *cobra.Command, args []string) error {
			return a.runClone(cmd.Context(), args[0], args[1], jobs)
		}),
	}
	cmd.Flags().IntVar(&jobs, "jobs", 4, "download `N` objects at once")
	return cmd
}

func (a *app) runClone(ctx context.Context, source, dir string, jobs int) error {
	if jobs < 1 {
		return usagef("--jobs must be at least 1")
	}
	if err := emptyOrResumable(dir); err != nil {
		return err
	}
	cfg, err := a.loadConfig()
	if err != nil {
		return err
	}
	src, err := a.remoteBackend(ctx, source, remote.WrapOptions{Connections: jobs})
	if err != nil {
		return err
	}
	s, err := a.openSession(ctx, cfg, src, openOptions{lock: sharedLock, purpose: "clone", readOnly: true})
	if err != nil {
		src.Close()
		return err
	}
	defer s.close()
	dst, err := local.Create(vfs.Default, dir)
	if err != nil {
		return err
	}
	st, err := s.repo.Push(s.ctx, dst, chunkstore.PushOptions{Remote: "clone:" + dir, Jobs: jobs, Logger: a.log})
	if err != nil {
		return s.err(fmt.Errorf("clone %s into %s: %w", src.Location(), dir, err))
	}
	// Opening the copy builds its index from the segments just copied.
	c, err := a.openSession(s.ctx, cfg, dst, openOptions{lock: sharedLock, purpose: "clone"})
	if err != nil {
		return fmt.Errorf("clone %s: opening the copy: %w", dir, err)
	}
	defer c.close()
	if err := c.repo.SaveRemote(c.ctx, originRemote, source); err != nil {
		return err
	}
	if !a.quiet {
		fmt.Fprintf(a.stdout, "cloned %s into %s: %d packs (%s), %d snapshots\n",
			src.Location(), dir, st.PacksSent+st.PacksPresent, formatBytes(uint64(st.BytesSent)), st.SnapshotsSent)
	}
	return nil
}

// emptyOrResumable accepts a missing or empty directory, or one holding an
// interrupted clone (a config is written first, so a repository without
// snapshots is what an interrupted clone looks like): a clone never mixes
// into a directory holding anything else.
func emptyOrResumable(dir string) error {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(entries) == 0 {
		return nil
	}
	if _, err := os.Stat(dir + "/config"); err == nil {
		return nil // Push refuses if it is another repository
	}
	return fmt.Errorf("clone target %s is not empty", dir)
}
