package index

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"
)

// connError is a failure of the connection to the holder, not of the
// request: the holder may be gone, and Shared runs the election again.
type connError struct {
	path string
	err  error
}

// Error names the socket and the system call's error: the addresses in a
// net.OpError are the temporary name the holder bound the socket under.
func (e *connError) Error() string {
	err := e.err
	var se *os.SyscallError
	if errors.As(err, &se) {
		err = se
	}
	return "index holder on " + e.path + ": " + err.Error()
}

func (e *connError) Unwrap() error { return e.err }

// failed is a connError that callers of Shared may see: not a *connError,
// which would make an enclosing call retry.
func (e *connError) failed() error { return fmt.Errorf("%s: %w", e.Error(), e.err) }

// remoteError is an error the holder returned for a request.
type remoteError struct{ msg string }

func (e *remoteError) Error() string { return "index holder: " + e.msg }

// maxIdle connections stay open between calls; more are dialled while more
// goroutines call at once, and closed when they are done.
const maxIdle = 8

// client reaches the holder through a pool of connections, each carrying
// one request at a time.
type client struct {
	path string
	pid  int // the holder's, for messages

	mu     sync.Mutex
	idle   []*wire
	closed bool
	dials  int // for tests: how many connections were made
}

func dialClient(path string) (*client, error) {
	c := &client{path: path}
	w, err := c.dial()
	if err != nil {
		return nil, err
	}
	c.put(w)
	return c, nil
}

func dialSocket(path string) (net.Conn, error) {
	var c net.Conn
	err := withShortName(path, func(n string) (err error) {
		c, err = net.DialTimeout("unix", n, time.Second)
		return err
	})
	return c, err
}

// dial connects and says hello. A holder that does not answer within the
// deadline is as good as gone.
func (c *client) dial() (*wire, error) {
	nc, err := dialSocket(c.path)
	if err != nil {
		return nil, &connError{c.path, err}
	}
	w := newWire(nc)
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	e := w.start(opHello)
	e.b = append(e.b, protocolMagic...)
	e.u32(protocolVersion)
	frame, err := w.roundTrip()
	if err != nil {
		nc.Close()
		return nil, &connError{c.path, err}
	}
	nc.SetDeadline(time.Time{})
	d := &decoder{b: frame[1:]}
	if frame[0] != stOK {
		nc.Close()
		// Another version of hindsight holds the index: waiting will not help.
		return nil, fmt.Errorf("index: %s: %s", c.path, d.str())
	}
	d.u32()
	pid := int(d.u32())
	if err := d.end(); err != nil {
		nc.Close()
		return nil, err
	}
	c.mu.Lock()
	c.dials++
	c.pid = pid
	c.mu.Unlock()
	return w, nil
}

func (w *wire) roundTrip() ([]byte, error) {
	if err := w.send(true); err != nil {
		return nil, err
	}
	return w.recv()
}

func (c *client) get() (*wire, error) {
	c.mu.Lock()
	if n := len(c.idle); n > 0 {
		w := c.idle[n-1]
		c.idle = c.idle[:n-1]
		c.mu.Unlock()
		return w, nil
	}
	closed := c.closed
	c.mu.Unlock()
	if closed {
		// Replaced after a handover; the caller retries on the new role.
		return nil, &connError{c.path, errors.New("connection pool closed")}
	}
	return c.dial()
}

func (c *client) put(w *wire) {
	c.mu.Lock()
	if !c.closed && len(c.idle) < maxIdle {
		c.idle = append(c.idle, w)
		w = nil
	}
	c.mu.Unlock()
	if w != nil {
		w.c.Close()
	}
}

// Close closes idle connections; busy ones close when their call ends.
func (c *client) Close() error {
	c.mu.Lock()
	idle := c.idle
	c.idle, c.closed = nil, true
	c.mu.Unlock()
	for _, w := range idle {
		w.c.Close()
	}
	return nil
}

// call sends request o with the arguments args encodes, and decodes its
// reply with resp.
func (c *client) call(o byte, args func(*encoder), resp func(*decoder)) error {
	w, err := c.get()
	if err != nil {
		return err
	}
	if e := w.start(o); args != nil {
		args(e)
	}
	frame, err := w.roundTrip()
	if err != nil {
		w.c.Close()
		return &connError{c.path, err}
	}
	d := &decoder{b: frame[1:]}
	switch frame[0] {
	case stOK:
		if resp != nil {
			resp(d)
		}
		if err := d.end(); err != nil {
			w.c.Close()
			return err
		}
		c.put(w)
		return nil
	case stErr:
		msg := d.str()
		c.put(w)
		return &remoteError{msg}
	}
	w.c.Close()
	return fmt.Errorf("index protocol: reply status %d", frame[0])
}

// scan sends a scan request and passes each item to item. An error from
// item (the caller's callback, or a garbled item) ends the scan: the
// connection is closed, which stops the holder's iterator at its next write.
func (c *client) scan(o byte, args func(*encoder), item func(*decoder) error) error {
	w, err := c.get()
	if err != nil {
		return err
	}
	if e := w.start(o); args != nil {
		args(e)
	}
	if err := w.send(true); err != nil {
		w.c.Close()
		return &connError{c.path, err}
	}
	for {
		frame, err := w.recv()
		if err != nil {
			w.c.Close()
			return &connError{c.path, err}
		}
		d := &decoder{b: frame[1:]}
		switch frame[0] {
		case stItem:
			if err := item(d); err != nil {
				w.c.Close()
				return err
			}
		case stOK:
			c.put(w)
			return nil
		case stErr:
			msg := d.str()
			c.put(w)
			return &remoteError{msg}
		default:
			w.c.Close()
			return fmt.Errorf("index protocol: reply status %d", frame[0])
		}
	}
}

// decoded runs fn on what d decoded, unless decoding failed.
func decoded(d *decoder, fn func() error) error {
	if err := d.end(); err != nil {
		return err
	}
	return fn()
}
