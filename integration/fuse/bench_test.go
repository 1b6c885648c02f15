package fuse

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkMount measures what users feel through the mount: sequential
// reads of one large file, cold (a fresh mount: nothing in hindsight's
// caches nor in the kernel's page cache of the mount) and warm (read
// again), a find over many files, and the mount process's RSS after the
// walk. Numbers only; nothing here asserts a timing.
//
//	go test ./integration/fuse -run '^$' -bench Mount -benchtime 3x
func BenchmarkMount(b *testing.B) {
	const bigSize = 256 << 20
	const files = 20000
	r := newRepo(b)
	src := filepath.Join(b.TempDir(), "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "big.bin"), random(bigSize), 0o644); err != nil {
		b.Fatal(err)
	}
	for i := range files {
		d := filepath.Join(src, "tree", strconv.Itoa(i%100))
		if err := os.MkdirAll(d, 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, strconv.Itoa(i)), []byte(strconv.Itoa(i)), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	r.backup(b, src)

	b.Run("cat-cold", func(b *testing.B) {
		b.SetBytes(bigSize)
		for b.Loop() {
			b.StopTimer()
			mnt, pid := r.mount(b)
			big := filepath.Join(latest(b, mnt, src), "big.bin")
			b.StartTimer()
			cat(b, big)
			b.StopTimer()
			unmount(b, mnt, pid)
			b.StartTimer()
		}
	})
	mnt, pid := r.mount(b)
	big := filepath.Join(latest(b, mnt, src), "big.bin")
	cat(b, big)
	b.Run("cat-warm", func(b *testing.B) {
		b.SetBytes(bigSize)
		for b.Loop() {
			cat(b, big)
		}
	})
	b.Run("find", func(b *testing.B) {
		for b.Loop() {
			out, err := exec.Command("find", latest(b, mnt, src)).Output()
			if err != nil {
				b.Fatal(err)
			}
			if n := strings.Count(string(out), "\n"); n < files {
				b.Fatalf("find listed %d entries", n)
			}
		}
		b.ReportMetric(rssMB(b, pid), "rss-MB")
	})
}

func cat(b *testing.B, p string) {
	f, err := os.Open(p)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := io.CopyBuffer(io.Discard, f, make([]byte, 1<<20)); err != nil {
		b.Fatal(err)
	}
}

func unmount(b *testing.B, mnt string, pid int) {
	if out, err := exec.Command("fusermount3", "-u", mnt).CombinedOutput(); err != nil {
		b.Fatalf("fusermount3 -u: %v: %s", err, out)
	}
	if !waitGone(pid, 10*time.Second) {
		b.Fatalf("mount process %d did not exit", pid)
	}
}

// rssMB reads the resident set size of process pid.
func rssMB(b *testing.B, pid int) float64 {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(st), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	b.Fatal("no VmRSS")
	return 0
}
