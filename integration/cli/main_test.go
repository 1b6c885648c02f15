package cli

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hindsight-backup/hindsight/integration/hsrun"
	"github.com/hindsight-backup/hindsight/integration/testtree"
	"github.com/hindsight-backup/hindsight/integration/treecmp"
)

const testPassword = "cli-test-password"

// commandTimeout bounds every hindsight run: a hang must fail its test with
// the command's output, not run into go test's global timeout, which only
// dumps goroutines of the test binary.
const commandTimeout = 3 * time.Minute

var (
	hsBin   string // the hindsight binary TestMain built
	scratch string // TestMain's directory, for data shared between tests
	// xdgDir is an empty configuration directory, so that a developer's
	// ~/.config/hindsight/config.toml cannot change what the tests run.
	xdgDir string
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "hindsight-cli-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	scratch = dir
	xdgDir = filepath.Join(dir, "xdg")
	if err := os.Mkdir(xdgDir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return hsrun.Main(m, &hsBin)
}

// hsEnv is the caller's environment without any HINDSIGHT_* setting (a
// developer's HINDSIGHT_REPOSITORY must never receive test backups), with
// the password given the way cron jobs usually give it.
func hsEnv(password string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "HINDSIGHT_") || strings.HasPrefix(kv, "XDG_CONFIG_HOME=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "HINDSIGHT_PASSWORD="+password, "XDG_CONFIG_HOME="+xdgDir)
}

// result is one finished run of the binary.
type result struct {
	args   []string
	code   int
	stdout string
	stderr string
	took   time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("hindsight %s: exit %d after %s\nstdout:\n%s\nstderr:\n%s",
		strings.Join(r.args, " "), r.code, r.took.Round(time.Millisecond), r.stdout, r.stderr)
}

// hs runs the binary to completion with the test password.
func hs(t testing.TB, args ...string) result {
	t.Helper()
	return hsWith(t, hsEnv(testPassword), args...)
}

func hsWith(t testing.TB, env []string, args ...string) result {
	t.Helper()
	p := startWith(t, env, args...)
	return p.wait(t)
}

// mustHS runs the binary and fails the test unless it exits 0.
func mustHS(t testing.TB, args ...string) result {
	t.Helper()
	r := hs(t, args...)
	if r.code != 0 {
		t.Fatalf("expected exit 0 from %s", r)
	}
	return r
}

// proc is a running hindsight process.
type proc struct {
	cmd            *exec.Cmd
	args           []string
	stdout, stderr lockedBuffer
	start          time.Time
	done           chan struct{}
	end            time.Time
	waitErr        error
	cancel         context.CancelFunc
	timedOut       func() bool
}

func start(t testing.TB, args ...string) *proc {
	t.Helper()
	return startWith(t, hsEnv(testPassword), args...)
}

func startWith(t testing.TB, env []string, args ...string) *proc {
	t.Helper()
	return startTimeout(t, commandTimeout, env, args...)
}

// startTimeout starts the binary, to be stopped (SIGQUIT, then SIGKILL)
// after timeout.
func startTimeout(t testing.TB, timeout time.Duration, env []string, args ...string) *proc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	cmd := exec.CommandContext(ctx, hsBin, args...)
	cmd.Env = env
	cmd.Stdin = nil // not a terminal: no prompt, no progress line
	p := &proc{cmd: cmd, args: args, done: make(chan struct{}), cancel: cancel}
	p.timedOut = func() bool { return errors.Is(ctx.Err(), context.DeadlineExceeded) }
	cmd.Stdout = &p.stdout
	cmd.Stderr = &p.stderr
	// A process that overstays gets SIGQUIT first: the Go runtime then
	// prints every goroutine's stack, which says where it hung. SIGKILL
	// follows if even that does not end it.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGQUIT) }
	cmd.WaitDelay = 10 * time.Second
	p.start = time.Now()
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start hindsight %v: %v", args, err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		p.end = time.Now()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			_ = cmd.Process.Kill()
			<-p.done
		}
		cancel()
	})
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitUpTo reports whether the process exits within d.
func (p *proc) waitUpTo(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// hsPrompt runs a command that must finish within limit. A command that
// hangs gets SIGTERM, which the CLI promises to obey; the failure says
// whether it did.
func hsPrompt(t testing.TB, limit time.Duration, args ...string) result {
	t.Helper()
	p := startTimeout(t, limit+30*time.Second, hsEnv(testPassword), args...)
	if p.waitUpTo(limit) {
		return p.wait(t)
	}
	p.signal(t, syscall.SIGTERM)
	obeyed := p.waitUpTo(10 * time.Second)
	if !obeyed {
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	out := p.stderr.String()
	if len(out) > 4000 {
		out = out[:2000] + "\n...\n" + out[len(out)-2000:]
	}
	t.Fatalf("hindsight %s still running after %s (exited on SIGTERM within 10 s: %v)\nstdout:\n%s\nstderr (%d lines):\n%s",
		strings.Join(args, " "), limit, obeyed, p.stdout.String(), strings.Count(p.stderr.String(), "\n"), out)
	return result{}
}

func (p *proc) signal(t testing.TB, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v to hindsight %v: %v", sig, p.args, err)
	}
}

func (p *proc) wait(t testing.TB) result {
	t.Helper()
	<-p.done
	p.cancel()
	r := result{args: p.args, stdout: p.stdout.String(), stderr: p.stderr.String(), took: p.end.Sub(p.start), code: -1}
	if p.timedOut() {
		t.Fatalf("killed (SIGQUIT, for a stack dump) after %s: %s", r.took.Round(time.Second), r)
	}
	var ee *exec.ExitError
	switch {
	case p.waitErr == nil:
		r.code = 0
	case errors.As(p.waitErr, &ee):
		r.code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			t.Fatalf("died of signal %v (it must exit on its own, with a code): %s", ws.Signal(), r)
		}
	default:
		t.Fatalf("waiting for hindsight: %v: %s", p.waitErr, r)
	}
	return r
}

