package index

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
)

// The cross-process tests run this test binary again as a second process
// (the os/exec pattern): TestHelperProcess is that process's whole life.
const helperEnv = "HINDSIGHT_INDEX_HELPER"

// TestHelperProcess opens the index named in its environment and writes
// packs [first, first+n). As "client" it must find the index held and
// exits when done; as "holder" it must hold the index, prints "ready"
// once its packs are written, and closes the index when stdin closes.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("run by the cross-process tests")
	}
	fail := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "helper: "+format+"\n", args...)
		os.Exit(2)
	}
	if mode == "intruder" {
		if _, err := dialClient(os.Getenv("HELPER_DIR") + ".sock"); err != nil {
			fmt.Println("refused:", err)
			os.Exit(0)
		}
		fail("a process of another user talked to the holder")
	}
	first, _ := strconv.Atoi(os.Getenv("HELPER_FIRST"))
	n, _ := strconv.Atoi(os.Getenv("HELPER_N"))
	s, err := OpenShared(vfs.Default, os.Getenv("HELPER_DIR"), Options{})
	if err != nil {
		fail("open: %v", err)
	}
	if s.holding() != (mode == "holder") {
		fail("%s: holding = %v", mode, s.holding())
	}
	for i := first; i < first+n; i++ {
		if err := s.AddPack(testPack(i, 1)); err != nil {
			fail("AddPack %d: %v", i, err)
		}
	}
	if mode == "holder" {
		fmt.Println("ready")
		io.Copy(io.Discard, os.Stdin)
	}
	if err := s.Close(); err != nil {
		fail("close: %v", err)
	}
	os.Exit(0)
}

type helper struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr bytes.Buffer
	done   chan error
}

func startHelper(t testing.TB, mode, dir string, first, n int) *helper {
	t.Helper()
	h := &helper{cmd: exec.Command(os.Args[0], "-test.run=^TestHelperProcess$"), done: make(chan error, 1)}
	h.cmd.Env = append(os.Environ(), helperEnv+"="+mode, "HELPER_DIR="+dir,
		"HELPER_FIRST="+strconv.Itoa(first), "HELPER_N="+strconv.Itoa(n))
	h.cmd.Stderr = &h.stderr
	stdout, err := h.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if h.stdin, err = h.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.cmd.Process.Kill(); <-h.done })
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		ok := false
		for sc.Scan() {
			if sc.Text() == "ready" && !ok {
				ok = true
				ready <- true
			}
		}
		if !ok {
			ready <- false
		}
		h.done <- h.cmd.Wait()
	}()
	if mode == "holder" {
		select {
		case ok := <-ready:
			if !ok {
				t.Fatalf("holder process ended before it was ready: %s", &h.stderr)
			}
		case <-time.After(time.Minute):
			t.Fatal("holder process not ready after a minute")
		}
	}
	return h
}

// wait waits for the helper's exit, which must be clean.
func (h *helper) wait(t testing.TB) {
	t.Helper()
	select {
	case err := <-h.done:
		h.done <- err // for the cleanup
		if err != nil {
			t.Fatalf("helper: %v: %s", err, &h.stderr)
		}
	case <-time.After(time.Minute):
		t.Fatalf("helper still running after a minute: %s", &h.stderr)
	}
}

// TestProcessClientWrites: this process holds the index throughout; another
// process writes through it and exits.
func TestProcessClientWrites(t *testing.T) {
	dir := indexDir(t)
	s := openSharedT(t, dir)
	const n = 200
	startHelper(t, "client", dir, 0, n).wait(t)
	if !s.holding() {
		t.Fatal("the holder lost the index")
	}
	checkPacks(t, s, 0, n)
}

// writeLoop writes and reads back packs [first, first+n) in the background.
func writeLoop(st Store, first, n int) <-chan error {
	errc := make(chan error, 1)
	go func() {
		for i := first; i < first+n; i++ {
			p, e := testPack(i, 1)
			if err := st.AddPack(p, e); err != nil {
				errc <- fmt.Errorf("AddPack %d: %w", i, err)
				return
			}
			if _, ok, err := st.Lookup(blob.Data, e[0].ID); !ok || err != nil {
				errc <- fmt.Errorf("Lookup %d: %v %v", i, ok, err)
				return
			}
			time.Sleep(100 * time.Microsecond) // spread the loop over the handover
		}
		errc <- nil
	}()
	return errc
}

