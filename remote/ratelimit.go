package remote

import (
	"context"
	"fmt"
	"io"

	"golang.org/x/time/rate"
)

// rateBurst is the most one read may take from the bucket at once. Reads
// larger than it are split, so a 16 MiB part cannot burst past the limit,
// and 64 KiB keeps the wait granularity under a second down to 64 KiB/s.
const rateBurst = 64 << 10

// WithRateLimit returns b with the bytes read from Save's source capped at
// upload bytes per second and the bytes read from Load's streams capped at
// download, each shared by every operation in flight (a token bucket, as
// `--limit-upload` promises a total, not a per-connection rate). A rate
// <= 0 leaves that direction unlimited.
func WithRateLimit(b Backend, upload, download int64) Backend {
	return keepFileSaver(&rateBackend{Backend: b, up: limiter(upload), down: limiter(download)}, b)
}

func limiter(bytesPerSec int64) *rate.Limiter {
	if bytesPerSec <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(bytesPerSec), rateBurst)
}

type rateBackend struct {
	Backend
	up, down *rate.Limiter // nil: unlimited
}

func (r *rateBackend) Unwrap() Backend { return r.Backend }

func (r *rateBackend) Save(ctx context.Context, name string, rd io.ReaderAt, size int64) error {
	if r.up != nil {
		// Charged per byte read for the first time: a checksum pass
		// before the send reads the source twice but sends it once.
		rd = CountFirstReads(rd, func(n int64) error { return take(ctx, r.up, int(n)) })
	}
	return r.Backend.Save(ctx, name, rd, size)
}

func (r *rateBackend) Load(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	rc, err := r.Backend.Load(ctx, name, offset, length)
	if err != nil || r.down == nil {
		return rc, err
	}
	return &limitedReadCloser{ctx: ctx, rc: rc, lim: r.down}, nil
}

// take waits until n bytes may pass.
func take(ctx context.Context, lim *rate.Limiter, n int) error {
	for n > 0 {
		k := min(n, lim.Burst())
		if err := lim.WaitN(ctx, k); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			// The limiter gives up early when the deadline would pass
			// before the tokens arrive; callers test for the deadline.
			return fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
		}
		n -= k
	}
	return nil
}

type limitedReadCloser struct {
	ctx context.Context
	rc  io.ReadCloser
	lim *rate.Limiter
}

func (l *limitedReadCloser) Read(p []byte) (int, error) {
	n, err := l.rc.Read(p[:min(len(p), rateBurst)])
	if werr := take(l.ctx, l.lim, n); werr != nil {
		return 0, werr
	}
	return n, err
}

func (l *limitedReadCloser) Close() error { return l.rc.Close() }
