package lvm

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// A killed backup's lvcreate or mount runs on after it: lvm2 commands
// that change metadata are never killed midway, and mount is not either.
// What one makes once the cleanup has looked would outlive the cleanup,
// so Cleanup first waits, up to commandWait, for the commands naming a
// snapshot of ours or one of our mount points to end.
const (
	commandWait = 2 * time.Minute
	commandPoll = 50 * time.Millisecond
)

func (m *Manager) waitCommands(ctx context.Context) error {
	deadline := time.Now().Add(commandWait)
	for len(m.commandsInFlight()) > 0 && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(commandPoll):
		}
	}
	return nil
}

// commandsInFlight lists the processes, other than this one, with an
// argument naming a snapshot of ours or a path below our mount points.
func (m *Manager) commandsInFlight() []int {
	entries, _ := os.ReadDir(m.Proc)
	mnt := filepath.Join(m.StateDir, "mnt") + "/"
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		// Gone meanwhile, or a zombie (an empty command line): not at work.
		b, _ := os.ReadFile(filepath.Join(m.Proc, e.Name(), "cmdline"))
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		for _, a := range args[1:] {
			if strings.Contains(a, SnapshotPrefix) || strings.HasPrefix(a, mnt) {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}
