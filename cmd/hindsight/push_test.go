package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/remote/s3/s3test"
)

// minioRepo is a test environment with a repository holding one backup
// of src and a remote "offsite" on a fresh MinIO.
func minioRepo(t *testing.T) (e env, url, src string) {
	srv := s3test.Start(t)
	srv.MakeBucket(t, "backups")
	url = srv.URL("backups", "host1")
	e, src = repoWithRemote(t, srv.Env(), url)
	return e, url, src
}

// repoWithRemote is a test environment with the variables of serverEnv
// and a repository holding one backup of src and the remote "offsite" at
// url.
func repoWithRemote(t *testing.T, serverEnv []string, url string) (e env, src string) {
	e = testEnv(t)
	for _, kv := range serverEnv {
		k, v, _ := strings.Cut(kv, "=")
		e[k] = v
	}
	initRepo(t, e)
	src = sourceTree(t)
	must(t, e, noConfig(t, "backup", src)...)
	must(t, e, noConfig(t, "remote", "add", "offsite", url)...)
	return e, src
}

func TestPushToMinIO(t *testing.T) {
	e, url, _ := minioRepo(t)
	testPushAndRestore(t, e, url)
}

// testPushAndRestore pushes the repository of e to its remote "offsite"
// at url twice, then uses the remote alone: lists, checks and restores
// straight from url, clones it, and pushes the clone back.
func testPushAndRestore(t *testing.T, e env, url string) {
	if r := must(t, e, noConfig(t, "remote", "list")...); r.stdout != "offsite\t"+url+"\n" {
		t.Errorf("remote list = %q", r.stdout)
	}

	decode := func(out string) (p struct {
		Packs         int `json:"packs"`
		PacksPresent  int `json:"packs_present"`
		PacksSent     int `json:"packs_sent"`
		SnapshotsSent int `json:"snapshots_sent"`
	}) {
		if err := json.Unmarshal([]byte(out), &p); err != nil {
			t.Fatalf("push --json: %v: %q", err, out)
		}
		return p
	}
	first := decode(must(t, e, noConfig(t, "push", "offsite", "--json", "--jobs", "2", "--limit-upload", "64M")...).stdout)
	if first.Packs == 0 || first.PacksSent != first.Packs || first.SnapshotsSent != 1 {
		t.Errorf("first push %+v; want every pack and the snapshot sent", first)
	}
	src := sourceTree(t)
	must(t, e, noConfig(t, "backup", src)...)
	second := decode(must(t, e, noConfig(t, "push", "offsite", "--json")...).stdout)
	if second.PacksPresent != first.Packs || second.SnapshotsSent != 1 {
		t.Errorf("second push %+v; want the %d old packs found, the new snapshot sent", second, first.Packs)
	}

	var st struct {
		Packs            int      `json:"packs"`
		PacksOnRemote    int      `json:"packs_on_remote"`
		Snapshots        int      `json:"snapshots"`
		SnapshotsPending []string `json:"snapshots_pending"`
	}
	r := must(t, e, noConfig(t, "remote", "status", "offsite", "--json")...)
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatal(err)
	}
	if st.Packs != st.PacksOnRemote || st.Snapshots != 2 || len(st.SnapshotsPending) != 0 {
		t.Errorf("remote status after push = %+v; want nothing pending", st)
	}

	// The remote alone is the repository: wipe the local one, then list,
	// check and restore straight from the remote (on a machine with only
	// the URL, the credentials and the password, the index is built in
	// the cache), and clone it into a new directory.
	if err := os.RemoveAll(e["HINDSIGHT_REPOSITORY"]); err != nil {
		t.Fatal(err)
	}
	e["XDG_CACHE_HOME"] = t.TempDir()
	if r := must(t, e, noConfig(t, "snapshots", "--json", "--repo", url)...); strings.Count(r.stdout, `"id"`) != 2 {
		t.Errorf("snapshots --repo %s:\n%s", url, r.stdout)
	}
	must(t, e, noConfig(t, "check", "--read-data", "--repo", url)...)
	// The cached index of the remote is rebuilt from its segments.
	if r := must(t, e, noConfig(t, "index", "rebuild", "--repo", url)...); !strings.Contains(r.stdout+r.stderr, "segment") {
		t.Errorf("index rebuild --repo %s should say it read index segments:\n%s%s", url, r.stdout, r.stderr)
	}
	direct := filepath.Join(t.TempDir(), "direct")
	must(t, e, noConfig(t, "restore", "latest", "--target", direct, "--verify", "--repo", url)...)
	compareTrees(t, src, direct)
	if r := wantExit(t, exitUsage, e, noConfig(t, "init", "--repo", url)...); !strings.Contains(r.stderr, "hindsight push") {
		t.Errorf("init of a remote location should point to push: %q", r.stderr)
	}
	clone := filepath.Join(t.TempDir(), "clone")
	must(t, e, noConfig(t, "clone", url, clone)...)
	// Again into the same directory: an interrupted clone resumes so.
	must(t, e, noConfig(t, "clone", url, clone)...)
	occupied := t.TempDir()
	writeFile(t, filepath.Join(occupied, "precious"), "x")
	if r := wantExit(t, exitFailure, e, noConfig(t, "clone", url, occupied)...); !strings.Contains(r.stderr, "not empty") {
		t.Errorf("clone into an occupied directory: %q", r.stderr)
	}
	e["HINDSIGHT_REPOSITORY"] = clone
	target := filepath.Join(t.TempDir(), "restored")
	must(t, e, noConfig(t, "restore", "latest", "--target", target, "--verify")...)
	compareTrees(t, src, target)
	if r := must(t, e, noConfig(t, "snapshots", "--json")...); strings.Count(r.stdout, `"id"`) != 2 {
		t.Errorf("the clone lists snapshots:\n%s", r.stdout)
	}
	if r := must(t, e, noConfig(t, "remote", "list")...); r.stdout != "origin\t"+url+"\n" {
		t.Errorf("the clone's remotes = %q; want origin", r.stdout)
	}
	// Pushing back to the origin finds everything there.
	back := decode(must(t, e, noConfig(t, "push", "origin", "--json")...).stdout)
	if back.PacksSent != 0 || back.PacksPresent != back.Packs {
		t.Errorf("push of a fresh clone to its origin: %+v; want nothing sent", back)
	}
}

