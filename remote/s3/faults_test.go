package s3

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hindsight-backup/hindsight/remote"
)

// fakeS3 answers every request with respond, so that each failure an S3
// server or the network between can produce is tried without one.
func fakeS3(t *testing.T, respond http.HandlerFunc) *Backend {
	srv := httptest.NewServer(respond)
	t.Cleanup(srv.Close)
	b, err := New(Config{
		Endpoint: strings.TrimPrefix(srv.URL, "http://"), Bucket: "bkt", Prefix: "p",
		Region: "us-east-1", Lookup: LookupPath,
		Credentials: Credentials{AccessKeyID: "AKIA", SecretAccessKey: "topsecret"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func s3Error(status int, code string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(status)
		if r.Method != http.MethodHead {
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>injected</Message><RequestId>1</RequestId></Error>`, code)
		}
	}
}

// reset closes the connection without an answer, as a crashed server or a
// middlebox does.
func reset(w http.ResponseWriter, _ *http.Request) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		conn.Close()
	}
}

func TestFaults(t *testing.T) {
	tests := []struct {
		name      string
		respond   http.HandlerFunc
		want      error // nil: any error
		permanent bool
	}{
		{"503 slow down", s3Error(http.StatusServiceUnavailable, "SlowDown"), nil, false},
		{"500 internal", s3Error(http.StatusInternalServerError, "InternalError"), nil, false},
		{"429", s3Error(http.StatusTooManyRequests, "TooManyRequests"), nil, false},
		{"connection reset", reset, nil, false},
		{"clock skew", s3Error(http.StatusForbidden, "RequestTimeTooSkewed"), ErrClockSkew, true},
		{"bad signature", s3Error(http.StatusForbidden, "SignatureDoesNotMatch"), ErrAccessDenied, true},
		{"access denied", s3Error(http.StatusForbidden, "AccessDenied"), ErrAccessDenied, true},
		{"expired token", s3Error(http.StatusBadRequest, "ExpiredToken"), ErrExpiredToken, true},
		{"bucket missing", s3Error(http.StatusNotFound, "NoSuchBucket"), ErrNoBucket, true},
		{"400 other", s3Error(http.StatusBadRequest, "InvalidArgument"), nil, true},
	}
	ops := map[string]func(b *Backend, t *testing.T) error{
		"Save": func(b *Backend, t *testing.T) error {
			return b.Save(t.Context(), "packs/x", strings.NewReader("data"), 4)
		},
		"Load": func(b *Backend, t *testing.T) error {
			_, err := b.Load(t.Context(), "packs/x", 10, 20)
			return err
		},
		"List": func(b *Backend, t *testing.T) error {
			return b.List(t.Context(), "packs/", func(remote.FileInfo) error { return nil })
		},
	}
	for _, tt := range tests {
		for op, run := range ops {
			t.Run(tt.name+"/"+op, func(t *testing.T) {
				err := run(fakeS3(t, tt.respond), t)
				if err == nil {
					t.Fatal("succeeded against a failing server")
				}
				if tt.want != nil && !errors.Is(err, tt.want) {
					t.Errorf("error = %v; want %v", err, tt.want)
				}
				if errors.Is(err, remote.ErrNotExist) {
					t.Errorf("error = %v reads as a missing object", err)
				}
				if got := remote.IsPermanent(err); got != tt.permanent {
					t.Errorf("IsPermanent(%v) = %v; want %v", err, got, tt.permanent)
				}
				if strings.Contains(err.Error(), "topsecret") {
					t.Errorf("error %q shows the secret key", err)
				}
			})
		}
	}
}

// A download cut short must fail the read, not end it early as if the
// object were shorter.
func TestTruncatedDownload(t *testing.T) {
	b := fakeS3(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.Header().Set("Content-Range", "bytes 0-99/100")
		w.Header().Set("Last-Modified", "Mon, 2 Jan 2006 15:04:05 GMT")
		w.Header().Set("ETag", `"0123"`)
		w.WriteHeader(http.StatusPartialContent)
		w.Write(make([]byte, 40))
		reset(w, nil)
	})
	rc, err := b.Load(t.Context(), "packs/x", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	n, err := io.Copy(io.Discard, rc)
	if err == nil {
		t.Errorf("read %d of 100 bytes and no error", n)
	}
}

// The Stat that Remove makes first turns S3's silent success on a missing
// key into the contract's ErrNotExist.
func TestRemoveMissing(t *testing.T) {
	var deletes int
	b := fakeS3(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete {
			deletes++
		}
		s3Error(http.StatusNotFound, "NoSuchKey")(w, r)
	})
	if err := b.Remove(t.Context(), "packs/x"); !errors.Is(err, remote.ErrNotExist) {
		t.Errorf("Remove = %v; want ErrNotExist", err)
	}
	if deletes != 0 {
		t.Errorf("sent %d DELETEs for a missing object", deletes)
	}
}
