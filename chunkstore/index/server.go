package index

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// server serves the holder's DB to the other processes of the repository.
type server struct {
	db   *DB
	path string
	l    *net.UnixListener

	stopping    atomic.Bool
	acceptDone  chan struct{}
	handlers    sync.WaitGroup
	mu          sync.Mutex
	conns       map[net.Conn]struct{}
	stoppedOnce sync.Once
}

// stopWriteTimeout bounds how long stop waits for a scan blocked on a
// client that is not reading. Other replies are small, and their client is
// waiting for them.
const stopWriteTimeout = time.Second

// errStopping ends a scan that the holder's Close interrupts; the client
// sees the connection drop and resumes the scan on the next holder.
var errStopping = errors.New("index holder is closing")

// serve starts serving db on the socket at path. The caller must hold the
// index's lock: only the lock holder creates, replaces or removes the
// socket, so whatever socket it finds belongs to a holder that is gone.
func serve(db *DB, path string) (*server, error) {
	if c, err := dialSocket(path); err == nil {
		c.Close()
		return nil, fmt.Errorf("index: %s answers although this process holds the index lock", path)
	}
	// Left by a holder killed while it created its socket.
	if stale, err := filepath.Glob(path + ".tmp-*"); err == nil {
		for _, s := range stale {
			os.RemoveAll(s)
		}
	}
	l, err := listenSocket(path)
	if err != nil {
		return nil, fmt.Errorf("index: serve on %s: %w", path, err)
	}
	s := &server{db: db, path: path, l: l, acceptDone: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	go s.accept()
	return s, nil
}

// listenSocket creates the socket with mode 0600. It binds in a fresh 0700
// directory and renames the socket into place, so that the socket is never
// reachable with the mode the umask would give it; the rename also
// replaces a stale socket atomically.
func listenSocket(path string) (*net.UnixListener, error) {
	tmp, err := os.MkdirTemp(filepath.Dir(path), filepath.Base(path)+".tmp-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	name := filepath.Join(tmp, "s")
	var l *net.UnixListener
	err = withShortName(name, func(n string) (err error) {
		l, err = net.ListenUnix("unix", &net.UnixAddr{Name: n, Net: "unix"})
		return err
	})
	if err != nil {
		return nil, err
	}
	// The name it was bound under may be a /proc/self/fd path, and stop
	// removes the socket itself while still holding the lock.
	l.SetUnlinkOnClose(false)
	if err = os.Chmod(name, 0o600); err == nil {
		err = os.Rename(name, path)
	}
	if err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

func (s *server) accept() {
	defer close(s.acceptDone)
	wait := 5 * time.Millisecond
	for {
		c, err := s.l.AcceptUnix()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			// Out of descriptors, most likely: clients wait in the backlog.
			slog.Warn("index: accept failed", "socket", s.path, "err", err)
			time.Sleep(wait)
			wait = min(2*wait, time.Second)
			continue
		}
		wait = 5 * time.Millisecond
		if err := peerAllowed(c); err != nil {
			slog.Warn("index: refused a connection", "socket", s.path, "err", err)
			c.Close()
			continue
		}
		s.mu.Lock()
		if s.stopping.Load() {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.handlers.Add(1)
		s.mu.Unlock()
		go s.handle(c)
	}
}

// stop ends serving: no new connections, each connection finishes and
// answers the request it is executing, and scans are cut short (clients
// resume them). It removes the socket before the caller releases the lock.
func (s *server) stop() {
	s.stoppedOnce.Do(func() {
		s.stopping.Store(true)
		s.l.Close()
		<-s.acceptDone
		os.Remove(s.path)
		now := time.Now()
		s.mu.Lock()
		for c := range s.conns {
			// Wakes a handler blocked reading the next request; a request
			// already read is still executed and answered.
			c.SetReadDeadline(now)
			c.SetWriteDeadline(now.Add(stopWriteTimeout))
		}
		s.mu.Unlock()
		s.handlers.Wait()
	})
}

func (s *server) handle(c net.Conn) {
	defer s.handlers.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	w := newWire(c)
	hello := true
	for !s.stopping.Load() {
		frame, err := w.recv()
		if err != nil {
			return
		}
		d := &decoder{b: frame[1:]}
		if hello {
			if err := s.hello(w, frame[0], d); err != nil {
				return
			}
			hello = false
			continue
		}
		if err := s.dispatch(w, frame[0], d); err != nil {
			return
		}
	}
}

func (s *server) hello(w *wire, op byte, d *decoder) error {
	magic, version := string(d.take(len(protocolMagic))), d.u32()
	err := d.end()
	if err == nil && (op != opHello || magic != protocolMagic) {
		err = errors.New("index protocol: no hello")
	}
	if err == nil && version != protocolVersion {
		err = fmt.Errorf("index protocol version %d, the holder (pid %d) speaks %d", version, os.Getpid(), protocolVersion)
	}
	if err != nil {
		w.start(stErr).str(err.Error())
		w.send(true)
		return err
	}
	e := w.start(stOK)
	e.u32(protocolVersion)
	e.u32(uint32(os.Getpid()))
	return w.send(true)
}
