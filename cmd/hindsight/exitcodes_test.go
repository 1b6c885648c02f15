package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/chunkstore/lock"
	"github.com/hindsight-backup/hindsight/remote/local"
	"github.com/hindsight-backup/hindsight/snapshot"
)

func TestExitCodeMapping(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, exitOK},
		{errors.New("boom"), exitFailure},
		{usagef("bad flag"), exitUsage},
		{fmt.Errorf("backup: %w", snapshot.ErrIncomplete), exitIncomplete},
		{fmt.Errorf("%w: 3 problems", errDamage), exitDamage},
		{fmt.Errorf("%w: /x", errNoRepository), exitNoRepo},
		{fmt.Errorf("%w at /x", chunkstore.ErrNotRepository), exitNoRepo},
		{fmt.Errorf("open: %w", chunkstore.ErrWrongPassword), exitPassword},
		{fmt.Errorf("lock: %w", &lock.LockedError{}), exitLocked},
		{fmt.Errorf("%w (pid 1)", errRunBusy), exitRunBusy},
		{stepsFailed{failed: 2, of: 5, code: exitPassword}, exitPassword},
	}
	for _, tt := range tests {
		if got := exitCode(tt.err); got != tt.want {
			t.Errorf("exitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

func TestWrongPassword(t *testing.T) {
	e := testEnv(t)
	initRepo(t, e)
	e["HINDSIGHT_PASSWORD"] = "wrong"
	r := wantExit(t, exitPassword, e, noConfig(t, "snapshots")...)
	if !strings.Contains(r.stderr, "$HINDSIGHT_PASSWORD") {
		t.Errorf("message does not say where the password came from: %q", r.stderr)
	}
}

func TestMissingRepository(t *testing.T) {
	e := testEnv(t)
	r := wantExit(t, exitNoRepo, e, noConfig(t, "snapshots")...)
	if !strings.Contains(r.stderr, e["HINDSIGHT_REPOSITORY"]) {
		t.Errorf("message does not name the location: %q", r.stderr)
	}
	// A directory that exists but holds no repository.
	e["HINDSIGHT_REPOSITORY"] = t.TempDir()
	wantExit(t, exitNoRepo, e, noConfig(t, "ls", "latest")...)
}

func TestInitTwice(t *testing.T) {
	e := testEnv(t)
	r := must(t, e, noConfig(t, "init", "--json")...)
	got := jsonLines[map[string]string](t, r.stdout)
	if len(got) != 1 || len(got[0]["id"]) != 64 || got[0]["location"] != e["HINDSIGHT_REPOSITORY"] {
		t.Errorf("init --json: %v", got)
	}
	r = wantExit(t, exitFailure, e, noConfig(t, "init")...)
	if !strings.Contains(r.stderr, "already") {
		t.Errorf("second init: %q", r.stderr)
	}
}

func TestLocked(t *testing.T) {
	e := testEnv(t)
	initRepo(t, e)
	be, err := local.OpenDir(e["HINDSIGHT_REPOSITORY"])
	if err != nil {
		t.Fatal(err)
	}
	// Another host's lock: it cannot be judged stale by its PID.
	l, err := lock.Acquire(context.Background(), be, true, "prune", lock.Options{Host: "elsewhere", PID: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	r := wantExit(t, exitLocked, e, noConfig(t, "snapshots")...)
	if !strings.Contains(r.stderr, "elsewhere") {
		t.Errorf("message does not name the holder: %q", r.stderr)
	}
}

func TestNoPasswordNoTerminal(t *testing.T) {
	e := testEnv(t)
	initRepo(t, e)
	delete(e, "HINDSIGHT_PASSWORD")
	r := wantExit(t, exitFailure, e, noConfig(t, "snapshots")...)
	for _, v := range []string{"HINDSIGHT_PASSWORD", "HINDSIGHT_PASSWORD_FILE", "HINDSIGHT_PASSWORD_COMMAND"} {
		if !strings.Contains(r.stderr, v) {
			t.Errorf("message does not name %s: %q", v, r.stderr)
		}
	}
}

func TestPasswordSources(t *testing.T) {
	e := testEnv(t)
	initRepo(t, e)
	pw := e["HINDSIGHT_PASSWORD"]
	delete(e, "HINDSIGHT_PASSWORD")
	file := filepath.Join(t.TempDir(), "pw")
	writeFile(t, file, pw+"\nignored second line\n")

	must(t, e, noConfig(t, "--password-file", file, "snapshots")...)
	e["HINDSIGHT_PASSWORD_FILE"] = file
	must(t, e, noConfig(t, "snapshots")...)
	delete(e, "HINDSIGHT_PASSWORD_FILE")
	e["HINDSIGHT_PASSWORD_COMMAND"] = "printf '%s\\n' '" + pw + "'"
	must(t, e, noConfig(t, "snapshots")...)
	e["HINDSIGHT_PASSWORD_COMMAND"] = "exit 3"
	r := wantExit(t, exitFailure, e, noConfig(t, "snapshots")...)
	if !strings.Contains(r.stderr, "password command") {
		t.Errorf("failed password command: %q", r.stderr)
	}
}

func TestConfigFile(t *testing.T) {
	e := testEnv(t)
	initRepo(t, e)
	dir := filepath.Join(e["XDG_CONFIG_HOME"], "hindsight")
	writeFile(t, filepath.Join(dir, "pw"), e["HINDSIGHT_PASSWORD"]+"\n")
	// A relative password_file is relative to the config file.
	writeFile(t, filepath.Join(dir, "config.toml"),
		fmt.Sprintf("repository = %q\npassword_file = \"pw\"\nfuture_key = 1\n", e["HINDSIGHT_REPOSITORY"]))
	delete(e, "HINDSIGHT_REPOSITORY")
	delete(e, "HINDSIGHT_PASSWORD")
	if _, err := os.Stat(systemConfig); err == nil {
		t.Skipf("%s exists on this machine and would be read first", systemConfig)
	}
	r := must(t, e, "snapshots")
	if !strings.Contains(r.stderr, "future_key") {
		t.Errorf("unknown config key not reported: %q", r.stderr)
	}
	bad := filepath.Join(t.TempDir(), "bad.toml")
	writeFile(t, bad, "repository = \n")
	r = wantExit(t, exitFailure, e, "--config", bad, "snapshots")
	if !strings.Contains(r.stderr, bad) {
		t.Errorf("config error does not name the file: %q", r.stderr)
	}
}

func TestUnencrypted(t *testing.T) {
	e := testEnv(t)
	delete(e, "HINDSIGHT_PASSWORD")
	r := must(t, e, noConfig(t, "init", "--encryption", "none")...)
	if !strings.Contains(r.stderr, "UNENCRYPTED") {
		t.Errorf("no warning for an unencrypted repository: %q", r.stderr)
	}
	must(t, e, noConfig(t, "backup", sourceTree(t))...)
	must(t, e, noConfig(t, "ls", "latest")...)
}

func TestLockReleased(t *testing.T) {
	e := testEnv(t)
	initRepo(t, e)
	must(t, e, noConfig(t, "backup", sourceTree(t))...)
	ents, err := os.ReadDir(filepath.Join(e["HINDSIGHT_REPOSITORY"], "locks"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		t.Errorf("locks left behind: %v", ents)
	}
}

func TestInterruptedBackupRecordsNothing(t *testing.T) {
	e := testEnv(t)
	initRepo(t, e)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errb strings.Builder
	a := newApp(strings.NewReader(""), &out, &errb, func(k string) string { return e[k] })
	code := a.run(ctx, noConfig(t, "backup", sourceTree(t)))
	if code == exitOK || !strings.Contains(errb.String(), "interrupted") {
		t.Errorf("cancelled backup: exit %d, stderr %q", code, errb.String())
	}
	r := must(t, e, noConfig(t, "snapshots", "--json")...)
	if r.stdout != "" {
		t.Fatalf("a cancelled backup recorded a snapshot:\n%s", r.stdout)
	}
}
