package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/hindsight-backup/hindsight/lvm"
	"github.com/hindsight-backup/hindsight/snapshot"
)

type lvmRestoreFlags struct {
	image   bool
	size    string
	mkfs    string
	newUUID bool
	holes   holesFlag
}

func (a *app) lvmRestoreCommand(newManager func() *lvm.Manager) *cobra.Command {
	var fl lvmRestoreFlags
	cmd := &cobra.Command{
		Use:   "restore [--image] SNAP VG/LV",
		Short: "Create a fresh logical volume and restore a snapshot onto it",
		Long: `Create the logical volume VG/LV and restore snapshot SNAP onto it.

An image snapshot (lvm backup --image, backup-volume; or say --image) is
written onto the new volume as it was. A file snapshot gets a new
filesystem (--mkfs; "auto" makes the type the backed-up volume had, with
its UUID and label unless --new-uuid), the files are restored into it,
and the unmounted filesystem is checked read-only (fsck -n) at the end.

--size auto makes the volume as large as the backed-up one was, or, for
snapshots that did not record it, the content's size plus a quarter.`,
		Example: `  hindsight lvm restore latest vg0/web01-new --size auto --mkfs ext4
  hindsight lvm restore --image 3fa8c1d2 vg0/win10-new`,
		Args: cobra.ExactArgs(2),
		RunE: a.action(func(cmd *cobra.Command, args []string) error {
			if _, _, err := lvm.SplitName(args[1]); err != nil {
				return usageError{err}
			}
			mode, err := fl.holes.holeMode()
			if err != nil {
				return err
			}
			s, sn, err := a.openSnapshot(cmd.Context(), "lvm restore", args[0])
			if err != nil {
				return err
			}
			defer s.close()
			isImage := sn.Record.Kind == snapshot.KindImage
			if fl.image && !isImage {
				return fmt.Errorf("snapshot %s holds files, not an image: leave out --image", sn.ID.Short())
			}
			size, err := restoreSize(fl.size, sn.Record)
			if err != nil {
				return err
			}
			m := newManager()
			lv, err := m.CreateVolume(s.ctx, args[1], size)
			if err != nil {
				return err
			}
			if isImage {
				return a.restoreImage(s, sn, lv.Path, mode)
			}
			return a.restoreFilesOnto(s, m, sn, lv, fl)
		}),
	}
	f := cmd.Flags()
	f.BoolVar(&fl.image, "image", false, "the snapshot is an image (checked; the snapshot says so anyway)")
	f.StringVar(&fl.size, "size", "auto", "make the volume `SIZE` (like 20G), or auto")
	f.StringVar(&fl.mkfs, "mkfs", "auto", "make a filesystem of `TYPE` (ext4, xfs, btrfs), or auto: the backed-up one's")
	f.BoolVar(&fl.newUUID, "new-uuid", false, "give the new filesystem a new UUID and no label (for a copy beside the original)")
	fl.holes.register(cmd)
	return cmd
}

// restoreSize is the new volume's size in bytes.
func restoreSize(flag string, rec *snapshot.Record) (uint64, error) {
	if flag != "auto" {
		n, err := parseSize(flag)
		if err != nil || n <= 0 {
			return 0, usagef("--size: %q is not auto or a size like 20G", flag)
		}
		return uint64(n), nil
	}
	if rec.Volume != nil && rec.Volume.Size > 0 {
		return rec.Volume.Size, nil
	}
	// Content plus a quarter for metadata and growth, and at least what
	// every filesystem hindsight makes accepts.
	return max(rec.Stats.Bytes+rec.Stats.Bytes/4, 300<<20), nil
}

// restoreFilesOnto makes a filesystem on the new volume, restores the
// snapshot's files into it and checks it.
func (a *app) restoreFilesOnto(s *session, m *lvm.Manager, sn snapshot.Snapshot, lv *lvm.LV, fl lvmRestoreFlags) (err error) {
	fs := lvm.Filesystem{Type: fl.mkfs}
	if v := sn.Record.Volume; v != nil && (fl.mkfs == "auto" || fl.mkfs == v.FSType) {
		fs = lvm.Filesystem{Type: v.FSType, UUID: v.FSUUID, Label: v.FSLabel}
	}
	if fs.Type == "auto" || fs.Type == "" {
		return fmt.Errorf("snapshot %s does not record a filesystem type: give --mkfs", sn.ID.Short())
	}
	if fl.newUUID {
		fs.UUID, fs.Label = "", ""
	}
	if err := m.Mkfs(s.ctx, lv.Path, fs); err != nil {
		return err
	}
	dir, err := os.MkdirTemp(filepath.Join(m.StateDir), "restore-")
	if err != nil {
		return err
	}
	defer os.Remove(dir)
	if err := m.MountWritable(s.ctx, lv.Path, dir, fs.Type); err != nil {
		return err
	}
	rerr := a.runRestoreInto(s, sn, dir)
	if err := m.Unmount(s.ctx, dir); err != nil {
		return errors.Join(rerr, err)
	}
	if rerr != nil {
		return rerr
	}
	if err := m.Fsck(s.ctx, lv.Path, fs.Type); err != nil {
		return err
	}
	if !a.quiet {
		fmt.Fprintf(a.stdout, "restored snapshot %s onto %s (%s, %s); fsck clean\n", sn.ID.Short(), lv.FullName(), fs.Type, formatBytes(lv.Size))
	}
	return nil
}

// runRestoreInto restores all of a file snapshot into dir, numeric owners.
func (a *app) runRestoreInto(s *session, sn snapshot.Snapshot, dir string) error {
	warnings, err := snapshot.Restore(s.ctx, s.repo, sn.Record, "", dir, snapshot.RestoreOptions{Owner: restoreFlags{numeric: true}.ownerPolicy()}, nil)
	for _, w := range warnings {
		fmt.Fprintf(a.stderr, "hindsight: warning: %s: %v\n", quote(displayPath(w.Path)), w.Err)
	}
	return s.err(err)
}
