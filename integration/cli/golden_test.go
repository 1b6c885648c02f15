package cli

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hindsight-backup/hindsight/integration/damage"
	"golang.org/x/sys/unix"
)

var updateGolden = flag.Bool("update-golden", false, "regenerate ../testdata/v1 (a repository made by the current binary) before testing it")

// goldenDir holds a repository written by an earlier hindsight: PASSWORD,
// manifest.json (what a restore of its one snapshot must produce) and
// repo/. The repository is committed without its index, scratch and lock
// directories: the index is a cache the binary must rebuild, and git keeps
// no empty directories.
const goldenDir = "../testdata/v1"

// goldenMaxBytes keeps the fixture small enough to live in git.
const goldenMaxBytes = 200 << 10

type goldenEntry struct {
	Path    string `json:"path"` // relative to the backed-up directory; "." is the directory itself
	Type    string `json:"type"` // "dir", "file" or "symlink"
	Mode    string `json:"mode"` // permission and setuid/setgid/sticky bits, octal
	Size    int64  `json:"size"`
	SHA256  string `json:"sha256,omitempty"`
	Target  string `json:"target,omitempty"`
	MtimeNS int64  `json:"mtime_ns"`
	// Xattrs are the user.* attributes, as strings.
	Xattrs map[string]string `json:"xattrs,omitempty"`
	// LinkOf names the entry (first in path order) sharing this one's
	// inode, for every other name of a hardlinked file.
	LinkOf string `json:"link_of,omitempty"`
}

type goldenManifest struct {
	Snapshot string        `json:"snapshot"`
	Entries  []goldenEntry `json:"entries"`
}

