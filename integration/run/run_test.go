package run

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hindsight-backup/hindsight/integration/testtree"
	"github.com/hindsight-backup/hindsight/remote/s3/s3test"
)

const password = "run-test-password"

// host is one test's machine: an emulated volume group, a repository,
// a MinIO bucket, and the environment a systemd unit would give hindsight.
type host struct {
	t   *testing.T
	dir string
	env []string
}

func requireTools(t *testing.T) {
	t.Helper()
	testtree.Require(t, os.Geteuid() == 0, "root (loop devices, mount)")
	for _, tool := range []string{"losetup", "mkfs.ext4", "blkid", "mount", "findmnt"} {
		_, err := exec.LookPath(tool)
		testtree.Require(t, err == nil, "%s on PATH", tool)
	}
	_, err := os.Stat("/dev/loop-control")
	testtree.Require(t, err == nil, "/dev/loop-control")
}

func newHost(t *testing.T, extraEnv []string) *host {
	t.Helper()
	dir := t.TempDir()
	h := &host{t: t, dir: dir}
	h.env = append(os.Environ(), "PATH="+binDir+":"+os.Getenv("PATH"), "FAKELVM_DIR="+filepath.Join(dir, "fakelvm"),
		"HINDSIGHT_PASSWORD="+password, "HINDSIGHT_CONFIG="+filepath.Join(dir, "hindsight.toml"),
		"XDG_CONFIG_HOME="+filepath.Join(dir, "xdg"), "XDG_CACHE_HOME="+filepath.Join(dir, "cache"))
	h.env = append(h.env, extraEnv...)
	t.Cleanup(func() {
		out, _ := exec.Command("findmnt", "-rn", "-o", "TARGET").Output()
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		for i := len(lines) - 1; i >= 0; i-- {
			if strings.HasPrefix(lines[i], dir) {
				exec.Command("umount", "-l", lines[i]).Run()
			}
		}
		if r := h.run("fakelvm", "teardown"); r.code != 0 {
			t.Errorf("teardown: %s", r)
		}
	})
	return h
}

