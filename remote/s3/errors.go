package s3

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"

	"github.com/minio/minio-go/v7"

	"github.com/hindsight-backup/hindsight/remote"
)

// The failures a user must act on; each is marked permanent, since sending
// the same request again cannot cure it. Test with errors.Is.
var (
	ErrNoBucket     = errors.New("bucket does not exist")
	ErrAccessDenied = errors.New("access denied: check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and the bucket policy")
	ErrClockSkew    = errors.New("the server refused the request signature because this machine's clock differs from the server's by more than 15 minutes: fix the clock (NTP)")
	ErrCertificate  = errors.New("the server's TLS certificate is not trusted: give its CA with ?ca=FILE in the URL")
	// ErrExpiredToken is temporary credentials past their end. Nothing
	// renews them from here (the static AWS_* variables were read at
	// start), so retrying would only repeat the refusal.
	ErrExpiredToken = errors.New("the credentials have expired: renew AWS_SESSION_TOKEN with its AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, and run again")
)

// codes maps S3 error codes to our sentinels. The messages S3 sends with
// them are kept too: they hold request IDs, never the secret key.
var codes = map[string]error{
	"NoSuchKey":             remote.ErrNotExist,
	"NoSuchBucket":          ErrNoBucket,
	"AccessDenied":          ErrAccessDenied,
	"InvalidAccessKeyId":    ErrAccessDenied,
	"SignatureDoesNotMatch": ErrAccessDenied,
	"InvalidToken":          ErrAccessDenied,
	"ExpiredToken":          ErrExpiredToken,
	"RequestTimeTooSkewed":  ErrClockSkew,
}

// fail turns a minio-go error into one that errors.Is can classify and
// remote.WithRetry can judge: a cancelled ctx wins; known codes map to
// sentinels; other 4xx are permanent; 5xx, 408, 429 and transport errors
// (refused, reset, timeouts) are left transient.
func (b *Backend) fail(ctx context.Context, op, name string, err error) error {
	where := fmt.Sprintf("s3: %s %s", op, b.cfg)
	if name != "" {
		where = fmt.Sprintf("s3: %s %s", op, name)
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%s: %w", where, ctxErr)
	}
	if badCertificate(err) {
		return remote.Permanent(fmt.Errorf("%s: %w (%v)", where, ErrCertificate, err))
	}
	resp := minio.ToErrorResponse(err)
	if sentinel, ok := codes[resp.Code]; ok {
		if sentinel == remote.ErrNotExist {
			return fmt.Errorf("%s: %w (%s)", where, sentinel, resp.Code)
		}
		if name != "" {
			// The user must act on the remote itself: say which.
			where += " at " + b.cfg.String()
		}
		return remote.Permanent(fmt.Errorf("%s: %w (%s)", where, sentinel, resp.Code))
	}
	switch s := resp.StatusCode; {
	case s == http.StatusNotFound:
		return fmt.Errorf("%s: %w", where, remote.ErrNotExist)
	case s == http.StatusRequestTimeout, s == http.StatusTooManyRequests:
		return fmt.Errorf("%s: %w", where, err)
	case s >= 400 && s < 500:
		return remote.Permanent(fmt.Errorf("%s: %w", where, err))
	}
	return fmt.Errorf("%s: %w", where, err)
}

// badCertificate reports whether err is TLS refusing the server's
// certificate, which no retry can cure.
func badCertificate(err error) bool {
	var (
		unknown  x509.UnknownAuthorityError
		invalid  x509.CertificateInvalidError
		hostname x509.HostnameError
		verify   *tls.CertificateVerificationError
	)
	return errors.As(err, &unknown) || errors.As(err, &invalid) || errors.As(err, &hostname) || errors.As(err, &verify)
}