// TestGoldenRepository restores the snapshot of a repository made by an
// earlier version and compares it with the manifest written then: a change
// of the repository format that breaks reading old repositories fails
// here. It works on a copy, laid out as a git checkout has it.
func TestGoldenRepository(t *testing.T) {
	if *updateGolden {
		makeGolden(t)
	}
	pwBytes, err := os.ReadFile(filepath.Join(goldenDir, "PASSWORD"))
	if err != nil {
		t.Fatalf("the golden fixture is missing (go test ./integration/cli -run TestGoldenRepository -update-golden makes it): %v", err)
	}
	password := strings.TrimSuffix(string(pwBytes), "\n")
	var m goldenManifest
	mb, err := os.ReadFile(filepath.Join(goldenDir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(mb, &m); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	fixture := filepath.Join(goldenDir, "repo")
	checkGoldenFixture(t, fixture)
	before := damage.State(t, fixture)

	repo := filepath.Join(t.TempDir(), "repo")
	copyTree(t, fixture, repo)
	env := hsEnv(password)
	snaps := hsWith(t, env, "snapshots", "--repo", repo, "--json")
	if snaps.code != 0 || !strings.Contains(snaps.stdout, m.Snapshot) || strings.Count(snaps.stdout, "\n") != 1 {
		t.Fatalf("the golden repository should list exactly snapshot %s: %s", m.Snapshot, snaps)
	}
	dst := filepath.Join(t.TempDir(), "restore")
	if r := hsWith(t, env, "restore", "--repo", repo, "latest", "--target", dst, "--verify"); r.code != 0 {
		t.Fatalf("restore of the golden repository: %s", r)
	}
	got := manifestOf(t, dst)
	want := map[string]goldenEntry{}
	for _, e := range m.Entries {
		want[e.Path] = e
	}
	for _, g := range got {
		w, ok := want[g.Path]
		if !ok {
			t.Errorf("restore made %s, which the manifest does not list", g.Path)
			continue
		}
		delete(want, g.Path)
		if g.Path == "." {
			// The target directory's own metadata is the restorer's
			// business, not the format's.
			continue
		}
		if diff := diffEntry(w, g); diff != "" {
			t.Errorf("restored %s differs from the manifest: %s", g.Path, diff)
		}
	}
	for p := range want {
		t.Errorf("the manifest lists %s, which the restore did not make", p)
	}

	if r := hsWith(t, env, "check", "--repo", repo, "--read-data"); r.code != 0 {
		t.Errorf("check --read-data of the golden repository: %s", r)
	}
	if after := damage.State(t, fixture); !slices.Equal(before, after) {
		t.Errorf("the test changed the committed fixture %s", fixture)
	}
}

// checkGoldenFixture holds the committed fixture to what git can carry and
// what the test claims: regular files only, no index, no scratch, no
// locks, small.
func checkGoldenFixture(t testing.TB, fixture string) {
	t.Helper()
	for _, d := range []string{"index", "index.sock", "tmp", "locks"} {
		if exists(filepath.Join(fixture, d)) {
			t.Errorf("the golden fixture holds %s: it must be committed without it", d)
		}
	}
	var total int64
	err := filepath.WalkDir(goldenDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			entries, err := os.ReadDir(p)
			if err != nil {
				return err
			}
			if len(entries) == 0 {
				t.Errorf("the golden fixture has an empty directory %s, which git does not keep", p)
			}
		case fi.Mode().IsRegular():
			total += fi.Size()
		default:
			t.Errorf("the golden fixture holds %s of mode %v: git keeps regular files only", p, fi.Mode())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if total > goldenMaxBytes {
		t.Errorf("the golden fixture is %d bytes, over the %d limit", total, goldenMaxBytes)
	}
}

func diffEntry(want, got goldenEntry) string {
	var d []string
	add := func(field string, w, g any) {
		if fmt.Sprint(w) != fmt.Sprint(g) {
			d = append(d, fmt.Sprintf("%s %v, want %v", field, g, w))
		}
	}
	add("type", want.Type, got.Type)
	add("mode", want.Mode, got.Mode)
	add("size", want.Size, got.Size)
	add("sha256", want.SHA256, got.SHA256)
	add("target", want.Target, got.Target)
	add("mtime", time.Unix(0, want.MtimeNS).UTC().Format(time.RFC3339Nano), time.Unix(0, got.MtimeNS).UTC().Format(time.RFC3339Nano))
	add("xattrs", want.Xattrs, got.Xattrs)
	add("hardlink of", want.LinkOf, got.LinkOf)
	return strings.Join(d, "; ")
}

// manifestOf describes the tree at root, in path order.
func manifestOf(t testing.TB, root string) []goldenEntry {
	t.Helper()
	var out []goldenEntry
	inodes := map[uint64]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		e := goldenEntry{Path: filepath.ToSlash(rel), Mode: fmt.Sprintf("%04o", st.Mode&0o7777), MtimeNS: st.Mtim.Nano()}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			e.Type = "dir"
		case unix.S_IFLNK:
			e.Type = "symlink"
			if e.Target, err = os.Readlink(p); err != nil {
				return err
			}
			e.Size = int64(len(e.Target))
		case unix.S_IFREG:
			e.Type = "file"
			e.Size = st.Size
			if e.SHA256, err = sha256File(p); err != nil {
				return err
			}
			if st.Nlink > 1 {
				if first, ok := inodes[st.Ino]; ok {
					e.LinkOf = first
				} else {
					inodes[st.Ino] = e.Path
				}
			}
		default:
			return fmt.Errorf("%s: unexpected file type %o", p, st.Mode&unix.S_IFMT)
		}
		if e.Type != "symlink" {
			if e.Xattrs, err = userXattrs(p); err != nil {
				return err
			}
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sha256File(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func userXattrs(p string) (map[string]string, error) {
	buf := make([]byte, 4096)
	n, err := unix.Listxattr(p, buf)
	if errors.Is(err, unix.ENOTSUP) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listxattr %s: %w", p, err)
	}
	var out map[string]string
	for name := range strings.SplitSeq(string(buf[:n]), "\x00") {
		if !strings.HasPrefix(name, "user.") {
			continue
		}
		v := make([]byte, 4096)
		m, err := unix.Getxattr(p, name, v)
		if err != nil {
			return nil, fmt.Errorf("getxattr %s %s: %w", p, name, err)
		}
		if out == nil {
			out = map[string]string{}
		}
		out[name] = string(v[:m])
	}
	return out, nil
}

// makeGolden builds the source tree, backs it up with the current binary
// into a fresh repository and replaces ../testdata/v1 with it.
func makeGolden(t *testing.T) {
	const password = "golden"
	src := filepath.Join(t.TempDir(), "golden-src")
	type file struct {
		path, content string
		mode          os.FileMode
	}
	dirs := []struct {
		path string
		mode os.FileMode
	}{{"", 0o755}, {"docs", 0o750}, {"docs/nested", 0o755}, {"empty", 0o700}, {"bin", 0o755}}
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(src, d.path), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := []file{
		{"hello.txt", "hello, golden repository\n", 0o644},
		{"docs/readme.md", "# Golden\n\nA repository written by an earlier hindsight.\n", 0o644},
		{"docs/nested/deep.txt", "deep\n", 0o640},
		{"bin/tool.sh", "#!/bin/sh\necho golden\n", 0o755},
		{"private.txt", "secret\n", 0o600},
		{"with-xattr.txt", "has an extended attribute\n", 0o644},
		{"hardlink-a", "two names, one inode\n", 0o644},
		{"empty-file", "", 0o644},
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(src, f.path), []byte(f.content), f.mode); err != nil {
			t.Fatal(err)
		}
	}
	// 300 KiB drawn at random from four letters: pseudo-random (one chunk,
	// no repetition to find) yet compressible to a quarter, so the fixture
	// stays small and exercises zstd. Full-entropy bytes could not fit in
	// goldenMaxBytes.
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], 20240601)
	rnd := make([]byte, 300<<10)
	if _, err := io.ReadFull(rand.NewChaCha8(key), rnd); err != nil {
		t.Fatal(err)
	}
	for i, b := range rnd {
		rnd[i] = "ACGT"[b&3]
	}
	if err := os.WriteFile(filepath.Join(src, "random.txt"), rnd, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(src, "hardlink-a"), filepath.Join(src, "hardlink-b")); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"link-to-hello": "hello.txt", "docs/link-up": "../docs", "dangling": "no/such/target"} {
		if err := os.Symlink(target, filepath.Join(src, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Setxattr(filepath.Join(src, "with-xattr.txt"), "user.golden", []byte("xattr value"), 0); err != nil {
		t.Fatalf("setxattr (the fixture needs a filesystem with user xattrs in TMPDIR): %v", err)
	}
	// Modes are set after creation, past the umask.
	for _, f := range files {
		if err := os.Chmod(filepath.Join(src, f.path), f.mode); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range dirs {
		if err := os.Chmod(filepath.Join(src, d.path), d.mode); err != nil {
			t.Fatal(err)
		}
	}
	// Fixed, distinct nanosecond mtimes, deepest first so that setting a
	// child's time does not move its directory's.
	entries := manifestOf(t, src)
	base := time.Date(2021, 6, 15, 12, 34, 56, 0, time.UTC)
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		ts := unix.NsecToTimespec(base.Add(time.Duration(i)*time.Hour + time.Duration(i*111_111_111%1e9)).UnixNano())
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(src, e.Path), []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			t.Fatal(err)
		}
	}

	repo := filepath.Join(t.TempDir(), "repo")
	env := hsEnv(password)
	// v1 is a repository as the versions before xaes-256-gcm became the
	// default made them, and a regenerated v1 must stay one.
	if r := hsWith(t, env, "init", "--repo", repo, "--encryption", "xchacha20-poly1305"); r.code != 0 {
		t.Fatal(r)
	}
	r := hsWith(t, env, "backup", "--repo", repo, "--host", "golden", "--tag", "golden", "--json", src)
	if r.code != 0 {
		t.Fatal(r)
	}
	snap := parseBackup(t, r)
	for _, d := range []string{"index", "index.sock", "tmp", "locks"} {
		if err := os.RemoveAll(filepath.Join(repo, d)); err != nil {
			t.Fatal(err)
		}
	}
	m := goldenManifest{Snapshot: snap.Snapshot, Entries: manifestOf(t, src)}
	mj, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(goldenDir); err != nil {
		t.Fatal(err)
	}
	copyTree(t, repo, filepath.Join(goldenDir, "repo"))
	if err := os.WriteFile(filepath.Join(goldenDir, "PASSWORD"), []byte(password+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(goldenDir, "manifest.json"), append(mj, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s: snapshot %s", goldenDir, snap.Snapshot)
}
