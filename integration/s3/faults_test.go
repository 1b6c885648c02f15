package s3

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/remote"
	"github.com/hindsight-backup/hindsight/remote/remotetest/faultproxy"
	"github.com/hindsight-backup/hindsight/remote/s3"
	"github.com/hindsight-backup/hindsight/remote/s3/s3test"
)

// repoWithPacks makes a local repository of n random blobs in 1 MiB packs,
// with one snapshot.
func repoWithPacks(t *testing.T, n int) (*chunkstore.Repository, map[blob.ID][]byte) {
	r, _ := chunkstore.TestRepository(t, chunkstore.InitOptions{PackSize: 1 << 20, Compression: "none"})
	blobs := map[blob.ID][]byte{}
	rng := rand.NewChaCha8([32]byte{7})
	for range n {
		p := make([]byte, 200<<10)
		rng.Read(p)
		id := r.BlobID(p)
		if _, err := r.SaveBlob(t.Context(), blob.Data, id, p); err != nil {
			t.Fatal(err)
		}
		blobs[id] = p
	}
	snap, _ := chunkstore.NewSnapshotID()
	if err := r.SaveSnapshot(t.Context(), snap, []byte("faults")); err != nil {
		t.Fatal(err)
	}
	return r, blobs
}

func fastRetry() *remote.RetryOptions {
	return &remote.RetryOptions{MaxAttempts: 40, InitialDelay: 5 * time.Millisecond, MaxDelay: 50 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler)}
}

// openS3Repo opens the repository under bucket/prefix at endpoint, its
// index in memory, as a machine with nothing but the URL and password.
func openS3Repo(t *testing.T, srv *s3test.Server, endpoint, bucket, prefix string) *chunkstore.Repository {
	t.Helper()
	be, err := s3.New(s3.Config{Endpoint: endpoint, Bucket: bucket, Prefix: prefix, Region: "us-east-1",
		Lookup: s3.LookupPath, Credentials: srv.Credentials})
	if err != nil {
		t.Fatal(err)
	}
	r, err := chunkstore.Open(t.Context(), remote.Wrap(be, remote.WrapOptions{Retry: fastRetry()}),
		chunkstore.Options{Password: []byte(chunkstore.TestPassword), FS: vfs.NewMem(), IndexDir: "/index", ScratchDir: "/tmp"})
	if err != nil {
		t.Fatalf("opening the repository on S3: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// TestPushThroughFaults pushes through a proxy that answers one object
// request in ten with a 503, drops one connection in ten mid-request,
// truncates one response in ten and delays one in ten; then reads every
// blob back through the same proxy. The retry wrapper must make both
// succeed, and nothing may be lost or damaged.
func TestPushThroughFaults(t *testing.T) {
	srv := s3test.Start(t)
	srv.MakeBucket(t, "faults")
	r, blobs := repoWithPacks(t, 40)
	rng := rand.New(rand.NewPCG(1, 2))
	faults := []faultproxy.Fault{faultproxy.Busy, faultproxy.Reset, faultproxy.Truncate, faultproxy.Slow}
	proxy := srv.StartProxy(t, func(req *http.Request) faultproxy.Fault {
		if !s3test.IsObjectRequest(req) {
			return faultproxy.Pass
		}
		if i := rng.IntN(10); i < len(faults) {
			return faults[i]
		}
		return faultproxy.Pass
	})
	be, err := s3.New(s3.Config{Endpoint: proxy.Endpoint, Bucket: "faults", Prefix: "repo", Region: "us-east-1",
		Lookup: s3.LookupPath, Credentials: srv.Credentials})
	if err != nil {
		t.Fatal(err)
	}
	dst := remote.Wrap(be, remote.WrapOptions{Retry: fastRetry(), Connections: 4})
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	st, err := r.Push(ctx, dst, chunkstore.PushOptions{Remote: "faulty", Jobs: 4})
	if err != nil {
		t.Fatalf("Push through faults: %v (injected %v)", err, proxy.Injected())
	}
	if st.PacksSent == 0 || st.PacksSent != st.Packs || st.SnapshotsSent != 1 {
		t.Errorf("push %+v; want every pack and the snapshot sent", st)
	}
	// Straight from MinIO, and then through the faults again.
	for _, endpoint := range []string{srv.Endpoint, proxy.Endpoint} {
		t.Run(fmt.Sprintf("read back via %s", endpoint), func(t *testing.T) {
			c := openS3Repo(t, srv, endpoint, "faults", "repo")
			for id, want := range blobs {
				got, err := c.LoadBlob(ctx, blob.Data, id, nil)
				if err != nil {
					t.Fatalf("LoadBlob %s: %v", id.Short(), err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("blob %s differs", id.Short())
				}
			}
		})
	}
	injected := proxy.Injected()
	for _, f := range faults {
		if injected[f] == 0 {
			t.Errorf("no %s fault was injected (%v): the test proved less than it claims", f, injected)
		}
	}
	t.Logf("faults injected: %v", injected)
}

// TestReadsFetchOnlyWhatIsNeeded opens a pushed repository from S3 alone
// and reads one blob: opening must read the index segments and no pack,
// and the blob must cost a ranged GET of its own bytes, not its pack.
func TestReadsFetchOnlyWhatIsNeeded(t *testing.T) {
	srv := s3test.Start(t)
	srv.MakeBucket(t, "ranged")
	r, blobs := repoWithPacks(t, 20)
	proxy := srv.StartProxy(t, nil)
	be, err := s3.New(s3.Config{Endpoint: proxy.Endpoint, Bucket: "ranged", Prefix: "repo", Region: "us-east-1",
		Lookup: s3.LookupPath, Credentials: srv.Credentials})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Push(t.Context(), be, chunkstore.PushOptions{Remote: "s3"}); err != nil {
		t.Fatal(err)
	}
	c := openS3Repo(t, srv, proxy.Endpoint, "ranged", "repo")
	if n := packBytes(proxy.Sent()); n != 0 {
		t.Errorf("opening the repository downloaded %d bytes of packs; want only index segments", n)
	}
	for id, want := range blobs {
		got, err := c.LoadBlob(t.Context(), blob.Data, id, nil)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("LoadBlob %s: %v", id.Short(), err)
		}
		loc, _, _ := c.Index().Lookup(blob.Data, id)
		// The proxy counts a buffer after the client may already have
		// read it: give its copy loop a moment to catch up.
		n := packBytes(proxy.Sent())
		for deadline := time.Now().Add(2 * time.Second); n < int64(loc.Length) && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
			n = packBytes(proxy.Sent())
		}
		if n != int64(loc.Length) {
			t.Errorf("reading one blob of %d stored bytes downloaded %d bytes of packs", loc.Length, n)
		}
		break
	}
}

func packBytes(sent map[string]int64) int64 {
	var n int64
	for path, b := range sent {
		if strings.Contains(path, "/packs/") {
			n += b
		}
	}
	return n
}