type result struct {
	args           []string
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("%s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

func (h *host) run(name string, args ...string) result {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	path := name
	if _, err := os.Stat(filepath.Join(binDir, name)); err == nil {
		path = filepath.Join(binDir, name)
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = h.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{args: append([]string{name}, args...), stdout: stdout.String(), stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		h.t.Fatalf("%s: %v", name, err)
	}
	return r
}

func (h *host) must(name string, args ...string) result {
	h.t.Helper()
	r := h.run(name, args...)
	if r.code != 0 {
		h.t.Fatalf("expected exit 0 from %s", r)
	}
	return r
}

func (h *host) writeConfig(text string) {
	h.t.Helper()
	text = strings.ReplaceAll(text, "DIR", h.dir)
	if err := os.WriteFile(filepath.Join(h.dir, "hindsight.toml"), []byte(text), 0o600); err != nil {
		h.t.Fatal(err)
	}
}

// metrics reads the metrics file into sample → value.
func (h *host) metrics() map[string]string {
	h.t.Helper()
	b, err := os.ReadFile(filepath.Join(h.dir, "metrics", "hindsight.prom"))
	if err != nil {
		h.t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, " ")
		if !ok {
			h.t.Fatalf("metrics line %q", line)
		}
		out[name] = value
	}
	return out
}

const config = `repository = "DIR/repo"
state_dir = "DIR/state"
metrics_file = "DIR/metrics/hindsight.prom"

[lvm]
state_dir = "DIR/lvm-state"

[remotes.minio]
url = "URL"

[jobs.nightly]
paths = ["DIR/src"SRC2]
lvm_volumes = ["vg0/web"LV2]
push = ["minio"]
after = ["echo $HINDSIGHT_JOB_STATUS > DIR/after-status"]

[jobs.nightly.backup]
tag = ["nightly"]
`

// TestRunHost runs the jobs of a host with a directory, a volume of an
// emulated volume group and a MinIO remote. A missing directory and a
// missing volume fail their steps but stop neither the other backups nor
// the push; the metrics file says so, and says all is well once the
// configuration is fixed.
func TestRunHost(t *testing.T) {
	requireTools(t)
	srv := s3test.Start(t)
	srv.MakeBucket(t, "run")
	h := newHost(t, srv.Env())
	url := "s3:http://" + srv.Endpoint + "/run/host1"

	h.must("fakelvm", "vgcreate", "vg0", fmt.Sprint(512<<20))
	h.must("lvcreate", "-y", "-n", "web", "-L", fmt.Sprintf("%db", 64<<20), "vg0")
	h.must("mkfs.ext4", "-q", lvPath(t, h, "web"))
	web := filepath.Join(h.dir, "web")
	os.Mkdir(web, 0o755)
	h.must("mount", lvPath(t, h, "web"), web)
	for i := range 5 {
		os.WriteFile(filepath.Join(web, fmt.Sprintf("page%d.html", i)), bytes.Repeat([]byte{byte(i)}, 100_000), 0o644)
	}
	src := filepath.Join(h.dir, "src")
	os.MkdirAll(filepath.Join(src, "etc"), 0o755)
	for i := range 3 {
		os.WriteFile(filepath.Join(src, "etc", fmt.Sprintf("f%d", i)), []byte(strings.Repeat("config ", i+1)), 0o644)
	}
	broken := strings.NewReplacer("URL", url, "SRC2", `, "DIR/gone"`, "LV2", `, "vg0/missing"`).Replace(config)
	h.writeConfig(broken)
	os.Mkdir(filepath.Join(h.dir, "metrics"), 0o755) // node_exporter's textfile directory
	h.must("hindsight", "init")
	h.must("hindsight", "config", "check")
	r := h.run("hindsight", "run")
	if r.code != 1 {
		t.Fatalf("run with two failing sources should exit 1: %s", r)
	}
	for _, want := range []string{
		"ok          nightly: backup " + src + ": snapshot",
		"failed      nightly: backup " + h.dir + "/gone: ",
		"ok          nightly: lvm vg0/web: snapshot",
		"failed      nightly: lvm vg0/missing: ",
		"ok          nightly: push minio: ",
		"run: 1 jobs, 6 steps: 4 ok, 0 incomplete, 2 failed",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("run output lacks %q:\n%s", want, r)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(h.dir, "after-status")); string(b) != "failure\n" {
		t.Errorf("after hook saw status %q", b)
	}
	if out := h.must("lvs", "--reportformat", "json", "vg0").stdout; strings.Contains(out, "hindsight-") {
		t.Errorf("a snapshot was left behind:\n%s", out)
	}

	// The remote is a complete repository holding both snapshots.
	r = h.must("hindsight", "snapshots", "--json", "--repo", url)
	for _, want := range []string{`"source":"` + src + `"`, `"source":"lvm:vg0/web"`} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("remote snapshots lack %s:\n%s", want, r.stdout)
		}
	}
	m := h.metrics()
	for name, want := range map[string]string{
		`hindsight_job_success{job="nightly"}`:                        "0",
		`hindsight_job_errors{job="nightly"}`:                         "2",
		`hindsight_job_files{job="nightly"}`:                          "8",
		`hindsight_job_last_success_timestamp_seconds{job="nightly"}`: "0",
		`hindsight_remote_pending_bytes{remote="minio"}`:              "0",
		`hindsight_repository_snapshots`:                              "2",
	} {
		if m[name] != want {
			t.Errorf("metric %s = %q, want %q", name, m[name], want)
		}
	}
	if m[`hindsight_job_pushed_bytes{job="nightly"}`] == "0" || m[`hindsight_repository_size_bytes`] == "0" {
		t.Errorf("nothing pushed or stored, say the metrics: %v", m)
	}
	ents, _ := os.ReadDir(filepath.Join(h.dir, "metrics"))
	if len(ents) != 1 {
		t.Errorf("metrics directory holds %d files, want only the metrics file", len(ents))
	}

	h.writeConfig(strings.NewReplacer("URL", url, "SRC2", "", "LV2", "").Replace(config))
	start := time.Now()
	r = h.must("hindsight", "run", "--json")
	var summary struct {
		Summary  bool           `json:"summary"`
		Steps    map[string]int `json:"steps"`
		ExitCode int            `json:"exit_code"`
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &summary); err != nil || !summary.Summary || summary.Steps["ok"] != 4 {
		t.Errorf("run --json summary: %v\n%s", err, r.stdout)
	}
	m = h.metrics()
	if m[`hindsight_job_success{job="nightly"}`] != "1" || m[`hindsight_job_errors{job="nightly"}`] != "0" {
		t.Errorf("metrics after a clean run: %v", m)
	}
	var last float64
	fmt.Sscan(m[`hindsight_job_last_success_timestamp_seconds{job="nightly"}`], &last)
	if last < float64(start.Unix()) {
		t.Errorf("last success %v is before the run began (%v)", last, start.Unix())
	}
}

// lvPath is the device of vg0/name as the emulation reports it.
func lvPath(t *testing.T, h *host, name string) string {
	t.Helper()
	var rep struct {
		Report []struct {
			LV []struct {
				Name string `json:"lv_name"`
				Path string `json:"lv_path"`
			} `json:"lv"`
		} `json:"report"`
	}
	if err := json.Unmarshal([]byte(h.must("lvs", "--reportformat", "json", "vg0").stdout), &rep); err != nil {
		t.Fatal(err)
	}
	for _, lv := range rep.Report[0].LV {
		if lv.Name == name {
			return lv.Path
		}
	}
	t.Fatalf("no volume %s", name)
	return ""
}
