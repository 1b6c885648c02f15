// Package lvmenv gives tests a fake volume group to run "hindsight lvm"
// against: fakelvm, the emulation of the lvm2 commands on loop devices,
// first on PATH, a repository and a state directory. Shared by the LVM
// tests and the crash harness.
package lvmenv

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

	"github.com/hindsight-backup/hindsight/integration/hsrun"
	"github.com/hindsight-backup/hindsight/integration/testtree"
)

// SnapshotPrefix starts the name of every LVM snapshot a backup makes.
const SnapshotPrefix = "hindsight-snap-"

// Build builds fakelvm into dir and links it there under each lvm2
// command's name; dir then goes first on the commands' PATH.
func Build(dir string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go" // an IDE's PATH may lack it
	}
	build := exec.Command(goBin, "build", "-o", filepath.Join(dir, "fakelvm"),
		"github.com/hindsight-backup/hindsight/integration/lvm/fakelvm")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building fakelvm: %v\n%s", err, out)
	}
	for _, name := range []string{"lvs", "vgs", "lvcreate", "lvremove", "lvrename", "lvchange", "dmsetup", "thin_delta"} {
		if err := os.Symlink("fakelvm", filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	return nil
}

// Main builds fakelvm into a temporary directory, stores its path in
// *binDir, builds hindsight into *hsBin with hsrun.Main and runs the
// tests; TestMain's whole body.
func Main(m *testing.M, binDir, hsBin *string) int {
	dir, err := os.MkdirTemp("", "hindsight-fakelvm-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := Build(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	*binDir = dir
	return hsrun.Main(m, hsBin)
}

// Env is one test's world: a fake volume group, a repository, a state
// directory.
type Env struct {
	T        testing.TB
	BinDir   string // fakelvm, from Build
	HSBin    string // hindsight
	FakeDir  string
	Repo     string
	StateDir string
	Password string
	Extra    []string // more environment for the next commands
}

// RequireTools skips t, or fails it under CI, without root, loop devices
// and the filesystem tools.
func RequireTools(t testing.TB) {
	t.Helper()
	testtree.Require(t, os.Geteuid() == 0, "root (loop devices, mount)")
	for _, tool := range []string{"losetup", "mkfs.ext4", "mkfs.xfs", "blkid", "e2fsck", "xfs_repair", "mount"} {
		_, err := exec.LookPath(tool)
		testtree.Require(t, err == nil, "%s on PATH", tool)
	}
	_, err := os.Stat("/dev/loop-control")
	testtree.Require(t, err == nil, "/dev/loop-control")
}

// New makes a volume group vg0 of vgSize bytes. The repository's path is
// chosen, not created.
func New(t testing.TB, binDir, hsBin, password string, vgSize int64) *Env {
	t.Helper()
	RequireTools(t)
	dir := t.TempDir()
	e := &Env{T: t, BinDir: binDir, HSBin: hsBin, Password: password, FakeDir: filepath.Join(dir, "fakelvm"),
		Repo: filepath.Join(dir, "repo"), StateDir: filepath.Join(dir, "state")}
	t.Cleanup(func() {
		// Unmount whatever a failed test left, innermost first, then detach.
		out, _ := exec.Command("findmnt", "-rn", "-o", "TARGET").Output()
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		for i := len(lines) - 1; i >= 0; i-- {
			if strings.HasPrefix(lines[i], dir) {
				exec.Command("umount", "-l", lines[i]).Run()
			}
		}
		if r := e.Run("fakelvm", "teardown"); r.Code != 0 {
			t.Errorf("teardown: %s", r)
		}
	})
	e.Must("fakelvm", "vgcreate", "vg0", fmt.Sprint(vgSize))
	return e
}

// CmdEnv is the environment of every command a test runs.
func (e *Env) CmdEnv() []string {
	env := append(os.Environ(), "PATH="+e.BinDir+":"+os.Getenv("PATH"), "FAKELVM_DIR="+e.FakeDir,
		"HINDSIGHT_PASSWORD="+e.Password, "HINDSIGHT_REPOSITORY="+e.Repo, "XDG_CONFIG_HOME="+e.FakeDir)
	return append(env, e.Extra...)
}

// Result is one finished command.
type Result struct {
	Args           []string
	Code           int // -1: killed by a signal
	Stdout, Stderr string
}

func (r Result) String() string {
	return fmt.Sprintf("%s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.Args, " "), r.Code, r.Stdout, r.Stderr)
}

// Command is name (hindsight, or a command of BinDir or PATH) with the
// test's environment, not started.
func (e *Env) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	path := name
	if name == "hindsight" {
		path = e.HSBin
	} else if _, err := os.Stat(filepath.Join(e.BinDir, name)); err == nil {
		path = filepath.Join(e.BinDir, name)
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = e.CmdEnv()
	return cmd
}

// Run runs a command to its end.
func (e *Env) Run(name string, args ...string) Result {
	e.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := e.Command(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// A daemon (hindsight mount --daemon) keeps the output pipes open,
	// and so does a killed backup's watchdog until it has cleaned up,
	// which waits for the lvm2 command the backup left running.
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) {
		err = nil
	}
	r := Result{Args: append([]string{name}, args...), Stdout: stdout.String(), Stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.Code = ee.ExitCode()
	} else if err != nil {
		e.T.Fatalf("%s: %v", name, err)
	}
	return r
}

// Must runs a command and fails the test unless it exits 0.
func (e *Env) Must(name string, args ...string) Result {
	e.T.Helper()
	r := e.Run(name, args...)
	if r.Code != 0 {
		e.T.Fatalf("expected exit 0 from %s", r)
	}
	return r
}

// HSArgs are the arguments of hindsight args with the test's state
// directory given to lvm subcommands.
func (e *Env) HSArgs(args ...string) []string {
	if args[0] == "lvm" {
		return append([]string{"lvm", "--state-dir", e.StateDir}, args[1:]...)
	}
	return args
}

// HS runs hindsight.
func (e *Env) HS(args ...string) Result {
	e.T.Helper()
	return e.Run("hindsight", e.HSArgs(args...)...)
}

// MustHS runs hindsight and fails the test unless it exits 0.
func (e *Env) MustHS(args ...string) Result {
	e.T.Helper()
	return e.Must("hindsight", e.HSArgs(args...)...)
}

// LV is a logical volume as lvs reports it.
type LV struct {
	Name   string `json:"lv_name"`
	Path   string `json:"lv_path"`
	Origin string `json:"origin"`
	Attr   string `json:"lv_attr"`
	UUID   string `json:"lv_uuid"`
}

// LVs lists vg0's volumes as the emulation reports them.
func (e *Env) LVs() map[string]LV {
	e.T.Helper()
	r := e.Must("lvs", "--reportformat", "json", "vg0")
	var rep struct {
		Report []struct {
			LV []LV `json:"lv"`
		} `json:"report"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil {
		e.T.Fatalf("lvs: %v\n%s", err, r.Stdout)
	}
	out := map[string]LV{}
	for _, l := range rep.Report[0].LV {
		out[l.Name] = l
	}
	return out
}

// NewVolume creates vg0/name of size bytes with a filesystem of fstype
// (none when "") and returns its device.
func (e *Env) NewVolume(name string, size int64, fstype string) string {
	e.T.Helper()
	e.Must("lvcreate", "-y", "-n", name, "-L", fmt.Sprintf("%db", size), "vg0")
	dev := e.LVs()[name].Path
	if fstype != "" {
		e.Must("mkfs."+fstype, "-q", "-L", "lbl-"+name, dev)
	}
	return dev
}

// MountAt mounts dev at a new directory, unmounted when the test ends.
func (e *Env) MountAt(dev string, opts ...string) string {
	e.T.Helper()
	dir := e.T.TempDir()
	e.Must("mount", append(append([]string{}, opts...), dev, dir)...)
	e.T.Cleanup(func() { exec.Command("umount", dir).Run() })
	return dir
}

// Leftovers lists the snapshots hindsight made that still exist, and
// what is still mounted under the state directory. A thin volume's base
// (hindsight-base-LV), kept on purpose by an image backup, is none.
func (e *Env) Leftovers() []string {
	e.T.Helper()
	var out []string
	for name, l := range e.LVs() {
		if strings.HasPrefix(name, "hindsight-") && !strings.HasPrefix(name, "hindsight-base-") {
			out = append(out, "volume "+name+" ("+l.Attr+")")
		}
	}
	mounts, _ := exec.Command("findmnt", "-rn", "-o", "TARGET").Output()
	for _, m := range strings.Split(string(mounts), "\n") {
		if strings.HasPrefix(m, e.StateDir) {
			out = append(out, "mount "+m)
		}
	}
	return out
}

// Snapshot is a line of "hindsight snapshots --json".
type Snapshot struct {
	ID     string `json:"id"`
	Source string `json:"source"`
	Kind   string `json:"kind"`
}

// Snapshots lists the repository's snapshots.
func (e *Env) Snapshots() []Snapshot {
	e.T.Helper()
	r := e.MustHS("snapshots", "--json")
	var out []Snapshot
	dec := json.NewDecoder(strings.NewReader(r.Stdout))
	for dec.More() {
		var s Snapshot
		if err := dec.Decode(&s); err != nil {
			e.T.Fatalf("snapshots --json: %v\n%s", err, r.Stdout)
		}
		out = append(out, s)
	}
	return out
}
