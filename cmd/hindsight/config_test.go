package main

import (
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func TestKeyLines(t *testing.T) {
	doc := `# comment
repository = "/srv/backup"   # trailing [comment]
list = [
  "a",   # ] inside a comment
  "b]",
]
text = """
[not.a.table]
"""
[jobs.nightly]
paths = ["/home"]
"quoted.key" = 1
dotted.inner = 2

[jobs.nightly.backup]
exclude = ['*.tmp']
[[arr]]
x = 1
`
	lines := keyLines(doc)
	for key, want := range map[string]int{
		"repository": 2, "list": 3, "text": 7, "jobs": 10, "jobs.nightly": 10, "jobs.nightly.paths": 11,
		`jobs.nightly."quoted.key"`: 12, "jobs.nightly.dotted.inner": 13, "jobs.nightly.backup.exclude": 16, "arr": 17,
	} {
		if lines[key] != want {
			t.Errorf("line of %s = %d, want %d", key, lines[key], want)
		}
	}
	if _, ok := lines["not.a.table"]; ok {
		t.Error("a table header inside a multi-line string was located")
	}
}

func TestConfigCheck(t *testing.T) {
	e := testEnv(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	writeFile(t, good, `repository = "/srv/backup"
[backup]
exclude_caches = true
[lvm.backup]
snapshot_reserve = 5
[forget]
keep_daily = 7
keep_tag = ["keep"]
[prune]
max_unused = "5%"
[remotes.offsite]
url = "s3:https://s3.example.com/b/p"
limit_upload = "8M"
[jobs.nightly]
schedule = "daily"
paths = ["/home"]
lvm_volumes = ["vg0/root", "vg1"]
push = ["offsite"]
forget = true
[jobs.nightly.backup]
exclude = ["*.tmp"]
`)
	r := must(t, e, "config", "check", good)
	if !strings.Contains(r.stdout, "valid; 1 jobs (nightly), 1 remotes") {
		t.Errorf("config check of a good file: %q", r.stdout)
	}

	bad := filepath.Join(dir, "bad.toml")
	writeFile(t, bad, `repository = "/srv/backup"
[backup]
exclude_caches = "yes"
no_such_flag = 1
[lvm.bakup]
x = 1
[remotes.offsite]
speed = "fast"
[jobs.nightly]
schedule = "nightly"
paths = ["home"]
push = ["elsewhere"]
lvm_volumes = ["/dev/vg0/root"]
hook_timeout = "soon"
[jobs.empty]
[jobs.nightly.backup]
one_file_system = 3
`)
	r = wantExit(t, exitFailure, e, "config", "check", bad)
	for _, want := range []string{
		bad + `:3: backup.exclude_caches: "yes": want true or false`,
		bad + ":4: backup.no_such_flag: unknown key",
		bad + ":5: lvm.bakup: unknown table",
		bad + ":7: remotes.offsite: no url",
		bad + `:8: remotes.offsite.speed: unknown key: not a flag of "hindsight push"`,
		bad + `:10: jobs.nightly.schedule: "nightly": want one of`,
		bad + `:11: jobs.nightly.paths: "home": give an absolute path`,
		bad + `:12: jobs.nightly.push: remote "elsewhere" is not declared`,
		bad + `:13: jobs.nightly.lvm_volumes: "/dev/vg0/root": want VG/LV`,
		bad + `:14: jobs.nightly.hook_timeout: "soon"`,
		bad + `:15: jobs.empty: the job does nothing`,
		bad + `:17: jobs.nightly.backup.one_file_system: "3": want true or false`,
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("config check output lacks %q:\n%s", want, r.stdout)
		}
	}
	syntax := filepath.Join(dir, "syntax.toml")
	writeFile(t, syntax, "repository = \"/srv\"\n[jobs.x]\npaths = [\"/a\"\n")
	r = wantExit(t, exitFailure, e, "config", "check", syntax)
	if !strings.Contains(r.stderr, syntax+":") {
		t.Errorf("syntax error without file and line: %q", r.stderr)
	}
	writeFile(t, syntax, "repository = \"/srv\"\n[jobs.x]\npaths = \"/home\"\n")
	r = wantExit(t, exitFailure, e, "config", "check", syntax)
	if !strings.Contains(r.stderr, syntax+":3: jobs.x.paths: ") {
		t.Errorf("a value of the wrong type without its line: %q", r.stderr)
	}
}

// TestConfigFlags: a [COMMAND] table sets that command's flags, the
// environment overrides it, and the command line overrides both.
func TestConfigFlags(t *testing.T) {
	e := testEnv(t)
	initRepo(t, e)
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "keep"), "k")
	writeFile(t, filepath.Join(src, "drop.tmp"), "d")
	writeFile(t, filepath.Join(src, "drop.log"), "d")
	cfg := filepath.Join(t.TempDir(), "c.toml")
	writeFile(t, cfg, "[backup]\nexclude = [\"*.tmp\", \"*.log\"]\ntag = [\"fromfile\"]\n")
	must(t, e, "--config", cfg, "backup", src)
	r := must(t, e, "--config", cfg, "ls", "--json", "latest")
	if strings.Contains(r.stdout, "drop") || !strings.Contains(r.stdout, "keep") {
		t.Errorf("[backup] exclude not applied:\n%s", r.stdout)
	}
	r = must(t, e, "--config", cfg, "snapshots", "--json")
	if !strings.Contains(r.stdout, "fromfile") {
		t.Errorf("[backup] tag not applied:\n%s", r.stdout)
	}

	e["HINDSIGHT_BACKUP_TAG"] = "fromenv"
	must(t, e, "--config", cfg, "backup", src)
	must(t, e, "--config", cfg, "backup", "--tag", "fromflag", src)
	r = must(t, e, "--config", cfg, "snapshots", "--json")
	if strings.Count(r.stdout, "fromenv") != 1 || strings.Count(r.stdout, "fromflag") != 1 || strings.Count(r.stdout, "fromfile") != 1 {
		t.Errorf("environment should override the file and the flag both:\n%s", r.stdout)
	}

	writeFile(t, cfg, "[backup]\none_file_system = \"sometimes\"\n")
	r = wantExit(t, exitFailure, e, "--config", cfg, "backup", src)
	if !strings.Contains(r.stderr, cfg+":2: backup.one_file_system") {
		t.Errorf("bad flag value in the file: %q", r.stderr)
	}
}

// TestEveryFlagHasATwin writes a table for every command, setting each
// flag to its default, and checks the file: a flag added later gets its
// twin without anyone remembering to add one.
func TestEveryFlagHasATwin(t *testing.T) {
	a := newApp(nil, io.Discard, io.Discard, func(string) string { return "" })
	root := a.rootCommand()
	var b strings.Builder
	var walk func(path string, c *cobra.Command)
	walk = func(path string, c *cobra.Command) {
		if path != "" {
			b.WriteString("[" + path + "]\n")
		}
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if slices.Contains(ownFlags, f.Name) {
				return
			}
			v := strconv.Quote(f.DefValue)
			switch {
			case isRepeatable(f):
				v = "[]"
			case f.Value.Type() == "bool" || f.Value.Type() == "int":
				v = f.DefValue
			}
			fmt.Fprintf(&b, "%s = %s\n", strings.ReplaceAll(f.Name, "-", "_"), v)
		})
		for _, sub := range c.Commands() {
			walk(strings.TrimPrefix(path+"."+sub.Name(), "."), sub)
		}
	}
	walk("", root)
	c, err := parseConfig("twins.toml", b.String())
	if err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	for _, p := range c.check(root) {
		t.Errorf("no config twin: %v", p)
	}
}
