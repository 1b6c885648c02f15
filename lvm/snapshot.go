package lvm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Name prefixes of the snapshots hindsight creates: cleanup finds them by
// these and by nothing else, so a user's own snapshots are never touched.
const (
	SnapshotPrefix = "hindsight-snap-"
	// HookPrefix names snapshots made by the hook commands, which outlive
	// the process by design; cleanup removes them only when asked to.
	HookPrefix = "hindsight-hook-"
)

// DefaultReservePercent of the volume group's free extents is left to
// others when a snapshot is sized automatically: the hypervisor's own
// tools and a second backup may need a snapshot at the same time.
const DefaultReservePercent = 10

// SnapshotOptions size a classic snapshot; thin snapshots take no size.
type SnapshotOptions struct {
	Size           uint64 // bytes; 0 takes what the volume group can spare
	ReservePercent int    // of the free extents, when Size is 0
	// Name overrides the generated name; it must carry a prefix above.
	Name string
}

// Snapshot is a live LVM snapshot that this process created.
type Snapshot struct {
	LV
	Origin *LV
	m      *Manager
	lock   *os.File
	kept   bool // renamed to a base (KeepAsBase): no longer to remove
}

// snapshotExtents is how many extents a classic snapshot gets. lvcreate
// itself shrinks a snapshot larger than its origin needs.
func snapshotExtents(vg *VG, o SnapshotOptions) (uint64, error) {
	if o.Size > 0 {
		n := (o.Size + vg.ExtentSize - 1) / vg.ExtentSize
		if n > vg.FreeCount {
			return 0, fmt.Errorf("%w: --snapshot-size needs %d extents of %d bytes, %s has %d free",
				ErrNoFreeSpace, n, vg.ExtentSize, vg.Name, vg.FreeCount)
		}
		return n, nil
	}
	if vg.FreeCount == 0 {
		return 0, fmt.Errorf("%w: %s has 0 of %d bytes free; extend it (vgextend) or shrink a volume",
			ErrNoFreeSpace, vg.Name, vg.Size)
	}
	pct := min(max(o.ReservePercent, 0), 99)
	return vg.FreeCount - vg.FreeCount*uint64(pct)/100, nil
}

// runID tells apart the snapshots of runs that start in the same second.
func runID() string {
	return strconv.FormatInt(time.Now().Unix(), 36) + strconv.FormatInt(int64(os.Getpid()), 36)
}

// maxOriginInName keeps generated names within lvm2's 127 characters.
const maxOriginInName = 64

// CreateSnapshot snapshots origin ("VG/LV"). The caller must Remove it;
// WithSnapshot does that on every path.
func (m *Manager) CreateSnapshot(ctx context.Context, origin string, o SnapshotOptions) (*Snapshot, error) {
	vgName, lvName, err := SplitName(origin)
	if err != nil {
		return nil, err
	}
	lv, err := m.LV(ctx, origin)
	if err != nil {
		return nil, err
	}
	name := o.Name
	if name == "" {
		name = SnapshotPrefix + lvName[:min(len(lvName), maxOriginInName)] + "-" + runID()
	}
	args := []string{"-s", "-n", name}
	if lv.Thin() {
		// Thin snapshots skip activation by default; -kn activates it.
		args = append(args, "-kn")
	} else {
		vg, err := m.VG(ctx, vgName)
		if err != nil {
			return nil, err
		}
		n, err := snapshotExtents(vg, o)
		if err != nil {
			return nil, volErr(origin, "size snapshot", err)
		}
		args = append(args, "-l", strconv.FormatUint(n, 10))
	}
	lock, err := m.takeLock(name)
	if err != nil {
		return nil, volErr(origin, "lock snapshot", err)
	}
	s := &Snapshot{LV: LV{VG: vgName, Name: name}, Origin: lv, m: m, lock: lock}
	// lvm2 commands that change metadata run to the end even when the
	// backup is interrupted: killing one midway may leave its locks.
	if _, err := m.run.Run(context.WithoutCancel(ctx), "lvcreate", append(args, origin)...); err != nil {
		// A failed lvcreate may still have left the volume behind.
		return nil, errors.Join(volErr(origin, "create snapshot", err), s.removeIfExists(ctx))
	}
	got, err := m.LV(ctx, s.FullName())
	if err != nil {
		return nil, errors.Join(err, s.Remove(ctx))
	}
	s.LV = *got
	return s, nil
}

