package security

import (
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"golang.org/x/sys/unix"

	"github.com/hindsight-backup/hindsight/integration/hsrun"
	"github.com/hindsight-backup/hindsight/remote/s3/s3test"
)

// secretTree writes a tree whose every name, link target, xattr and
// content holds a marker, and returns the markers. Content comes in the
// forms the pipeline treats differently: text zstd compresses, random
// bytes it leaves alone, a file smaller than any chunk.
func secretTree(t *testing.T, dir string) []string {
	t.Helper()
	var secrets []string
	add := func(kind string) string {
		m := marker(kind)
		secrets = append(secrets, m)
		return m
	}
	sub := filepath.Join(dir, add("dir-name"))
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	text := filepath.Join(dir, add("file-name")+".txt")
	write(t, text, []byte(strings.Repeat(add("text")+" is what this file says.\n", 20000)))
	write(t, filepath.Join(sub, add("inner-name")), []byte(add("small")))
	random := make([]byte, 3<<20)
	rng := rand.NewChaCha8([32]byte{9})
	rng.Read(random)
	write(t, filepath.Join(sub, "random.bin"), random)
	// A slice from the middle: the first bytes of a chunk could be
	// anywhere, these must be nowhere.
	secrets = append(secrets, string(random[1<<20:1<<20+64]))
	if err := os.Symlink(add("link-target"), filepath.Join(dir, add("link-name"))); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(text, "user."+add("xattr-name"), []byte(add("xattr-value")), 0); err != nil {
		t.Fatal(err)
	}
	return secrets
}

func write(t testing.TB, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRemoteSeesOnlyCiphertext backs up a tree full of markers (names,
// contents, link targets, xattrs, the snapshot's host and tag, the source
// path) and pushes it to a real MinIO. No object in the bucket, and no
// file of the repository outside its local index, may hold any marker, the
// password or the S3 secret key; nor may the commands' -v output hold the
// password or the secret key.
//
// The index (REPO/index, or the cache directory of a remote repository)
// is the exception SECURITY.md documents: a local cache that holds paths
// and snapshot records in the clear, never pushed, readable by its owner
// only. The test holds it to that.
func TestRemoteSeesOnlyCiphertext(t *testing.T) {
	srv := s3test.Start(t)
	srv.MakeBucket(t, "sec")
	tmp := t.TempDir()
	src := filepath.Join(tmp, marker("source"))
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	secrets := secretTree(t, src)
	secrets = append(secrets, filepath.Base(src))
	password, host, tag := marker("password"), marker("host"), marker("tag")
	secrets = append(secrets, password, host, tag, srv.Credentials.SecretAccessKey)
	repo := filepath.Join(tmp, "repo")
	hs := hsrun.New(t, bin, "HINDSIGHT_PASSWORD="+password, "HINDSIGHT_REPOSITORY="+repo).With(srv.Env()...)
	// With -v, and no secret of the test's may be in what they print
	// either; the S3 secret key, in particular, is in the environment.
	var found []string
	for _, args := range [][]string{{"init"}, {"backup", "--host", host, "--tag", tag, src},
		{"remote", "add", "offsite", srv.URL("sec", "repo")}, {"push", "offsite"}} {
		r := hs.Must(t, append([]string{"-v"}, args...)...)
		found = append(found, leaks("the output of hindsight "+args[0], []byte(r.Stdout+r.Stderr),
			[]string{password, srv.Credentials.SecretAccessKey})...)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := srv.Client(t)
	kinds := map[string]int{}
	for oi := range c.ListObjectsIter(ctx, "sec", minio.ListObjectsOptions{Recursive: true, WithMetadata: true}) {
		if oi.Err != nil {
			t.Fatal(oi.Err)
		}
		kinds[strings.SplitN(strings.TrimPrefix(oi.Key, "repo/"), "/", 2)[0]]++
		found = append(found, leaks("the object name "+oi.Key, []byte(oi.Key), secrets)...)
		for k, v := range oi.UserMetadata {
			found = append(found, leaks("metadata of "+oi.Key, []byte(k+": "+v), secrets)...)
		}
		obj, err := c.GetObject(ctx, "sec", oi.Key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(obj)
		obj.Close()
		if err != nil {
			t.Fatalf("read %s: %v", oi.Key, err)
		}
		found = append(found, leaks("object "+oi.Key, b, secrets)...)
	}
	for _, k := range []string{"config", "keys", "packs", "index-segments", "snapshots"} {
		if kinds[k] == 0 {
			t.Errorf("the bucket has no %s object (it has %v): the push did not happen as the test assumes", k, kinds)
		}
	}

	isIndex := func(rel string) bool { return rel == "index" }
	local, files := leaksInDir(t, repo, secrets, isIndex)
	found = append(found, local...)
	if files < 5 {
		t.Errorf("only %d files in the repository: the test looked at nothing", files)
	}
	for _, f := range found {
		t.Error(f)
	}

	// The index holds names in the clear by design; only its owner may
	// read it.
	fi, err := os.Stat(filepath.Join(repo, "index"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("the index directory has mode %v: others may read the paths it holds", fi.Mode().Perm())
	}
}
