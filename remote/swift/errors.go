package swift

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/ncw/swift/v2"

	"github.com/hindsight-backup/hindsight/remote"
)

// ErrAccessDenied is a 401 that a fresh token did not cure, a 403, or a
// login refused as unreadable (400).
var ErrAccessDenied = errors.New("access denied: check the OS_* or ST_* credentials and the container's ACL")

// ErrTokenRefused is a 401 to a token made elsewhere, which hindsight
// cannot renew.
var ErrTokenRefused = errors.New("the token in OS_AUTH_TOKEN was refused (expired or revoked): get a new one, or give OS_AUTH_URL and credentials so that hindsight logs in itself")

// statusRateLimit is what Swift's ratelimit middleware answers (ncw/swift
// names it RateLimit); like 429, it asks to come back later.
const statusRateLimit = 498

// status returns the HTTP status an ncw/swift error carries, or 0.
func status(err error) int {
	var se *swift.Error
	if errors.As(err, &se) {
		return se.StatusCode
	}
	return 0
}

// fail turns an ncw/swift error into one that errors.Is can classify and
// remote.WithRetry can judge: a cancelled ctx wins; 404 is ErrNotExist;
// 401 (after ncw/swift's own re-authentication) and 403 are
// ErrAccessDenied, or ErrTokenRefused for a token it cannot renew; other
// 4xx are permanent; 5xx, 408 (also ncw/swift's own timeout), 422 (a body
// damaged on the way), 429, 498 and transport errors are left transient.
func (b *Backend) fail(ctx context.Context, op, name string, err error) error {
	where := fmt.Sprintf("swift: %s %s", op, b.cfg)
	if name != "" {
		where = fmt.Sprintf("swift: %s %s", op, name)
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%s: %w", where, ctxErr)
	}
	switch s := status(err); {
	case s == http.StatusNotFound:
		return fmt.Errorf("%s: %w", where, remote.ErrNotExist)
	case s == http.StatusUnauthorized && b.cfg.Auth.fixedToken():
		return remote.Permanent(fmt.Errorf("%s at %s: %w", where, b.cfg, ErrTokenRefused))
	case s == http.StatusUnauthorized, s == http.StatusForbidden:
		return remote.Permanent(fmt.Errorf("%s: %w (%v)", where, ErrAccessDenied, err))
	case s == http.StatusRequestTimeout, s == http.StatusUnprocessableEntity,
		s == http.StatusTooManyRequests, s == statusRateLimit:
		return fmt.Errorf("%s: %w", where, err)
	case s >= 400 && s < 500:
		return remote.Permanent(fmt.Errorf("%s: %w", where, err))
	}
	return fmt.Errorf("%s: %w", where, err)
}