func TestRepairFromMinIO(t *testing.T) {
	e, _, src := minioRepo(t)
	testRepairFromRemote(t, e, src)
}

// testRepairFromRemote pushes the repository of e (a backup of src) to
// its remote "offsite", loses a pack, and heals from the remote.
func testRepairFromRemote(t *testing.T, e env, src string) {
	must(t, e, noConfig(t, "push", "offsite")...)
	packs, err := filepath.Glob(filepath.Join(e["HINDSIGHT_REPOSITORY"], "packs", "*", "*"))
	if err != nil || len(packs) == 0 {
		t.Fatalf("no packs found: %v", err)
	}
	if err := os.Remove(packs[0]); err != nil {
		t.Fatal(err)
	}
	r := wantExit(t, exitDamage, e, noConfig(t, "check")...)
	if hint := "remote offsite holds it: hindsight repair packs --from offsite"; !strings.Contains(r.stdout+r.stderr, hint) {
		t.Errorf("check should say where the lost pack can be fetched (%q):\n%s%s", hint, r.stdout, r.stderr)
	}
	if r := must(t, e, noConfig(t, "repair", "packs", "--from", "offsite", "--dry-run")...); !strings.Contains(r.stdout, "would fetch 1 ") {
		t.Errorf("repair packs --dry-run: %q", r.stdout)
	}
	wantExit(t, exitDamage, e, noConfig(t, "check")...)
	// The old spelling still works, and says what it now is.
	if r := must(t, e, noConfig(t, "repair", "--from", "offsite")...); !strings.Contains(r.stderr, "repair packs --from") {
		t.Errorf("repair --from should point to repair packs: %q", r.stderr)
	}
	must(t, e, noConfig(t, "check", "--read-data")...)
	target := filepath.Join(t.TempDir(), "restored")
	must(t, e, noConfig(t, "restore", "latest", "--target", target)...)
	compareTrees(t, src, target)
	wantExit(t, exitUsage, e, noConfig(t, "repair")...)
}

func TestPushErrors(t *testing.T) {
	e := testEnv(t)
	e["AWS_ACCESS_KEY_ID"] = "AKIAEXAMPLE"
	e["AWS_SECRET_ACCESS_KEY"] = "do-not-print-me"
	initRepo(t, e)
	tests := []struct {
		name string
		code int
		args []string
		want string
	}{
		{"unknown remote", exitUsage, []string{"push", "nowhere"}, "no such remote"},
		{"bad rate", exitUsage, []string{"push", "x", "--limit-upload", "fast"}, "--limit-upload"},
		{"no jobs", exitUsage, []string{"push", "x", "--jobs", "0"}, "--jobs"},
		{"bad URL", exitUsage, []string{"remote", "add", "x", "s3:ftp://h/b"}, "invalid S3 URL"},
		{"credentials in URL", exitUsage, []string{"remote", "add", "x", "s3:https://AKIA:do-not-print-me@h/b"}, "AWS_ACCESS_KEY_ID"},
		{"bad name", exitFailure, []string{"remote", "add", "a/b", "s3:https://h/bucket", "--no-check"}, "remote name"},
		{"unreachable", exitFailure, []string{"remote", "add", "x", "s3:http://127.0.0.1:1/bucket"}, "127.0.0.1:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := wantExit(t, tt.code, e, noConfig(t, tt.args...)...)
			if !strings.Contains(r.stderr, tt.want) {
				t.Errorf("stderr %q does not mention %q", r.stderr, tt.want)
			}
			if strings.Contains(r.stderr+r.stdout, "do-not-print-me") {
				t.Errorf("output shows the secret: %q", r.stderr)
			}
		})
	}
}

