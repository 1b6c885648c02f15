package run

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hindsight-backup/hindsight/integration/lvm/lvmenv"
	"github.com/hindsight-backup/hindsight/remote/s3/s3test"
)

const password = "run-test-password"

// host is one test's machine: an emulated volume group, a repository,
// a MinIO bucket, and the environment a systemd unit would give hindsight.
type host struct {
	*lvmenv.Env
	dir string // DIR in the configuration: the repository's parent
}

func newHost(t *testing.T, extraEnv []string) *host {
	t.Helper()
	e := lvmenv.New(t, binDir, hsBin, password, 512<<20)
	h := &host{Env: e, dir: filepath.Dir(e.Repo)}
	e.Extra = append([]string{"HINDSIGHT_CONFIG=" + filepath.Join(h.dir, "hindsight.toml"),
		"XDG_CACHE_HOME=" + filepath.Join(h.dir, "cache")}, extraEnv...)
	return h
}

func (h *host) writeConfig(text string) {
	h.T.Helper()
	text = strings.ReplaceAll(text, "DIR", h.dir)
	if err := os.WriteFile(filepath.Join(h.dir, "hindsight.toml"), []byte(text), 0o600); err != nil {
		h.T.Fatal(err)
	}
}

// metrics reads the metrics file into sample → value.
func (h *host) metrics() map[string]string {
	h.T.Helper()
	b, err := os.ReadFile(filepath.Join(h.dir, "metrics", "hindsight.prom"))
	if err != nil {
		h.T.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, " ")
		if !ok {
			h.T.Fatalf("metrics line %q", line)
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
	srv := s3test.Start(t)
	srv.MakeBucket(t, "run")
	h := newHost(t, srv.Env())
	url := "s3:http://" + srv.Endpoint + "/run/host1"

	h.Must("lvcreate", "-y", "-n", "web", "-L", fmt.Sprintf("%db", 64<<20), "vg0")
	h.Must("mkfs.ext4", "-q", lvPath(t, h, "web"))
	web := filepath.Join(h.dir, "web")
	os.Mkdir(web, 0o755)
	h.Must("mount", lvPath(t, h, "web"), web)
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
	h.Must("hindsight", "init")
	h.Must("hindsight", "config", "check")
	r := h.Run("hindsight", "run")
	if r.Code != 1 {
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
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("run output lacks %q:\n%s", want, r)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(h.dir, "after-status")); string(b) != "failure\n" {
		t.Errorf("after hook saw status %q", b)
	}
	if out := h.Must("lvs", "--reportformat", "json", "vg0").Stdout; strings.Contains(out, "hindsight-") {
		t.Errorf("a snapshot was left behind:\n%s", out)
	}

	// The remote is a complete repository holding both snapshots.
	r = h.Must("hindsight", "snapshots", "--json", "--repo", url)
	for _, want := range []string{`"source":"` + src + `"`, `"source":"lvm:vg0/web"`} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("remote snapshots lack %s:\n%s", want, r.Stdout)
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
	r = h.Must("hindsight", "run", "--json")
	var summary struct {
		Summary  bool           `json:"summary"`
		Steps    map[string]int `json:"steps"`
		ExitCode int            `json:"exit_code"`
	}
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &summary); err != nil || !summary.Summary || summary.Steps["ok"] != 4 {
		t.Errorf("run --json summary: %v\n%s", err, r.Stdout)
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
	lv, ok := h.LVs()[name]
	if !ok {
		t.Fatalf("no volume %s in vg0", name)
	}
	return lv.Path
}
