package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/spf13/cobra"

	"github.com/hindsight-backup/hindsight/snapshot"
)

type volumeBackupFlags struct {
	tags []string
	host string
	json bool
}

type backupVolumeFlags struct {
	volumeBackupFlags
	reflink  bool
	cloneDir string
}

func (f *volumeBackupFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&f.tags, "tag", nil, "add `TAG` to the snapshot (repeatable)")
	cmd.Flags().StringVar(&f.host, "host", "", "record `HOST` as the host name (default: this host's name)")
	cmd.Flags().BoolVar(&f.json, "json", false, "print the summary as one JSON object on stdout")
}

func (a *app) backupVolumeCommand() *cobra.Command {
	var fl backupVolumeFlags
	cmd := &cobra.Command{
		Use:   "backup-volume DEVICE",
		Short: "Back up the raw content of a block device or image file",
		Long: `Back up the raw content of DEVICE, a block device or an image file, as
one image. Runs of zeros are recorded as holes and not stored, so free
space costs nothing; images of the same volume (source "image:DEVICE")
and of similar volumes deduplicate against each other.

The device should not change while it is read: unmount it, or back up an
LVM volume with "hindsight lvm backup --image", which reads a snapshot.
In "hindsight mount" the image is a file that "mount -o loop,ro" opens.

--reflink backs up an image file on XFS (made with reflink=1) or btrfs
while its guest runs: hindsight reads a reflink clone of it, a copy at
one instant that costs no space, made in the same directory as
.NAME.hindsight-new, or in --clone-dir on the same filesystem. After the
backup the clone is kept as .NAME.hindsight-base, and the next backup
with --reflink reads only the blocks written since: those no longer
shared between the base and the new clone. The base costs space only for
the blocks the guest overwrites, as an LVM snapshot would; delete it to
release them (the next backup then reads the whole image). The new clone
is removed however the backup ends; one left by a killed run is reused.`,
		Example: `  hindsight backup-volume /dev/sdb1
  hindsight backup-volume /var/lib/libvirt/images/win10.raw --tag weekly
  hindsight backup-volume --reflink /var/lib/libvirt/images/web01.raw`,
		Args: cobra.ExactArgs(1),
		RunE: a.action(func(cmd *cobra.Command, args []string) error {
			if fl.cloneDir != "" && !fl.reflink {
				return usagef("--clone-dir needs --reflink")
			}
			if fl.reflink {
				if fi, err := os.Stat(args[0]); err == nil && !fi.Mode().IsRegular() {
					return usagef("--reflink clones image files; %s is not a regular file", args[0])
				}
			}
			host, err := hostName(fl.host)
			if err != nil {
				return err
			}
			s, err := a.openRepo(cmd.Context(), openOptions{lock: sharedLock, purpose: "backup-volume", removeTemp: true})
			if err != nil {
				return err
			}
			defer s.close()
			abs, err := filepath.Abs(args[0])
			if err != nil {
				return err
			}
			o := snapshot.ImageOptions{Host: host, Tags: fl.tags}
			var res *snapshot.Result
			if fl.reflink {
				res, err = a.backupReflinked(s, abs, fl.cloneDir, o)
			} else {
				res, err = a.backupImage(s, abs, o)
			}
			return a.reportBackup(res, err, fl.json, "")
		}),
	}
	fl.register(cmd)
	cmd.Flags().BoolVar(&fl.reflink, "reflink", false, "read a reflink clone of the image file, kept so the next backup reads only what changed")
	cmd.Flags().StringVar(&fl.cloneDir, "clone-dir", "", "with --reflink, keep the clones in `DIR` (same filesystem) instead of beside the image")
	return cmd
}

// backupImage runs an image backup with a progress line.
// imageMemoryLimit replaces the CLI's default heap limit for image
// backups: their 32 MiB of chunks in flight are live data beside the pack
// being written and the recycled buffers, and under the default limit the
// collector ran without pause (a 2 GiB image on two cores: 7.0 s at
// 56 MiB, 5.0 s at 112 MiB, peak RSS 103 and 137 MB).
const imageMemoryLimit = 112 << 20

func (a *app) backupImage(s *session, path string, o snapshot.ImageOptions) (*snapshot.Result, error) {
	if a.getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(imageMemoryLimit)
	}
	o.Program, o.User = "hindsight "+buildVersion(), currentUser()
	prog := &snapshot.Progress{}
	stop := a.startProgress(func(elapsed time.Duration) progressLine {
		read := prog.ReadBytes.Load()
		return progressLine{counts: fmt.Sprintf("%s of %s read at %s, %s new", formatBytes(read), formatBytes(prog.Bytes.Load()),
			formatRate(read, elapsed), formatBytes(prog.NewBytes.Load())), current: path, done: read + prog.UnreadBytes.Load(), total: prog.Bytes.Load()}
	})
	res, err := snapshot.BackupImage(s.ctx, s.repo, path, o, prog)
	stop()
	return res, s.err(err)
}

// reportBackup prints a finished backup's summary, prefixed with what was
// backed up when several are, and passes its error on.
func (a *app) reportBackup(res *snapshot.Result, err error, asJSON bool, what string) error {
	if res == nil || err != nil && !errors.Is(err, snapshot.ErrIncomplete) {
		return err
	}
	if asJSON {
		if jerr := writeJSON(a.stdout, backupSummaryJSON(res, err == nil)); jerr != nil {
			return jerr
		}
	} else if !a.quiet {
		if what != "" {
			fmt.Fprintf(a.stdout, "%s: ", what)
		}
		a.printBackupSummary(res)
	}
	return err
}
