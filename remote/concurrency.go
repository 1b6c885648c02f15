package remote

import (
	"context"
	"fmt"
	"io"
	"sync"
)

// WithConcurrency returns b with at most n operations in flight. A Load
// holds its slot until the returned stream is closed, since the connection
// stays busy until then: a caller must close one stream before opening
// more than n. List takes no slot, so that its callback may call the
// backend (reading each key file as it is listed) without deadlocking.
func WithConcurrency(b Backend, n int) Backend {
	return keepFileSaver(&concurrencyBackend{Backend: b, slots: make(chan struct{}, max(n, 1))}, b)
}

type concurrencyBackend struct {
	Backend
	slots chan struct{}
}

func (c *concurrencyBackend) Unwrap() Backend { return c.Backend }

func (c *concurrencyBackend) acquire(ctx context.Context, op, name string) error {
	select {
	case c.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s %s: waiting for a connection: %w", op, name, ctx.Err())
	}
}

func (c *concurrencyBackend) release() { <-c.slots }

func (c *concurrencyBackend) Save(ctx context.Context, name string, rd io.ReaderAt, size int64) error {
	if err := c.acquire(ctx, "save", name); err != nil {
		return err
	}
	defer c.release()
	return c.Backend.Save(ctx, name, rd, size)
}

func (c *concurrencyBackend) Stat(ctx context.Context, name string) (FileInfo, error) {
	if err := c.acquire(ctx, "stat", name); err != nil {
		return FileInfo{}, err
	}
	defer c.release()
	return c.Backend.Stat(ctx, name)
}

func (c *concurrencyBackend) Remove(ctx context.Context, name string) error {
	if err := c.acquire(ctx, "remove", name); err != nil {
		return err
	}
	defer c.release()
	return c.Backend.Remove(ctx, name)
}

func (c *concurrencyBackend) Load(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	if err := c.acquire(ctx, "load", name); err != nil {
		return nil, err
	}
	rc, err := c.Backend.Load(ctx, name, offset, length)
	if err != nil {
		c.release()
		return nil, err
	}
	return &slotReadCloser{ReadCloser: rc, release: sync.OnceFunc(c.release)}, nil
}

// slotReadCloser gives the slot back on the first Close; later Closes must
// not free a slot some other operation holds.
type slotReadCloser struct {
	io.ReadCloser
	release func()
}

func (s *slotReadCloser) Close() error {
	defer s.release()
	return s.ReadCloser.Close()
}
