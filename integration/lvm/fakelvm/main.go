// Command fakelvm emulates the lvm2 commands hindsight uses (lvs, vgs,
// lvcreate, lvcreate -s, lvremove, lvrename, lvchange -an; dmsetup message and
// thin_delta for thin volumes, see thin.go) on loop devices over image
// files, for machines whose kernel has no device-mapper. Only LVM's metadata is
// emulated: volumes are real block devices that real mkfs, mount and
// restore work on. Install it under each command's name (a symlink) and
// set FAKELVM_DIR to the directory that holds its state and images.
//
// A snapshot is a copy of its origin's image taken at lvcreate time, so it
// never changes with the origin; overflow cannot happen by itself and is
// injected instead. Test hooks, all through the environment:
//
//	FAKELVM_INVALIDATE_ON_QUERY=N  a snapshot turns invalid at the Nth lvs
//	                               report that names it
//	FAKELVM_SIGNAL_PARENT=CMD#N:SIG  after the Nth run of CMD (lvs,
//	                               lvcreate, ...) send SIG (KILL, TERM, INT,
//	                               QUIT) to the calling process; KILLALL
//	                               kills its other children first
//
// Besides the lvm2 names it answers "fakelvm vgcreate VG BYTES" (a volume
// group of that size with 4 MiB extents), "fakelvm invalidate VG/LV" and
// "fakelvm teardown" (detach every loop device and remove the state) and
// "fakelvm reset-counts" (count runs for FAKELVM_SIGNAL_PARENT from here).
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const extentSize = 4 << 20

type state struct {
	VGs    map[string]*vg `json:"vgs"`
	Counts map[string]int `json:"counts"` // runs per command, for FAKELVM_SIGNAL_PARENT
	// MetadataSnaps holds the volume groups whose pool has a metadata
	// snapshot reserved.
	MetadataSnaps map[string]bool `json:"metadata_snaps,omitempty"`
}

type vg struct {
	Size       uint64         `json:"size"`
	LVs        map[string]*lv `json:"lvs"`
	NextThinID int            `json:"next_thin_id,omitempty"`
	NextUUID   int            `json:"next_uuid,omitempty"`
}

type lv struct {
	Size    uint64 `json:"size"`
	Image   string `json:"image"`
	Loop    string `json:"loop"`
	Origin  string `json:"origin,omitempty"`
	Thin    bool   `json:"thin,omitempty"`
	ThinID  int    `json:"thin_id,omitempty"`
	UUID    string `json:"uuid"`
	Invalid bool   `json:"invalid,omitempty"`
	Queries int    `json:"queries,omitempty"`
}

func (g *vg) used() uint64 {
	var n uint64
	for _, l := range g.LVs {
		if !l.Thin || l.Origin == "" {
			n += l.Size
		}
	}
	return n
}

// exitError carries lvm2's exit code (5: command failed) and its message.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func failf(format string, args ...any) error {
	return &exitError{code: 5, msg: "  " + fmt.Sprintf(format, args...)}
}

func main() {
	// A caller killed while this runs leaves its stdout a broken pipe:
	// the answer is lost, but the work must still be recorded, as lvm2
	// commits its metadata before it reports. Without this, Go's default
	// SIGPIPE would end a removal after losetup -d and before the state
	// is saved, leaving a volume whose loop device is gone.
	signal.Ignore(syscall.SIGPIPE)
	cmd := filepath.Base(os.Args[0])
	args := os.Args[1:]
	if cmd == "fakelvm" && len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	var sig syscall.Signal
	var all bool
	err := withState(func(st *state) error {
		err := run(st, cmd, args)
		st.Counts[cmd]++
		if err == nil {
			sig, all, err = parentSignal(st, cmd)
		}
		return err
	})
	if sig != 0 {
		// Signalled once the state is saved and unlocked: the caller may
		// kill this command as soon as it sees the signal.
		if all {
			// The host going down: the caller and every other child of
			// it (its snapshot watchdog) die at once.
			killChildren(os.Getppid())
		}
		err = errors.Join(err, syscall.Kill(os.Getppid(), sig))
		// The signal arrives while this command runs, as it would during
		// a slow lvs: the caller handles it before it sees the answer.
		// Without the pause, a loaded machine may deliver it only after
		// the caller went on, at a later phase than the test meant.
		time.Sleep(2 * time.Second)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		code := 1
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
		os.Exit(code)
	}
}

