package lvm

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"

	"golang.org/x/sys/unix"
)

// validHookID keeps a caller's snapshot ID within what lvm2 accepts in
// a volume name and what is safe as a directory name.
var validHookID = regexp.MustCompile(`^[A-Za-z0-9_.+-]{1,64}$`)

// HookMountPoint is where the hook snapshot id is mounted.
func (m *Manager) HookMountPoint(id string) string { return filepath.Join(m.StateDir, "hooks", id) }

// CreateHookSnapshot snapshots the logical volume mounted at mountpoint,
// mounts the snapshot read-only and returns where. The snapshot outlives
// this process on purpose: RemoveHookSnapshot with the same id ends it.
// This is the create half of UrBackup's snapshot scripts.
func (m *Manager) CreateHookSnapshot(ctx context.Context, id, mountpoint string, o SnapshotOptions) (string, error) {
	if !validHookID.MatchString(id) {
		return "", fmt.Errorf("snapshot id %q: want 1-64 of A-Z a-z 0-9 _ . + -", id)
	}
	lv, err := m.lvMountedAt(ctx, mountpoint)
	if err != nil {
		return "", err
	}
	o.Name = HookPrefix + id
	s, err := m.CreateSnapshot(ctx, lv.FullName(), o)
	if err != nil {
		return "", err
	}
	dir := m.HookMountPoint(id)
	if _, err := m.Mount(ctx, s.Path, dir); err != nil {
		return "", errors.Join(err, s.Remove(ctx))
	}
	s.unlock()
	return dir, nil
}

// RemoveHookSnapshot unmounts and removes the hook snapshot id.
func (m *Manager) RemoveHookSnapshot(ctx context.Context, id string) error {
	if !validHookID.MatchString(id) {
		return fmt.Errorf("snapshot id %q: want 1-64 of A-Z a-z 0-9 _ . + -", id)
	}
	lvs, err := m.LVs(ctx)
	if err != nil {
		return volErr(HookPrefix+id, "list volumes", err)
	}
	for _, lv := range lvs {
		if lv.Name == HookPrefix+id && lv.Snapshot() {
			_, err := m.removeLeftover(ctx, &lv)
			return err
		}
	}
	return volErr(HookPrefix+id, "remove snapshot", ErrNotFound)
}

// lvMountedAt finds the logical volume whose filesystem is mounted at dir,
// by device number.
func (m *Manager) lvMountedAt(ctx context.Context, dir string) (*LV, error) {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	lvs, err := m.LVs(ctx)
	if err != nil {
		return nil, volErr(dir, "list volumes", err)
	}
	for i := range lvs {
		var dst unix.Stat_t
		if unix.Stat(lvs[i].Path, &dst) == nil && dst.Rdev == st.Dev {
			return &lvs[i], nil
		}
	}
	return nil, volErr(dir, "find its logical volume", fmt.Errorf("%w: no logical volume is mounted there", ErrNotFound))
}
