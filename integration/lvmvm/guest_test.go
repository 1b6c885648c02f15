//go:build lvmvm_guest

package lvmvm

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The guest tests run inside the VM as root with real lvm2 on the blank
// disks in $LVMVM_DISKS, and hindsight in /payload/dir.

const (
	hs       = "/payload/dir/hindsight"
	repo     = "/tmp/repo"
	stateDir = "/run/hindsight/lvm"
	mib      = 1 << 20
)

func TestMain(m *testing.M) {
	if err := setup(); err != nil {
		fmt.Fprintln(os.Stderr, "setup:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// setup makes vg0 of the VM's disks and an unencrypted repository: the
// key derivation of an encrypted one takes long under emulation and is
// not what these tests are about.
func setup() error {
	disks := strings.Fields(os.Getenv("LVMVM_DISKS"))
	if len(disks) == 0 {
		return fmt.Errorf("LVMVM_DISKS is empty: not in the VM")
	}
	for _, c := range [][]string{
		append([]string{"pvcreate", "-q", "-y"}, disks...),
		append([]string{"vgcreate", "-q", "vg0"}, disks...),
		{hs, "init", "--repo", repo, "--encryption", "none"},
	} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v\n%s", strings.Join(c, " "), err, out)
		}
	}
	return nil
}

type result struct {
	code           int
	stdout, stderr string
}

func run(t *testing.T, name string, args ...string) result {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "HINDSIGHT_REPOSITORY="+repo)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	r := result{stdout: o.String(), stderr: e.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return r
}

func must(t *testing.T, name string, args ...string) string {
	t.Helper()
	r := run(t, name, args...)
	if r.code != 0 {
		t.Fatalf("%s %s: exit %d\n%s%s", name, strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// backup runs "hindsight lvm backup --json ARGS" and returns the snapshot.
func backup(t *testing.T, args ...string) string {
	t.Helper()
	out := must(t, hs, append([]string{"lvm", "backup", "--json"}, args...)...)
	var s struct {
		ID string `json:"snapshot_id"`
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil || s.ID == "" {
		t.Fatalf("backup summary %q: %v", out, err)
	}
	return s.ID
}

func newLV(t *testing.T, name, size, fstype string) string {
	t.Helper()
	must(t, "lvcreate", "-q", "-y", "-n", name, "-L", size, "vg0")
	dev := "/dev/vg0/" + name
	if fstype != "" {
		must(t, "mkfs."+fstype, "-q", dev)
	}
	return dev
}

func mountAt(t *testing.T, dev, dir string, opts ...string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	must(t, "mount", append(opts, dev, dir)...)
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
}

func writeFiles(t *testing.T, dir string, seed uint64, n int) {
	t.Helper()
	rnd := rand.New(rand.NewPCG(seed, 3))
	for i := range n {
		b := make([]byte, rnd.IntN(2*mib))
		for j := range b {
			b[j] = byte(rnd.Uint32())
		}
		sub := filepath.Join(dir, fmt.Sprintf("d%d", i%4))
		if err := os.MkdirAll(sub, 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%02d", i)), b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
}

// sums maps every regular file below dir to its SHA-256.
func sums(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || !fi.Mode().IsRegular() || strings.Contains(p, "lost+found") {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[rel] = sha256.Sum256(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func devSum(t *testing.T, dev string, n int64) [32]byte {
	t.Helper()
	f, err := os.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyN(h, f, n); err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

// leftovers lists hindsight's snapshots and mounts still present.
func leftovers(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, l := range strings.Fields(must(t, "lvs", "--noheadings", "-o", "lv_name", "vg0")) {
		if strings.HasPrefix(l, "hindsight-") {
			out = append(out, l)
		}
	}
	b, _ := os.ReadFile("/proc/mounts")
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], stateDir) {
			out = append(out, "mount "+f[1])
		}
	}
	return out
}

// TestFiles backs up the files of a mounted ext4 and XFS volume through
// real snapshots, then restores each onto a fresh volume with mkfs: fsck
// clean, UUID kept, every file bit-exact.
func TestFiles(t *testing.T) {
	for _, fstype := range []string{"ext4", "xfs"} {
		t.Run(fstype, func(t *testing.T) {
			dev := newLV(t, "files-"+fstype, "320M", fstype)
			origin := "/mnt/files-" + fstype
			mountAt(t, dev, origin)
			writeFiles(t, origin, 1, 10)
			id := backup(t, "vg0/files-"+fstype)
			if l := leftovers(t); len(l) != 0 {
				t.Errorf("left behind: %v", l)
			}
			out := must(t, hs, "lvm", "restore", id, "vg0/files-"+fstype+"-new", "--size", "auto")
			if !strings.Contains(out, "fsck clean") {
				t.Errorf("restore output %q", out)
			}
			newDev := "/dev/vg0/files-" + fstype + "-new"
			uuid := func(d string) string {
				return strings.TrimSpace(must(t, "blkid", "-p", "-o", "value", "-s", "UUID", d))
			}
			if uuid(newDev) != uuid(dev) {
				t.Errorf("UUID %s, want %s", uuid(newDev), uuid(dev))
			}
			restored := origin + "-restored"
			mountAt(t, newDev, restored, "-o", map[string]string{"ext4": "ro", "xfs": "ro,nouuid"}[fstype])
			want, got := sums(t, origin), sums(t, restored)
			if len(want) != 10 || fmt.Sprint(want) != fmt.Sprint(got) {
				t.Errorf("restored files differ: %d files, want %d", len(got), len(want))
			}
		})
	}
}

// TestThin: a thin volume gets a thin snapshot, which is activated,
// mounted, backed up and removed.
func TestThin(t *testing.T) {
	must(t, "lvcreate", "-q", "-y", "-T", "vg0/pool", "-L", "128M")
	must(t, "lvcreate", "-q", "-y", "-V", "96M", "-T", "vg0/pool", "-n", "thin1")
	must(t, "mkfs.ext4", "-q", "/dev/vg0/thin1")
	mountAt(t, "/dev/vg0/thin1", "/mnt/thin1")
	writeFiles(t, "/mnt/thin1", 2, 4)
	backup(t, "vg0/thin1")
	if l := leftovers(t); len(l) != 0 {
		t.Errorf("left behind: %v", l)
	}
}

// TestImage backs up a volume as an image and writes it onto a fresh
// volume: bit-exact.
func TestImage(t *testing.T) {
	const size = 128 * mib
	dev := newLV(t, "img", "128M", "ext4")
	mountAt(t, dev, "/mnt/img")
	writeFiles(t, "/mnt/img", 3, 6)
	must(t, "umount", "/mnt/img")
	want := devSum(t, dev, size)
	id := backup(t, "--image", "vg0/img")
	must(t, hs, "lvm", "restore", "--image", id, "vg0/img-new")
	if devSum(t, "/dev/vg0/img-new", size) != want {
		t.Error("restored image differs")
	}
	if l := leftovers(t); len(l) != 0 {
		t.Errorf("left behind: %v", l)
	}
}

// startBackup starts an image backup of lv and waits for its snapshot.
func startBackup(t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(hs, append([]string{"lvm", "backup", "--image"}, args...)...)
	cmd.Env = append(os.Environ(), "HINDSIGHT_REPOSITORY="+repo)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(2 * time.Minute); len(leftovers(t)) == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no snapshot appeared: %s", stderr.String())
		}
	}
	return cmd, &stderr
}

func randomLV(t *testing.T, name string, mb int) string {
	t.Helper()
	dev := newLV(t, name, fmt.Sprintf("%dM", mb), "")
	must(t, "dd", "if=/dev/urandom", "of="+dev, "bs=1M", fmt.Sprintf("count=%d", mb))
	return dev
}

// TestOverflow writes more to the origin than the snapshot can hold while
// the backup reads it: the backup fails, says why, and records nothing.
func TestOverflow(t *testing.T) {
	dev := randomLV(t, "ov", 192)
	cmd, stderr := startBackup(t, "--snapshot-size", "8M", "vg0/ov")
	must(t, "dd", "if=/dev/urandom", "of="+dev, "bs=1M", "count=32", "oflag=direct", "conv=notrunc")
	err := cmd.Wait()
	if err == nil || !strings.Contains(stderr.String(), "invalidated") {
		t.Errorf("backup of an overflowing snapshot: %v\n%s", err, stderr)
	}
	if out := must(t, hs, "snapshots"); strings.Contains(out, "vg0/ov") {
		t.Errorf("a snapshot was recorded:\n%s", out)
	}
	if l := leftovers(t); len(l) != 0 {
		t.Errorf("left behind: %v", l)
	}
}

// TestKill kills a backup while it reads; cleanup removes its snapshot.
func TestKill(t *testing.T) {
	// A backup killed alone: its watchdog removes the snapshot.
	randomLV(t, "kill", 192)
	cmd, _ := startBackup(t, "vg0/kill")
	time.Sleep(500 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	for deadline := time.Now().Add(time.Minute); len(leftovers(t)) != 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("a minute after SIGKILL the watchdog left %v", leftovers(t))
		}
	}
	noDeviceLeft(t)

	// A backup killed with its watchdog, as when the host goes down:
	// lvm cleanup removes what they leave.
	cmd, _ = startBackup(t, "vg0/kill")
	time.Sleep(500 * time.Millisecond)
	for _, pid := range children(t, cmd.Process.Pid) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if l := leftovers(t); len(l) != 1 {
		t.Fatalf("after SIGKILL of the backup and its watchdog: %v, want the snapshot", l)
	}
	must(t, hs, "lvm", "cleanup")
	if l := leftovers(t); len(l) != 0 {
		t.Errorf("left behind after cleanup: %v", l)
	}
	noDeviceLeft(t)
}

func noDeviceLeft(t *testing.T) {
	t.Helper()
	if out := must(t, "dmsetup", "ls"); strings.Contains(out, "hindsight") {
		t.Errorf("device-mapper still has:\n%s", out)
	}
}

// children lists the processes pid started, from every one of its threads
// (Go forks from whichever thread runs the goroutine).
func children(t *testing.T, pid int) []int {
	t.Helper()
	files, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, field := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(field); err == nil {
				out = append(out, n)
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("backup %d has no child process: no watchdog?", pid)
	}
	return out
}

// TestThinChangedBlocks backs up a thin volume as an image twice with 1%
// of its blocks changed between: real lvm2 keeps the first snapshot as the
// base, real thin_delta compares the second with it, and the second
// backup reads under a quarter of what the first did, restoring
// bit-exact. lvm cleanup leaves the base; --bases removes it.
func TestThinChangedBlocks(t *testing.T) {
	t.Setenv("PATH", "/payload/dir/thin:"+os.Getenv("PATH"))
	// Large enough that the chunks around the changes (1 MiB on
	// average, up to 8) stay well under a quarter of it.
	const size = 256 * mib
	must(t, "lvcreate", "-q", "-y", "-T", "vg0/cbtpool", "-L", "512M")
	must(t, "lvcreate", "-q", "-y", "-V", "256M", "-T", "vg0/cbtpool", "-n", "vm")
	dev := "/dev/vg0/vm"
	must(t, "dd", "if=/dev/urandom", "of="+dev, "bs=1M", "count=256", "oflag=direct")

	readBytes := func() (int64, string) {
		t.Helper()
		cmd := exec.Command(hs, "lvm", "backup", "--image", "vg0/vm")
		cmd.Env = append(os.Environ(), "HINDSIGHT_REPOSITORY="+repo)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("lvm backup --image vg0/vm: %v\n%s", err, out)
		}
		return cmd.ProcessState.SysUsage().(*syscall.Rusage).Inblock * 512, string(out)
	}
	first, _ := readBytes()
	if !strings.Contains(must(t, "lvs", "--noheadings", "-o", "lv_name", "vg0"), "hindsight-base-vm") {
		t.Fatal("no base kept")
	}
	// 1% of the blocks: one run of 2 MiB, and a few single blocks.
	must(t, "dd", "if=/dev/urandom", "of="+dev, "bs=1M", "count=2", "seek=40", "oflag=direct", "conv=notrunc")
	for k := range 4 {
		must(t, "dd", "if=/dev/urandom", "of="+dev, "bs=4k", "count=1", fmt.Sprintf("seek=%d", k*15000+1), "oflag=direct", "conv=notrunc")
	}
	second, out := readBytes()
	t.Logf("read %d bytes, then %d after changing 1%% of the blocks", first, second)
	if first < size*9/10 || second > size/4 || strings.Contains(out, "reading all") {
		t.Errorf("read %d bytes, then %d: want all %d, then under a quarter\n%s", first, second, size, out)
	}
	must(t, hs, "restore-volume", "latest", "/tmp/vm.raw")
	if devSum(t, "/tmp/vm.raw", size) != devSum(t, dev, size) {
		t.Error("the image restored from the changed-block backup differs from the volume")
	}
	os.Remove("/tmp/vm.raw")

	must(t, hs, "lvm", "cleanup")
	if !strings.Contains(must(t, "lvs", "--noheadings", "-o", "lv_name", "vg0"), "hindsight-base-vm") {
		t.Error("lvm cleanup removed the base")
	}
	must(t, hs, "lvm", "cleanup", "--bases")
	if l := leftovers(t); len(l) != 0 {
		t.Errorf("left behind after lvm cleanup --bases: %v", l)
	}
	noDeviceLeft(t)
}
