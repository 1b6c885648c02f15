package main

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hindsight-backup/hindsight/lvm"
	"github.com/hindsight-backup/hindsight/snapshot"
	"github.com/hindsight-backup/hindsight/snapshot/fsmeta"
)

type lvmBackupFlags struct {
	volumeBackupFlags
	snap       snapshotFlags
	image      bool
	noKeepBase bool
	all        string
	excludes   []string
}

func (a *app) lvmBackupCommand(newManager func() *lvm.Manager) *cobra.Command {
	var fl lvmBackupFlags
	cmd := &cobra.Command{
		Use:   "backup [--image] VG/LV... | --all VG",
		Short: "Back up logical volumes through snapshots",
		Long: `Back up each logical volume VG/LV through a snapshot of it: create the
snapshot, mount it read-only, back up its files, unmount, remove the
snapshot. With --image, the snapshot's raw content is backed up instead,
whatever it holds (a guest's partitioned disk, say). The source is
recorded as "lvm:VG/LV".

The snapshot gets what the volume group can spare, leaving
--snapshot-reserve percent of the free space, or --snapshot-size. Thin
volumes get thin snapshots. If the snapshot overflows before the backup
ends, the backup fails and records nothing.

--all VG backs up every logical volume of VG, one after another, except
snapshots, thin pools and those matching --exclude (a glob on the name);
one that fails does not stop the others.

With --image, the thin snapshot of a thin volume is kept after the
backup as ` + lvm.BasePrefix + `LV, replacing the one kept before, and the
next backup reads only the blocks the pool's metadata says changed since
(thin_delta, of thin-provisioning-tools). The base costs pool space for
the blocks the volume overwrites after it was taken; "hindsight lvm
cleanup --bases" removes it, and --no-keep-base keeps none. Without a
base, or without thin_delta, the backup reads the whole volume.`,
		Example: `  hindsight lvm backup vg0/web01
  hindsight lvm backup --image vg0/win10
  hindsight lvm backup --all vg0 --exclude swap --exclude 'tmp-*'`,
		RunE: a.action(func(cmd *cobra.Command, args []string) error {
			if (fl.all == "") == (len(args) == 0) {
				return usagef("give either VG/LV arguments or --all VG")
			}
			for _, p := range fl.excludes {
				if _, err := path.Match(p, ""); err != nil {
					return usagef("--exclude %q: %v", p, err)
				}
			}
			return a.runLVMBackup(cmd.Context(), newManager(), args, fl)
		}),
	}
	fl.register(cmd)
	fl.snap.register(cmd)
	f := cmd.Flags()
	f.BoolVar(&fl.image, "image", false, "back up the raw volume as an image, not its files")
	f.BoolVar(&fl.noKeepBase, "no-keep-base", false, "with --image, remove a thin volume's snapshot instead of keeping it for the next backup")
	f.StringVar(&fl.all, "all", "", "back up every logical volume of `VG`")
	f.StringArrayVarP(&fl.excludes, "exclude", "e", nil, "with --all, leave out volumes whose name matches `GLOB` (repeatable)")
	return cmd
}

