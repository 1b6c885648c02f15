// Package lock coordinates processes sharing a repository through lock
// objects under locks/ on the repository's Backend. Shared locks (backup,
// restore, check) coexist; an exclusive lock (prune, forget) excludes all
// others. Object stores offer no atomic create-if-absent, so a locker
// writes its own lock first, then looks for conflicting ones, and backs off
// if it finds any; two lockers racing both back off and retry with jitter.
//
// A crashed process leaves its lock behind. Such a lock is stale, and is
// removed by the next locker, when its heartbeat (rewritten every
// Options.Refresh) is older than Options.StaleAfter, or at once when it was
// written on this host by a process that no longer exists.
package lock

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/user"
	"strconv"
	"sync"
	"time"

	"github.com/hindsight-backup/hindsight/remote"
)

// Options tunes Acquire and staleness. Zero fields take the defaults noted.
type Options struct {
	// StaleAfter is how old a heartbeat may grow before its lock is
	// considered abandoned. Default 30 minutes.
	StaleAfter time.Duration
	// Refresh is how often a held lock's heartbeat is rewritten; it must
	// be well below StaleAfter. Default 5 minutes.
	Refresh time.Duration
	// Wait is how long Acquire keeps trying while the repository is
	// locked. Default 0: fail at once with a *LockedError.
	Wait time.Duration
	// PollInterval is the mean pause between tries while waiting; each
	// pause is jittered so that racing lockers fall out of step.
	// Default 5 seconds.
	PollInterval time.Duration

	// Now is the clock written into heartbeats and compared with them.
	// Default time.Now.
	Now func() time.Time
	// Host, PID and User identify this process in its locks. Defaults: the
	// host name, os.Getpid() and the current user's name.
	Host string
	PID  int
	User string
	// ProcessExists reports whether pid is running on this host. Default:
	// kill(pid, 0) does not fail with ESRCH.
	ProcessExists func(pid int) bool
	// Logger records stale-lock removals and refresh failures. Default
	// slog.Default().
	Logger *slog.Logger

	// ReadOnly (for a shared lock) and AdmitsReaders (for an exclusive
	// one) are written into the lock: see Info.
	ReadOnly, AdmitsReaders bool
}

