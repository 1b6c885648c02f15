package s3

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// Scheme starts every S3 repository URL: s3:https://host[:port]/bucket/prefix.
// The inner URL is the endpoint as the user would open it in a browser, so
// that http, https and a port need no further syntax.
const Scheme = "s3:"

// Lookup says how the bucket is addressed in requests.
type Lookup string

const (
	// LookupAuto lets minio-go choose: virtual-host for AWS and the clouds
	// it knows, path-style elsewhere (MinIO, Ceph RGW, most appliances).
	LookupAuto Lookup = "auto"
	// LookupPath sends https://host/bucket/key.
	LookupPath Lookup = "path"
	// LookupDNS sends https://bucket.host/key (virtual-host style).
	LookupDNS Lookup = "dns"
)

// Config locates a bucket and prefix and says how to talk to it. Secrets
// live only in Credentials, which neither String nor any error prints.
type Config struct {
	Endpoint string // host[:port]
	Secure   bool   // https
	Bucket   string
	Prefix   string // without leading or trailing slash; "" = bucket root
	Region   string // "" = ask the server (or us-east-1)
	Lookup   Lookup
	// CAFile is a PEM bundle trusted in place of the system roots, for
	// servers with a private CA.
	CAFile string
	// PartSize is the multipart part size; objects up to it go in one PUT.
	// 0 = minio-go's default of 16 MiB.
	PartSize uint64

	Credentials Credentials

	// DialContext replaces the system's resolver and dialer when set: the
	// virtual-host test routes BUCKET.s3.test to a MinIO on loopback,
	// since no DNS here answers for bucket names.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
}

// ErrBadURL is returned (wrapped) for a URL ParseURL cannot use.
var ErrBadURL = errors.New("invalid S3 URL")

// IsURL reports whether s names an S3 repository rather than a directory.
func IsURL(s string) bool { return strings.HasPrefix(s, Scheme) }

// ParseURL reads s3:http[s]://host[:port]/bucket[/prefix][?region=R&lookup=path|dns|auto&ca=FILE].
// Settings that are not secret travel in the query so that one string,
// stored as a remote's address, says everything but the credentials.
// Credentials in the URL (user:pass@) are refused: the URL is printed in
// messages and stored in configuration files.
func ParseURL(s string) (Config, error) {
	if !IsURL(s) {
		return Config{}, fmt.Errorf("%w: %q does not start with %q", ErrBadURL, s, Scheme)
	}
	u, err := url.Parse(strings.TrimPrefix(s, Scheme))
	if err != nil {
		// url.Error quotes the input; it holds no secret we accept.
		return Config{}, fmt.Errorf("%w: %v", ErrBadURL, err)
	}
	if u.User != nil {
		return Config{}, fmt.Errorf("%w: credentials do not belong in the URL; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", ErrBadURL)
	}
	c := Config{Endpoint: u.Host, Lookup: LookupAuto}
	switch u.Scheme {
	case "https":
		c.Secure = true
	case "http":
	default:
		return Config{}, fmt.Errorf("%w: %s: want s3:https://host/bucket/prefix or s3:http://...", ErrBadURL, Redact(s))
	}
	if c.Endpoint == "" {
		return Config{}, fmt.Errorf("%w: %s: no host", ErrBadURL, Redact(s))
	}
	path := strings.Trim(u.Path, "/")
	c.Bucket, c.Prefix, _ = strings.Cut(path, "/")
	if c.Bucket == "" {
		return Config{}, fmt.Errorf("%w: %s: no bucket", ErrBadURL, Redact(s))
	}
	c.Prefix = strings.Trim(c.Prefix, "/")
	if strings.Contains(c.Prefix, "//") {
		return Config{}, fmt.Errorf("%w: %s: empty element in prefix", ErrBadURL, Redact(s))
	}
	if err := c.applyQuery(u.Query()); err != nil {
		return Config{}, fmt.Errorf("%w: %s: %v", ErrBadURL, Redact(s), err)
	}
	return c, nil
}

func (c *Config) applyQuery(q url.Values) error {
	for k, v := range q {
		if len(v) != 1 {
			return fmt.Errorf("parameter %q given %d times", k, len(v))
		}
		switch k {
		case "region":
			c.Region = v[0]
		case "ca":
			c.CAFile = v[0]
		case "lookup":
			switch l := Lookup(v[0]); l {
			case LookupAuto, LookupPath, LookupDNS:
				c.Lookup = l
			default:
				return fmt.Errorf("lookup=%q: want path, dns or auto", v[0])
			}
		default:
			return fmt.Errorf("unknown parameter %q (known: region, lookup, ca)", k)
		}
	}
	return nil
}

// String is the URL without credentials, for messages.
func (c Config) String() string {
	scheme := "http"
	if c.Secure {
		scheme = "https"
	}
	s := Scheme + scheme + "://" + c.Endpoint + "/" + c.Bucket
	if c.Prefix != "" {
		s += "/" + c.Prefix
	}
	return s
}

// Redact returns s with any user:password@ removed, for messages about a
// URL that may be malformed. Strings that are not URLs come back unchanged.
func Redact(s string) string {
	inner := strings.TrimPrefix(s, Scheme)
	u, err := url.Parse(inner)
	if err != nil || u.User == nil {
		if i := strings.LastIndex(inner, "@"); err != nil && i >= 0 {
			// Unparseable but possibly holding a secret: keep only
			// what follows the last '@'.
			return Scheme + "…@" + inner[i+1:]
		}
		return s
	}
	u.User = nil
	return Scheme + u.String()
}