func (a *app) runLVMBackup(ctx context.Context, m *lvm.Manager, names []string, fl lvmBackupFlags) error {
	so, err := fl.snap.options()
	if err != nil {
		return err
	}
	host, err := hostName(fl.host)
	if err != nil {
		return err
	}
	if fl.all != "" {
		if names, err = volumesToBackUp(ctx, m, fl.all, fl.excludes); err != nil {
			return err
		}
	}
	s, err := a.openRepo(ctx, openOptions{lock: sharedLock, purpose: "lvm backup", removeTemp: true})
	if err != nil {
		return err
	}
	defer s.close()
	defer a.startWatchdog(m.StateDir)()
	if len(names) == 1 {
		return a.lvmBackupOne(s, m, names[0], host, so, fl)
	}
	// One volume failing must not cost the others their backup.
	failed := 0
	var incomplete error
	for _, name := range names {
		err := a.lvmBackupOne(s, m, name, host, so, fl)
		if errors.Is(err, snapshot.ErrIncomplete) {
			incomplete = err
		} else if err != nil {
			failed++
			fmt.Fprintf(a.stderr, "hindsight: %v\n", err)
		}
		if s.ctx.Err() != nil {
			return s.err(s.ctx.Err())
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d volumes failed", failed, len(names))
	}
	return incomplete
}

// volumesToBackUp lists the logical volumes of vg that --all means.
func volumesToBackUp(ctx context.Context, m *lvm.Manager, vg string, excludes []string) ([]string, error) {
	lvs, err := m.LVs(ctx, vg)
	if err != nil {
		return nil, fmt.Errorf("%s: list volumes: %w", vg, err)
	}
	var out []string
	for _, lv := range lvs {
		if lv.Snapshot() || strings.HasPrefix(lv.Attr, "t") || strings.HasPrefix(lv.Name, lvm.BasePrefix) || excluded(lv.Name, excludes) {
			continue // snapshots, bases and thin pools hold nothing of their own
		}
		out = append(out, lv.FullName())
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no logical volumes to back up", vg)
	}
	return out, nil
}

func excluded(name string, patterns []string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// lvmBackupOne backs up one logical volume through a snapshot that is
// removed whatever happens.
func (a *app) lvmBackupOne(s *session, m *lvm.Manager, name, host string, so lvm.SnapshotOptions, fl lvmBackupFlags) error {
	ctx := s.ctx
	vg, lvName, err := lvm.SplitName(name)
	if err != nil {
		return usageError{err}
	}
	// Snapshots a killed run left behind fill up as the origin changes,
	// and would freeze it once full: remove them first.
	removed, err := m.Cleanup(ctx, vg, lvm.Kinds{})
	for _, r := range removed {
		fmt.Fprintf(a.stderr, "hindsight: removed leftover snapshot %s\n", r)
	}
	if err != nil {
		return err
	}
	var res *snapshot.Result
	err = m.WithSnapshot(ctx, name, so, func(sn *lvm.Snapshot) error {
		o := snapshot.ImageOptions{Host: host, Source: "lvm:" + name, Tags: fl.tags, BeforeCommit: sn.Check}
		if fl.image {
			fs, err := m.Probe(ctx, sn.Path)
			if err != nil {
				return err
			}
			o.Name, o.Volume = lvName+".img", volumeOf(sn.Origin.Size, fs)
			keep := sn.Origin.Thin() && !fl.noKeepBase
			if keep {
				o.Volume.Clone, o.Changes = sn.UUID, a.thinChanges(ctx, m, sn)
			}
			res, err = a.backupImage(s, sn.Path, o)
			if err == nil && keep {
				if kerr := sn.KeepAsBase(ctx); kerr != nil {
					fmt.Fprintf(a.stderr, "hindsight: %v; the next backup reads all of %s\n", kerr, name)
				}
			}
			return err
		}
		res, err = a.backupSnapshotFiles(s, m, sn, o)
		return err
	})
	if err != nil && !strings.Contains(err.Error(), name) {
		// Errors about the snapshot's device name the snapshot, not the volume.
		err = fmt.Errorf("%s: %w", name, err)
	}
	return a.reportBackup(res, err, fl.json, name)
}

// backupSnapshotFiles mounts the snapshot read-only, backs up its tree and
// unmounts it again.
func (a *app) backupSnapshotFiles(s *session, m *lvm.Manager, sn *lvm.Snapshot, o snapshot.ImageOptions) (res *snapshot.Result, err error) {
	dir := m.MountPoint(sn.VG, sn.Origin.Name)
	fs, err := m.Mount(s.ctx, sn.Path, dir)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, m.Unmount(s.ctx, dir)) }()
	prog := &snapshot.Progress{}
	stop := a.startStatus(func(time.Duration) (string, string) {
		return fmt.Sprintf("%d files, %s", prog.Files.Load(), formatBytes(prog.Bytes.Load())), ""
	})
	res, err = snapshot.Backup(s.ctx, s.repo, dir, snapshot.BackupOptions{
		Host: o.Host, Source: o.Source, Tags: o.Tags, Program: "hindsight " + buildVersion(), User: currentUser(),
		OneFileSystem: true, NewDevice: true, Volume: volumeOf(sn.Origin.Size, fs), BeforeCommit: o.BeforeCommit,
	}, prog)
	stop()
	return res, s.err(err)
}

// thinChanges returns what the thin snapshot sn holds unchanged since the
// base its volume's last backup kept, or nil where nothing is known: no
// base yet, or none thin_delta can compare with.
func (a *app) thinChanges(ctx context.Context, m *lvm.Manager, sn *lvm.Snapshot) snapshot.ChangeOracle {
	base, err := m.Base(ctx, sn.Origin)
	if base == nil && err == nil {
		return nil
	}
	var same []lvm.Range
	if err == nil {
		same, err = m.ThinUnchanged(ctx, base, &sn.LV)
	}
	if err != nil {
		fmt.Fprintf(a.stderr, "hindsight: %v; reading all of %s\n", err, sn.Origin.FullName())
		return nil
	}
	c := knownChanges{base: base.UUID}
	for _, r := range same {
		c.unchanged = append(c.unchanged, fsmeta.Extent{Off: r.Off, Len: r.Len})
	}
	return c
}
