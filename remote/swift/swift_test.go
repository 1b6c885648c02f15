package swift_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	ncw "github.com/ncw/swift/v2"

	"github.com/hindsight-backup/hindsight/remote"
	"github.com/hindsight-backup/hindsight/remote/remotetest"
	"github.com/hindsight-backup/hindsight/remote/swift"
	"github.com/hindsight-backup/hindsight/remote/swift/swifttest"
)

// clusterMax is the test cluster's max_file_size: small, so that the
// conformance suite's larger objects already need static large objects.
const clusterMax = 2 << 20

// TestSwift runs everything that needs the server against one Swift, each
// subtest in a prefix (or container) of its own.
func TestSwift(t *testing.T) {
	srv := swifttest.StartWith(t, swifttest.Options{MaxFileSize: clusterMax})
	var n atomic.Int64
	open := func(t *testing.T, mod func(*swift.Config)) *swift.Backend {
		cfg := swift.Config{Container: "conformance", Prefix: fmt.Sprintf("repo/%d", n.Add(1)), Auth: v1Auth(srv)}
		if mod != nil {
			mod(&cfg)
		}
		b, err := swift.Open(t.Context(), cfg)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return b
	}
	suites := []struct {
		name string
		mod  func(*swift.Config)
	}{
		{"prefix", nil},
		// Open creates each container.
		{"container root", func(c *swift.Config) { c.Container, c.Prefix = fmt.Sprintf("root-%d", n.Add(1)), "" }},
		// Most objects of the suite become static large objects.
		{"large objects", func(c *swift.Config) { c.MaxObjectSize = 256 << 10 }},
	}
	for _, s := range suites {
		t.Run("conformance/"+s.name, func(t *testing.T) {
			remotetest.Run(t, func(t *testing.T) remote.Backend { return open(t, s.mod) })
		})
	}
	t.Run("conformance/retry", func(t *testing.T) {
		remotetest.Run(t, func(t *testing.T) remote.Backend {
			return remote.WithRetry(open(t, nil), remote.RetryOptions{MaxAttempts: 2})
		})
	})
	t.Run("LargeObject", func(t *testing.T) { testLargeObject(t, srv, open(t, nil)) })
	t.Run("FailedLargeObjectLeavesNoSegments", func(t *testing.T) { testFailedLarge(t, srv, open(t, nil)) })
	t.Run("ReAuthentication", func(t *testing.T) {
		b := open(t, nil)
		testReAuth(t, b, func() string { return swift.SpoilToken(b) })
	})
	t.Run("OpenErrors", func(t *testing.T) { testOpenErrors(t, srv) })
}

func v1Auth(srv *swifttest.Server) swift.Auth {
	return swift.Auth{URL: srv.AuthURL(), User: swifttest.User, Key: swifttest.Key}
}

// client is a plain ncw/swift connection, for looks behind the backend's
// back.
func client(t *testing.T, srv *swifttest.Server) *ncw.Connection {
	c := &ncw.Connection{AuthUrl: srv.AuthURL(), UserName: swifttest.User, ApiKey: swifttest.Key}
	if err := c.Authenticate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return c
}

func random(n int) []byte {
	p := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(n)}).Read(p)
	return p
}

// An object over the cluster's limit, which the backend learnt from
// /info, is stored as a static large object: whole in Stat and List,
// readable in ranges that cross segments, and removed with its segments.
// The same object sent in one PUT is refused, so the segments were needed.
func testLargeObject(t *testing.T, srv *swifttest.Server, b *swift.Backend) {
	p := random(clusterMax*2 + 12345)
	if err := b.Save(t.Context(), "packs/big", bytes.NewReader(p), int64(len(p))); err != nil {
		t.Fatal(err)
	}
	c := client(t, srv)
	_, h, err := c.Object(t.Context(), "conformance", strings.TrimPrefix(b.Location(), "swift:conformance/")+"/packs/big")
	if err != nil || !h.IsLargeObjectSLO() {
		t.Fatalf("stored object: %v, headers %v; want a static large object", err, h)
	}
	if fi, err := b.Stat(t.Context(), "packs/big"); err != nil || fi.Size != int64(len(p)) {
		t.Errorf("Stat = %+v, %v; want %d bytes", fi, err, len(p))
	}
	var listed int64
	b.List(t.Context(), "packs/", func(fi remote.FileInfo) error { listed = fi.Size; return nil })
	if listed != int64(len(p)) {
		t.Errorf("List size = %d; want %d", listed, len(p))
	}
	for _, r := range [][2]int64{{clusterMax - 10, 20}, {0, 0}, {clusterMax*2 - 1, 0}} {
		rc, err := b.Load(t.Context(), "packs/big", r[0], r[1])
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		want := p[r[0]:]
		if r[1] > 0 {
			want = want[:r[1]]
		}
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("Load(%d, %d) = %d bytes, %v; want %d equal bytes", r[0], r[1], len(got), err, len(want))
		}
	}
	if n := segments(t, c, "packs/big"); n != 3 {
		t.Errorf("%d segments stored; want 3", n)
	}
	if err := b.Remove(t.Context(), "packs/big"); err != nil {
		t.Fatal(err)
	}
	if n := segments(t, c, "packs/big"); n != 0 {
		t.Errorf("%d segments left after Remove", n)
	}
	_, err = c.ObjectPut(t.Context(), "conformance", "too-big", bytes.NewReader(p), false, "", "",
		ncw.Headers{"Content-Length": fmt.Sprint(len(p))})
	if !errors.Is(err, ncw.TooLargeObject) {
		t.Errorf("a single PUT of %d bytes = %v; want 413 from a cluster whose limit is %d", len(p), err, clusterMax)
	}
}

