package testtree

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Op is one kind of change Mutate makes.
type Op string

const (
	// OpContent rewrites bytes in place and then puts size, mtime and atime
	// back: only ctime betrays the change, which is exactly the case an
	// incremental backup must not miss.
	OpContent Op = "content"
	OpAppend  Op = "append"
	// OpMode, OpOwner and OpXattr leave mtime alone, as chmod, chown and
	// setxattr do; only ctime moves.
	OpMode  Op = "mode"
	OpOwner Op = "owner"
	OpXattr Op = "xattr" // a user.* attribute added, or the first one removed
	// OpTouch moves mtime and atime only; the content stays the same.
	OpTouch     Op = "touch"
	OpDelete    Op = "delete"
	OpToDir     Op = "file-to-dir" // the file becomes a directory holding one file, "inside"
	OpToSymlink Op = "file-to-symlink"
	OpAdd       Op = "add" // a new regular file
)

// Change is one change Mutate made at Path.
type Change struct {
	Path string
	Op   Op
}

// ContentChanged reports whether the change alters the content or the type
// at Path (what a per-file history records), as opposed to metadata only.
func (c Change) ContentChanged() bool {
	switch c.Op {
	case OpContent, OpAppend, OpDelete, OpToDir, OpToSymlink, OpAdd:
		return true
	}
	return false
}

var mutateOps = []Op{OpContent, OpAppend, OpMode, OpOwner, OpXattr, OpTouch, OpDelete, OpToDir, OpToSymlink}

