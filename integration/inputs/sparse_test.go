package inputs

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hindsight-backup/hindsight/integration/testtree"
)

const gib = 1 << 30

// sparseFile makes a file of size bytes with 1 MiB of data at each offset
// in data, holes everywhere else.
func sparseFile(t testing.TB, p string, size int64, data ...int64) {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for i, off := range data {
		rand.NewChaCha8([32]byte{byte(i)}).Read(buf)
		if _, err := f.WriteAt(buf, off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// allocated is how many bytes of p's blocks the filesystem allocated.
func allocated(t testing.TB, p string) int64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

// TestHugeSparseFile backs up a 20 GiB file that holds 3 MiB of data and a
// 20 GiB file that is one hole. The backup must not read the holes (it
// would take minutes), and the restore must leave them holes: same data
// map (SEEK_DATA/SEEK_HOLE), a few MiB allocated.
func TestHugeSparseFile(t *testing.T) {
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	const size = 20 * gib
	sparse := filepath.Join(src, "sparse.img")
	sparseFile(t, sparse, size, 0, 7*gib+12345, size-1<<20)
	sparseFile(t, filepath.Join(src, "empty.img"), size)
	testtree.Require(t, allocated(t, sparse) < 64<<20, "the filesystem under %s keeps no holes", tmp)

	hs := newRepo(t, filepath.Join(tmp, "repo"))
	start := time.Now()
	b := parseBackup(t, hs.Must(t, "backup", "--json", src))
	took := time.Since(start)
	t.Logf("backup of 2 × 20 GiB sparse files: %s", took.Round(time.Millisecond))
	// Reading 40 GiB of zeros and chunking them takes minutes; skipping
	// the holes takes well under a second of work.
	if took > 30*time.Second {
		t.Errorf("backup of sparse files took %s: it seems to read the holes", took)
	}
	if b.Files != 2 {
		t.Errorf("backup saw %d files, want 2", b.Files)
	}

	target := filepath.Join(tmp, "restore")
	start = time.Now()
	hs.Must(t, "restore", b.ID, "--target", target)
	t.Logf("restore: %s", time.Since(start).Round(time.Millisecond))
	for _, name := range []string{"sparse.img", "empty.img"} {
		want, got := filepath.Join(src, name), filepath.Join(target, name)
		sameSparse(t, want, got)
		if n := allocated(t, got); n > 64<<20 {
			t.Errorf("restored %s has %d MiB allocated: holes were written as data", name, n>>20)
		}
	}
}

// extents returns a file's size and data extents as SEEK_DATA and
// SEEK_HOLE report them.
func extents(t testing.TB, f *os.File) (int64, [][2]int64) {
	t.Helper()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	var out [][2]int64
	for off := int64(0); off < fi.Size(); {
		data, err := unix.Seek(int(f.Fd()), off, unix.SEEK_DATA)
		if err == unix.ENXIO {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		hole, err := unix.Seek(int(f.Fd()), data, unix.SEEK_HOLE)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, [2]int64{data, hole})
		off = hole
	}
	return fi.Size(), out
}

// sameSparse compares two sparse files by their data maps and the bytes
// in their data extents: treecmp would read all 20 GiB of each.
func sameSparse(t testing.TB, want, got string) {
	t.Helper()
	fw, err := os.Open(want)
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Close()
	fg, err := os.Open(got)
	if err != nil {
		t.Fatal(err)
	}
	defer fg.Close()
	sw, ew := extents(t, fw)
	sg, eg := extents(t, fg)
	if sw != sg || !slices.Equal(ew, eg) {
		t.Fatalf("%s: size %d, data %v; want size %d, data %v", got, sg, eg, sw, ew)
	}
	for _, e := range ew {
		a, b := make([]byte, e[1]-e[0]), make([]byte, e[1]-e[0])
		if _, err := fw.ReadAt(a, e[0]); err != nil {
			t.Fatal(err)
		}
		if _, err := fg.ReadAt(b, e[0]); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s: data at %d..%d differs", got, e[0], e[1])
		}
	}
}
