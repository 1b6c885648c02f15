package security

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hindsight-backup/hindsight/integration/hsrun"
	"github.com/hindsight-backup/hindsight/integration/testtree"
)

// passwordSource is one way of handing hindsight the password.
type passwordSource struct {
	name  string
	setup func(pwFile string) (env, flags []string)
	// inEnv: the password is in the process's environment by the
	// caller's choice, so /proc/PID/environ may show it.
	inEnv bool
}

var passwordSources = []passwordSource{
	{name: "HINDSIGHT_PASSWORD", inEnv: true, setup: func(f string) ([]string, []string) {
		b, _ := os.ReadFile(f)
		return []string{"HINDSIGHT_PASSWORD=" + strings.TrimSpace(string(b))}, nil
	}},
	{name: "--password-file", setup: func(f string) ([]string, []string) { return nil, []string{"--password-file", f} }},
	{name: "HINDSIGHT_PASSWORD_FILE", setup: func(f string) ([]string, []string) {
		return []string{"HINDSIGHT_PASSWORD_FILE=" + f}, nil
	}},
	{name: "HINDSIGHT_PASSWORD_COMMAND", setup: func(f string) ([]string, []string) {
		return []string{"HINDSIGHT_PASSWORD_COMMAND=cat " + f}, nil
	}},
}

// TestPasswordStaysSecret runs every kind of command with -v, for each way
// of giving the password, and demands that the password appear in no
// output, no error message (a wrong password's included), and no
// process's command line: not a running backup's, not the mount daemon
// that --daemon starts. Nor in their environment, unless it was put there
// by the caller.
func TestPasswordStaysSecret(t *testing.T) {
	requireRoot(t)
	_, err := exec.LookPath("fusermount3")
	testtree.Require(t, err == nil, "fusermount3 (Debian package fuse3): %v", err)
	src := filepath.Join(t.TempDir(), "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	// Large enough that a backup is still running when the test looks.
	big := make([]byte, 64<<20)
	rand.NewChaCha8([32]byte{3}).Read(big)
	write(t, filepath.Join(src, "big.bin"), big)
	write(t, filepath.Join(src, "small.txt"), []byte("small\n"))

	for _, ps := range passwordSources {
		t.Run(ps.name, func(t *testing.T) {
			tmp := t.TempDir()
			password, wrong := marker("password"), marker("wrong-password")
			secrets := []string{password, wrong}
			pwFile, wrongFile := filepath.Join(tmp, "pw"), filepath.Join(tmp, "wrong")
			write(t, pwFile, []byte(password+"\n"))
			write(t, wrongFile, []byte(wrong+"\n"))
			repo := filepath.Join(tmp, "repo")
			env, flags := ps.setup(pwFile)
			hs := hsrun.New(t, bin, append(env, "HINDSIGHT_REPOSITORY="+repo)...)
			args := func(a ...string) []string { return append(append([]string{"-v"}, flags...), a...) }
			var found []string
			judge := func(r hsrun.Result) {
				found = append(found, leaks("output of hindsight "+strings.Join(r.Args, " "), []byte(r.Stdout+r.Stderr), secrets)...)
			}
			judge(hs.Must(t, args("init")...))

			backup := hs.Start(t, args("backup", src)...)
			found = append(found, procLeaks(t, backup.Cmd.Process.Pid, "backup", secrets, ps.inEnv)...)
			r := backup.Wait(t)
			if r.Code != 0 {
				t.Fatalf("backup: %s", r)
			}
			judge(r)
			target := filepath.Join(tmp, "restore")
			for _, a := range [][]string{{"snapshots"}, {"ls", "latest"}, {"restore", "latest", "--target", target},
				{"check", "--read-data"}, {"key", "list"}, {"stats"}} {
				judge(hs.Must(t, args(a...)...))
			}

			mnt := filepath.Join(tmp, "mnt")
			if err := os.Mkdir(mnt, 0o755); err != nil {
				t.Fatal(err)
			}
			pidFile := filepath.Join(tmp, "mount.pid")
			// Cleanups run newest first: this one before TempDir's
			// removal, which must never descend into a mount.
			t.Cleanup(func() { exec.Command("fusermount3", "-u", mnt).Run() })
			judge(hs.Must(t, args("mount", "--daemon", "--pid-file", pidFile, mnt)...))
			pid := readPid(t, pidFile)
			found = append(found, procLeaks(t, pid, "mount daemon", secrets, ps.inEnv)...)
			unmount(t, mnt, pid)

			wenv, wflags := ps.setup(wrongFile)
			hw := hs.With(wenv...)
			wargs := append(append([]string{"-v"}, wflags...), "snapshots")
			r = hw.Run(t, wargs...)
			if r.Code != exitWrongPassword {
				t.Errorf("a wrong password: want exit %d: %s", exitWrongPassword, r)
			}
			judge(r)
			for _, f := range found {
				t.Error(f)
			}
		})
	}
}

// procLeaks reads a running process's command line and, unless the
// password is there by the caller's choice, its environment.
func procLeaks(t testing.TB, pid int, what string, secrets []string, inEnv bool) []string {
	t.Helper()
	files := []string{"cmdline"}
	if !inEnv {
		files = append(files, "environ")
	}
	var found []string
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), f))
		if err != nil || len(b) == 0 {
			// On a loaded machine even a long backup may be done first;
			// the mount daemon, which runs until unmounted, is always read.
			t.Logf("the %s (pid %d) ended before the test could read its %s (%v)", what, pid, f, err)
			return found
		}
		found = append(found, leaks("the "+f+" of the "+what, bytes.ReplaceAll(b, []byte{0}, []byte{' '}), secrets)...)
	}
	return found
}

func readPid(t testing.TB, pidFile string) int {
	t.Helper()
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("mount --daemon wrote no pid file: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// unmount unmounts mnt, if mounted, and waits for the daemon to exit.
func unmount(t testing.TB, mnt string, pid int) {
	t.Helper()
	if out, err := exec.Command("fusermount3", "-u", mnt).CombinedOutput(); err != nil && !bytes.Contains(out, []byte("not mounted")) {
		t.Errorf("fusermount3 -u %s: %v: %s", mnt, err, out)
	}
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
		if err != nil || bytes.Contains(b, []byte(") Z ")) {
			return
		}
	}
	t.Errorf("mount daemon %d still running 10 s after unmount", pid)
}
