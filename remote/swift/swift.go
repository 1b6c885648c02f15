// Package swift stores a repository under a prefix of an OpenStack Swift
// container through the native API (github.com/ncw/swift/v2): Keystone v2
// and v3, v1 auth (tempauth, Rackspace Cloud Files), region and endpoint
// type selection, ranged reads, and static large objects for objects the
// cluster would refuse in one PUT.
//
// Like remote/s3, it keeps no retry loop of its own: ncw/swift may repeat
// a request once, which is what renews an expired token on a 401, and
// remote.WithRetry decides everything else.
package swift

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ncw/swift/v2"

	"github.com/hindsight-backup/hindsight/remote"
)

// defaultMaxObject is Swift's default max_file_size, assumed when the
// cluster does not publish /info.
const defaultMaxObject = 5<<30 + 2

// Backend is a remote.Backend over one container and prefix.
type Backend struct {
	conn      *swift.Connection
	tr        *http.Transport
	cfg       Config
	maxObject int64
}

var _ remote.Backend = (*Backend)(nil)

// New returns a Backend for cfg without contacting the server; Open also
// logs in, creates the container when it is missing and asks the cluster
// for its object size limit.
func New(cfg Config) (*Backend, error) {
	conn := cfg.connection()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 32
	conn.Transport = tr
	// One repeat, so that a 401 can renew the token and send the request
	// again (a body is rewound: Save hands over io.Seekers).
	conn.Retries = 1
	if cfg.Auth.fixedToken() {
		// Nothing to log in again with: a 401 is final, and fail says
		// why, where ncw/swift would try to log in at no URL.
		conn.Retries = -1
	}
	// Time to the response headers; a busy cluster can take seconds to
	// answer a large PUT once its body is sent.
	conn.ConnectTimeout = 30 * time.Second
	b := &Backend{conn: conn, tr: tr, cfg: cfg, maxObject: cfg.MaxObjectSize}
	if b.maxObject == 0 {
		b.maxObject = defaultMaxObject
	}
	return b, nil
}

// Open is New followed by a login and a look at the container, so that a
// wrong address or wrong credentials are reported once, before any work.
func Open(ctx context.Context, cfg Config) (*Backend, error) {
	if !cfg.Auth.hasCredentials() {
		return nil, remote.Permanent(fmt.Errorf("swift: %s: %w", cfg, ErrNoCredentials))
	}
	b, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if err := b.login(ctx); err != nil {
		switch status(err) {
		case http.StatusNotFound:
			return nil, remote.Permanent(fmt.Errorf("swift: log in at %s: no such authentication URL (404)", cfg.Auth.URL))
		case http.StatusBadRequest:
			// Keystone's answer to credentials it cannot use: v3 to a
			// user name without a domain, v2 to the Rackspace API key
			// that ncw/swift tries after a wrong password.
			return nil, remote.Permanent(fmt.Errorf("swift: log in to %s: %w (%v)", cfg, ErrAccessDenied, err))
		}
		return nil, b.fail(ctx, "log in to", "", err)
	}
	if err := b.ensureContainer(ctx, cfg.Container); err != nil {
		return nil, err
	}
	if cfg.MaxObjectSize == 0 {
		b.maxObject = b.clusterMaxObject(ctx)
	}
	return b, nil
}

// login gets a token, unless the Auth holds one made elsewhere: the look
// at the container then checks it.
func (b *Backend) login(ctx context.Context) error {
	if b.cfg.Auth.fixedToken() {
		return nil
	}
	return b.conn.Authenticate(ctx)
}

// ensureContainer creates container unless it exists. A PUT of an
// existing container is harmless, but a HEAD first spares the write a
// read-only user may not be allowed.
func (b *Backend) ensureContainer(ctx context.Context, container string) error {
	_, _, err := b.conn.Container(ctx, container)
	if status(err) == http.StatusNotFound {
		err = b.conn.ContainerCreate(ctx, container, nil)
	}
	if err != nil {
		return b.fail(ctx, "open container", container, err)
	}
	return nil
}

// clusterMaxObject is the max_file_size the cluster publishes in /info,
// or Swift's default when it publishes none.
func (b *Backend) clusterMaxObject(ctx context.Context) int64 {
	info, err := b.conn.QueryInfo(ctx)
	if err != nil {
		return defaultMaxObject
	}
	sw, _ := info["swift"].(map[string]any)
	if n, ok := sw["max_file_size"].(float64); ok && n > 0 {
		return int64(n)
	}
	return defaultMaxObject
}

// Location is the URL, which holds no secret.
func (b *Backend) Location() string { return b.cfg.String() }

// Close releases idle connections; requests in flight are the callers'.
func (b *Backend) Close() error {
	b.tr.CloseIdleConnections()
	return nil
}

// key maps an object name to its Swift object name under the prefix.
func (b *Backend) key(name string) string { return remote.JoinPrefix(b.cfg.Prefix, name) }

