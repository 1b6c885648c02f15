package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// RetryOptions tunes WithRetry. Zero fields take the defaults noted.
type RetryOptions struct {
	// MaxAttempts caps the tries of one operation, the first included.
	// Default 10.
	MaxAttempts int
	// MaxElapsed stops retrying once this much time has passed since the
	// operation first failed. Default 15 minutes.
	MaxElapsed time.Duration
	// InitialDelay is the wait after the first failure; each further
	// failure doubles it up to MaxDelay. Defaults 500ms and 1 minute.
	InitialDelay time.Duration
	MaxDelay     time.Duration
	// Logger receives one warning per retry. Default slog.Default().
	Logger *slog.Logger
}

func (o RetryOptions) withDefaults() RetryOptions {
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 10
	}
	if o.MaxElapsed <= 0 {
		o.MaxElapsed = 15 * time.Minute
	}
	if o.InitialDelay <= 0 {
		o.InitialDelay = 500 * time.Millisecond
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = time.Minute
	}
	o.MaxDelay = max(o.MaxDelay, o.InitialDelay)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// WithRetry returns b with every operation retried on failure, with
// exponential backoff and jitter, until it succeeds, fails permanently
// (IsPermanent), finds the object missing (ErrNotExist), runs out of
// attempts or time, or ctx ends. Save sends rd again from its start; a
// Load whose stream breaks resumes at the byte it reached. If b is a
// FileSaver, so is the result (SaveFile is passed through unretried: it
// renames a local file, which a retry cannot fix).
func WithRetry(b Backend, opts RetryOptions) Backend {
	r := &retryBackend{inner: b, opts: opts.withDefaults()}
	if fs, ok := b.(FileSaver); ok {
		return &retryFileSaver{retryBackend: r, fs: fs}
	}
	return r
}

type retryBackend struct {
	inner Backend
	opts  RetryOptions
}

type retryFileSaver struct {
	*retryBackend
	fs FileSaver
}

func (r *retryFileSaver) SaveFile(ctx context.Context, name, path string) error {
	return r.fs.SaveFile(ctx, name, path)
}

// Unwrap returns the backend that WithRetry wrapped.
func (r *retryBackend) Unwrap() Backend { return r.inner }

func (r *retryBackend) Location() string { return r.inner.Location() }
func (r *retryBackend) Close() error     { return r.inner.Close() }

func (r *retryBackend) Save(ctx context.Context, name string, rd io.ReaderAt, size int64) error {
	return r.do(ctx, "save", name, func(int) error {
		src := &watchedReaderAt{r: rd}
		err := r.inner.Save(ctx, name, src, size)
		// Our own source failing (a local read error) will fail again
		// however often the upload is repeated.
		if err != nil && src.failed.Load() {
			return Permanent(err)
		}
		return err
	})
}

// watchedReaderAt remembers whether its ReaderAt ever failed. Atomic
// because uploaders may read parts concurrently.
type watchedReaderAt struct {
	r      io.ReaderAt
	failed atomic.Bool
}

func (w *watchedReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := w.r.ReadAt(p, off)
	if err != nil && !errors.Is(err, io.EOF) {
		w.failed.Store(true)
	}
	return n, err
}

func (r *retryBackend) Stat(ctx context.Context, name string) (FileInfo, error) {
	var fi FileInfo
	err := r.do(ctx, "stat", name, func(int) error {
		var err error
		fi, err = r.inner.Stat(ctx, name)
		return err
	})
	return fi, err
}

// Remove treats ErrNotExist on a second or later attempt as success: an
// earlier attempt may have deleted the object and only its reply been lost.
func (r *retryBackend) Remove(ctx context.Context, name string) error {
	return r.do(ctx, "remove", name, func(attempt int) error {
		err := r.inner.Remove(ctx, name)
		if attempt > 1 && errors.Is(err, ErrNotExist) {
			return nil
		}
		return err
	})
}

// List restarts a failed listing from the beginning and hides the names
// fn has already seen, so fn still sees each name once. Remembering them
// costs memory in proportion to the listing; restic pays the same price.
func (r *retryBackend) List(ctx context.Context, prefix string, fn func(FileInfo) error) error {
	var mu sync.Mutex
	seen := make(map[string]struct{})
	err := r.do(ctx, "list", prefix, func(int) error {
		return r.inner.List(ctx, prefix, func(fi FileInfo) error {
			mu.Lock()
			_, dup := seen[fi.Name]
			seen[fi.Name] = struct{}{}
			mu.Unlock()
			if dup {
				return nil
			}
			if err := fn(fi); err != nil {
				return Permanent(&callbackError{err})
			}
			return nil
		})
	})
	if cb, ok := errors.AsType[*callbackError](err); ok {
		return cb.err
	}
	return err
}

// callbackError carries an error from List's fn through the retry loop,
// which must neither retry it nor hand it back in a different shape.
type callbackError struct{ err error }

func (e *callbackError) Error() string { return e.err.Error() }
func (e *callbackError) Unwrap() error { return e.err }

