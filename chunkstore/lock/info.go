package lock

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/hindsight-backup/hindsight/remote"
)

// prefix is where lock objects live; each is named by a random ID.
const prefix = "locks/"

// maxLockSize bounds what List reads from one lock object, so a damaged
// or hostile object cannot exhaust memory.
const maxLockSize = 64 << 10

// Info is one lock object's content.
type Info struct {
	ID        string    `json:"-"` // from the object name
	Exclusive bool      `json:"exclusive"`
	Host      string    `json:"host"`
	PID       int       `json:"pid"`
	User      string    `json:"user"`
	Created   time.Time `json:"created"`
	Heartbeat time.Time `json:"heartbeat"`
	Purpose   string    `json:"purpose"`
	// ReadOnly marks a shared lock whose holder writes nothing: it only
	// reads snapshots (a mount, a restore, ls). AdmitsReaders marks an
	// exclusive lock whose holder only removes or renames snapshot records
	// (forget, tag) and lets such readers run beside it: a reader that
	// finds a snapshot gone reports it gone, and the data stays until a
	// prune. A version that knows neither field sees a plain shared or
	// exclusive lock, and keeps out of the way as before.
	ReadOnly      bool `json:"read_only,omitempty"`
	AdmitsReaders bool `json:"admits_readers,omitempty"`

	// Damaged is set, instead of the fields above, for a lock object that
	// could not be decoded. Such a lock conflicts with everything and is
	// never stale: it may come from a newer version still running, so only
	// RemoveAll, on an operator's word, takes it away.
	Damaged string `json:"-"`
}

// conflicts reports whether locks a and b cannot be held at once. A damaged
// lock decodes as exclusive, admitting nobody.
func conflicts(a, b Info) bool {
	switch {
	case !a.Exclusive && !b.Exclusive:
		return false
	case a.Exclusive && b.Exclusive:
		return true
	case a.Exclusive:
		return !(a.AdmitsReaders && b.ReadOnly)
	default:
		return !(b.AdmitsReaders && a.ReadOnly)
	}
}

func (i Info) describe(at time.Time) string {
	if i.Damaged != "" {
		return fmt.Sprintf("lock %s is unreadable (%s)", i.ID, i.Damaged)
	}
	kind := "shared"
	if i.Exclusive {
		kind = "exclusive"
	}
	return fmt.Sprintf("%s lock %s held by %s@%s (pid %d) for %q, created %v ago, last heartbeat %v ago",
		kind, i.ID, i.User, i.Host, i.PID, i.Purpose, age(at, i.Created), age(at, i.Heartbeat))
}

func age(at, t time.Time) time.Duration { return at.Sub(t).Round(time.Second) }

// LockedError reports the locks that kept Acquire from succeeding.
type LockedError struct {
	Holders []Info
	At      time.Time // when the locks were read; ages are relative to it
}

func (e *LockedError) Error() string {
	held := make([]string, len(e.Holders))
	for i, h := range e.Holders {
		held[i] = h.describe(e.At)
	}
	return "repository is locked: " + strings.Join(held, "; ")
}

// IsStale reports whether info's lock is abandoned under opts, and why.
func IsStale(info Info, opts Options) (bool, string) {
	opts = opts.withDefaults()
	if info.Damaged != "" {
		return false, ""
	}
	if a := opts.Now().Sub(info.Heartbeat); a > opts.StaleAfter {
		return true, fmt.Sprintf("no heartbeat for %v", a.Round(time.Second))
	}
	// Only a PID from this host means anything here; a PID of 0 or below
	// would make kill(2) address process groups, not a process.
	if info.Host == opts.Host && info.PID > 0 && !opts.ProcessExists(info.PID) {
		return true, fmt.Sprintf("process %d no longer runs on %s", info.PID, info.Host)
	}
	return false, ""
}

