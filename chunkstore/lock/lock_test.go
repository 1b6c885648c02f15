package lock

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hindsight-backup/hindsight/remote"
	"github.com/hindsight-backup/hindsight/remote/local"
)

func newBackend(t *testing.T) remote.Backend {
	t.Helper()
	b, err := local.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testOpts identifies a fictitious process; tests vary Host and PID to
// play several lockers.
func testOpts(host string, pid int) Options {
	return Options{
		Host: host, PID: pid, User: "tester",
		PollInterval:  10 * time.Millisecond,
		ProcessExists: func(int) bool { return true },
		Logger:        slog.New(slog.DiscardHandler),
	}
}

func acquire(t *testing.T, b remote.Backend, exclusive bool, purpose string, opts Options) *Lock {
	t.Helper()
	l, err := Acquire(t.Context(), b, exclusive, purpose, opts)
	if err != nil {
		t.Fatalf("Acquire(exclusive=%v, %q): %v", exclusive, purpose, err)
	}
	t.Cleanup(func() { l.Release() })
	return l
}

func ids(t *testing.T, b remote.Backend) []string {
	t.Helper()
	all, err := List(t.Context(), b)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, i := range all {
		out = append(out, i.ID)
	}
	slices.Sort(out)
	return out
}

// plant stores a lock object directly, as another (possibly dead) process
// would have.
func plant(t *testing.T, b remote.Backend, info Info) {
	t.Helper()
	if err := write(t.Context(), b, info); err != nil {
		t.Fatal(err)
	}
}

// deadPID returns the PID of a process that has exited and been reaped.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func TestSharedLocksCoexist(t *testing.T) {
	b := newBackend(t)
	l1 := acquire(t, b, false, "backup", testOpts("h1", 1))
	l2 := acquire(t, b, false, "restore", testOpts("h2", 2))
	want := []string{l1.Info().ID, l2.Info().ID}
	slices.Sort(want)
	if got := ids(t, b); !slices.Equal(got, want) {
		t.Errorf("locks = %q; want both %q", got, want)
	}
}

func TestConflicts(t *testing.T) {
	tests := []struct {
		name            string
		held, requested bool // exclusive?
	}{
		{"exclusive blocks shared", true, false},
		{"shared blocks exclusive", false, true},
		{"exclusive blocks exclusive", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBackend(t)
			holder := acquire(t, b, tt.held, "prune", testOpts("holder-host", 4242))
			_, err := Acquire(t.Context(), b, tt.requested, "backup", testOpts("other", 7))
			locked, ok := errors.AsType[*LockedError](err)
			if !ok {
				t.Fatalf("Acquire = %v; want *LockedError", err)
			}
			if len(locked.Holders) != 1 || locked.Holders[0].ID != holder.Info().ID {
				t.Errorf("Holders = %+v; want the holder", locked.Holders)
			}
			for _, want := range []string{"holder-host", "4242", `"prune"`, "ago"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %s", err, want)
				}
			}
			if got := ids(t, b); !slices.Equal(got, []string{holder.Info().ID}) {
				t.Errorf("locks after refusal = %q; the refused locker must withdraw its own", got)
			}
		})
	}
}

func TestStaleLocks(t *testing.T) {
	dead := deadPID(t)
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name      string
		planted   Info
		now       time.Time
		wantStale bool
	}{
		{"dead process on this host", Info{Host: "me", PID: dead}, t0, true},
		{"dead pid on another host is not ours to judge", Info{Host: "elsewhere", PID: dead}, t0, false},
		{"live process on this host", Info{Host: "me", PID: os.Getpid()}, t0, false},
		{"heartbeat too old", Info{Host: "elsewhere", PID: 1}, t0.Add(31 * time.Minute), true},
		{"heartbeat recent enough", Info{Host: "elsewhere", PID: 1}, t0.Add(29 * time.Minute), false},
		{"zero pid never probed", Info{Host: "me", PID: 0}, t0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBackend(t)
			planted := tt.planted
			planted.ID, planted.Exclusive, planted.Purpose = newID(), true, "prune"
			planted.Created, planted.Heartbeat = t0, t0
			plant(t, b, planted)

			opts := testOpts("me", os.Getpid())
			opts.ProcessExists = nil // the real kill(pid, 0)
			opts.Now = func() time.Time { return tt.now }
			l, err := Acquire(t.Context(), b, false, "backup", opts)
			if tt.wantStale {
				if err != nil {
					t.Fatalf("Acquire over a stale lock = %v", err)
				}
				defer l.Release()
				if slices.Contains(ids(t, b), planted.ID) {
					t.Error("stale lock was not removed")
				}
				return
			}
			if _, ok := errors.AsType[*LockedError](err); !ok {
				t.Fatalf("Acquire = %v; want *LockedError from a live lock", err)
			}
			if !slices.Contains(ids(t, b), planted.ID) {
				t.Error("live lock was removed")
			}
		})
	}
}