func TestParseRate(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  bool
	}{
		{"", 0, false},
		{"0", 0, false},
		{"1000", 1000, false},
		{"800K", 800 << 10, false},
		{"8M", 8 << 20, false},
		{"8MiB", 8 << 20, false},
		{"8mb", 8 << 20, false},
		{"1.5G", 3 << 29, false},
		{"fast", 0, true},
		{"-1M", 0, true},
		{"M", 0, true},
	}
	for _, tt := range tests {
		got, err := parseRate(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("parseRate(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

// TestPushRemoteFaults: what a user gets wrong about a remote is reported
// at once, clearly, and never with the secret key.
func TestPushRemoteFaults(t *testing.T) {
	e, url, _ := minioRepo(t)
	secret := e["AWS_SECRET_ACCESS_KEY"]
	if r := must(t, e, noConfig(t, "push", "offsite", "-v")...); strings.Contains(r.stderr+r.stdout, secret) {
		t.Errorf("push -v shows the secret key:\n%s", r.stderr)
	}
	must(t, e, noConfig(t, "remote", "add", "nobucket", strings.Replace(url, "/backups/", "/nosuchbucket/", 1), "--no-check")...)
	tests := []struct {
		name   string
		remote string
		secret string
		want   string
	}{
		{"wrong secret", "offsite", "wrong-" + secret, "access denied"},
		{"missing bucket", "nobucket", secret, "bucket does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e["AWS_SECRET_ACCESS_KEY"] = tt.secret
			r := wantExit(t, exitFailure, e, noConfig(t, "push", tt.remote)...)
			if !strings.Contains(r.stderr, tt.want) {
				t.Errorf("stderr %q does not say %q", r.stderr, tt.want)
			}
			if strings.Contains(r.stderr, secret) {
				t.Errorf("stderr shows the secret: %q", r.stderr)
			}
		})
	}
}

// A remote can be a plain directory (a USB disk): the copy is a
// repository of its own.
func TestPushToDirectory(t *testing.T) {
	e := testEnv(t)
	initRepo(t, e)
	src := sourceTree(t)
	must(t, e, noConfig(t, "backup", src)...)
	usb := t.TempDir()
	must(t, e, noConfig(t, "remote", "add", "usb", usb)...)
	must(t, e, noConfig(t, "push", "usb")...)
	e["HINDSIGHT_REPOSITORY"] = usb
	target := filepath.Join(t.TempDir(), "restored")
	must(t, e, noConfig(t, "restore", "latest", "--target", target, "--verify")...)
	compareTrees(t, src, target)
	if r := wantExit(t, exitFailure, e, noConfig(t, "remote", "add", "gone", filepath.Join(usb, "missing"))...); !strings.Contains(r.stderr, "does not exist") {
		t.Errorf("adding a missing directory: %q", r.stderr)
	}
}

func TestPushProgress(t *testing.T) {
	tests := []struct {
		p    chunkstore.PushProgress
		want string
	}{
		{chunkstore.PushProgress{Phase: chunkstore.PushChecking, Packs: 10, PacksChecked: 4, PacksToSend: 1},
			"checking the remote: 4 of 10 packs, 1 missing"},
		{chunkstore.PushProgress{Phase: chunkstore.PushPacks, PacksToSend: 4, PacksSent: 1,
			BytesToSend: 4 << 20, BytesSent: 1 << 20, SendElapsed: time.Second},
			"[=====>              ]  25% packs 1/4  1.0 MiB/4.0 MiB  1.0 MiB/s  ETA 3s"},
		{chunkstore.PushProgress{Phase: chunkstore.PushPacks, PacksToSend: 4}, "packs 0/4  0 B/0 B  0.0 MiB/s"},
		{chunkstore.PushProgress{Phase: chunkstore.PushSnapshots}, "uploading snapshots"},
	}
	for _, tt := range tests {
		if got := pushProgress(tt.p).text(time.Minute, 200); got != tt.want {
			t.Errorf("pushProgress(%+v) = %q; want %q", tt.p, got, tt.want)
		}
	}
}
