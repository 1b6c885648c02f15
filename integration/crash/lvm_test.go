package crash

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/integration/hsrun"
	"github.com/hindsight-backup/hindsight/integration/lvm/lvmenv"
)

// crashLVM kills "lvm backup" of a mounted ext4 volume of fakelvm's, at
// any moment from its first lvs to its lvremove; every other time it
// kills the snapshot watchdog too, as the host losing power would. After
// each kill "lvm cleanup" must leave no snapshot and no mount.
func crashLVM(h *harness) {
	t := h.t
	e := lvmenv.New(t, binDir, hsBin, chunkstore.TestPassword, 256<<20)
	initRepo(t, e.Repo)
	h.hs = hsrun.Runner{Bin: hsBin, Env: e.CmdEnv()}
	origin := e.MountAt(e.NewVolume("web", 64<<20, "ext4"))
	tr := newTree(t, origin, h.rng)
	var watchdogs, cleaned int
	h.backups(tr, e.Repo, backupCommand{
		args: e.HSArgs("lvm", "backup", "--json", "vg0/web"),
		onKill: func(p *hsrun.Proc) func() {
			children := childrenOf(p.Cmd.Process.Pid)
			all, watchdog := h.rng.IntN(2) == 0, false
			for pid, cmdline := range children {
				if strings.Contains(cmdline, "--after-exit") {
					watchdog = true
					if all {
						syscall.Kill(pid, syscall.SIGKILL)
						watchdogs++
					}
				}
			}
			return func() {
				// The watchdog and any lvm2 command or mount under way
				// finish by themselves.
				for pid := range children {
					waitGone(t, pid)
				}
				if left := e.Leftovers(); len(left) > 0 {
					cleaned++
					// Its watchdog removes what a killed backup leaves.
					if watchdog && !all {
						t.Errorf("kill %d: the watchdog left %v (children at the kill: %v)", h.st.kills, left, children)
					}
				}
				if r := e.HS("lvm", "cleanup"); r.Code != 0 {
					loops, _ := exec.Command("losetup", "-a").CombinedOutput()
					state, _ := os.ReadFile(filepath.Join(e.FakeDir, "state.json"))
					t.Fatalf("kill %d (watchdog killed: %v, children at the kill: %v): %s\nloop devices:\n%s\nfakelvm state:\n%s",
						h.st.kills, all, children, r, loops, state)
				}
				if left := e.Leftovers(); len(left) != 0 {
					t.Errorf("kill %d: left behind after lvm cleanup: %v", h.st.kills, left)
				}
			}
		},
	})
	t.Logf("%d kills took the watchdog too; lvm cleanup found something to remove after %d", watchdogs, cleaned)
}

// childrenOf returns the command lines of pid's child processes; none
// once pid has ended. Any of its threads may have started them.
func childrenOf(pid int) map[int]string {
	var b []byte
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/children")
	for _, task := range tasks {
		c, _ := os.ReadFile(task)
		b = append(append(b, ' '), c...)
	}
	out := map[int]string{}
	for _, f := range strings.Fields(string(b)) {
		child, _ := strconv.Atoi(f)
		cmdline, _ := os.ReadFile(filepath.Join("/proc", f, "cmdline"))
		out[child] = strings.ReplaceAll(string(cmdline), "\x00", " ")
	}
	return out
}

// waitGone waits for pid to end: to be gone or a zombie that its new
// parent has not reaped.
func waitGone(t testing.TB, pid int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return
		}
		if i := strings.LastIndexByte(string(b), ')'); i > 0 && strings.HasPrefix(string(b[i+1:]), " Z") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d still runs a minute after its parent was killed", pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
