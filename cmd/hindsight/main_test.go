package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// env is a test's environment; commands see nothing of the real one, so
// a developer's own HINDSIGHT_* settings cannot leak into a test.
type env map[string]string

type result struct {
	code           int
	stdout, stderr string
}

// hs runs one command line in-process, as main would.
func hs(t *testing.T, e env, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	a := newApp(strings.NewReader(""), &out, &errb, func(k string) string { return e[k] })
	code := a.run(context.Background(), args)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// must runs a command that has to succeed.
func must(t *testing.T, e env, args ...string) result {
	t.Helper()
	r := hs(t, e, args...)
	if r.code != 0 {
		t.Fatalf("hindsight %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// wantExit runs a command that has to fail with code.
func wantExit(t *testing.T, code int, e env, args ...string) result {
	t.Helper()
	r := hs(t, e, args...)
	if r.code != code {
		t.Fatalf("hindsight %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, code, r.stdout, r.stderr)
	}
	if !strings.HasPrefix(r.stderr, "hindsight: ") {
		t.Errorf("error output %q does not start with \"hindsight: \"", r.stderr)
	}
	return r
}

// testEnv returns an environment with a fresh repository location, a
// password, and config and cache directories of the test's own.
func testEnv(t *testing.T) env {
	t.Helper()
	dir := t.TempDir()
	return env{
		"HINDSIGHT_REPOSITORY": filepath.Join(dir, "repo"),
		"HINDSIGHT_PASSWORD":   "correct horse",
		"HOME":                 dir,
		"XDG_CONFIG_HOME":      filepath.Join(dir, "config"),
		"XDG_CACHE_HOME":       filepath.Join(dir, "cache"),
	}
}

// noConfig keeps a /etc/hindsight/hindsight.toml on the test machine out
// of the tests.
func noConfig(t *testing.T, args ...string) []string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "empty.toml")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return append([]string{"--config", p}, args...)
}

// initRepo makes the environment's repository.
func initRepo(t *testing.T, e env) {
	t.Helper()
	must(t, e, noConfig(t, "init")...)
}

// jsonLines decodes every line of out into a new T.
func jsonLines[T any](t *testing.T, out string) []T {
	t.Helper()
	var list []T
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		list = append(list, v)
	}
	return list
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// sourceTree writes a small tree with a name that holds a newline.
func sourceTree(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "src")
	writeFile(t, filepath.Join(dir, "hello.txt"), "hello, world\n")
	writeFile(t, filepath.Join(dir, "sub", "data.bin"), strings.Repeat("0123456789abcdef", 40000))
	writeFile(t, filepath.Join(dir, "sub", "two\nlines"), "sneaky")
	if err := os.Symlink("hello.txt", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestHelp(t *testing.T) {
	e := testEnv(t)
	root := newApp(nil, nil, nil, nil).rootCommand()
	for _, c := range root.Commands() {
		for _, cmd := range append(c.Commands(), c) {
			if cmd.Name() == "help" || cmd.Name() == "completion" || cmd.HasSubCommands() || cmd.Name() == "exit-codes" {
				continue
			}
			if cmd.Long == "" || cmd.Example == "" {
				t.Errorf("%s: needs a Long description and examples", cmd.CommandPath())
			}
			args := append(strings.Fields(cmd.CommandPath())[1:], "--help")
			r := must(t, e, args...)
			if !strings.Contains(r.stdout, "Examples:") {
				t.Errorf("%s --help shows no examples:\n%s", cmd.CommandPath(), r.stdout)
			}
		}
	}
	r := must(t, e, "help", "exit-codes")
	if !strings.Contains(r.stdout, "12  the repository is locked") {
		t.Errorf("help exit-codes:\n%s", r.stdout)
	}
	r = must(t, e, "help", "backup")
	if !strings.Contains(r.stdout, "--exclude-file") {
		t.Errorf("help backup:\n%s", r.stdout)
	}
	if r := must(t, e, "--version"); !strings.HasPrefix(r.stdout, "hindsight ") {
		t.Errorf("--version: %q", r.stdout)
	}
}

func TestUsageErrors(t *testing.T) {
	e := testEnv(t)
	for _, args := range [][]string{
		{"bogus"},
		{"snapshots", "--bogus"},
		{"backup"},
		{"backup", "a", "b"},
		{"restore", "latest"},
		{"restore", "latest", "--target", "/tmp/x", "--owner-by-name", "--numeric-owner"},
		{"key", "bogus"},
		{"init", "--encryption", "rot13"},
		{"ls"},
		{"backup-volume", "--clone-dir", "/tmp", "/dev/null"},
		{"backup-volume", "--reflink", "/dev/null"},
	} {
		r := wantExit(t, exitUsage, e, args...)
		if !strings.Contains(r.stderr, "--help") {
			t.Errorf("%v: usage error without a pointer to --help: %q", args, r.stderr)
		}
	}
}

func TestNoRepositoryGiven(t *testing.T) {
	e := testEnv(t)
	delete(e, "HINDSIGHT_REPOSITORY")
	r := wantExit(t, exitUsage, e, noConfig(t, "snapshots")...)
	if !strings.Contains(r.stderr, "HINDSIGHT_REPOSITORY") {
		t.Errorf("message does not say how to give the repository: %q", r.stderr)
	}
}