func (r *retryBackend) Load(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	var rc io.ReadCloser
	err := r.do(ctx, "load", name, func(int) error {
		var err error
		rc, err = r.inner.Load(ctx, name, offset, length)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &resumingReader{
		r: r, ctx: ctx, name: name, rc: rc,
		offset: offset, remaining: length, toEnd: length <= 0,
	}, nil
}

// resumingReader re-Loads the rest of the range when its stream breaks, so
// a connection reset 60 MiB into a pack does not cost the first 60 MiB
// again. It keeps ctx because each resume is a new request.
type resumingReader struct {
	r    *retryBackend
	ctx  context.Context
	name string
	rc   io.ReadCloser // nil after a failure, until reopened

	offset    int64 // of the next byte to deliver
	remaining int64 // bytes still wanted, unless toEnd
	toEnd     bool

	// bo counts failures since the last byte arrived, so that a stream
	// that keeps breaking without progress still gives up.
	bo  backoff
	err error // sticky once the reader has given up
}

func (rr *resumingReader) Read(p []byte) (int, error) {
	if rr.err != nil {
		return 0, rr.err
	}
	for {
		if rr.rc == nil {
			if err := rr.reopen(); err != nil {
				rr.err = err
				return 0, err
			}
		}
		n, err := rr.rc.Read(p)
		rr.offset += int64(n)
		rr.remaining -= int64(n)
		if n > 0 {
			rr.bo = backoff{}
		}
		if err == nil || err == io.EOF {
			return n, err
		}
		rr.rc.Close()
		rr.rc = nil
		if err := rr.bo.wait(rr.ctx, rr.r.opts, "read", rr.name, err); err != nil {
			rr.err = err
			return n, err
		}
		if n > 0 {
			return n, nil
		}
	}
}

func (rr *resumingReader) reopen() error {
	if !rr.toEnd && rr.remaining <= 0 {
		// The break came after the last wanted byte; length 0 would
		// mean "to the end", so do not ask again.
		rr.rc = io.NopCloser(strings.NewReader(""))
		return nil
	}
	length := rr.remaining
	if rr.toEnd {
		length = 0
	}
	for {
		rc, err := rr.r.inner.Load(rr.ctx, rr.name, rr.offset, length)
		if err == nil {
			rr.rc = rc
			return nil
		}
		if err := rr.bo.wait(rr.ctx, rr.r.opts, "load", rr.name, err); err != nil {
			return err
		}
	}
}

func (rr *resumingReader) Close() error {
	if rr.rc == nil {
		return nil
	}
	err := rr.rc.Close()
	rr.rc = nil
	if rr.err == nil {
		rr.err = errors.New("read after Close")
	}
	return err
}

// do runs fn until it succeeds or bo.wait says to stop. fn gets the
// attempt number, from 1.
func (r *retryBackend) do(ctx context.Context, op, name string, fn func(attempt int) error) error {
	var bo backoff
	for {
		err := fn(bo.failures + 1)
		if err == nil {
			return nil
		}
		if err := bo.wait(ctx, r.opts, op, name, err); err != nil {
			return err
		}
	}
}

// backoff is the retry state of one operation.
type backoff struct {
	failures int
	start    time.Time
}

// wait returns nil after sleeping if the operation that failed with err
// should be tried again, and otherwise the error to report.
func (bo *backoff) wait(ctx context.Context, opts RetryOptions, op, name string, err error) error {
	if IsPermanent(err) || errors.Is(err, ErrNotExist) {
		return err
	}
	if ctx.Err() != nil {
		return contextErr(ctx, err)
	}
	bo.failures++
	if bo.start.IsZero() {
		bo.start = time.Now()
	}
	if bo.failures >= opts.MaxAttempts {
		return fmt.Errorf("giving up after %d attempts: %w", bo.failures, err)
	}
	d := delay(opts, bo.failures)
	if elapsed := time.Since(bo.start); elapsed+d > opts.MaxElapsed {
		return fmt.Errorf("giving up after %d attempts in %v: %w", bo.failures, elapsed.Round(time.Millisecond), err)
	}
	opts.Logger.Warn("remote: retrying", "op", op, "name", name, "attempt", bo.failures, "delay", d, "err", err)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return contextErr(ctx, err)
	case <-t.C:
		return nil
	}
}

// contextErr reports the cancellation, which is what the caller asked
// about, and keeps the failure that was being retried for the message.
func contextErr(ctx context.Context, last error) error {
	if errors.Is(last, ctx.Err()) {
		return last
	}
	return fmt.Errorf("%w (while retrying after: %v)", ctx.Err(), last)
}

// delay is InitialDelay doubled per earlier failure, capped at MaxDelay,
// then drawn uniformly from its upper half so that many clients failing
// together do not retry in lockstep.
func delay(opts RetryOptions, failures int) time.Duration {
	d := opts.InitialDelay
	for i := 1; i < failures && d < opts.MaxDelay; i++ {
		d *= 2
	}
	d = min(d, opts.MaxDelay)
	return d/2 + rand.N(d/2+1)
}