// segments counts the segments stored for objects whose names end in
// name.
func segments(t *testing.T, c *ncw.Connection, name string) int {
	names, err := c.ObjectNamesAll(t.Context(), "conformance_segments", nil)
	names = slices.DeleteFunc(names, func(s string) bool { return !strings.Contains(s, "/"+name+"/slo/") })
	if err != nil && !errors.Is(err, ncw.ContainerNotFound) {
		t.Fatal(err)
	}
	return len(names)
}

// failAfter yields the first n bytes of r, then fails.
type failAfter struct {
	r io.ReaderAt
	n int64
}

func (f failAfter) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.n {
		return 0, errors.New("injected read failure")
	}
	return f.r.ReadAt(p, off)
}

// A large upload that fails after some segments were stored removes them.
func testFailedLarge(t *testing.T, srv *swifttest.Server, b *swift.Backend) {
	c := client(t, srv)
	p := random(clusterMax*3 + 1)
	err := b.Save(t.Context(), "packs/fail", failAfter{bytes.NewReader(p), clusterMax*2 + 100}, int64(len(p)))
	if err == nil {
		t.Fatal("Save with a failing reader succeeded")
	}
	if _, err := b.Stat(t.Context(), "packs/fail"); !errors.Is(err, remote.ErrNotExist) {
		t.Errorf("Stat after a failed large save = %v; want ErrNotExist", err)
	}
	if n := segments(t, c, "packs/fail"); n != 0 {
		t.Errorf("%d segments left by the failed save", n)
	}
}

// testReAuth has expire make the backend's token invalid, as an expiry
// would, before each operation, and return it: every operation must get
// a 401, log in again and succeed, with no error seen by the caller.
func testReAuth(t *testing.T, b *swift.Backend, expire func() string) {
	p := []byte("survives a new token")
	ops := []struct {
		name string
		fn   func() error
	}{
		{"Save", func() error { return b.Save(t.Context(), "re/x", bytes.NewReader(p), int64(len(p))) }},
		{"Stat", func() error { _, err := b.Stat(t.Context(), "re/x"); return err }},
		{"Load", func() error {
			rc, err := b.Load(t.Context(), "re/x", 3, 5)
			if err != nil {
				return err
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if err == nil && string(got) != string(p[3:8]) {
				err = fmt.Errorf("read %q", got)
			}
			return err
		}},
		{"List", func() error { return b.List(t.Context(), "re/", func(remote.FileInfo) error { return nil }) }},
		{"Remove", func() error { return b.Remove(t.Context(), "re/x") }},
	}
	for _, op := range ops {
		spoilt := expire()
		if err := op.fn(); err != nil {
			t.Errorf("%s with an expired token: %v", op.name, err)
		}
		if swift.Token(b) == spoilt {
			t.Errorf("%s did not log in again", op.name)
		}
	}
}

func testOpenErrors(t *testing.T, srv *swifttest.Server) {
	tests := []struct {
		name      string
		auth      swift.Auth
		want      error
		permanent bool
	}{
		{"wrong key", swift.Auth{URL: srv.AuthURL(), User: swifttest.User, Key: "wrong-key-value"}, swift.ErrAccessDenied, true},
		{"unknown user", swift.Auth{URL: srv.AuthURL(), User: "test:nobody", Key: "wrong-key-value"}, swift.ErrAccessDenied, true},
		{"no credentials", swift.Auth{}, swift.ErrNoCredentials, true},
		{"unreachable", swift.Auth{URL: "http://127.0.0.1:1/auth/v1.0", User: swifttest.User, Key: "wrong-key-value"}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := swift.Open(t.Context(), swift.Config{Container: "errors", Auth: tt.auth})
			if err == nil {
				t.Fatal("Open succeeded")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Open = %v; want %v", err, tt.want)
			}
			if remote.IsPermanent(err) != tt.permanent {
				t.Errorf("IsPermanent(%v) = %v; want %v", err, !tt.permanent, tt.permanent)
			}
			if strings.Contains(err.Error(), "wrong-key-value") {
				t.Errorf("error %q shows the key", err)
			}
		})
	}
}