func (o Options) withDefaults() Options {
	if o.StaleAfter <= 0 {
		o.StaleAfter = 30 * time.Minute
	}
	if o.Refresh <= 0 {
		o.Refresh = 5 * time.Minute
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Host == "" {
		o.Host, _ = os.Hostname()
	}
	if o.PID == 0 {
		o.PID = os.Getpid()
	}
	if o.User == "" {
		o.User = currentUser()
	}
	if o.ProcessExists == nil {
		o.ProcessExists = processExists
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return strconv.Itoa(os.Getuid())
}

// ErrLost is reported by Refresh, and signalled by Lost, when this
// process's lock object vanished (someone judged it stale and removed it)
// or could not be refreshed for StaleAfter. Whoever holds the lock should
// stop work that relies on it.
var ErrLost = errors.New("repository lock lost")

// Lock is a held lock. Its heartbeat is refreshed in the background until
// Release.
type Lock struct {
	b    remote.Backend
	opts Options

	cancel context.CancelFunc // stops the refresher
	done   chan struct{}      // closed when the refresher has returned
	lost   chan struct{}

	lostOnce    sync.Once
	releaseOnce sync.Once
	releaseErr  error

	mu       sync.Mutex // guards the fields below; held across I/O to order Refresh and Release
	info     Info
	leftover []string // IDs of our older objects that could not be removed
	released bool
}

// Acquire takes a shared or exclusive lock on the repository behind b,
// labelled with purpose ("backup", "prune", ...). While another process's
// lock conflicts it waits up to opts.Wait, then returns a *LockedError
// naming the holders.
func Acquire(ctx context.Context, b remote.Backend, exclusive bool, purpose string, opts Options) (*Lock, error) {
	opts = opts.withDefaults()
	if opts.Refresh >= opts.StaleAfter {
		return nil, fmt.Errorf("lock: refresh interval %v must be shorter than the stale age %v", opts.Refresh, opts.StaleAfter)
	}
	deadline := time.Now().Add(opts.Wait)
	for {
		l, err := tryAcquire(ctx, b, exclusive, purpose, opts)
		if err == nil {
			l.start(ctx)
			return l, nil
		}
		locked, ok := errors.AsType[*LockedError](err)
		left := time.Until(deadline)
		if !ok || left <= 0 {
			return nil, err
		}
		// Uniform over [PollInterval/2, 3·PollInterval/2): two exclusive
		// lockers that saw each other must not retry in step forever.
		pause := opts.PollInterval/2 + rand.N(opts.PollInterval)
		t := time.NewTimer(min(pause, left))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("lock: %w while waiting: %v", ctx.Err(), locked)
		case <-t.C:
		}
	}
}

func tryAcquire(ctx context.Context, b remote.Backend, exclusive bool, purpose string, opts Options) (*Lock, error) {
	now := opts.Now()
	me := Info{
		ID: newID(), Exclusive: exclusive, Purpose: purpose,
		ReadOnly: !exclusive && opts.ReadOnly, AdmitsReaders: exclusive && opts.AdmitsReaders,
		Host: opts.Host, PID: opts.PID, User: opts.User,
		Created: now, Heartbeat: now,
	}
	if err := write(ctx, b, me); err != nil {
		return nil, err
	}
	holders, err := conflicting(ctx, b, me, opts)
	if err == nil && len(holders) == 0 {
		return &Lock{b: b, opts: opts, info: me, lost: make(chan struct{})}, nil
	}
	// Even a cancelled caller must not leave its lock blocking others.
	if rerr := b.Remove(context.WithoutCancel(ctx), objectName(me.ID)); rerr != nil {
		opts.Logger.Warn("lock: could not withdraw own lock", "lock", me.ID, "err", rerr)
	}
	if err != nil {
		return nil, err
	}
	return nil, &LockedError{Holders: holders, At: now}
}

// conflicting returns the live locks other than me that me cannot coexist
// with, removing stale locks on the way.
func conflicting(ctx context.Context, b remote.Backend, me Info, opts Options) ([]Info, error) {
	all, err := List(ctx, b)
	if err != nil {
		return nil, err
	}
	var holders []Info
	for _, other := range all {
		if other.ID == me.ID {
			continue
		}
		if stale, why := IsStale(other, opts); stale {
			removeStale(ctx, b, other, why, opts)
			continue
		}
		if conflicts(me, other) {
			holders = append(holders, other)
		}
	}
	return holders, nil
}

func (l *Lock) start(ctx context.Context) {
	// The refresher must outlive a cancelled ctx: Release, not the
	// caller's context, ends the lock.
	ctx, l.cancel = context.WithCancel(context.WithoutCancel(ctx))
	l.done = make(chan struct{})
	go l.refresher(ctx)
}

func (l *Lock) refresher(ctx context.Context) {
	defer close(l.done)
	t := time.NewTicker(l.opts.Refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := l.Refresh(ctx)
		if err == nil || ctx.Err() != nil {
			continue
		}
		l.opts.Logger.Warn("lock: refresh failed", "lock", l.Info().ID, "err", err)
		if errors.Is(err, ErrLost) {
			return
		}
		if l.opts.Now().Sub(l.Info().Heartbeat) >= l.opts.StaleAfter {
			l.markLost()
		}
	}
}

// Info returns the lock as currently stored.
func (l *Lock) Info() Info {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.info
}

// Lost is closed when the lock has been lost (see ErrLost).
func (l *Lock) Lost() <-chan struct{} { return l.lost }

// StaleAfter is the age past which this lock's options call a heartbeat,
// and so its process, gone.
func (l *Lock) StaleAfter() time.Duration { return l.opts.StaleAfter }

func (l *Lock) markLost() { l.lostOnce.Do(func() { close(l.lost) }) }

// Refresh rewrites the lock with a new heartbeat. Objects are immutable in
// object stores, so it writes a new object and then removes the old one;
// finding the old one already gone means another process removed it as
// stale, and the lock is lost.
func (l *Lock) Refresh(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released {
		return errors.New("lock: refresh after release")
	}
	next := l.info
	next.ID = newID()
	next.Heartbeat = l.opts.Now()
	if err := write(ctx, l.b, next); err != nil {
		return err
	}
	old := l.info
	l.info = next
	err := l.b.Remove(ctx, objectName(old.ID))
	switch {
	case errors.Is(err, remote.ErrNotExist):
		l.markLost()
		// Our fresh object would only block whoever removed the old one.
		if rerr := l.b.Remove(ctx, objectName(next.ID)); rerr != nil {
			l.leftover = append(l.leftover, next.ID)
		}
		return fmt.Errorf("lock %s: %w: removed by another process", old.ID, ErrLost)
	case err != nil:
		// The new object is in place; the old one is retried at Release.
		l.leftover = append(l.leftover, old.ID)
		return fmt.Errorf("lock: remove previous lock object: %w", err)
	}
	return nil
}

// Release stops the refresher and removes the lock. Later calls return the
// first call's result.
func (l *Lock) Release() error {
	l.releaseOnce.Do(func() {
		l.cancel()
		<-l.done
		l.mu.Lock()
		defer l.mu.Unlock()
		l.released = true
		// The caller's context is usually cancelled by now (SIGINT), yet
		// the lock must still go.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var errs []error
		for _, id := range append(l.leftover, l.info.ID) {
			if err := l.b.Remove(ctx, objectName(id)); err != nil && !errors.Is(err, remote.ErrNotExist) {
				errs = append(errs, err)
			}
		}
		l.releaseErr = errors.Join(errs...)
	})
	return l.releaseErr
}
