package s3

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hindsight-backup/hindsight/remote/swift/swifttest"
)

// TestPushToSwiftSurvivesSIGKILL is TestPushSurvivesSIGKILL's promise
// kept against OpenStack Swift, through its native API and through
// s3api: pushes killed at random moments, then one that finishes, leave
// a remote that clones, checks clean and restores bit-exact.
func TestPushToSwiftSurvivesSIGKILL(t *testing.T) {
	srv := swifttest.Start(t)
	srv.CreateContainer(t, "s3api")
	remotes := []struct {
		name, url string
		env       []string
	}{
		{"native", "swift:kill/repo", srv.Env()},
		{"s3api", "s3:http://" + srv.Endpoint + "/s3api/repo",
			[]string{"AWS_ACCESS_KEY_ID=" + swifttest.User, "AWS_SECRET_ACCESS_KEY=" + swifttest.Key, "AWS_REGION=us-east-1"}},
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.Mkdir(src, 0o755)
	randomTree(t, src, 4, 24<<20, 0) // 96 MiB: two or three packs
	for _, r := range remotes {
		t.Run(r.name, func(t *testing.T) {
			dir := t.TempDir()
			c := cli{t: t, env: append(append(os.Environ(), r.env...), "HINDSIGHT_PASSWORD=kill-test",
				"HINDSIGHT_REPOSITORY="+filepath.Join(dir, "repo"),
				"XDG_CONFIG_HOME="+filepath.Join(dir, "config"), "XDG_CACHE_HOME="+filepath.Join(dir, "cache"))}
			c.must("init")
			c.must("backup", src)
			c.must("remote", "add", "offsite", r.url)
			kills := killPushes(t, c, 5, nil, "--limit-upload", "48M")
			if kills == 0 {
				t.Fatal("no push was killed running")
			}
			start := time.Now()
			var final struct {
				Packs        int   `json:"packs"`
				PacksPresent int   `json:"packs_present"`
				BytesSent    int64 `json:"bytes_sent"`
			}
			if err := json.Unmarshal([]byte(c.must("push", "offsite", "--json", "--jobs", "2")), &final); err != nil {
				t.Fatal(err)
			}
			took := time.Since(start)
			t.Logf("MEASURE after %d kills the last push found %d of %d packs and sent %d bytes in %v (%.0f MiB/s)",
				kills, final.PacksPresent, final.Packs, final.BytesSent, took.Round(time.Millisecond),
				float64(final.BytesSent)/(1<<20)/took.Seconds())

			cloneCheckRestore(t, c, dir, r.url, src)
		})
	}
}
