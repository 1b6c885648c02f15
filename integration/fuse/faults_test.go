package fuse

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestUnmount stops a foreground mount each way a user or a service
// manager does, with and without a file open on it: the process exits 0
// and the mount point is free again.
func TestUnmount(t *testing.T) {
	r := newRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	small(t, src)
	r.backup(t, src)
	tests := []struct {
		name     string
		stop     func(cmd *exec.Cmd, mnt string) error
		openFile bool
	}{
		{"SIGTERM", signal(syscall.SIGTERM), false},
		{"SIGTERM with a file open", signal(syscall.SIGTERM), true},
		{"Ctrl-C", signal(syscall.SIGINT), false},
		{"Ctrl-C with a file open", signal(syscall.SIGINT), true},
		{"fusermount3 -u", func(_ *exec.Cmd, mnt string) error {
			if out, err := exec.Command("fusermount3", "-u", mnt).CombinedOutput(); err != nil {
				return fmt.Errorf("fusermount3 -u: %v: %s", err, out)
			}
			return nil
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mnt := mountpoint(t)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := r.command(ctx, t, "mount", mnt)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			// /proc/mounts lists the mount before go-fuse's own first
			// request (its poll probe holds a file open) has finished; an
			// unmount in that window fails with EBUSY, so wait for the
			// command to say it is ready, as a person at the terminal would.
			ready := "mounted at " + mnt + ";"
			if !eventually(20*time.Second, func() bool { return mounted(mnt) && strings.Contains(r.logText(), ready) }) {
				t.Fatalf("not mounted after 20s; log:\n%s", r.logText())
			}
			if tc.openFile {
				f, err := os.Open(filepath.Join(latest(t, mnt, src), "big.bin"))
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if _, err := f.Read(make([]byte, 4096)); err != nil {
					t.Fatal(err)
				}
			}
			if err := tc.stop(cmd, mnt); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("mount exited with %v; log:\n%s", err, r.logText())
				}
			case <-time.After(15 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("mount still running 15s after being stopped")
			}
			if mounted(mnt) {
				exec.Command("fusermount3", "-u", "-z", mnt).Run()
				t.Errorf("%s still mounted after the process exited", mnt)
			}
		})
	}
}

func signal(sig syscall.Signal) func(*exec.Cmd, string) error {
	return func(cmd *exec.Cmd, _ string) error { return cmd.Process.Signal(sig) }
}

// TestTwoMounts mounts one repository twice at once.
func TestTwoMounts(t *testing.T) {
	r := newRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	small(t, src)
	r.backup(t, src)
	a, _ := r.mount(t)
	b, _ := r.mount(t)
	for _, mnt := range []string{a, b} {
		if got, err := os.ReadFile(filepath.Join(latest(t, mnt, src), "public.txt")); err != nil || string(got) != "anyone may read this\n" {
			t.Errorf("%s: %q, %v", mnt, got, err)
		}
	}
}

// TestCorruptPack damages the pack holding one file's content: reading
// that file fails with EIO and a log line that names the file and the
// pack, while other files stay readable and the mount stays up.
func TestCorruptPack(t *testing.T) {
	r := newRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	small(t, src)
	r.backup(t, src)
	old := packs(t, r.dir)
	// Content of its own: random(n) is a prefix of big.bin, whose chunks
	// it would share past its first cut, leaving the new pack too small
	// for the damage below to land in it.
	victimData := random(3 << 20)
	for i := range victimData {
		victimData[i] ^= 0xa5
	}
	if err := os.WriteFile(filepath.Join(src, "victim.bin"), victimData, 0o644); err != nil {
		t.Fatal(err)
	}
	r.backup(t, src)
	fresh := slices.DeleteFunc(packs(t, r.dir), func(p string) bool { return slices.Contains(old, p) })
	// The new data pack is the large one; the other holds the new trees.
	slices.SortFunc(fresh, func(a, b string) int { return int(size(t, b) - size(t, a)) })
	if len(fresh) < 2 {
		t.Fatalf("the second backup wrote packs %q, want a data and a tree pack", fresh)
	}
	victim := fresh[0]
	f, err := os.OpenFile(victim, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(make([]byte, 4096), 1<<20); err != nil {
		t.Fatal(err)
	}
	f.Close()

	mnt, _ := r.mount(t)
	snap := latest(t, mnt, src)
	_, err = os.ReadFile(filepath.Join(snap, "victim.bin"))
	if !errors.Is(err, syscall.EIO) {
		t.Errorf("reading the damaged file: %v, want EIO", err)
	}
	if got, err := os.ReadFile(filepath.Join(snap, "public.txt")); err != nil || len(got) == 0 {
		t.Errorf("an undamaged file: %v", err)
	}
	if !mounted(mnt) {
		t.Fatalf("the mount went away")
	}
	logText := r.logText()
	pack := filepath.Base(victim)
	if !strings.Contains(logText, "victim.bin") || !strings.Contains(logText, pack) {
		t.Errorf("no log line naming victim.bin and pack %s:\n%s", pack, logText)
	}
}

func packs(t testing.TB, repo string) []string {
	t.Helper()
	ps, err := filepath.Glob(filepath.Join(repo, "packs", "*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

func size(t testing.TB, p string) int64 {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}
