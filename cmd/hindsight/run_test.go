package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// runEnv makes a repository, a source tree, a local remote and a config
// file holding body after the common keys; it returns the env and the
// config file's directory.
func runEnv(t *testing.T, body string) (env, string) {
	t.Helper()
	e := testEnv(t)
	initRepo(t, e)
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "remote"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "src", "f"), "content")
	cfg := fmt.Sprintf("repository = %q\nstate_dir = \"state\"\nmetrics_file = \"hindsight.prom\"\n"+
		"[remotes.usb]\nurl = %q\n", e["HINDSIGHT_REPOSITORY"], filepath.Join(dir, "remote"))
	writeFile(t, filepath.Join(dir, "hindsight.toml"), cfg+strings.ReplaceAll(body, "DIR", dir))
	delete(e, "HINDSIGHT_REPOSITORY")
	e["HINDSIGHT_CONFIG"] = filepath.Join(dir, "hindsight.toml")
	return e, dir
}

func TestRunJobs(t *testing.T) {
	e, dir := runEnv(t, `
[jobs.nightly]
before = ["echo $HINDSIGHT_JOB > DIR/before"]
after = ["echo $HINDSIGHT_JOB_STATUS > DIR/after"]
paths = ["DIR/missing", "DIR/src"]
push = ["usb"]
forget = true
[jobs.nightly.backup]
tag = ["nightly"]
[jobs.weekly]
schedule = "weekly"
paths = ["DIR/src"]
`)
	r := wantExit(t, exitFailure, e, "run")
	for _, want := range []string{
		"failed      nightly: backup " + dir + "/missing: lstat",
		"ok          nightly: backup " + dir + "/src: snapshot ",
		"ok          nightly: push usb: ",
		"skipped     nightly: forget: a backup of this job failed",
		"ok          weekly: backup " + dir + "/src",
		"run: 2 jobs, 7 steps: 5 ok, 0 incomplete, 1 failed, 1 skipped",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("run output lacks %q:\n%s", want, r.stdout)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "before")); string(b) != "nightly\n" {
		t.Errorf("before hook wrote %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "after")); string(b) != "failure\n" {
		t.Errorf("after hook wrote %q", b)
	}
	r = must(t, e, "remote", "list")
	if !strings.Contains(r.stdout, "usb\t"+filepath.Join(dir, "remote")) {
		t.Errorf("run did not register the remote: %q", r.stdout)
	}
	prom, err := os.ReadFile(filepath.Join(dir, "hindsight.prom"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`hindsight_job_success{job="nightly"} 0`, `hindsight_job_success{job="weekly"} 1`,
		`hindsight_job_errors{job="nightly"} 1`, `hindsight_job_files{job="weekly"} 1`,
		`hindsight_job_read_bytes{job="weekly"} 7`, `hindsight_remote_pending_bytes{remote="usb"} `,
		`hindsight_repository_snapshots 2`, "# TYPE hindsight_repository_size_bytes gauge",
	} {
		if !strings.Contains(string(prom), want) {
			t.Errorf("metrics file lacks %q:\n%s", want, prom)
		}
	}

	// weekly succeeded this week and is not due; nightly failed and is.
	r = wantExit(t, exitFailure, e, "run", "--json")
	var steps, summaries int
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	for dec.More() {
		var s struct {
			Job     string `json:"job"`
			Summary bool   `json:"summary"`
		}
		if err := dec.Decode(&s); err != nil {
			t.Fatalf("run --json: %v\n%s", err, r.stdout)
		}
		if s.Job == "weekly" {
			t.Errorf("weekly ran again in the same week:\n%s", r.stdout)
		}
		if s.Summary {
			summaries++
		} else {
			steps++
		}
	}
	if steps != 6 || summaries != 1 {
		t.Errorf("run --json: %d steps and %d summaries, want 6 and 1:\n%s", steps, summaries, r.stdout)
	}
	// Named, a job runs whatever its schedule.
	r = must(t, e, "run", "weekly")
	if !strings.Contains(r.stdout, "ok          weekly: backup") {
		t.Errorf("run weekly: %s", r.stdout)
	}
}

func TestRunLockAndPlan(t *testing.T) {
	e, dir := runEnv(t, `
[jobs.nightly]
paths = ["DIR/src"]
[jobs.nightly.prune]
max_unused = "10%"
`)
	r := must(t, e, "run", "--dry-run")
	for _, want := range []string{"hindsight backup --json -- " + dir + "/src", "hindsight prune --max-unused=10%"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("run --dry-run lacks %q:\n%s", want, r.stdout)
		}
	}
	must(t, e, "run")

	f, err := os.OpenFile(filepath.Join(dir, "state", "run.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	r = wantExit(t, exitRunBusy, e, "run")
	if !strings.Contains(r.stderr, "another hindsight run is still going") {
		t.Errorf("busy run: %q", r.stderr)
	}
	go func() {
		time.Sleep(1500 * time.Millisecond)
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
	}()
	r = hs(t, e, "run", "--wait")
	if !strings.Contains(r.stderr, "waiting for the run still going") || !strings.Contains(r.stdout, "ok          nightly: backup") {
		t.Errorf("run --wait: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestRunHookTimeout(t *testing.T) {
	e, dir := runEnv(t, `
[jobs.slow]
hook_timeout = "2s"
before = ["sleep 30 & sleep 30"]
after = ["touch DIR/after"]
paths = ["DIR/src"]
`)
	start := time.Now()
	// The timeout applies to the after hook too: 2 s, not less, lets a
	// loaded machine start a shell and touch a file within it.
	r := wantExit(t, exitFailure, e, "run")
	if time.Since(start) > 10*time.Second {
		t.Errorf("a hook timing out held run for %s", time.Since(start))
	}
	for _, want := range []string{"killed after the hook timeout of 2s", "skipped     slow: backup " + dir + "/src: a before hook failed"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("run output lacks %q:\n%s", want, r.stdout)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "after")); err != nil {
		t.Errorf("after hook did not run: %v", err)
	}
}

func TestDue(t *testing.T) {
	at := func(s string) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04", s, time.Local)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	tests := []struct {
		schedule, last, now string
		want                bool
	}{
		{"daily", "2026-03-01 02:30", "2026-03-02 02:29", true},
		{"daily", "2026-03-01 02:30", "2026-03-01 23:59", false},
		{"hourly", "2026-03-01 02:30", "2026-03-01 02:59", false},
		{"hourly", "2026-03-01 02:30", "2026-03-01 03:00", true},
		{"weekly", "2026-03-02 02:30", "2026-03-08 23:00", false}, // Monday to Sunday
		{"weekly", "2026-03-08 02:30", "2026-03-09 00:01", true},
		{"monthly", "2026-03-31 23:00", "2026-04-01 00:00", true},
		{"", "2026-03-01 02:30", "2026-03-01 02:31", true},
	}
	for _, tt := range tests {
		if got := due(tt.schedule, at(tt.last), at(tt.now)); got != tt.want {
			t.Errorf("due(%q, %s, %s) = %v", tt.schedule, tt.last, tt.now, got)
		}
	}
}
