package inputs

import (
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/hindsight-backup/hindsight/integration/damage"
	"github.com/hindsight-backup/hindsight/integration/hsrun"
	"github.com/hindsight-backup/hindsight/integration/testtree"
	"github.com/hindsight-backup/hindsight/integration/treecmp"
)

// roCase is one way a repository becomes unwritable: protect makes the
// repository at repo so and returns the path hindsight is given and the
// settings of its processes.
type roCase struct {
	name    string
	protect func(t *testing.T, repo string) (string, *syscall.SysProcAttr)
}

var roCases = []roCase{
	{"read-only bind mount", func(t *testing.T, repo string) (string, *syscall.SysProcAttr) {
		ro := repo + "-ro"
		if err := os.Mkdir(ro, 0o755); err != nil {
			t.Fatal(err)
		}
		mount(t, []string{"--bind", repo, ro}, []string{"-o", "remount,bind,ro", ro})
		return ro, nil
	}},
	{"loop filesystem remounted ro", func(t *testing.T, repo string) (string, *syscall.SysProcAttr) {
		img, mnt := repo+".img", repo+"-loop"
		if err := os.Mkdir(mnt, 0o755); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("mkfs.ext4", "-q", "-F", img, "32M").CombinedOutput()
		testtree.Require(t, err == nil, "mkfs.ext4: %v: %s", err, out)
		mount(t, []string{"-o", "loop", img, mnt})
		if out, err := exec.Command("cp", "-a", repo, mnt).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v: %s", err, out)
		}
		mount(t, []string{"-o", "remount,ro", mnt})
		return filepath.Join(mnt, filepath.Base(repo)), nil
	}},
	{"read-only modes", func(t *testing.T, repo string) (string, *syscall.SysProcAttr) {
		err := filepath.WalkDir(repo, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			mode := os.FileMode(0o444)
			if d.IsDir() {
				mode = 0o555
			}
			if err := os.Chown(p, nobody, nobody); err != nil {
				return err
			}
			return os.Chmod(p, mode)
		})
		if err != nil {
			t.Fatal(err)
		}
		return repo, &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	}},
}

// mount runs mount with each argument list in turn and unmounts the last
// argument of the first when t ends.
func mount(t *testing.T, argLists ...[]string) {
	t.Helper()
	for _, args := range argLists {
		out, err := exec.Command("mount", args...).CombinedOutput()
		testtree.Require(t, err == nil, "mount %v: %v: %s", args, err, out)
	}
	first := argLists[0]
	t.Cleanup(func() { unmount(t, first[len(first)-1]) })
}

// roEnv is what a read-only test's commands are given.
type roEnv struct {
	src, home, first string // the backed-up tree, a writable directory, the first snapshot's ID
	image            string // the ID of a snapshot of src/a.txt as an image
	repo             string // the path hindsight is given
	hs               hsrun.Runner
}

// roCommand is one command run on a read-only repository. Reading
// commands must work, and check must judge what they printed; writing
// ones must fail with exit 1 and one line naming the repository and
// saying "read-only".
type roCommand struct {
	args  func(e roEnv) []string
	check func(t *testing.T, e roEnv, r hsrun.Result) // nil: the command writes
}

func fixed(args ...string) func(roEnv) []string { return func(roEnv) []string { return args } }

func says(words ...string) func(t *testing.T, e roEnv, r hsrun.Result) {
	return func(t *testing.T, e roEnv, r hsrun.Result) {
		t.Helper()
		for _, w := range words {
			if !strings.Contains(r.Stdout, strings.ReplaceAll(w, "SRC", e.src)) {
				t.Errorf("output lacks %q: %s", w, r)
			}
		}
	}
}

var roCommands = map[string]roCommand{
	"snapshots": {fixed("snapshots"), says("3 snapshots")},
	"ls":        {fixed("ls", "latest"), says("a.txt", "b.txt")},
	"find":      {fixed("find", "b.txt"), says("SRC/b.txt")},
	"diff":      {func(e roEnv) []string { return []string{"diff", e.first, "latest"} }, says("b.txt")},
	"history": {func(e roEnv) []string { return []string{"history", "--host", "ro", filepath.Join(e.src, "a.txt")} },
		says("file")},
	"stats":     {fixed("stats"), says("blob bytes stored")},
	"check":     {fixed("check", "--read-data"), says("0 problems, 0 notices")},
	"key list":  {fixed("key", "list"), says("Created")},
	"remote ls": {fixed("remote", "list"), func(*testing.T, roEnv, hsrun.Result) {}},
	"restore": {func(e roEnv) []string {
		return []string{"restore", "latest", "--target", filepath.Join(e.home, "restore")}
	},
		func(t *testing.T, e roEnv, _ hsrun.Result) {
			sameTree(t, e.src, filepath.Join(e.home, "restore"), treecmp.Options{SkipRootMeta: true})
		}},
	"restore-volume": {func(e roEnv) []string {
		return []string{"restore-volume", e.image, filepath.Join(e.home, "image")}
	}, func(t *testing.T, e roEnv, _ hsrun.Result) {
		got, err := os.ReadFile(filepath.Join(e.home, "image"))
		if err != nil || string(got) != "first\n" {
			t.Errorf("restored image %q, %v; want a.txt's first content", got, err)
		}
	}},
	"clone": {func(e roEnv) []string { return []string{"clone", e.repo, filepath.Join(e.home, "clone")} },
		func(t *testing.T, e roEnv, _ hsrun.Result) {
			e.hs.With("HINDSIGHT_REPOSITORY="+filepath.Join(e.home, "clone")).Must(t, "check")
		}},

	"backup":          {func(e roEnv) []string { return []string{"backup", e.src} }, nil},
	"backup-volume":   {func(e roEnv) []string { return []string{"backup-volume", filepath.Join(e.src, "a.txt")} }, nil},
	"forget":          {fixed("forget", "--keep-last", "1"), nil},
	"prune":           {fixed("prune"), nil},
	"tag":             {fixed("tag", "latest", "--add", "ro"), nil},
	"index rebuild":   {fixed("index", "rebuild"), nil},
	"repair packs":    {fixed("repair", "packs"), nil},
	"repair snapshot": {fixed("repair", "snapshots"), nil},
	"key add": {func(e roEnv) []string {
		return []string{"key", "add", "--new-password-file", filepath.Join(e.home, "pw2")}
	}, nil},
	"remote add": {func(e roEnv) []string { return []string{"remote", "add", "x", e.home} }, nil},
	"push":       {fixed("push", "offsite"), nil},
}

