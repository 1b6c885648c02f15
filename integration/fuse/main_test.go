// Package fuse tests 'hindsight mount' from the outside, through a real
// kernel FUSE mount: TestMain builds the binary, each test makes a
// repository with it, mounts it and judges the mount with the tools people
// use on it (rsync, cp, stat, getfattr, cat) and with exact tree
// comparison. The tests need root, /dev/fuse and fusermount3; without
// them they skip, except under CI=true, where they fail.
package fuse

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hindsight-backup/hindsight/integration/hsrun"
	"github.com/hindsight-backup/hindsight/integration/testtree"
)

const testPassword = "fuse-test-password"

var hsBin string // the binary TestMain built

func TestMain(m *testing.M) { os.Exit(hsrun.Main(m, &hsBin)) }

// requireFUSE skips (or under CI fails) a test that cannot mount.
func requireFUSE(t testing.TB) {
	t.Helper()
	testtree.Require(t, os.Geteuid() == 0, "FUSE tests run as root")
	_, err := os.Stat("/dev/fuse")
	testtree.Require(t, err == nil, "/dev/fuse: %v", err)
	_, err = exec.LookPath("fusermount3")
	testtree.Require(t, err == nil, "fusermount3 (Debian package fuse3): %v", err)
}

// repo is a repository made for one test, with the environment that
// reaches it.
type repo struct {
	dir string
	env []string
	log string // where mounts write their stderr
}

func newRepo(t testing.TB) *repo {
	t.Helper()
	requireFUSE(t)
	tmp := t.TempDir()
	r := &repo{dir: filepath.Join(tmp, "repo"), log: filepath.Join(tmp, "mount.log")}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HINDSIGHT_") && !strings.HasPrefix(kv, "XDG_") && !strings.HasPrefix(kv, "NOTIFY_SOCKET=") {
			r.env = append(r.env, kv)
		}
	}
	r.env = append(r.env, "HINDSIGHT_PASSWORD="+testPassword, "HINDSIGHT_REPOSITORY="+r.dir,
		"XDG_CONFIG_HOME="+filepath.Join(tmp, "xdg"), "XDG_RUNTIME_DIR="+tmp)
	r.run(t, "init")
	return r
}

// command prepares a run of the binary; its stderr goes to the repo's log
// file, which a daemon may keep writing to after the command returned.
func (r *repo) command(ctx context.Context, t testing.TB, args ...string) *exec.Cmd {
	t.Helper()
	logf, err := os.OpenFile(r.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logf.Close() })
	cmd := exec.CommandContext(ctx, hsBin, args...)
	cmd.Env = r.env
	cmd.Stderr = logf
	return cmd
}

// run runs the binary to completion and fails the test unless it exits 0.
func (r *repo) run(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	cmd := r.command(ctx, t, args...)
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("hindsight %s: %v\n%s\nlog:\n%s", strings.Join(args, " "), err, out.String(), r.logText())
	}
	return out.String()
}

func (r *repo) logText() string {
	b, _ := os.ReadFile(r.log)
	return string(b)
}

// backup backs dir up under a fixed host name, so that the source's
// directory in the mount is predictable.
func (r *repo) backup(t testing.TB, dir string) {
	t.Helper()
	r.run(t, "backup", "--host", testHost, dir)
}

const testHost = "fusetest"

// mountpoint makes an empty directory every user can reach, so that tests
// can read through the mount as nobody.
func mountpoint(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hindsight-mnt-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(dir) })
	return dir
}

// mount mounts the repository with --daemon and returns the mount point
// and the mount process's pid. The test's end unmounts it if the test did
// not, and waits for the process to exit.
func (r *repo) mount(t testing.TB, extra ...string) (string, int) {
	t.Helper()
	mnt := mountpoint(t)
	pidFile := filepath.Join(t.TempDir(), "mount.pid")
	args := append([]string{"mount", "--daemon", "--refresh", "1s", "--pid-file", pidFile}, extra...)
	r.run(t, append(args, mnt)...)
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("--daemon returned without a pid file: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pid file: %v", err)
	}
	if !mounted(mnt) {
		t.Fatalf("--daemon returned but %s is not mounted", mnt)
	}
	t.Cleanup(func() {
		if mounted(mnt) {
			if out, err := exec.Command("fusermount3", "-u", mnt).CombinedOutput(); err != nil {
				t.Errorf("fusermount3 -u: %v: %s", err, out)
			}
		}
		if !waitGone(pid, 10*time.Second) {
			t.Errorf("mount process %d still running 10s after unmount", pid)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return mnt, pid
}

// mounted reports whether dir is a mount point of a hindsight filesystem.
func mounted(dir string) bool {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 2 && f[1] == dir && strings.HasPrefix(f[2], "fuse.hindsight") {
			return true
		}
	}
	return false
}

// waitGone waits for process pid to exit. The daemon is not our child, and
// a container's init may never reap it: a zombie counts as gone.
func waitGone(pid int, d time.Duration) bool {
	return eventually(d, func() bool {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return true
		}
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		return len(f) > 0 && f[0] == "Z"
	})
}

func eventually(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); ; time.Sleep(50 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
	}
}

// sourceDir is the directory under which the mount lists dir's snapshots.
func sourceDir(mnt, dir string) string {
	return filepath.Join(mnt, testHost+strings.ReplaceAll(dir, "/", "-"))
}
