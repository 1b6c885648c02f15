package s3_test

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/hindsight-backup/hindsight/remote"
	"github.com/hindsight-backup/hindsight/remote/remotetest"
	"github.com/hindsight-backup/hindsight/remote/s3"
	"github.com/hindsight-backup/hindsight/remote/s3/s3test"
)

// TestMinIO runs everything that needs the server against one MinIO, each
// subtest in a prefix (or bucket) of its own.
func TestMinIO(t *testing.T) {
	srv := s3test.Start(t)
	var n atomic.Int64
	fresh := func(t *testing.T, bucket, prefix string) *s3.Backend {
		b, err := s3.Open(t.Context(), srv.Config(t, bucket, prefix))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return b
	}
	t.Run("conformance/prefix", func(t *testing.T) {
		remotetest.Run(t, func(t *testing.T) remote.Backend {
			return fresh(t, "conformance", fmt.Sprintf("repo/%d", n.Add(1)))
		})
	})
	t.Run("conformance/bucket root", func(t *testing.T) {
		remotetest.Run(t, func(t *testing.T) remote.Backend {
			return fresh(t, fmt.Sprintf("root-%d", n.Add(1)), "")
		})
	})
	// Virtual-host addressing (BUCKET.host), as AWS and most providers
	// want it; only the name resolution is the test's.
	t.Run("conformance/virtual host", func(t *testing.T) {
		remotetest.Run(t, func(t *testing.T) remote.Backend {
			cfg := srv.Config(t, "vhost", fmt.Sprintf("repo/%d", n.Add(1)))
			_, port, _ := net.SplitHostPort(srv.Endpoint)
			cfg.Endpoint = net.JoinHostPort(s3test.VirtualHostDomain, port)
			cfg.Lookup = s3.LookupDNS
			cfg.DialContext = srv.VirtualHostDial
			b, err := s3.Open(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			return b
		})
	})
	// Small parts put the multipart path under the same contract.
	t.Run("conformance/multipart", func(t *testing.T) {
		remotetest.Run(t, func(t *testing.T) remote.Backend {
			cfg := srv.Config(t, "multipart", fmt.Sprintf("repo/%d", n.Add(1)))
			cfg.PartSize = 5 << 20
			b, err := s3.Open(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			return b
		})
	})
	t.Run("conformance/retry", func(t *testing.T) {
		remotetest.Run(t, func(t *testing.T) remote.Backend {
			return remote.WithRetry(fresh(t, "conformance", fmt.Sprintf("retry/%d", n.Add(1))), remote.RetryOptions{MaxAttempts: 2})
		})
	})
	t.Run("FailedMultipartLeavesNothing", func(t *testing.T) { testFailedMultipart(t, srv) })
	t.Run("OpenErrors", func(t *testing.T) { testOpenErrors(t, srv) })
	t.Run("PrefixIsolation", func(t *testing.T) {
		a, b := fresh(t, "iso", "a"), fresh(t, "iso", "ab")
		if err := a.Save(t.Context(), "x", bytes.NewReader([]byte("a")), 1); err != nil {
			t.Fatal(err)
		}
		if err := b.List(t.Context(), "", func(fi remote.FileInfo) error {
			return fmt.Errorf("prefix ab lists %q saved under prefix a", fi.Name)
		}); err != nil {
			t.Error(err)
		}
	})
}

// A multipart upload that fails part-way must leave neither an object nor
// an incomplete upload holding storage.
func testFailedMultipart(t *testing.T, srv *s3test.Server) {
	cfg := srv.Config(t, "failmp", "p")
	cfg.PartSize = 5 << 20
	b, err := s3.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	const size = 12 << 20
	p := bytes.Repeat([]byte("hindsight"), size/9+1)[:size]
	for _, after := range []int64{0, 6 << 20, size - 1} {
		rd := &failAfter{r: bytes.NewReader(p), n: after}
		if err := b.Save(t.Context(), "packs/x", rd, size); err == nil {
			t.Fatalf("Save failing after %d bytes succeeded", after)
		}
		if _, err := b.Stat(t.Context(), "packs/x"); !errors.Is(err, remote.ErrNotExist) {
			t.Errorf("after failing at %d: Stat = %v; want ErrNotExist", after, err)
		}
	}
	if n := incompleteUploads(t, srv, "failmp", "p/packs/x"); n != 0 {
		t.Errorf("%d incomplete uploads left behind", n)
	}
	// The check above must be able to see an upload: MinIO lists them
	// only by exact key, so prove it sees one that is pending.
	core := minio.Core{Client: srv.Client(t)}
	id, err := core.NewMultipartUpload(t.Context(), "failmp", "p/packs/y", minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := incompleteUploads(t, srv, "failmp", "p/packs/y"); n != 1 {
		t.Errorf("a pending upload is listed %d times; the check proves nothing", n)
	}
	core.AbortMultipartUpload(t.Context(), "failmp", "p/packs/y", id)
}

func incompleteUploads(t *testing.T, srv *s3test.Server, bucket, key string) int {
	n := 0
	for u := range srv.Client(t).ListIncompleteUploads(t.Context(), bucket, key, true) {
		if u.Err != nil {
			t.Fatal(u.Err)
		}
		n++
	}
	return n
}

type failAfter struct {
	r interface {
		ReadAt([]byte, int64) (int, error)
	}
	n int64
}

func (f *failAfter) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.n {
		return 0, errors.New("injected read failure")
	}
	return f.r.ReadAt(p, off)
}

func testOpenErrors(t *testing.T, srv *s3test.Server) {
	good := srv.Config(t, "exists", "")
	tests := []struct {
		name      string
		mod       func(*s3.Config)
		want      error
		permanent bool
	}{
		{"missing bucket", func(c *s3.Config) { c.Bucket = "nosuchbucket" }, s3.ErrNoBucket, true},
		{"wrong secret", func(c *s3.Config) { c.Credentials.SecretAccessKey = "wrong-secret-value" }, s3.ErrAccessDenied, true},
		{"unknown key", func(c *s3.Config) { c.Credentials.AccessKeyID = "nobody" }, s3.ErrAccessDenied, true},
		{"unreachable", func(c *s3.Config) { c.Endpoint = "127.0.0.1:1" }, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.mod(&cfg)
			_, err := s3.Open(t.Context(), cfg)
			if err == nil {
				t.Fatal("Open succeeded")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Open = %v; want %v", err, tt.want)
			}
			if remote.IsPermanent(err) != tt.permanent {
				t.Errorf("IsPermanent(%v) = %v; want %v", err, !tt.permanent, tt.permanent)
			}
			for _, secret := range []string{cfg.Credentials.SecretAccessKey, good.Credentials.SecretAccessKey} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q shows the secret key", err)
				}
			}
		})
	}
}

// TestMinIOTLS talks https to a server whose certificate only the CA file
// vouches for: with the file the contract holds, without it the failure
// is immediate, permanent and says what to do.
func TestMinIOTLS(t *testing.T) {
	srv := s3test.StartTLS(t)
	var n atomic.Int64
	remotetest.Run(t, func(t *testing.T) remote.Backend {
		b, err := s3.Open(t.Context(), srv.Config(t, "tls", fmt.Sprintf("repo/%d", n.Add(1))))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return b
	})
	cfg := srv.Config(t, "tls", "x")
	cfg.CAFile = ""
	_, err := s3.Open(t.Context(), cfg)
	if !errors.Is(err, s3.ErrCertificate) || !remote.IsPermanent(err) || !strings.Contains(err.Error(), "ca=") {
		t.Errorf("Open without the CA = %v; want a permanent ErrCertificate pointing at ?ca=", err)
	}
}
