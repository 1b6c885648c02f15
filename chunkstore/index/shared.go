package index

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Shared is the index as every process of one repository uses it at once.
// Pebble lets one process open a directory; that process (the holder) opens
// the DB and serves it on a unix socket next to the index directory, at
// dir+".sock", and the others are its clients. When the holder closes the
// index, or dies, each client runs the election again: the first to get
// the lock becomes the holder, the rest connect to it, and calls in flight
// are retried transparently.
//
// Retrying is safe because every call is a read or a set of Pebble sets and
// deletes. A write the holder acknowledged was committed exactly as the
// same call on a *DB commits it (AddPack, AddSegment, MarkListed and
// PutSnapshot with pebble.Sync). Only a holder killed between committing a
// write and answering leaves the write's outcome unknown to its client,
// which then writes it again; at worst, a pack listed in a segment by
// another process in that instant is marked unlisted again and listed in
// one more segment.
//
// The socket has mode 0600 and the holder admits only processes of its own
// user: the repository's owner (root, for backups of whole systems). It
// lives in the repository, or in the repository's cache directory, whose
// permissions guard it like the index itself.
//
// The socket is on the operating system's filesystem whatever fs is, so
// fs must be vfs.Default (or share its paths) for processes to meet.
type Shared struct {
	// Created is true when OpenShared found no index and made an empty one.
	// A client never created the index it uses.
	Created bool

	fs      vfs.FS
	dir     string
	sock    string
	opts    Options
	timeout time.Duration

	inflight sync.WaitGroup // calls running on cur, which Close waits for
	mu       sync.RWMutex   // held for writing while the role changes
	cur      backend        // *DB when holding, else *client
	srv      *server        // non-nil when holding
	gen      uint64         // counts role changes, so that one failure causes one election
	closed   bool

	closeOnce sync.Once
	closeErr  error
}

// backend is what Shared calls: the holder's *DB or a *client.
type backend interface {
	core
	putHistory(rows []HistoryRow, sync bool) error
}

var (
	_ backend = (*DB)(nil)
	_ backend = (*client)(nil)
)

// ErrClosed is returned by calls on a closed Shared.
var ErrClosed = errors.New("index is closed")

const (
	// electTimeout is how long an election waits for a holder that has the
	// lock but does not answer yet: it is opening Pebble, or handing over.
	electTimeout = 10 * time.Second
	// maxAttempts bounds the elections one call may cause, so that a
	// connection that keeps failing is reported rather than retried forever.
	maxAttempts = 5
)

// OpenShared opens the index in dir as the holder, or, when another process
// holds it, as a client of that process. It fails with ErrLocked when the
// index is locked but nothing answers on the socket within a few seconds.
func OpenShared(fs vfs.FS, dir string, o Options) (*Shared, error) {
	return openShared(fs, dir, o, electTimeout)
}

func openShared(fs vfs.FS, dir string, o Options, timeout time.Duration) (*Shared, error) {
	// One spelling per directory: Pebble's in-process lock table is keyed by
	// the path, and the socket's name derives from it.
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	s := &Shared{fs: fs, dir: abs, sock: abs + ".sock", opts: o, timeout: timeout}
	if s.cur, s.srv, err = s.elect(); err != nil {
		return nil, err
	}
	if db, ok := s.cur.(*DB); ok {
		s.Created = db.Created
	}
	return s, nil
}

// elect takes the lock and serves, or else connects to the process that
// has the lock, retrying while that process is still starting to serve.
func (s *Shared) elect() (backend, *server, error) {
	deadline := time.Now().Add(s.timeout)
	wait := 2 * time.Millisecond
	for {
		db, err := Open(s.fs, s.dir, s.opts)
		if err == nil {
			srv, err := serve(db, s.sock)
			if err != nil {
				db.Close()
				return nil, nil, err
			}
			return db, srv, nil
		}
		if !errors.Is(err, ErrLocked) {
			return nil, nil, err
		}
		c, err := dialClient(s.sock)
		if err == nil {
			slog.Debug("index: using the index through the process that holds it", "dir", s.dir, "pid", c.pid)
			return c, nil, nil
		}
		var ce *connError
		if !errors.As(err, &ce) {
			return nil, nil, err
		}
		if time.Now().After(deadline) {
			return nil, nil, fmt.Errorf("%w: %s is locked, and no process answers: %v", ErrLocked, s.dir, ce)
		}
		time.Sleep(wait)
		wait = min(2*wait, 100*time.Millisecond)
	}
}

// reelect replaces a client whose connection failed, unless another call
// already did since generation gen.
func (s *Shared) reelect(gen uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.gen != gen || s.srv != nil {
		return nil
	}
	s.cur.Close()
	cur, srv, err := s.elect()
	if err != nil {
		// s.cur stays the closed client, whose calls fail at once: the next
		// call runs the election again.
		return err
	}
	s.cur, s.srv = cur, srv
	s.gen++
	slog.Debug("index: the holder went away", "dir", s.dir, "holding", srv != nil)
	return nil
}

// acquire returns the current role for one call, which the caller must
// end with s.inflight.Done().
func (s *Shared) acquire() (backend, uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, 0, ErrClosed
	}
	s.inflight.Add(1)
	return s.cur, s.gen, nil
}

// do runs op on the current role, and again after an election when the
// connection to the holder fails. The lock is not held while op runs, so a
// scan's callback may call the index again.
func (s *Shared) do(op func(backend) error) error {
	for attempt := 1; ; attempt++ {
		b, gen, err := s.acquire()
		if err != nil {
			return err
		}
		err = s.run(op, b)
		ce, ok := err.(*connError)
		if !ok {
			return err
		}
		if attempt == maxAttempts {
			return ce.failed()
		}
		if err := s.reelect(gen); err != nil {
			return err
		}
	}
}

// run ends the call acquire began however op ends, so that a panic in op
// cannot leave Close waiting forever.
func (s *Shared) run(op func(backend) error, b backend) error {
	defer s.inflight.Done()
	return op(b)
}

// holding reports whether this process is the holder.
func (s *Shared) holding() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.srv != nil
}

// Close waits for calls in progress (so it must not be called from a
// scan's callback), then, when holding, stops serving: each client's
// current request is finished and answered, scans are cut short, and the
// clients elect a new holder once the lock is released.
func (s *Shared) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.inflight.Wait()
		if s.srv != nil {
			s.srv.stop()
		}
		s.closeErr = s.cur.Close()
	})
	return s.closeErr
}

// putHistory writes rows in one batch, a Shared history batch's unit of
// work; writing it twice, after a handover, is harmless: rows are sets.
func (d *DB) putHistory(rows []HistoryRow, sync bool) error {
	b := d.db.NewBatch()
	defer b.Close()
	var k, v []byte // the batch copies each key and value
	for i := range rows {
		r := &rows[i]
		k = appendHistoryKey(k[:0], r.Source, r.Path, r.Time, r.Snapshot)
		v = r.appendValue(v[:0])
		if err := b.Set(k, v, nil); err != nil {
			return err
		}
	}
	opts := pebble.NoSync
	if sync {
		opts = pebble.Sync
	}
	return d.guard.write(func() error { return b.Commit(opts) })
}