// Save sends one PUT with a known length and the MD5 as ETag, so that
// Swift stores nothing when the body ends early and refuses (422) a body
// damaged on the way. Objects larger than the cluster takes in one PUT
// become static large objects.
func (b *Backend) Save(ctx context.Context, name string, rd io.ReaderAt, size int64) error {
	if err := remote.CheckName(name); err != nil {
		return err
	}
	if size > b.maxObject {
		return b.saveLarge(ctx, name, rd, size)
	}
	_, err := b.put(ctx, b.cfg.Container, b.key(name), io.NewSectionReader(rd, 0, size), name)
	return err
}

// put uploads all of body under container/object and returns its MD5;
// name is what messages call it.
func (b *Backend) put(ctx context.Context, container, object string, body *io.SectionReader, name string) (string, error) {
	sum, err := md5Sum(body)
	if err != nil {
		return "", fmt.Errorf("swift: save %s: reading the source: %w", name, err)
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("swift: save %s: %w", name, err)
	}
	_, err = b.conn.ObjectPut(ctx, container, object, body, false, sum, "application/octet-stream",
		swift.Headers{"Content-Length": strconv.FormatInt(body.Size(), 10)})
	if err != nil {
		return "", b.fail(ctx, "save", name, err)
	}
	return sum, nil
}

// md5Sum reads all of r and rewinds it. A source shorter than it claims
// is refused here: retrying cannot make it longer.
func md5Sum(r *io.SectionReader) (string, error) {
	h := md5.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return "", err
	}
	if n != r.Size() {
		return "", remote.Permanent(fmt.Errorf("source has %d bytes, not the %d declared", n, r.Size()))
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Load asks for exactly the range wanted, so restoring one blob costs the
// blob's bytes, not the pack's; a static large object serves ranges
// across its segments the same way.
func (b *Backend) Load(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	if err := remote.CheckName(name); err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, remote.Permanent(fmt.Errorf("swift: load %s: negative offset %d", name, offset))
	}
	// A range even for the whole object: the Content-Range of the answer
	// tells a body cut short from a whole one.
	h := swift.Headers{"Range": fmt.Sprintf("bytes=%d-", offset)}
	if length > 0 {
		h["Range"] = fmt.Sprintf("bytes=%d-%d", offset, offset+length-1)
	}
	f, rh, err := b.conn.ObjectOpen(ctx, b.cfg.Container, b.key(name), false, h)
	if status(err) == http.StatusRequestedRangeNotSatisfiable {
		return remote.EmptyAtEnd(ctx, b, name, offset)
	}
	if err != nil {
		return nil, b.fail(ctx, "load", name, err)
	}
	rc, err := remote.CheckContentRange(f, rh["Content-Range"])
	if err != nil {
		return nil, fmt.Errorf("swift: load %s: %w", name, err)
	}
	return rc, nil
}

// Stat is a HEAD request; a static large object reports its whole size.
func (b *Backend) Stat(ctx context.Context, name string) (remote.FileInfo, error) {
	if err := remote.CheckName(name); err != nil {
		return remote.FileInfo{}, err
	}
	obj, _, err := b.conn.Object(ctx, b.cfg.Container, b.key(name))
	if err != nil {
		return remote.FileInfo{}, b.fail(ctx, "stat", name, err)
	}
	return remote.FileInfo{Name: name, Size: obj.Bytes}, nil
}

// List pages through the container listing without a delimiter, so a
// partial prefix ("packs/ab") matches across "directories" as the
// contract asks. Names that are not valid object names (pseudo-directory
// markers, files a person dropped in) are not the repository's and are
// skipped. A static large object is listed with its whole size.
func (b *Backend) List(ctx context.Context, prefix string, fn func(remote.FileInfo) error) error {
	if err := remote.CheckPrefix(prefix); err != nil {
		return err
	}
	root := b.key("")
	var fnErr error
	err := b.conn.ObjectsWalk(ctx, b.cfg.Container, &swift.ObjectsOpts{Prefix: root + prefix},
		func(ctx context.Context, opts *swift.ObjectsOpts) (any, error) {
			objs, err := b.conn.Objects(ctx, b.cfg.Container, opts)
			if err != nil {
				return nil, err
			}
			for _, o := range objs {
				name := strings.TrimPrefix(o.Name, root)
				if remote.CheckName(name) != nil {
					continue
				}
				if fnErr = fn(remote.FileInfo{Name: name, Size: o.Bytes}); fnErr != nil {
					return nil, fnErr
				}
			}
			return objs, nil
		})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return b.fail(ctx, "list", prefix, err)
	}
	return ctx.Err()
}

// Remove deletes name, and a static large object's segments with it. The
// HEAD that tells the two apart also gives the contract's ErrNotExist.
func (b *Backend) Remove(ctx context.Context, name string) error {
	if err := remote.CheckName(name); err != nil {
		return err
	}
	_, h, err := b.conn.Object(ctx, b.cfg.Container, b.key(name))
	if err == nil {
		if h.IsLargeObjectSLO() {
			err = b.conn.LargeObjectDelete(ctx, b.cfg.Container, b.key(name))
		} else {
			err = b.conn.ObjectDelete(ctx, b.cfg.Container, b.key(name))
		}
	}
	if err != nil {
		return b.fail(ctx, "remove", name, err)
	}
	return nil
}
