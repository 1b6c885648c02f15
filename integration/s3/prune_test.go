package s3

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/hindsight-backup/hindsight/integration/treecmp"
	"github.com/hindsight-backup/hindsight/remote/s3/s3test"
)

// TestPruneRemote forgets a snapshot on both sides and prunes the local
// repository and then the MinIO remote, while a push of a new snapshot
// runs. The remote alone must then check clean and restore the snapshot
// that is left, and no longer hold what only the forgotten one needed.
func TestPruneRemote(t *testing.T) {
	srv := s3test.Start(t)
	srv.MakeBucket(t, "prune")
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.Mkdir(src, 0o755)
	writeTree(t, src, 1, 4)
	c := cli{t: t, env: append(os.Environ(), srv.Env()...)}
	c.env = append(c.env, "HINDSIGHT_PASSWORD=prune", "HINDSIGHT_REPOSITORY="+filepath.Join(dir, "repo"),
		"XDG_CONFIG_HOME="+filepath.Join(dir, "config"), "XDG_CACHE_HOME="+filepath.Join(dir, "cache"))
	c.must("init")
	first := snapshotID(t, c.must("backup", "--json", src))
	writeTree(t, src, 2, 4) // every file new
	c.must("backup", src)
	c.must("remote", "add", "offsite", srv.URL("prune", "repo"))
	c.must("push", "offsite")

	if err := os.Remove(filepath.Join(dir, "repo", "snapshots", first)); err != nil {
		t.Fatal(err)
	}
	err := srv.Client(t).RemoveObject(context.Background(), "prune", "repo/snapshots/"+first, minio.RemoveObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c.must("prune")
	writeTree(t, src, 3, 1) // a third snapshot, pushed while the remote is pruned
	c.must("backup", src)
	push, _, pushErr := c.start("push", "offsite")
	var st struct {
		Deleted int `json:"deleted_packs"`
		Waiting int `json:"waiting_packs"`
	}
	if err := json.Unmarshal([]byte(c.must("prune", "--remote", "offsite", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	if err := push.Wait(); err != nil {
		t.Fatalf("push beside prune: %v\n%s", err, pushErr)
	}
	if st.Deleted+st.Waiting == 0 {
		t.Fatalf("prune --remote deleted nothing and waits for nothing: %+v", st)
	}
	c.must("prune", "--remote", "offsite") // finishes what waited for the push
	if err := json.Unmarshal([]byte(c.must("prune", "--remote", "offsite", "--json", "--dry-run")), &st); err != nil || st.Deleted+st.Waiting != 0 {
		t.Fatalf("work left on the remote: %+v %v", st, err)
	}

	url := srv.URL("prune", "repo")
	c.must("check", "--repo", url, "--read-data")
	target := filepath.Join(dir, "restored")
	c.must("restore", "--repo", url, "latest", "--target", target)
	diffs, err := treecmp.Compare(src, target, treecmp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diffs {
		t.Errorf("restored tree differs: %s", d)
	}
	// The remote holds about what the local repository holds: the first
	// snapshot's packs are gone from both.
	remote := int64(0)
	for obj := range srv.Client(t).ListObjects(context.Background(), "prune", minio.ListObjectsOptions{Prefix: "repo/packs/", Recursive: true}) {
		remote += obj.Size
	}
	if local := dirSize(t, filepath.Join(dir, "repo", "packs")); remote > local+local/10 {
		t.Errorf("remote packs take %d bytes, the local ones %d", remote, local)
	}
}

// writeTree fills dir with n files of 3 MiB whose content depends on seed.
func writeTree(t *testing.T, dir string, seed uint64, n int) {
	rng := rand.NewChaCha8([32]byte{byte(seed)})
	p := make([]byte, 3<<20)
	for i := range n {
		rng.Read(p)
		if err := os.WriteFile(filepath.Join(dir, "f"+string(rune('a'+i))), p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func snapshotID(t *testing.T, out string) string {
	var b struct {
		ID string `json:"snapshot_id"`
	}
	if err := json.Unmarshal([]byte(out), &b); err != nil || b.ID == "" {
		t.Fatalf("backup --json: %v: %s", err, out)
	}
	return b.ID
}