// lockedBuffer lets a test look at a running process's output while
// exec's copying goroutine appends to it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func initRepo(t testing.TB, repo string) {
	t.Helper()
	mustHS(t, "init", "--repo", repo)
}

// backupJSON is the part of `backup --json` the tests judge.
type backupJSON struct {
	Snapshot    string   `json:"snapshot_id"`
	Complete    bool     `json:"complete"`
	Files       uint64   `json:"files"`
	Bytes       uint64   `json:"bytes"`
	NewBytes    uint64   `json:"new_bytes"`
	StoredBytes uint64   `json:"stored_bytes"`
	Incomplete  []string `json:"incomplete"`
}

func parseBackup(t testing.TB, r result) backupJSON {
	t.Helper()
	var b backupJSON
	if err := json.Unmarshal([]byte(r.stdout), &b); err != nil {
		t.Fatalf("backup --json printed no JSON object: %v\n%s", err, r)
	}
	if len(b.Snapshot) != 64 {
		t.Fatalf("backup --json: snapshot_id %q is not a full ID\n%s", b.Snapshot, r)
	}
	return b
}

// snapshotJSON is one line of `snapshots --json`.
type snapshotJSON struct {
	ID         string    `json:"id"`
	Time       time.Time `json:"time"`
	Source     string    `json:"source"`
	Incomplete []string  `json:"incomplete"`
	Stats      struct {
		Files       uint64  `json:"files"`
		Bytes       uint64  `json:"bytes"`
		DurationSec float64 `json:"duration_seconds"`
	} `json:"stats"`
}

func listSnapshots(t testing.TB, repo string) []snapshotJSON {
	t.Helper()
	r := mustHS(t, "snapshots", "--repo", repo, "--json")
	var out []snapshotJSON
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	for {
		var s snapshotJSON
		err := dec.Decode(&s)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("snapshots --json: %v\n%s", err, r)
		}
		out = append(out, s)
	}
}

// writeRandomFile fills path with size incompressible bytes that depend on
// seed only: distinct seeds give content that shares no chunk, so the
// tests know exactly what deduplication may save.
func writeRandomFile(t testing.TB, path string, size int64, seed uint64) {
	t.Helper()
	if err := randomFile(path, size, seed); err != nil {
		t.Fatal(err)
	}
}