// takeover has another process hold the index while this one writes as its
// client; end makes the holder go away while this process keeps writing.
// This process must then hold the index with every pack in it.
func takeover(t *testing.T, end func(*helper)) {
	dir := indexDir(t)
	h := startHelper(t, "holder", dir, 0, 100)
	s := openSharedT(t, dir)
	if s.holding() {
		t.Fatal("opened as holder while another process holds the index")
	}
	checkPacks(t, s, 0, 100)
	errc := writeLoop(s, 100, 1000)
	time.Sleep(20 * time.Millisecond)
	end(h)
	select {
	case err := <-errc:
		t.Fatalf("the loop ended (%v) before the holder went away: nothing was tested", err)
	default:
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !s.holding() {
		t.Fatal("this process did not take the index over")
	}
	checkPacks(t, s, 0, 1100)
	third := openSharedT(t, dir)
	if third.holding() {
		t.Fatal("a third opener took the lock from the new holder")
	}
	checkPacks(t, third, 0, 1100)
}

func TestProcessHolderExits(t *testing.T) {
	takeover(t, func(h *helper) {
		h.stdin.Close()
		h.wait(t)
	})
}

func TestProcessHolderKilled(t *testing.T) {
	takeover(t, func(h *helper) {
		if err := h.cmd.Process.Kill(); err != nil { // SIGKILL: no Close, no cleanup
			t.Fatal(err)
		}
	})
}

// TestProcessManyClients has several processes write through one holder
// at once, while this process writes too.
func TestProcessManyClients(t *testing.T) {
	dir := indexDir(t)
	s := openSharedT(t, dir)
	const procs, each = 3, 100
	helpers := make([]*helper, procs)
	for i := range helpers {
		helpers[i] = startHelper(t, "client", dir, (i+1)*each, each)
	}
	errc := writeLoop(s, 0, each)
	for _, h := range helpers {
		h.wait(t)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	checkPacks(t, s, 0, (procs+1)*each)
}

// BenchmarkLookupProcess measures a Lookup from a client process to a
// holder process, as two backups of one repository make them.
func BenchmarkLookupProcess(b *testing.B) {
	dir := indexDir(b)
	const n = 1000
	startHelper(b, "holder", dir, 0, n)
	s := openSharedT(b, dir)
	ids := make([]blob.ID, n)
	for i := range ids {
		_, e := testPack(i, 1)
		ids[i] = e[0].ID
	}
	for _, par := range []int{0, 1, 4} {
		name := "serial"
		if par > 0 {
			name = fmt.Sprintf("parallel-%dxGOMAXPROCS", par)
		}
		b.Run(name, func(b *testing.B) {
			if par == 0 {
				for i := 0; b.Loop(); i++ {
					if _, ok, err := s.Lookup(blob.Data, ids[i%n]); !ok || err != nil {
						b.Fatal(ok, err)
					}
				}
				return
			}
			b.SetParallelism(par)
			b.RunParallel(func(pb *testing.PB) {
				for i := 0; pb.Next(); i++ {
					if _, ok, err := s.Lookup(blob.Data, ids[i%n]); !ok || err != nil {
						b.Error(ok, err)
						return
					}
				}
			})
		})
	}
}

// TestSocketRefusesOtherUsers runs a process as nobody against the socket:
// the socket's mode refuses it, and with the mode opened up by hand the
// holder's peer check still does.
func TestSocketRefusesOtherUsers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a process as another user")
	}
	// Everything the other user must reach up to the socket is world-readable:
	// only the socket itself keeps it out.
	base, err := os.MkdirTemp("", "hindsight-index-perm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(base, "index.test")
	if err := copyFile(os.Args[0], bin); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(base, "index")
	openSharedT(t, dir)

	intrude := func() string {
		t.Helper()
		cmd := exec.Command(bin, "-test.run=^TestHelperProcess$")
		cmd.Dir = base
		cmd.Env = append(os.Environ(), helperEnv+"=intruder", "HELPER_DIR="+dir)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("intruder: %v: %s", err, out)
		}
		return string(out)
	}
	if out := intrude(); !strings.Contains(out, "permission denied") {
		t.Fatalf("with mode 0600: %s", out)
	}
	if err := os.Chmod(dir+".sock", 0o666); err != nil {
		t.Fatal(err)
	}
	if out := intrude(); !strings.Contains(out, "refused:") {
		t.Fatalf("with mode 0666: %s", out)
	}
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o755)
}