// Mutate changes about a tenth of the regular files under dir (at least one
// of each Op), and adds a few files, all decided by seed alone: two equal
// trees mutated with the same seed stay equal. Files with several hard
// links are left alone so that every change shows at exactly one path.
// Entries whose directory gained or lost a name get new, seed-derived
// directory times. The changes are returned sorted by path.
func Mutate(t testing.TB, dir string, seed uint64) []Change {
	t.Helper()
	Require(t, os.Geteuid() == 0, "testtree.Mutate needs root (chown)")
	// O_NOATIME: reading the root must not move its atime, or two trees
	// mutated alike would differ in it.
	root, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOATIME|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("testtree: open %s: %v", dir, err)
	}
	defer unix.Close(root)

	var files, dirs []string
	err = walk(root, "", func(_ int, _, rel string, st *unix.Stat_t) error {
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			if st.Nlink == 1 {
				files = append(files, rel)
			}
		case unix.S_IFDIR:
			dirs = append(dirs, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("testtree: walk %s: %v", dir, err)
	}
	slices.Sort(files)
	slices.Sort(dirs)
	if len(files) < len(mutateOps) || len(dirs) == 0 {
		t.Fatalf("testtree: %s has %d files and %d directories, too few to mutate", dir, len(files), len(dirs))
	}

	m := &mutator{t: t, root: root, seed: seed, r: rand.New(rand.NewPCG(seed, 0x6d7574617465)),
		retime: map[string]bool{}}
	m.r.Shuffle(len(files), func(i, j int) { files[i], files[j] = files[j], files[i] })
	n := max(len(files)/10, len(mutateOps))
	for i, rel := range files[:n] {
		op := mutateOps[i%len(mutateOps)]
		if err := m.apply(rel, op); err != nil {
			t.Fatalf("testtree: mutate %s (%s): %v", short(rel), op, err)
		}
		m.changes = append(m.changes, Change{rel, op})
	}
	for i := range max(n/3, 2) {
		d := dirs[m.r.IntN(len(dirs))]
		rel := path.Join(d, fmt.Sprintf("added-%d-%d", seed, i))
		data := randomBytes(seed*1000+uint64(i), m.r.IntN(256<<10))
		if err := writeFile(root, rel, data, 0o644); err != nil {
			t.Fatalf("testtree: add %s: %v", short(rel), err)
		}
		m.retime[rel] = true
		m.retime[d] = true
		m.changes = append(m.changes, Change{rel, OpAdd})
	}

	salt := seed + 1
	if salt == 0 {
		salt = 1
	}
	for rel := range m.retime {
		ts := stamp(rel, salt)
		err := at(root, rel, func(d int, n string) error {
			return unix.UtimesNanoAt(d, n, ts[:], unix.AT_SYMLINK_NOFOLLOW)
		})
		if err != nil {
			t.Fatalf("testtree: set times on %s: %v", short(rel), err)
		}
	}
	slices.SortFunc(m.changes, func(a, b Change) int { return strings.Compare(a.Path, b.Path) })
	return m.changes
}

type mutator struct {
	t       testing.TB
	root    int
	seed    uint64
	r       *rand.Rand
	changes []Change
	// retime holds the paths that get seed-derived times at the end: new or
	// rewritten entries, and directories that gained or lost a name.
	retime map[string]bool
}

func (m *mutator) apply(rel string, op Op) error {
	parent := path.Dir(rel)
	return at(m.root, rel, func(d int, n string) error {
		switch op {
		case OpContent:
			return rewriteKeepingTimes(d, n)
		case OpAppend:
			fd, err := unix.Openat(d, n, unix.O_WRONLY|unix.O_APPEND|unix.O_CLOEXEC, 0)
			if err != nil {
				return err
			}
			defer unix.Close(fd)
			m.retime[rel] = true
			_, err = unix.Write(fd, randomBytes(m.seed^0xa99e, 1000+m.r.IntN(5000)))
			return err
		case OpMode:
			var st unix.Stat_t
			if err := unix.Fstatat(d, n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return err
			}
			return unix.Fchmodat(d, n, (st.Mode&0o7777)^0o044, 0)
		case OpOwner:
			return unix.Fchownat(d, n, MutateUID, MutateGID, unix.AT_SYMLINK_NOFOLLOW)
		case OpXattr:
			return m.toggleXattr(d, n)
		case OpTouch:
			m.retime[rel] = true
			return nil
		case OpDelete:
			m.retime[parent] = true
			return unix.Unlinkat(d, n, 0)
		case OpToDir:
			if err := unix.Unlinkat(d, n, 0); err != nil {
				return err
			}
			if err := unix.Mkdirat(d, n, 0o755); err != nil {
				return err
			}
			if err := unix.Fchmodat(d, n, 0o755, 0); err != nil {
				return err
			}
			m.retime[parent], m.retime[rel], m.retime[rel+"/inside"] = true, true, true
			return writeFile(d, n+"/inside", []byte(fmt.Sprintf("was a file until seed %d\n", m.seed)), 0o644)
		case OpToSymlink:
			if err := unix.Unlinkat(d, n, 0); err != nil {
				return err
			}
			m.retime[parent], m.retime[rel] = true, true
			return unix.Symlinkat(fmt.Sprintf("was-a-file-until-seed-%d", m.seed), d, n)
		}
		return fmt.Errorf("unknown op %q", op)
	})
}

// rewriteKeepingTimes complements up to 16 bytes in the middle of the file
// (so they surely differ) and puts the old atime and mtime back.
func rewriteKeepingTimes(d int, n string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(d, n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	fd, err := unix.Openat(d, n, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	buf := []byte{0}
	off := st.Size / 2
	if st.Size > 0 {
		buf = make([]byte, min(16, st.Size-off))
		if _, err := unix.Pread(fd, buf, off); err != nil {
			return err
		}
		for i := range buf {
			buf[i] ^= 0xff
		}
	}
	if _, err := unix.Pwrite(fd, buf, off); err != nil {
		return err
	}
	return unix.UtimesNanoAt(d, n, []unix.Timespec{st.Atim, st.Mtim}, unix.AT_SYMLINK_NOFOLLOW)
}

func (m *mutator) toggleXattr(d int, n string) error {
	fd, err := unix.Openat(d, n, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	p := procPath(fd)
	buf := make([]byte, 64<<10)
	sz, err := unix.Listxattr(p, buf)
	if err != nil {
		return err
	}
	var user []string
	for _, name := range strings.Split(string(buf[:sz]), "\x00") {
		if strings.HasPrefix(name, "user.") {
			user = append(user, name)
		}
	}
	if len(user) > 0 {
		slices.Sort(user)
		return unix.Removexattr(p, user[0])
	}
	return unix.Setxattr(p, "user.mutated", []byte(fmt.Sprintf("seed %d", m.seed)), 0)
}
