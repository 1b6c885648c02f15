package s3

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hindsight-backup/hindsight/integration/treecmp"
	"github.com/hindsight-backup/hindsight/remote/s3/s3test"
)

// cli runs the hindsight binary with one environment.
type cli struct {
	t   *testing.T
	env []string
}

// start runs the binary; stdout and stderr are collected apart, so that
// --json output stays parseable whatever is logged.
func (c cli) start(args ...string) (cmd *exec.Cmd, stdout, stderr *bytes.Buffer) {
	cmd = exec.Command(hsBin, args...)
	cmd.Env = c.env
	stdout, stderr = &bytes.Buffer{}, &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	return cmd, stdout, stderr
}

func (c cli) must(args ...string) string {
	c.t.Helper()
	cmd, stdout, stderr := c.start(args...)
	if err := cmd.Wait(); err != nil {
		c.t.Fatalf("hindsight %s: %v\n%s%s", strings.Join(args, " "), err, stdout, stderr)
	}
	if stderr.Len() > 0 {
		c.t.Logf("hindsight %s: stderr:\n%s", strings.Join(args, " "), stderr)
	}
	return stdout.String()
}

// randomTree writes files of random bytes, enough for several packs;
// trees of different seeds share no content.
func randomTree(t *testing.T, dir string, files, size int, seed uint8) {
	rng := rand.NewChaCha8([32]byte{42, seed})
	p := make([]byte, size)
	for i := range files {
		rng.Read(p)
		if err := os.WriteFile(filepath.Join(dir, "f"+string(rune('a'+i))), p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPushSurvivesSIGKILL kills 'hindsight push' at random moments, at
// least ten times, then lets it finish. The remote must then be a complete
// repository (a clone of it checks clean and restores bit-exact), and the
// bytes uploaded again because of the kills must stay under one pack per
// kill (one job: at most the pack in flight is lost).
func TestPushSurvivesSIGKILL(t *testing.T) {
	srv := s3test.Start(t)
	srv.MakeBucket(t, "kill")
	proxy := srv.StartProxy(t, nil)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.Mkdir(src, 0o755)
	randomTree(t, src, 6, 24<<20, 0) // 144 MiB: three to five packs
	c := cli{t: t, env: append(os.Environ(), srv.Env()...)}
	c.env = append(c.env, "HINDSIGHT_PASSWORD=kill-test", "HINDSIGHT_REPOSITORY="+filepath.Join(dir, "repo"),
		"XDG_CONFIG_HOME="+filepath.Join(dir, "config"), "XDG_CACHE_HOME="+filepath.Join(dir, "cache"))
	c.must("init")
	c.must("backup", src)
	url := "s3:http://" + proxy.Endpoint + "/kill/repo"
	c.must("remote", "add", "offsite", url)

	// A push that finishes between kills (random delays sometimes outlast
	// the upload) gets more to do: another backup of new files.
	round := 0
	more := func() {
		round++
		extra := filepath.Join(src, fmt.Sprintf("more%d", round))
		os.Mkdir(extra, 0o755)
		randomTree(t, extra, 2, 24<<20, uint8(round))
		c.must("backup", src)
	}
	kills := killPushes(t, c, 10, more, "--limit-upload", "64M")
	if kills < 10 {
		t.Fatalf("only %d pushes were killed running", kills)
	}
	var final struct {
		Packs        int   `json:"packs"`
		PacksPresent int   `json:"packs_present"`
		PacksSent    int   `json:"packs_sent"`
		BytesSent    int64 `json:"bytes_sent"`
	}
	if err := json.Unmarshal([]byte(c.must("push", "offsite", "--json", "--jobs", "1")), &final); err != nil {
		t.Fatal(err)
	}
	t.Logf("after %d kills the last push found %d of %d packs uploaded and sent %d", kills, final.PacksPresent, final.Packs, final.PacksSent)

	var packBytes, received int64
	for path, n := range proxy.Received() {
		if strings.Contains(path, "/packs/") {
			received += n
		}
	}
	packBytes = dirSize(t, filepath.Join(dir, "repo", "packs"))
	extra := received - packBytes
	t.Logf("MEASURE packs %d bytes, received %d bytes: %d re-sent over %d kills (%.1f MiB a kill)",
		packBytes, received, extra, kills, float64(extra)/float64(kills)/(1<<20))
	if extra < 0 || extra > int64(kills)*64<<20 {
		t.Errorf("%d bytes re-sent over %d kills; want under one 64 MiB pack a kill", extra, kills)
	}

	cloneCheckRestore(t, c, dir, "s3:http://"+srv.Endpoint+"/kill/repo", src)
}

// cloneCheckRestore removes the local repository under dir, so that only
// the remote at url is left: it clones it, checks the clone and restores
// from it a tree that must equal src.
func cloneCheckRestore(t *testing.T, c cli, dir, url, src string) {
	if err := os.RemoveAll(filepath.Join(dir, "repo")); err != nil {
		t.Fatal(err)
	}
	clone := filepath.Join(dir, "clone")
	c.must("clone", url, clone)
	c.env = append(c.env, "HINDSIGHT_REPOSITORY="+clone)
	c.must("check", "--read-data")
	target := filepath.Join(dir, "restored")
	c.must("restore", "latest", "--target", target)
	diffs, err := treecmp.Compare(src, target, treecmp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diffs {
		t.Errorf("restored tree differs: %s", d)
	}
}

// killPushes runs 'push offsite --jobs 1 ARGS' again and again, killing
// each at a random moment, until want pushes died running (or three
// times as many tries), and returns how many did. When a push finishes
// before its kill, more (if not nil) gives the next one work.
func killPushes(t *testing.T, c cli, want int, more func(), args ...string) int {
	seed := uint64(time.Now().UnixNano())
	t.Logf("kill delays seeded with %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	kills := 0
	for attempt := 0; kills < want && attempt < 3*want; attempt++ {
		cmd, _, out := c.start(append([]string{"push", "offsite", "--jobs", "1"}, args...)...)
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("push exited on its own with %v\n%s", err, out)
			}
			if more != nil {
				more()
			}
		case <-time.After(time.Duration(50+rng.IntN(1500)) * time.Millisecond):
			cmd.Process.Signal(syscall.SIGKILL)
			if err := <-exited; err != nil {
				kills++
			}
		}
	}
	return kills
}

func dirSize(t *testing.T, dir string) int64 {
	var n int64
	err := filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestBackupDuringPush runs a backup while a slow push of an earlier one
// is under way: the backup must not wait for the push, and the next push
// must carry the new snapshot.
func TestBackupDuringPush(t *testing.T) {
	srv := s3test.Start(t)
	srv.MakeBucket(t, "during")
	dir := t.TempDir()
	big, small := filepath.Join(dir, "big"), filepath.Join(dir, "small")
	os.Mkdir(big, 0o755)
	os.Mkdir(small, 0o755)
	randomTree(t, big, 2, 16<<20, 0)
	if err := os.WriteFile(filepath.Join(small, "note"), []byte("written during the push"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := cli{t: t, env: append(os.Environ(), srv.Env()...)}
	c.env = append(c.env, "HINDSIGHT_PASSWORD=during", "HINDSIGHT_REPOSITORY="+filepath.Join(dir, "repo"),
		"XDG_CONFIG_HOME="+filepath.Join(dir, "config"), "XDG_CACHE_HOME="+filepath.Join(dir, "cache"))
	c.must("init")
	c.must("backup", big)
	c.must("remote", "add", "offsite", srv.URL("during", "repo"))

	push, _, pushErr := c.start("push", "offsite", "--limit-upload", "4M") // 32 MiB: about 8 s
	pushed := make(chan error, 1)
	go func() { pushed <- push.Wait() }()
	time.Sleep(time.Second)
	start := time.Now()
	c.must("backup", small)
	took := time.Since(start)
	select {
	case err := <-pushed:
		t.Fatalf("push ended (%v) before the backup could overlap it; stderr:\n%s", err, pushErr)
	default:
	}
	if took > 5*time.Second {
		t.Errorf("backup took %v while push ran; it must not wait for the push", took)
	}
	if err := <-pushed; err != nil {
		t.Fatalf("push: %v\n%s", err, pushErr)
	}
	var again struct {
		SnapshotsSent int `json:"snapshots_sent"`
	}
	if err := json.Unmarshal([]byte(c.must("push", "offsite", "--json")), &again); err != nil {
		t.Fatal(err)
	}
	if again.SnapshotsSent != 1 {
		t.Errorf("the push after the overlapping backup sent %d snapshots; want its 1", again.SnapshotsSent)
	}
}
