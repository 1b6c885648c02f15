package swift

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/ncw/swift/v2"
)

// Scheme starts every Swift repository URL: swift:CONTAINER[/PREFIX]. The
// cluster and account come from the credentials (OS_AUTH_URL or ST_AUTH),
// as with the swift command-line tool, so a URL never holds a host.
const Scheme = "swift:"

// ErrBadURL is returned (wrapped) for a URL ParseURL cannot use.
var ErrBadURL = errors.New("invalid Swift URL")

// Config locates a container and prefix and says how to reach it.
// Secrets live only in Auth, which neither String nor any error prints.
type Config struct {
	Container string
	Prefix    string // without leading or trailing slash; "" = container root
	// Region and EndpointType choose the object-store endpoint from a
	// Keystone catalog; "" defers to Auth (OS_REGION_NAME, OS_INTERFACE).
	Region       string
	EndpointType swift.EndpointType
	// MaxObjectSize is the largest object stored with one PUT; larger ones
	// become static large objects in segments of this size. 0 = the
	// cluster's max_file_size from /info (5 GiB + 2 by default).
	MaxObjectSize int64

	Auth Auth
}

// IsURL reports whether s names a Swift repository.
func IsURL(s string) bool { return strings.HasPrefix(s, Scheme) }

// ParseURL reads swift:CONTAINER[/PREFIX][?region=R&endpoint=public|internal|admin].
// duplicity's swift://CONTAINER/PREFIX is accepted too.
func ParseURL(s string) (Config, error) {
	if !IsURL(s) {
		return Config{}, fmt.Errorf("%w: %q does not start with %q", ErrBadURL, s, Scheme)
	}
	rest, query, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(s, Scheme), "//"), "?")
	var c Config
	c.Container, c.Prefix, _ = strings.Cut(strings.Trim(rest, "/"), "/")
	c.Prefix = strings.Trim(c.Prefix, "/")
	switch {
	case c.Container == "":
		return Config{}, fmt.Errorf("%w: %s: no container (want swift:CONTAINER/PREFIX)", ErrBadURL, s)
	case len(c.Container) > 256:
		return Config{}, fmt.Errorf("%w: %s: container name longer than 256 bytes", ErrBadURL, s)
	case strings.Contains(c.Prefix, "//"):
		return Config{}, fmt.Errorf("%w: %s: empty element in prefix", ErrBadURL, s)
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return Config{}, fmt.Errorf("%w: %s: %v", ErrBadURL, s, err)
	}
	for k, v := range q {
		if len(v) != 1 {
			return Config{}, fmt.Errorf("%w: %s: parameter %q given %d times", ErrBadURL, s, k, len(v))
		}
		switch k {
		case "region":
			c.Region = v[0]
		case "endpoint":
			if c.EndpointType, err = endpointType(v[0]); err != nil {
				return Config{}, fmt.Errorf("%w: %s: %v", ErrBadURL, s, err)
			}
		default:
			return Config{}, fmt.Errorf("%w: %s: unknown parameter %q (known: region, endpoint)", ErrBadURL, s, k)
		}
	}
	return c, nil
}

// endpointType accepts the interface names of OS_INTERFACE and the
// older publicURL/internalURL/adminURL of OS_ENDPOINT_TYPE.
func endpointType(s string) (swift.EndpointType, error) {
	switch t := swift.EndpointType(strings.TrimSuffix(strings.ToLower(s), "url")); t {
	case swift.EndpointTypePublic, swift.EndpointTypeInternal, swift.EndpointTypeAdmin:
		return t, nil
	}
	return "", fmt.Errorf("endpoint type %q: want public, internal or admin", s)
}

// String is the URL, for messages.
func (c Config) String() string {
	s := Scheme + c.Container
	if c.Prefix != "" {
		s += "/" + c.Prefix
	}
	return s
}
