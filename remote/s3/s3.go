// Package s3 stores a repository under a prefix of an S3 bucket, through
// minio-go: AWS, MinIO, Ceph RGW and Swift's s3api, path-style or
// virtual-host addressing, v4 signatures, a private CA.
//
// It holds no retry loop and no rate limit: minio-go's own retries are
// switched off so that remote.WithRetry, wrapped around this backend like
// around any other, is the one place that decides what to try again.
package s3

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/s3utils"

	"github.com/hindsight-backup/hindsight/remote"
)

// Backend is a remote.Backend over one bucket and prefix.
type Backend struct {
	client *minio.Client
	tr     *http.Transport
	cfg    Config
}

var _ remote.Backend = (*Backend)(nil)

// New returns a Backend for cfg without contacting the server; Open also
// checks that the bucket is there and the credentials work.
func New(cfg Config) (*Backend, error) {
	if err := s3utils.CheckValidBucketName(cfg.Bucket); err != nil {
		return nil, remote.Permanent(fmt.Errorf("s3: %s: %w: %v", cfg, ErrBadURL, err))
	}
	tr, err := transport(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Region == "" {
		cfg.Region = regionFromEnv()
	}
	lookup := minio.BucketLookupAuto
	switch cfg.Lookup {
	case LookupPath:
		lookup = minio.BucketLookupPath
	case LookupDNS:
		lookup = minio.BucketLookupDNS
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:        cfg.Credentials.provider(),
		Secure:       cfg.Secure,
		Transport:    tr,
		Region:       cfg.Region,
		BucketLookup: lookup,
		MaxRetries:   1, // remote.WithRetry retries, with our backoff and logging
	})
	if err != nil {
		return nil, remote.Permanent(fmt.Errorf("s3: %s: %w", cfg, err))
	}
	return &Backend{client: client, tr: tr, cfg: cfg}, nil
}

// Open is New followed by a check of the bucket, so that a wrong endpoint,
// wrong credentials or a missing bucket are reported once, clearly, before
// any work starts (S3 answers a HEAD of an object in a missing bucket with
// a bare 404 that would read as "object missing").
func Open(ctx context.Context, cfg Config) (*Backend, error) {
	b, err := New(cfg)
	if err != nil {
		return nil, err
	}
	ok, err := b.client.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, b.fail(ctx, "open", "", err)
	}
	if !ok {
		return nil, remote.Permanent(fmt.Errorf("s3: %s: %w", cfg, ErrNoBucket))
	}
	return b, nil
}

