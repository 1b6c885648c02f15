package crash

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"

	"github.com/minio/minio-go/v7"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/integration/hsrun"
	"github.com/hindsight-backup/hindsight/remote/s3/s3test"
)

// crashPush kills pushes of new backups to a real MinIO, through a proxy
// that counts what it receives. After each kill the replica checks clean
// and the snapshots it gained restore from it alone; the rerun must send
// none of the objects that were complete on the remote at the kill.
func crashPush(h *harness) {
	t := h.t
	srv := s3test.Start(t)
	srv.MakeBucket(t, "crash")
	proxy := srv.StartProxy(t, nil)
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	initRepo(t, repo)
	h.hs = hsrun.New(t, hsBin, append(srv.Env(), "HINDSIGHT_PASSWORD="+chunkstore.TestPassword, "HINDSIGHT_REPOSITORY="+repo)...)
	h.hs.Must(t, "remote", "add", "offsite", "s3:http://"+proxy.Endpoint+"/crash/repo")
	replica := []string{"--repo", srv.URL("crash", "repo")} // reads bypass the proxy's counts
	tr := newTree(t, filepath.Join(dir, "src"), h.rng)
	backup := func() {
		saw := h.keep(tr)
		h.expected[parseBackup(t, h.hs.Must(t, "backup", "--json", tr.dir)).Snapshot] = saw
		tr.mutate(t)
	}
	// Kills are drawn from the upload phases; before them push only
	// compares listings.
	args := []string{"push", "offsite", "--verbose", "--json", "--jobs", "2", "--limit-upload", "3M"}
	const uploading = "phase=packs"
	backup()
	_, span := h.complete(uploading, args...)
	verified := map[string]bool{}
	restoreNew := func() {
		var ids []string
		for _, id := range h.snapshots(replica...) {
			if !verified[id] {
				verified[id] = true
				ids = append(ids, id)
			}
		}
		h.restore(ids, replica...)
	}
	for h.more() {
		backup()
		before := proxy.Received()
		p := h.hs.Start(t, args...)
		if !h.kill(p, uploading, span, nil) {
			h.ended(p)
			continue
		}
		complete := objects(h, srv)
		h.check("--read-data")
		h.check("--remote", "offsite")
		restoreNew()
		atKill := proxy.Received()

		r, took := h.complete(uploading, args...)
		span = took
		var sum struct {
			BytesSent int64 `json:"bytes_sent"`
		}
		if err := json.Unmarshal([]byte(r.Stdout), &sum); err != nil {
			t.Fatalf("push --json printed no summary (%v): %s", err, r)
		}
		after := proxy.Received()
		var durable, again int64
		for path, n := range atKill {
			if size, ok := complete[path]; ok && n > before[path] {
				durable += size
			}
			if _, ok := complete[path]; ok && after[path] > n {
				again += after[path] - n
				t.Errorf("kill %d: the rerun sent %s again, complete on the remote since the killed run", h.st.kills, path)
			}
		}
		h.st.durable += durable
		h.st.again += again
		t.Logf("kill %d: the killed push completed %d bytes of objects; the rerun sent %d", h.st.kills, durable, sum.BytesSent)
	}
	if got, want := len(h.snapshots(replica...)), len(h.snapshots()); got != want {
		t.Errorf("the replica holds %d snapshots, the repository %d", got, want)
	}
	h.check("--remote", "offsite", "--read-data")
}

// objects lists the objects on the remote by their path as the proxy
// counts them ("/bucket/key"), with their sizes; locks are left out, as
// every run writes its own.
func objects(h *harness, srv *s3test.Server) map[string]int64 {
	h.t.Helper()
	out := map[string]int64{}
	for o := range srv.Client(h.t).ListObjects(context.Background(), "crash", minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			h.t.Fatal(o.Err)
		}
		if !strings.Contains(o.Key, "/locks/") {
			out["/crash/"+o.Key] = o.Size
		}
	}
	return out
}