func TestRemoveStale(t *testing.T) {
	b := newBackend(t)
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	old := Info{ID: newID(), Host: "x", PID: 1, Created: t0, Heartbeat: t0}
	fresh := Info{ID: newID(), Host: "x", PID: 1, Created: t0, Heartbeat: t0.Add(time.Hour)}
	plant(t, b, old)
	plant(t, b, fresh)
	opts := testOpts("me", 1)
	opts.Now = func() time.Time { return t0.Add(time.Hour + time.Minute) }
	removed, err := RemoveStale(t.Context(), b, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0].ID != old.ID {
		t.Errorf("removed %+v; want only the old lock", removed)
	}
	if got := ids(t, b); !slices.Equal(got, []string{fresh.ID}) {
		t.Errorf("locks left = %q; want the fresh one", got)
	}
}

func TestDamagedLockBlocksUntilRemoveAll(t *testing.T) {
	for name, p := range map[string]string{
		"not JSON":  "{not json",
		"null":      "null",
		"no times":  `{"exclusive":false,"host":"me","pid":1}`,
		"no beat":   `{"created":"2026-01-02T03:04:05Z"}`,
		"other era": `{"format":2,"holder":{"host":"me"}}`,
	} {
		t.Run(name, func(t *testing.T) {
			b := newBackend(t)
			if err := b.Save(t.Context(), "locks/damaged", strings.NewReader(p), int64(len(p))); err != nil {
				t.Fatal(err)
			}
			_, err := Acquire(t.Context(), b, false, "backup", testOpts("me", 1))
			if locked, ok := errors.AsType[*LockedError](err); !ok || locked.Holders[0].Damaged == "" {
				t.Fatalf("Acquire = %v; want *LockedError naming the damaged lock", err)
			}
			if removed, _ := RemoveStale(t.Context(), b, testOpts("me", 1)); len(removed) != 0 {
				t.Errorf("RemoveStale removed %+v; a damaged lock is never stale", removed)
			}
			if n, err := RemoveAll(t.Context(), b); err != nil || n != 1 {
				t.Fatalf("RemoveAll = %d, %v; want 1", n, err)
			}
			acquire(t, b, true, "prune", testOpts("me", 1))
		})
	}
}

func TestReleaseRemovesObject(t *testing.T) {
	b := newBackend(t)
	l := acquire(t, b, true, "prune", testOpts("h", 1))
	if len(ids(t, b)) != 1 {
		t.Fatal("no lock object after Acquire")
	}
	for i := range 2 {
		if err := l.Release(); err != nil {
			t.Errorf("Release #%d = %v", i+1, err)
		}
	}
	if got := ids(t, b); len(got) != 0 {
		t.Errorf("locks after Release = %q", got)
	}
	if err := l.Refresh(t.Context()); err == nil {
		t.Error("Refresh after Release succeeded")
	}
}

func TestRefreshReplacesObject(t *testing.T) {
	b := newBackend(t)
	var clock atomic.Int64
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	opts := testOpts("h", 1)
	opts.Now = func() time.Time { return t0.Add(time.Duration(clock.Load()) * time.Minute) }
	l := acquire(t, b, true, "prune", opts)
	before := l.Info()
	clock.Store(7)
	if err := l.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	after := l.Info()
	if got := ids(t, b); !slices.Equal(got, []string{after.ID}) || after.ID == before.ID {
		t.Errorf("locks = %q; want only the new object (old %s, new %s)", got, before.ID, after.ID)
	}
	stored, err := List(t.Context(), b)
	if err != nil {
		t.Fatal(err)
	}
	if !stored[0].Heartbeat.Equal(t0.Add(7*time.Minute)) || !stored[0].Created.Equal(t0) {
		t.Errorf("stored heartbeat %v created %v; want heartbeat moved, created kept", stored[0].Heartbeat, stored[0].Created)
	}
}