func transport(cfg Config) (*http.Transport, error) {
	tr, err := minio.DefaultTransport(cfg.Secure)
	if err != nil {
		return nil, err
	}
	if cfg.DialContext != nil {
		tr.DialContext = cfg.DialContext
	}
	if cfg.CAFile == "" {
		return tr, nil
	}
	pem, err := os.ReadFile(cfg.CAFile)
	if err != nil {
		return nil, remote.Permanent(fmt.Errorf("s3: CA file: %w", err))
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, remote.Permanent(fmt.Errorf("s3: CA file %s holds no PEM certificate", cfg.CAFile))
	}
	if tr.TLSClientConfig == nil {
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	tr.TLSClientConfig.RootCAs = pool
	return tr, nil
}

// Location is the URL without credentials.
func (b *Backend) Location() string { return b.cfg.String() }

// Close releases idle connections; requests in flight are the callers'.
func (b *Backend) Close() error {
	b.tr.CloseIdleConnections()
	return nil
}

// key maps an object name to its S3 key under the prefix.
func (b *Backend) key(name string) string { return remote.JoinPrefix(b.cfg.Prefix, name) }

// Save uploads with a known size, so minio-go sends one PUT up to the
// part size and a multipart upload above it. Neither leaves a visible
// object when it fails: a PUT whose body ends early is rejected for its
// Content-Length, and a multipart upload becomes an object only at
// CompleteMultipartUpload, after every part arrived (minio-go aborts the
// upload on failure; a killed process leaves parts that only a bucket
// lifecycle rule for incomplete uploads cleans up, never an object).
func (b *Backend) Save(ctx context.Context, name string, rd io.ReaderAt, size int64) error {
	if err := remote.CheckName(name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("s3: save %s: %w", name, err)
	}
	info, err := b.client.PutObject(ctx, b.cfg.Bucket, b.key(name), io.NewSectionReader(rd, 0, size), size,
		minio.PutObjectOptions{
			PartSize:    b.cfg.PartSize,
			ContentType: "application/octet-stream",
			// Over https the v4 signature does not cover the body;
			// the MD5 lets the server refuse one damaged in transit.
			SendContentMd5: true,
			// Over plain http minio-go would otherwise sign the body
			// in aws-chunked encoding, which Swift's s3api (2.30)
			// refuses ("Transfering payloads in multiple chunks using
			// aws-chunked is not supported"). The MD5 above still
			// guards the body, and the repository authenticates
			// every blob it reads back.
			DisableContentSha256: true,
		})
	if err != nil {
		return b.fail(ctx, "save", name, err)
	}
	if info.Size != size {
		return fmt.Errorf("s3: save %s: server stored %d bytes of %d", name, info.Size, size)
	}
	return nil
}

// Load asks for exactly the range wanted, so restoring one blob costs the
// blob's bytes, not the pack's.
func (b *Backend) Load(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	if err := remote.CheckName(name); err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, remote.Permanent(fmt.Errorf("s3: load %s: negative offset %d", name, offset))
	}
	var opts minio.GetObjectOptions
	if offset > 0 || length > 0 {
		end := int64(0) // with offset > 0: to the end
		if length > 0 {
			end = offset + length - 1
		}
		if err := opts.SetRange(offset, end); err != nil {
			return nil, remote.Permanent(fmt.Errorf("s3: load %s: %w", name, err))
		}
	} else {
		// SetRange cannot say "from 0 to the end".
		opts.Set("Range", remote.WholeRange)
	}
	core := minio.Core{Client: b.client}
	rc, _, h, err := core.GetObject(ctx, b.cfg.Bucket, b.key(name), opts)
	if err != nil {
		if minio.ToErrorResponse(err).Code == "InvalidRange" {
			return remote.EmptyAtEnd(ctx, b, name, offset)
		}
		return nil, b.fail(ctx, "load", name, err)
	}
	rc, err = remote.CheckContentRange(rc, h.Get("Content-Range"))
	if err != nil {
		return nil, fmt.Errorf("s3: load %s: %w", name, err)
	}
	return rc, nil
}

// Stat is a HEAD request.
func (b *Backend) Stat(ctx context.Context, name string) (remote.FileInfo, error) {
	if err := remote.CheckName(name); err != nil {
		return remote.FileInfo{}, err
	}
	oi, err := b.client.StatObject(ctx, b.cfg.Bucket, b.key(name), minio.StatObjectOptions{})
	if err != nil {
		return remote.FileInfo{}, b.fail(ctx, "stat", name, err)
	}
	return remote.FileInfo{Name: name, Size: oi.Size}, nil
}

// List pages through ListObjectsV2 without a delimiter, so a partial
// prefix ("packs/ab") matches across "directories" as the contract asks.
// Keys that are not valid object names (folder markers ending in "/",
// files a person dropped into the bucket) are not the repository's and
// are skipped.
func (b *Backend) List(ctx context.Context, prefix string, fn func(remote.FileInfo) error) error {
	if err := remote.CheckPrefix(prefix); err != nil {
		return err
	}
	root := b.key("")
	for oi := range b.client.ListObjectsIter(ctx, b.cfg.Bucket, minio.ListObjectsOptions{Prefix: root + prefix, Recursive: true}) {
		if oi.Err != nil {
			return b.fail(ctx, "list", prefix, oi.Err)
		}
		name := strings.TrimPrefix(oi.Key, root)
		if remote.CheckName(name) != nil {
			continue
		}
		if err := fn(remote.FileInfo{Name: name, Size: oi.Size}); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// Remove deletes name. S3 reports success for a missing key, so a HEAD
// first gives the contract's ErrNotExist; the race with another remover
// between the two requests ends with the object gone either way.
func (b *Backend) Remove(ctx context.Context, name string) error {
	if _, err := b.Stat(ctx, name); err != nil {
		return err
	}
	if err := b.client.RemoveObject(ctx, b.cfg.Bucket, b.key(name), minio.RemoveObjectOptions{}); err != nil {
		return b.fail(ctx, "remove", name, err)
	}
	return nil
}