func processExists(pid int) bool {
	// EPERM means the process exists under another user: still alive.
	return !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// List returns every lock on the repository, stale ones included, oldest
// first. An object that cannot be decoded is reported as an exclusive lock
// with Damaged set: refusing to guess keeps a damaged lock from letting
// prune run under a live backup.
func List(ctx context.Context, b remote.Backend) ([]Info, error) {
	var names []string
	if err := b.List(ctx, prefix, func(fi remote.FileInfo) error {
		names = append(names, fi.Name)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("lock: list: %w", err)
	}
	var infos []Info
	for _, name := range names {
		info, err := read(ctx, b, name)
		if errors.Is(err, remote.ErrNotExist) {
			continue // released since the listing
		}
		if err != nil {
			return nil, err
		}
		infos = append(infos, info)
	}
	slices.SortFunc(infos, func(a, b Info) int { return a.Created.Compare(b.Created) })
	return infos, nil
}

// RemoveStale removes the locks that IsStale judges abandoned and returns
// them.
func RemoveStale(ctx context.Context, b remote.Backend, opts Options) ([]Info, error) {
	opts = opts.withDefaults()
	all, err := List(ctx, b)
	if err != nil {
		return nil, err
	}
	var removed []Info
	for _, info := range all {
		if stale, why := IsStale(info, opts); stale && removeStale(ctx, b, info, why, opts) {
			removed = append(removed, info)
		}
	}
	return removed, nil
}

// RemoveAll removes every lock, live or not, for an operator who knows no
// other process is using the repository. It returns how many it removed.
func RemoveAll(ctx context.Context, b remote.Backend) (int, error) {
	all, err := List(ctx, b)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, info := range all {
		err := b.Remove(ctx, objectName(info.ID))
		if err != nil && !errors.Is(err, remote.ErrNotExist) {
			return n, fmt.Errorf("lock: remove %s: %w", info.ID, err)
		}
		n++
	}
	return n, nil
}

// removeStale reports whether the stale lock is gone. A failure is only
// logged: the lock will be judged stale again next time.
func removeStale(ctx context.Context, b remote.Backend, info Info, why string, opts Options) bool {
	err := b.Remove(ctx, objectName(info.ID))
	if err != nil && !errors.Is(err, remote.ErrNotExist) {
		opts.Logger.Warn("lock: could not remove stale lock", "lock", info.ID, "err", err)
		return false
	}
	opts.Logger.Warn("lock: removed stale lock", "lock", info.ID, "host", info.Host,
		"pid", info.PID, "user", info.User, "purpose", info.Purpose, "reason", why)
	return true
}

func objectName(id string) string { return prefix + id }

func newID() string {
	var p [16]byte
	rand.Read(p[:])
	return hex.EncodeToString(p[:])
}

func write(ctx context.Context, b remote.Backend, info Info) error {
	p, err := json.Marshal(info)
	if err != nil {
		return err
	}
	if err := b.Save(ctx, objectName(info.ID), bytes.NewReader(p), int64(len(p))); err != nil {
		return fmt.Errorf("lock: write: %w", err)
	}
	return nil
}

func read(ctx context.Context, b remote.Backend, name string) (Info, error) {
	id := strings.TrimPrefix(name, prefix)
	rc, err := b.Load(ctx, name, 0, maxLockSize)
	if err != nil {
		return Info{}, fmt.Errorf("lock: read %s: %w", id, err)
	}
	defer rc.Close()
	p, err := io.ReadAll(rc)
	if err != nil {
		return Info{}, fmt.Errorf("lock: read %s: %w", id, err)
	}
	return decodeInfo(id, p), nil
}

// decodeInfo never fails: what does not decode is a Damaged lock. So is
// valid JSON without the times ("null", "{}", a newer version's fields):
// its zero heartbeat would make it look abandoned for decades, and it
// would be removed from under whatever process wrote it.
func decodeInfo(id string, p []byte) Info {
	var info Info
	err := json.Unmarshal(p, &info)
	if err == nil && (info.Created.IsZero() || info.Heartbeat.IsZero()) {
		err = errors.New("no creation or heartbeat time")
	}
	if err != nil {
		return Info{ID: id, Exclusive: true, Damaged: err.Error()}
	}
	info.ID = id
	return info
}
