package remote

import "context"

// Wrapper is a Backend that decorates another; Unwrap returns it, so that
// callers can reach the backend underneath (for its type, or to bypass a
// limit).
type Wrapper interface {
	Backend
	Unwrap() Backend
}

// WrapOptions choose the decorators Wrap applies. Zero fields leave that
// decorator out.
type WrapOptions struct {
	Retry *RetryOptions
	// UploadRate and DownloadRate cap bytes per second across all
	// operations of the wrapped backend.
	UploadRate, DownloadRate int64
	// Connections caps operations in flight.
	Connections int
}

// Wrap composes the decorators in the one order that makes sense: the rate
// limit next to the backend, so that only bytes really sent are counted;
// the concurrency limit around it, so that a slot is held only while a
// request runs; retry outermost, so that a backoff sleep holds no slot.
func Wrap(b Backend, o WrapOptions) Backend {
	if o.UploadRate > 0 || o.DownloadRate > 0 {
		b = WithRateLimit(b, o.UploadRate, o.DownloadRate)
	}
	if o.Connections > 0 {
		b = WithConcurrency(b, o.Connections)
	}
	if o.Retry != nil {
		b = WithRetry(b, *o.Retry)
	}
	return b
}

// keepFileSaver returns w, made a FileSaver too when the backend it wraps
// is one. SaveFile bypasses w: it renames a local file, which sends no
// bytes and needs no connection.
func keepFileSaver(w Wrapper, inner Backend) Backend {
	if fs, ok := inner.(FileSaver); ok {
		return &fileSaverWrapper{Wrapper: w, fs: fs}
	}
	return w
}

type fileSaverWrapper struct {
	Wrapper
	fs FileSaver
}

func (f *fileSaverWrapper) SaveFile(ctx context.Context, name, path string) error {
	return f.fs.SaveFile(ctx, name, path)
}