func randomFile(path string, size int64, seed uint64) error {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	copy(key[8:], "hindsight-cli")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.CopyN(f, rand.NewChaCha8(key), size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

const mib = 1 << 20

// randomTree writes 100 MiB: a few large files (several chunks each, so
// packs fill mid-file) and ten 1 MiB ones.
func randomTree(dir string, seed uint64) (int64, error) {
	var total int64
	for i, size := range []int64{40 * mib, 30 * mib, 20 * mib} {
		if err := randomFile(filepath.Join(dir, fmt.Sprintf("large-%d.bin", i)), size, seed*1000+uint64(i)); err != nil {
			return 0, err
		}
		total += size
	}
	for i := range 10 {
		if err := randomFile(filepath.Join(dir, "small", fmt.Sprintf("s%02d.bin", i)), mib, seed*1000+100+uint64(i)); err != nil {
			return 0, err
		}
		total += mib
	}
	return total, nil
}

var (
	bigOnce sync.Once
	bigErr  error
	bigSize int64
)

// bigTree is 300 MiB of random files in three 100 MiB subtrees a, b and c,
// made once and shared (read-only) by the tests that need volume. An error
// making it fails every test that asks for it, not only the first.
func bigTree(t testing.TB) (root string, size int64) {
	t.Helper()
	root = filepath.Join(scratch, "big")
	bigOnce.Do(func() {
		for i, sub := range []string{"a", "b", "c"} {
			n, err := randomTree(filepath.Join(root, sub), uint64(i+1))
			if err != nil {
				bigErr = err
				return
			}
			bigSize += n
		}
	})
	if bigErr != nil {
		t.Fatalf("making the shared source tree: %v", bigErr)
	}
	return root, bigSize
}

// compareTree demands that dst is an exact copy of src: content, types,
// modes, owners, times, xattrs and hardlinks.
func compareTree(t testing.TB, src, dst string) {
	t.Helper()
	diffs, err := treecmp.Compare(src, dst, treecmp.Options{SkipRootMeta: true})
	if err != nil {
		t.Fatalf("comparing %s with its restore %s: %v", src, dst, err)
	}
	for i, d := range diffs {
		if i == 20 {
			t.Errorf("... and %d more differences", len(diffs)-i)
			break
		}
		t.Errorf("restore of %s differs: %s", src, d)
	}
}

// filesIn lists the non-directory entries below dir (recursively), as
// paths relative to dir; a missing dir has none.
func filesIn(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == dir {
			return fs.SkipAll
		}
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// packFiles returns REPO/packs/xx/ID paths, biggest first.
func packFiles(t testing.TB, repo string) []string {
	t.Helper()
	var packs []string
	for _, rel := range filesIn(t, filepath.Join(repo, "packs")) {
		packs = append(packs, filepath.Join(repo, "packs", rel))
	}
	size := func(p string) int64 {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	slices.SortFunc(packs, func(a, b string) int { return int(size(b) - size(a)) })
	return packs
}

func requireRoot(t testing.TB) {
	t.Helper()
	testtree.Require(t, os.Geteuid() == 0, "needs root (loop mounts)")
}

// loopMount makes a filesystem of fstype in a sparse image of size bytes
// and mounts it; it is unmounted, and its loop device freed, when the test
// ends. mountOpts (like "ro") are added to "loop".
func loopMount(t testing.TB, fstype string, size int64, mkfsArgs ...string) (mnt, img string) {
	t.Helper()
	requireRoot(t)
	mkfs := "mkfs." + fstype
	_, err := exec.LookPath(mkfs)
	testtree.Require(t, err == nil, "%s not installed (integration/scripts/install-test-deps.sh installs it)", mkfs)
	dir := t.TempDir()
	img = filepath.Join(dir, fstype+".img")
	mnt = filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, size); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(mkfs, append(mkfsArgs, img)...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", mkfs, err, out)
	}
	mount(t, img, mnt, "loop")
	return mnt, img
}

// mount mounts img on mnt and registers the unmount; a machine that cannot
// mount loop devices skips (or, under CI, fails) the test.
func mount(t testing.TB, img, mnt, opts string) {
	t.Helper()
	out, err := exec.Command("mount", "-o", opts, img, mnt).CombinedOutput()
	testtree.Require(t, err == nil, "mount -o %s %s: %v: %s", opts, img, err, out)
	t.Cleanup(func() { umount(t, mnt) })
}

func umount(t testing.TB, mnt string) {
	t.Helper()
	if !isMountPoint(mnt) {
		return
	}
	if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
		t.Errorf("umount %s: %v: %s", mnt, err, out)
		// Lazily, so that TempDir's removal does not descend into it.
		_ = exec.Command("umount", "-l", mnt).Run()
	}
}

func isMountPoint(dir string) bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == dir {
			return true
		}
	}
	return false
}