// Check fails with ErrInvalidated when the snapshot overflowed. Call it
// after reading and before recording: a snapshot invalidated at any point
// has served torn data.
func (s *Snapshot) Check(ctx context.Context) error {
	lv, err := s.m.LV(ctx, s.FullName())
	if err != nil {
		return err
	}
	if lv.Invalid() {
		return volErr(s.Origin.FullName(), "snapshot "+s.Name+" (attr "+lv.Attr+")", ErrInvalidated)
	}
	return nil
}

// Remove removes the snapshot, retrying briefly: right after an unmount
// the device may still be held open for a moment (udev, blkid).
func (s *Snapshot) Remove(ctx context.Context) error {
	if s.kept {
		return nil
	}
	ctx = context.WithoutCancel(ctx)
	var err error
	for try := 0; try < removeTries; try++ {
		if try > 0 {
			time.Sleep(removeRetryDelay)
		}
		// A mount may have come meanwhile: a killed backup's mount
		// command runs on, and holds the device, after its cleanup began.
		if err = s.m.unmountAll(ctx, s.FullName(), s.Path); err != nil {
			continue
		}
		if _, err = s.m.run.Run(ctx, "lvremove", "-y", s.FullName()); err == nil {
			s.unlock()
			return nil
		}
	}
	// The lock stays held until this process ends; then cleanup removes
	// the snapshot.
	return volErr(s.FullName(), "remove snapshot", err)
}

const (
	removeTries      = 3
	removeRetryDelay = 500 * time.Millisecond
)

func (s *Snapshot) removeIfExists(ctx context.Context) error {
	// lvs asked for a volume that does not exist fails (exit 5) rather
	// than answering with no rows: gone looks for it in its group's list.
	if gone, err := s.m.gone(ctx, &s.LV); err == nil && gone {
		s.unlock()
		return nil
	}
	return s.Remove(ctx)
}

// WithSnapshot snapshots origin, calls fn with the snapshot, and removes
// it on every way out of fn: return, error, cancellation and panic. A
// killed process leaves it to Cleanup.
func (m *Manager) WithSnapshot(ctx context.Context, origin string, o SnapshotOptions, fn func(*Snapshot) error) (err error) {
	s, err := m.CreateSnapshot(ctx, origin, o)
	if err != nil {
		return err
	}
	defer func() {
		if rerr := s.Remove(ctx); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}()
	err = fn(s)
	if err != nil && !errors.Is(err, ErrInvalidated) {
		// An overflowed snapshot fails reads with EIO; say why.
		if cerr := s.Check(ctx); errors.Is(cerr, ErrInvalidated) {
			err = fmt.Errorf("%w (%w)", cerr, err)
		}
	}
	return err
}

// takeLock creates and locks the snapshot's lock file. The kernel drops
// the lock when the process dies, however it dies.
func (m *Manager) takeLock(name string) (*os.File, error) {
	p := m.lockPath(name)
	if err := mkdirAll(filepath.Dir(p)); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", p, err)
	}
	return f, nil
}

func (s *Snapshot) unlock() {
	if s.lock != nil {
		os.Remove(s.lock.Name())
		s.lock.Close()
		s.lock = nil
	}
}

// held says a live process holds the named snapshot's lock.
func (m *Manager) held(name string) bool {
	f, err := os.Open(m.lockPath(name))
	if err != nil {
		return false
	}
	defer f.Close()
	if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
		return true
	}
	unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return false
}