// commands are the emulated commands of lvm2 and device-mapper.
var commands = map[string]func(*state, []string) error{
	"vgcreate": vgcreate, "vgs": vgs, "lvs": lvs, "lvcreate": lvcreate, "lvremove": lvremove,
	"lvrename": lvrename, "lvchange": lvchange, "dmsetup": dmsetup, "thin_delta": thinDelta,
}

func run(st *state, cmd string, args []string) error {
	if f := commands[cmd]; f != nil {
		return f(st, args)
	}
	switch cmd {
	case "invalidate":
		l, _, err := find(st, args[len(args)-1])
		if err == nil {
			l.Invalid = true
		}
		return err
	case "teardown":
		return teardown(st)
	case "reset-counts":
		st.Counts = map[string]int{}
		return nil
	}
	return fmt.Errorf("fakelvm: unknown command %q", cmd)
}

// withState runs fn on the state under an exclusive lock and saves it.
func withState(fn func(*state) error) error {
	dir := os.Getenv("FAKELVM_DIR")
	if dir == "" {
		return errors.New("fakelvm: FAKELVM_DIR is not set")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	path := filepath.Join(dir, "state.json")
	st := &state{VGs: map[string]*vg{}, Counts: map[string]int{}}
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, st); err != nil {
			return err
		}
	}
	ferr := fn(st)
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path+".tmp", b, 0o600); err != nil {
		return err
	}
	return errors.Join(ferr, os.Rename(path+".tmp", path))
}

// parentSignal is the signal FAKELVM_SIGNAL_PARENT asks for after this
// run of cmd, if any; all says to kill the caller's other children too.
func parentSignal(st *state, cmd string) (sig syscall.Signal, all bool, err error) {
	spec := os.Getenv("FAKELVM_SIGNAL_PARENT")
	if spec == "" {
		return 0, false, nil
	}
	at, name, _ := strings.Cut(spec, ":")
	cmdName, nth, _ := strings.Cut(at, "#")
	n, _ := strconv.Atoi(nth)
	if cmdName != cmd || st.Counts[cmd] != n {
		return 0, false, nil
	}
	if name == "KILLALL" {
		name, all = "KILL", true
	}
	sig = map[string]syscall.Signal{"KILL": syscall.SIGKILL, "TERM": syscall.SIGTERM, "INT": syscall.SIGINT,
		"QUIT": syscall.SIGQUIT}[name]
	if sig == 0 {
		return 0, false, fmt.Errorf("fakelvm: FAKELVM_SIGNAL_PARENT=%q: unknown signal", spec)
	}
	return sig, all, nil
}

// killChildren sends SIGKILL to every process whose parent is ppid, but
// this one.
func killChildren(ppid int) {
	procs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		i := strings.LastIndexByte(string(b), ')')
		f := strings.Fields(string(b[i+1:]))
		pid, _ := strconv.Atoi(strings.Fields(string(b))[0])
		if len(f) > 1 && f[1] == strconv.Itoa(ppid) && pid != os.Getpid() {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

func vgcreate(st *state, args []string) error {
	if len(args) != 2 {
		return errors.New("usage: fakelvm vgcreate VG BYTES")
	}
	size, err := strconv.ParseUint(args[1], 10, 64)
	if err != nil {
		return err
	}
	st.VGs[args[0]] = &vg{Size: size / extentSize * extentSize, LVs: map[string]*lv{}}
	return nil
}

// find resolves "VG/LV" (or /dev/VG/LV).
func find(st *state, name string) (*lv, *vg, error) {
	vgName, lvName, _ := strings.Cut(strings.TrimPrefix(name, "/dev/"), "/")
	g := st.VGs[vgName]
	if g == nil {
		return nil, nil, failf("Volume group %q not found", vgName)
	}
	l := g.LVs[lvName]
	if l == nil {
		return nil, g, failf("Failed to find logical volume \"%s/%s\"", vgName, lvName)
	}
	return l, g, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
