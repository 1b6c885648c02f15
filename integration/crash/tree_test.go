package crash

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// tree is a small source tree that changes between backups: a few
// hundred files of incompressible content, two of them big enough to be
// cut into several chunks. Every byte it writes is new, so the content a
// backup must store is known exactly.
type tree struct {
	dir   string
	rng   *rand.Rand
	files []string // relative paths of the small files
	big   []string // and of the big ones
	made  int      // names and contents handed out
}

func newTree(t testing.TB, dir string, rng *rand.Rand) *tree {
	tr := &tree{dir: dir, rng: rng}
	for i := range 280 {
		tr.add(t, fmt.Sprintf("d%d/s%d", i%6, i%4))
	}
	for i := range 2 {
		tr.big = append(tr.big, fmt.Sprintf("big%d", i))
		tr.write(t, tr.big[i], 600<<10+tr.rng.Int64N(600<<10))
	}
	return tr
}

// add writes a new small file in dir and returns its size.
func (tr *tree) add(t testing.TB, dir string) int64 {
	tr.made++
	p := filepath.Join(dir, fmt.Sprintf("f%04d", tr.made))
	tr.files = append(tr.files, p)
	return tr.write(t, p, 1<<10+tr.rng.Int64N(30<<10))
}

// write gives rel size bytes never written before.
func (tr *tree) write(t testing.TB, rel string, size int64) int64 {
	t.Helper()
	tr.made++
	var key [32]byte
	copy(key[:], fmt.Sprintf("%d/%d", tr.rng.Uint64(), tr.made))
	p := filepath.Join(tr.dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(p)
	if err == nil {
		_, err = io.CopyN(f, rand.NewChaCha8(key), size)
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		t.Fatal(err)
	}
	return size
}

// mutate rewrites, adds, removes and chmods a few files, and returns
// the bytes of content it wrote: what a backup of the result stores
// besides directory trees.
func (tr *tree) mutate(t testing.TB) int64 {
	t.Helper()
	var n int64
	perm := tr.rng.Perm(len(tr.files))
	for _, i := range perm[:70] { // rewritten
		n += tr.write(t, tr.files[i], 1<<10+tr.rng.Int64N(32<<10))
	}
	for _, i := range perm[70:74] { // mode changed only
		if err := os.Chmod(filepath.Join(tr.dir, tr.files[i]), os.FileMode(0o600+tr.rng.IntN(0o100))); err != nil {
			t.Fatal(err)
		}
	}
	// One big file, cut into several chunks, so that packs fill mid-file.
	n += tr.write(t, tr.big[tr.rng.IntN(len(tr.big))], 520<<10+tr.rng.Int64N(700<<10))
	gone := map[int]bool{}
	for _, i := range perm[74:77] {
		if err := os.Remove(filepath.Join(tr.dir, tr.files[i])); err != nil {
			t.Fatal(err)
		}
		gone[i] = true
	}
	kept := tr.files[:0]
	for i, f := range tr.files {
		if !gone[i] {
			kept = append(kept, f)
		}
	}
	tr.files = kept
	for range 3 {
		n += tr.add(t, fmt.Sprintf("d%d/new", tr.rng.IntN(6)))
	}
	return n
}

// keep copies the tree as it is now to dir, to compare restores with,
// after flushing it to its filesystem (an LVM snapshot copies the device).
func (tr *tree) keep(t testing.TB, dir string) {
	t.Helper()
	fd, err := unix.Open(tr.dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err == nil {
		err = errors.Join(unix.Syncfs(fd), unix.Close(fd))
	}
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", tr.dir, dir).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
}