func TestBackgroundRefresh(t *testing.T) {
	b := newBackend(t)
	opts := testOpts("h", 1)
	opts.Refresh = 10 * time.Millisecond
	l := acquire(t, b, false, "backup", opts)
	first := l.Info().ID
	deadline := time.Now().Add(10 * time.Second)
	for l.Info().ID == first {
		if time.Now().After(deadline) {
			t.Fatal("lock never refreshed in the background")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, b); len(got) != 0 {
		t.Errorf("locks after Release = %q; the refresher left objects behind", got)
	}
}

func TestLostWhenRemovedByOthers(t *testing.T) {
	b := newBackend(t)
	l := acquire(t, b, false, "backup", testOpts("h", 1))
	if _, err := RemoveAll(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	if err := l.Refresh(t.Context()); !errors.Is(err, ErrLost) {
		t.Errorf("Refresh = %v; want ErrLost", err)
	}
	select {
	case <-l.Lost():
	default:
		t.Error("Lost() not closed")
	}
	if got := ids(t, b); len(got) != 0 {
		t.Errorf("locks = %q; a lost lock must not reappear", got)
	}
}

func TestWaitForRelease(t *testing.T) {
	b := newBackend(t)
	holder := acquire(t, b, true, "prune", testOpts("h1", 1))
	go func() {
		time.Sleep(100 * time.Millisecond)
		holder.Release()
	}()
	opts := testOpts("h2", 2)
	opts.Wait = 10 * time.Second
	start := time.Now()
	l := acquire(t, b, false, "backup", opts)
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("acquired after %v, before the holder released", d)
	}
	if got := ids(t, b); !slices.Equal(got, []string{l.Info().ID}) {
		t.Errorf("locks = %q; want only the waiter's", got)
	}
}

func TestWaitTimesOutAndCancels(t *testing.T) {
	b := newBackend(t)
	acquire(t, b, true, "prune", testOpts("h1", 1))
	opts := testOpts("h2", 2)
	opts.Wait = 100 * time.Millisecond
	_, err := Acquire(t.Context(), b, true, "prune", opts)
	if _, ok := errors.AsType[*LockedError](err); !ok {
		t.Errorf("Acquire after Wait = %v; want *LockedError", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	opts.Wait = time.Hour
	if _, err := Acquire(ctx, b, true, "prune", opts); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Acquire with expiring context = %v; want DeadlineExceeded", err)
	}
	if got := ids(t, b); len(got) != 1 {
		t.Errorf("locks = %q; the waiters left theirs behind", got)
	}
}

// TestExclusiveRace lets several lockers fight for an exclusive lock at
// once; those that see each other back off and retry with jitter, and at
// no moment may two of them hold it.
func TestExclusiveRace(t *testing.T) {
	b := newBackend(t)
	var holders, maxHolders, wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			opts := testOpts("h", 100+i)
			opts.Wait = 30 * time.Second
			for range 3 {
				l, err := Acquire(t.Context(), b, true, "prune", opts)
				if err != nil {
					t.Error(err)
					return
				}
				n := holders.Add(1)
				for m := maxHolders.Load(); n > m && !maxHolders.CompareAndSwap(m, n); m = maxHolders.Load() {
				}
				time.Sleep(5 * time.Millisecond)
				holders.Add(-1)
				wins.Add(1)
				if err := l.Release(); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if maxHolders.Load() != 1 {
		t.Errorf("%d lockers held the exclusive lock at once", maxHolders.Load())
	}
	if wins.Load() != 12 {
		t.Errorf("%d acquisitions succeeded; want all 12 eventually", wins.Load())
	}
}

func TestRefreshMustBeShorterThanStale(t *testing.T) {
	opts := testOpts("h", 1)
	opts.Refresh, opts.StaleAfter = time.Hour, time.Minute
	if _, err := Acquire(t.Context(), newBackend(t), false, "backup", opts); err == nil {
		t.Error("Acquire accepted a refresh interval longer than the stale age")
	}
}

func TestLockObjectFormat(t *testing.T) {
	b := newBackend(t)
	l := acquire(t, b, true, "prune", testOpts("host1", 99))
	rc, err := b.Load(t.Context(), objectName(l.Info().ID), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var m map[string]any
	if err := json.NewDecoder(rc).Decode(&m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"exclusive", "host", "pid", "user", "created", "heartbeat", "purpose"} {
		if _, ok := m[k]; !ok {
			t.Errorf("lock object lacks %q: %v", k, m)
		}
	}
	if m["host"] != "host1" || m["pid"] != float64(99) || m["exclusive"] != true {
		t.Errorf("lock object = %v", m)
	}
}

// TestReadersBesideAdmittingExclusive: an exclusive lock that admits
// readers coexists with read-only shared locks, in either order, and
// with nothing else.
func TestReadersBesideAdmittingExclusive(t *testing.T) {
	reader := func(o Options) Options { o.ReadOnly = true; return o }
	admitting := func(o Options) Options { o.AdmitsReaders = true; return o }
	plain := func(o Options) Options { return o }
	tests := []struct {
		name     string
		heldEx   bool
		held     func(Options) Options
		reqEx    bool
		req      func(Options) Options
		conflict bool
	}{
		{"reader then admitting exclusive", false, reader, true, admitting, false},
		{"admitting exclusive then reader", true, admitting, false, reader, false},
		{"writer then admitting exclusive", false, plain, true, admitting, true},
		{"admitting exclusive then writer", true, admitting, false, plain, true},
		{"reader then plain exclusive", false, reader, true, plain, true},
		{"plain exclusive then reader", true, plain, false, reader, true},
		{"admitting exclusive then another", true, admitting, true, admitting, true},
		// ReadOnly means nothing on an exclusive lock.
		{"admitting exclusive then exclusive 'reader'", true, admitting, true, reader, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBackend(t)
			acquire(t, b, tt.heldEx, "held", tt.held(testOpts("h1", 1)))
			_, err := Acquire(t.Context(), b, tt.reqEx, "requested", tt.req(testOpts("h2", 2)))
			_, locked := errors.AsType[*LockedError](err)
			if locked != tt.conflict || (!locked && err != nil) {
				t.Fatalf("Acquire = %v; want a conflict: %v", err, tt.conflict)
			}
		})
	}
}

// TestDamagedLockAdmitsNoReader: a lock that does not decode counts as
// exclusive and admits nobody, readers included.
func TestDamagedLockAdmitsNoReader(t *testing.T) {
	if conflicts(Info{Exclusive: true, Damaged: "x"}, Info{ReadOnly: true}) == false {
		t.Error("a reader may run beside a damaged lock")
	}
}