// TestReadOnlyRepository runs every command on a repository it cannot
// write: a read-only bind mount and a loop filesystem remounted
// read-only (as root), and a tree of read-only modes (as nobody, whom
// modes bind). Commands that read must work without writing (no lock, an
// index of their own in the cache); the others must fail before they
// write, with exit 1 and one line that names the repository and says
// "read-only". No command may change the repository, panic or show a
// stack.
func TestReadOnlyRepository(t *testing.T) {
	requireRoot(t)
	for _, tt := range roCases {
		t.Run(tt.name, func(t *testing.T) {
			home := nobodyDir(t)
			src := filepath.Join(home, "src")
			write(t, filepath.Join(src, "a.txt"), "first\n")
			// Owned by nobody, so that nobody restores them as they were.
			os.Chown(src, nobody, nobody)
			os.Chown(filepath.Join(src, "a.txt"), nobody, nobody)
			write(t, filepath.Join(home, "pw2"), "another password\n")
			repo := filepath.Join(home, "repo")
			hs := newRepo(t, repo)
			image := parseBackup(t, hs.Must(t, "backup-volume", "--json", filepath.Join(src, "a.txt")))
			first := parseBackup(t, hs.Must(t, "backup", "--json", "--host", "ro", src))
			write(t, filepath.Join(src, "b.txt"), "added later\n")
			os.Chown(filepath.Join(src, "b.txt"), nobody, nobody)
			hs.Must(t, "backup", "--host", "ro", src)
			// What a nobody's commands write outside the repository.
			for _, d := range []string{"cache", "config", "offsite"} {
				os.Mkdir(filepath.Join(home, d), 0o755)
				os.Chown(filepath.Join(home, d), nobody, nobody)
			}
			hs.Must(t, "remote", "add", "offsite", filepath.Join(home, "offsite"))

			path, attr := tt.protect(t, repo)
			before := damage.State(t, path)
			ro := hs.With("HINDSIGHT_REPOSITORY="+path, "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, "config"),
				"XDG_CACHE_HOME="+filepath.Join(home, "cache"), "XDG_RUNTIME_DIR="+home)
			ro.SysProcAttr = attr
			e := roEnv{src: src, home: home, first: first.ID, image: image.ID, repo: path, hs: ro}
			for _, name := range slices.Sorted(maps.Keys(roCommands)) {
				c := roCommands[name]
				t.Run(name, func(t *testing.T) {
					r := ro.Run(t, c.args(e)...)
					noStack(t, r)
					if c.check == nil {
						wantReadOnly(t, r, path)
						return
					}
					if r.Code != 0 {
						t.Fatalf("a command that only reads failed: %s", r)
					}
					c.check(t, e, r)
				})
			}
			// FUSE as nobody needs a /dev/fuse that others may open,
			// which this machine's is not; the mount opens the
			// repository as ls and restore do.
			if attr == nil {
				t.Run("mount", func(t *testing.T) {
					mountRead(t, ro, home, src)
				})
			}
			if after := damage.State(t, path); !slices.Equal(before, after) {
				t.Errorf("the repository changed:\nbefore %q\nafter  %q", before, after)
			}
		})
	}
}

// mountRead mounts the repository and reads the latest snapshot back.
func mountRead(t *testing.T, ro hsrun.Runner, home, src string) {
	_, err := exec.LookPath("fusermount3")
	testtree.Require(t, err == nil, "fusermount3 (Debian package fuse3): %v", err)
	mnt := filepath.Join(home, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chown(mnt, nobody, nobody)
	t.Cleanup(func() { exec.Command("fusermount3", "-u", mnt).Run() })
	r := ro.Run(t, "mount", "--daemon", "--pid-file", filepath.Join(home, "pid"), mnt)
	noStack(t, r)
	if r.Code != 0 {
		t.Fatalf("mount of a read-only repository: %s", r)
	}
	// Read as root: the mount shows the original owners and modes.
	snap := filepath.Join(mnt, "ro-"+strings.ReplaceAll(strings.Trim(src, "/"), "/", "-"), "latest")
	sameTree(t, src, snap, treecmp.Options{SkipRootMeta: true})
}

func noStack(t *testing.T, r hsrun.Result) {
	t.Helper()
	for _, w := range []string{"panic", "goroutine ", "pebble"} {
		if strings.Contains(r.Stderr, w) {
			t.Errorf("stderr shows %q: %s", w, r)
		}
	}
}

// wantReadOnly demands exit 1 and one line that names the repository at
// path and says it is read-only.
func wantReadOnly(t *testing.T, r hsrun.Result, path string) {
	t.Helper()
	msg := strings.TrimSpace(r.Stderr)
	if r.Code != exitFailure || strings.Count(msg, "\n") > 0 || !strings.Contains(msg, "read-only") || !strings.Contains(msg, path) {
		t.Errorf("want exit %d and one line saying %s is read-only: %s", exitFailure, path, r)
	}
}
