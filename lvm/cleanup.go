package lvm

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Kinds are the volumes of hindsight's that cleanup removes besides the
// snapshots of dead backups (SnapshotPrefix).
type Kinds struct {
	Hooks bool // snapshots of the hook commands (HookPrefix)
	Bases bool // thin snapshots kept as the next backup's base (BasePrefix)
}

// Leftovers lists the snapshots a dead hindsight left in vg ("" for every
// volume group): snapshots named with SnapshotPrefix, and those of k,
// whose lock no live process holds.
func (m *Manager) Leftovers(ctx context.Context, vg string, k Kinds) ([]LV, error) {
	var sel []string
	if vg != "" {
		sel = []string{vg}
	}
	lvs, err := m.LVs(ctx, sel...)
	if err != nil {
		return nil, volErr(vg, "list volumes", err)
	}
	var out []LV
	for _, lv := range lvs {
		snap := strings.HasPrefix(lv.Name, SnapshotPrefix) || k.Hooks && strings.HasPrefix(lv.Name, HookPrefix)
		// A base outlives its origin, and is then no snapshot.
		base := k.Bases && strings.HasPrefix(lv.Name, BasePrefix) && lv.Thin()
		if (snap && lv.Snapshot() || base) && !m.held(lv.Name) {
			out = append(out, lv)
		}
	}
	return out, nil
}

// Cleanup unmounts and removes the leftovers and returns what it removed.
// It goes on past a failure, so one stuck snapshot keeps no other.
func (m *Manager) Cleanup(ctx context.Context, vg string, k Kinds) ([]string, error) {
	if err := m.waitCommands(ctx); err != nil {
		return nil, err
	}
	lvs, err := m.Leftovers(ctx, vg, k)
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, lv := range lvs {
		done, err := m.removeLeftover(ctx, &lv)
		if err != nil {
			errs = append(errs, err)
		}
		if done {
			removed = append(removed, lv.FullName())
		}
	}
	return removed, errors.Join(errs...)
}

// removeLeftover unmounts and removes lv, and reports whether it did.
// The dead backup's watchdog, "lvm cleanup" and the next backup may find
// the same leftover at once: the snapshot's lock, taken for the removal,
// lets one of them remove it, and the others leave it alone.
func (m *Manager) removeLeftover(ctx context.Context, lv *LV) (bool, error) {
	lock, err := m.takeLock(lv.Name)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return false, nil
	}
	if err != nil {
		return false, volErr(lv.FullName(), "lock", err)
	}
	s := &Snapshot{LV: *lv, Origin: &LV{VG: lv.VG, Name: lv.Origin}, m: m, lock: lock}
	// Listed before the lock was taken: another may have removed it since.
	if gone, err := m.gone(ctx, lv); gone || err != nil {
		s.unlock()
		return false, err
	}
	if err := s.Remove(ctx); err != nil {
		return false, err
	}
	return true, nil
}

// gone says lv no longer exists. It lists the volume group rather than
// asking for lv, which lvs answers with an error when it is missing.
func (m *Manager) gone(ctx context.Context, lv *LV) (bool, error) {
	lvs, err := m.LVs(ctx, lv.VG)
	if err != nil {
		return false, volErr(lv.VG, "list volumes", err)
	}
	for _, l := range lvs {
		if l.Name == lv.Name {
			return false, nil
		}
	}
	return true, nil
}

// unmountAll unmounts every mount of the device dev of volume name,
// innermost first, should anything be mounted below it.
func (m *Manager) unmountAll(ctx context.Context, name, dev string) error {
	dirs, err := m.mountsOf(dev)
	if err != nil {
		return volErr(name, "find mounts", err)
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := m.Unmount(ctx, dirs[i]); err != nil {
			return err
		}
	}
	return nil
}

// mountsOf returns where the device dev is mounted, in mount order. It
// compares device numbers, since the table may name the device by another
// of its paths (/dev/mapper/..., /dev/dm-3).
func (m *Manager) mountsOf(dev string) ([]string, error) {
	var st unix.Stat_t
	if err := unix.Stat(dev, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, nil // inactive: nothing can be mounted
		}
		return nil, &os.PathError{Op: "stat", Path: dev, Err: err}
	}
	want := fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	f, err := os.Open(m.MountInfo)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var dirs []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// mountinfo(5): id parent major:minor root mountpoint ...
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && fields[2] == want {
			dirs = append(dirs, unescapeMountPath(fields[4]))
		}
	}
	return dirs, sc.Err()
}

// unescapeMountPath undoes the octal escapes (\040 for a space) the
// kernel writes into mount paths.
func unescapeMountPath(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var c byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &c); err == nil {
				b.WriteByte(c)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
