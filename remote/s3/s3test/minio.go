// Package s3test starts a real MinIO server for tests: on 127.0.0.1, on a
// port of its own, over a temporary directory, stopped when the test ends.
// The binary comes from integration/scripts/install-minio.sh; without it
// the test is skipped, except under CI=true, where it fails.
package s3test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/hindsight-backup/hindsight/remote/s3"
)

// Server is a running MinIO.
type Server struct {
	Endpoint    string // 127.0.0.1:port
	Credentials s3.Credentials
	// CAFile is the PEM certificate a TLS server (StartTLS) presents,
	// which clients must be told to trust; "" for plain http.
	CAFile string
	cmd    *exec.Cmd
	log    *bytes.Buffer
	client *http.Client // for the readiness probe
}

// Binary returns the MinIO executable tests use: $HINDSIGHT_MINIO, or the
// one install-minio.sh caches under $HOME, or minio on PATH.
func Binary() (string, bool) {
	if p := os.Getenv("HINDSIGHT_MINIO"); p != "" {
		return p, true
	}
	if home, err := os.UserHomeDir(); err == nil {
		p := filepath.Join(home, ".cache", "hindsight-test", "bin", "minio")
		if _, err := os.Stat(p); err == nil {
			return p, true
		}
	}
	p, err := exec.LookPath("minio")
	return p, err == nil
}

// VirtualHostDomain is the domain under which every server answers
// virtual-host requests; VirtualHostDial routes it to the server.
const VirtualHostDomain = "s3.test"

// VirtualHostDial dials this server for any name under VirtualHostDomain,
// standing in for the DNS that would resolve BUCKET.s3.test.
func (s *Server) VirtualHostDial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if host == VirtualHostDomain || strings.HasSuffix(host, "."+VirtualHostDomain) {
		addr = s.Endpoint
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// Start runs a MinIO server for the rest of t. A missing binary skips t,
// or fails it under CI=true so that CI cannot pass by testing nothing.
func Start(t testing.TB) *Server {
	t.Helper()
	return startServer(t, false)
}

// StartTLS is Start with MinIO serving https under a self-signed
// certificate for 127.0.0.1, found at the Server's CAFile.
func StartTLS(t testing.TB) *Server {
	t.Helper()
	return startServer(t, true)
}

func startServer(t testing.TB, tls bool) *Server {
	t.Helper()
	bin, ok := Binary()
	if !ok {
		msg := "MinIO not installed: run integration/scripts/install-minio.sh"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	// A port can be taken between finding it free and MinIO binding it;
	// a few tries make that race harmless.
	var err error
	for range 3 {
		var s *Server
		if s, err = start(t, bin, tls); err == nil {
			return s
		}
	}
	t.Fatalf("starting MinIO: %v", err)
	return nil
}

func start(t testing.TB, bin string, tls bool) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &Server{
		Endpoint:    fmt.Sprintf("127.0.0.1:%d", port),
		Credentials: s3.Credentials{AccessKeyID: "hindsight-test", SecretAccessKey: randomSecret()},
		log:         &bytes.Buffer{},
		client:      http.DefaultClient,
	}
	args := []string{"server", "--quiet"}
	if tls {
		certs := t.TempDir()
		var err error
		if s.client, err = selfSigned(certs); err != nil {
			return nil, err
		}
		s.CAFile = filepath.Join(certs, "public.crt")
		args = append(args, "--certs-dir", certs)
	}
	consolePort, err := freePort()
	if err != nil {
		return nil, err
	}
	s.cmd = exec.Command(bin, append(args,
		"--address", s.Endpoint, "--console-address", fmt.Sprintf("127.0.0.1:%d", consolePort), t.TempDir())...)
	s.cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+s.Credentials.AccessKeyID,
		"MINIO_ROOT_PASSWORD="+s.Credentials.SecretAccessKey,
		"MINIO_BROWSER=off",
		// Virtual-host requests (BUCKET.VirtualHostDomain) are answered
		// as well as path-style ones.
		"MINIO_DOMAIN="+VirtualHostDomain,
		"MINIO_UPDATE=off",
		// Keep MinIO out of ~/.minio and away from the machine's
		// shared config.
		"HOME="+t.TempDir(),
	)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- s.cmd.Wait() }()
	if err := s.waitReady(exited); err != nil {
		s.cmd.Process.Kill()
		<-exited
		return nil, fmt.Errorf("%w; output:\n%s", err, s.log)
	}
	t.Cleanup(func() { s.stop(t, exited) })
	return s, nil
}

func (s *Server) waitReady(exited <-chan error) error {
	deadline := time.Now().Add(60 * time.Second)
	scheme := "http"
	if s.CAFile != "" {
		scheme = "https"
	}
	url := scheme + "://" + s.Endpoint + "/minio/health/ready"
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("MinIO exited at start: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
		resp, err := s.client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return fmt.Errorf("MinIO not ready at %s after 60s", s.Endpoint)
}

func (s *Server) stop(t testing.TB, exited <-chan error) {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Logf("MinIO ignored SIGTERM for 10s; killing it")
		s.cmd.Process.Kill()
		<-exited
	}
}

// Config is an s3.Config for bucket (created if needed) and prefix,
// path-style, as MinIO is addressed.
func (s *Server) Config(t testing.TB, bucket, prefix string) s3.Config {
	t.Helper()
	cfg := s3.Config{Endpoint: s.Endpoint, Secure: s.CAFile != "", CAFile: s.CAFile,
		Bucket: bucket, Prefix: prefix, Lookup: s3.LookupPath, Credentials: s.Credentials}
	s.MakeBucket(t, bucket)
	return cfg
}

// URL is the s3: URL of bucket and prefix on this server.
func (s *Server) URL(bucket, prefix string) string {
	return s3.Config{Endpoint: s.Endpoint, Secure: s.CAFile != "", Bucket: bucket, Prefix: prefix}.String()
}

// Env returns the environment variables that hand this server's
// credentials to a hindsight process.
func (s *Server) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + s.Credentials.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + s.Credentials.SecretAccessKey,
	}
}

// MakeBucket creates bucket unless it exists.
func (s *Server) MakeBucket(t testing.TB, bucket string) {
	t.Helper()
	c := s.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := c.MakeBucket(ctx, bucket, minio.MakeBucketOptions{})
	if err != nil && !strings.Contains(minio.ToErrorResponse(err).Code, "BucketAlreadyOwnedByYou") {
		t.Fatalf("MakeBucket(%s): %v", bucket, err)
	}
}

// Client is a plain minio-go client for checks behind the backend's back
// (incomplete multipart uploads, raw keys).
func (s *Server) Client(t testing.TB) *minio.Client {
	t.Helper()
	c, err := minio.New(s.Endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(s.Credentials.AccessKeyID, s.Credentials.SecretAccessKey, ""),
		BucketLookup: minio.BucketLookupPath,
		Secure:       s.CAFile != "",
		Transport:    s.client.Transport,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomSecret() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
