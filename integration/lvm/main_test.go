package lvm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hindsight-backup/hindsight/integration/testtree"
)

const password = "lvm-test-password"

var (
	binDir string // hindsight, and fakelvm under each lvm2 command's name
	hsBin  string
)

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "hindsight-lvm-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = filepath.Join(dir, "bin")
	hsBin = filepath.Join(binDir, "hindsight")
	for pkg, out := range map[string]string{"cmd/hindsight": hsBin, "integration/lvm/fakelvm": filepath.Join(binDir, "fakelvm")} {
		build := exec.Command(goTool(), "build", "-o", out, "github.com/hindsight-backup/hindsight/"+pkg)
		if b, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", pkg, err, b)
			return 1
		}
	}
	for _, name := range []string{"lvs", "vgs", "lvcreate", "lvremove"} {
		if err := os.Symlink("fakelvm", filepath.Join(binDir, name)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return m.Run()
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

// env is one test's world: a fake volume group, a repository, a state dir.
type env struct {
	t        *testing.T
	fakeDir  string
	repo     string
	stateDir string
	extra    []string // more environment for the next commands
}

func requireTools(t *testing.T) {
	t.Helper()
	testtree.Require(t, os.Geteuid() == 0, "root (loop devices, mount)")
	for _, tool := range []string{"losetup", "mkfs.ext4", "mkfs.xfs", "blkid", "e2fsck", "xfs_repair", "mount"} {
		_, err := exec.LookPath(tool)
		testtree.Require(t, err == nil, "%s on PATH", tool)
	}
	_, err := os.Stat("/dev/loop-control")
	testtree.Require(t, err == nil, "/dev/loop-control")
}

// newEnv makes a volume group vg0 of vgSize bytes and a repository.
func newEnv(t *testing.T, vgSize int64) *env {
	t.Helper()
	requireTools(t)
	dir := t.TempDir()
	e := &env{t: t, fakeDir: filepath.Join(dir, "fakelvm"), repo: filepath.Join(dir, "repo"), stateDir: filepath.Join(dir, "state")}
	t.Cleanup(func() {
		// Unmount whatever a failed test left, innermost first, then detach.
		out, _ := exec.Command("findmnt", "-rn", "-o", "TARGET").Output()
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		for i := len(lines) - 1; i >= 0; i-- {
			if strings.HasPrefix(lines[i], dir) {
				exec.Command("umount", "-l", lines[i]).Run()
			}
		}
		if r := e.run("fakelvm", "teardown"); r.code != 0 {
			t.Errorf("teardown: %s", r)
		}
	})
	e.must("fakelvm", "vgcreate", "vg0", fmt.Sprint(vgSize))
	e.must("hindsight", "init", "--repo", e.repo)
	return e
}

// cmdEnv is the environment of every command a test runs.
func (e *env) cmdEnv() []string {
	env := append(os.Environ(), "PATH="+binDir+":"+os.Getenv("PATH"), "FAKELVM_DIR="+e.fakeDir,
		"HINDSIGHT_PASSWORD="+password, "HINDSIGHT_REPOSITORY="+e.repo, "XDG_CONFIG_HOME="+e.fakeDir)
	return append(env, e.extra...)
}

type result struct {
	args           []string
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("%s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// run runs a command with the test's PATH and environment; "hindsight"
// gets --repo and --state-dir when its subcommand takes them.
func (e *env) run(name string, args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	path := name
	if _, err := os.Stat(filepath.Join(binDir, name)); err == nil {
		path = filepath.Join(binDir, name)
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = e.cmdEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// A daemon (hindsight mount --daemon) keeps the output pipes open.
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) {
		err = nil
	}
	r := result{args: append([]string{name}, args...), stdout: stdout.String(), stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
		if ee.ExitCode() < 0 {
			r.code = -1 // killed
		}
	} else if err != nil {
		e.t.Fatalf("%s: %v", name, err)
	}
	return r
}

func (e *env) must(name string, args ...string) result {
	e.t.Helper()
	r := e.run(name, args...)
	if r.code != 0 {
		e.t.Fatalf("expected exit 0 from %s", r)
	}
	return r
}

// hs runs hindsight with the test's state directory for lvm subcommands.
func (e *env) hs(args ...string) result {
	e.t.Helper()
	if args[0] == "lvm" {
		args = append([]string{"lvm", "--state-dir", e.stateDir}, args[1:]...)
	}
	return e.run("hindsight", args...)
}

func (e *env) mustHS(args ...string) result {
	e.t.Helper()
	r := e.hs(args...)
	if r.code != 0 {
		e.t.Fatalf("expected exit 0 from %s", r)
	}
	return r
}

type lvInfo struct {
	Name   string `json:"lv_name"`
	Path   string `json:"lv_path"`
	Origin string `json:"origin"`
	Attr   string `json:"lv_attr"`
}

// lvs lists vg0's volumes as the emulation reports them.
func (e *env) lvs() map[string]lvInfo {
	e.t.Helper()
	r := e.must("lvs", "--reportformat", "json", "vg0")
	var rep struct {
		Report []struct {
			LV []lvInfo `json:"lv"`
		} `json:"report"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		e.t.Fatalf("lvs: %v\n%s", err, r.stdout)
	}
	out := map[string]lvInfo{}
	for _, l := range rep.Report[0].LV {
		out[l.Name] = l
	}
	return out
}

// newVolume creates vg0/name of size bytes with a filesystem of fstype
// (none when "") and returns its device.
func (e *env) newVolume(name string, size int64, fstype string) string {
	e.t.Helper()
	e.must("lvcreate", "-y", "-n", name, "-L", fmt.Sprintf("%db", size), "vg0")
	dev := e.lvs()[name].Path
	if fstype != "" {
		e.must("mkfs."+fstype, mkfsQuiet[fstype], "-L", "lbl-"+name, dev)
	}
	return dev
}

var mkfsQuiet = map[string]string{"ext4": "-q", "xfs": "-q", "btrfs": "-q"}

// mountAt mounts dev at a new directory, unmounted when the test ends.
func (e *env) mountAt(dev string, opts ...string) string {
	e.t.Helper()
	dir := e.t.TempDir()
	e.must("mount", append(append([]string{}, opts...), dev, dir)...)
	e.t.Cleanup(func() { exec.Command("umount", dir).Run() })
	return dir
}

// leftovers lists the snapshots hindsight made that still exist, and
// what is still mounted under the state directory.
func (e *env) leftovers() []string {
	e.t.Helper()
	var out []string
	for name, l := range e.lvs() {
		if strings.HasPrefix(name, "hindsight-") {
			out = append(out, "volume "+name+" ("+l.Attr+")")
		}
	}
	mounts, _ := exec.Command("findmnt", "-rn", "-o", "TARGET").Output()
	for _, m := range strings.Split(string(mounts), "\n") {
		if strings.HasPrefix(m, e.stateDir) {
			out = append(out, "mount "+m)
		}
	}
	return out
}

type snapJSON struct {
	ID     string `json:"id"`
	Source string `json:"source"`
	Kind   string `json:"kind"`
}

func (e *env) snapshots() []snapJSON {
	e.t.Helper()
	r := e.mustHS("snapshots", "--json")
	var out []snapJSON
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	for dec.More() {
		var s snapJSON
		if err := dec.Decode(&s); err != nil {
			e.t.Fatalf("snapshots --json: %v\n%s", err, r.stdout)
		}
		out = append(out, s)
	}
	return out
}

func jsonLine(s string, v any) error {
	return json.Unmarshal([]byte(strings.TrimSpace(s)), v)
}
