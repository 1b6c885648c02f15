package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hindsight-backup/hindsight/integration/damage"
)

// smallRepo is a repository with one snapshot of a 2 MB random file
// (sub/big.bin, in a data pack of its own) and a small one.
func smallRepo(t testing.TB) (repo, src string, snap backupJSON) {
	t.Helper()
	dir := t.TempDir()
	repo, src = filepath.Join(dir, "repo"), filepath.Join(dir, "src")
	writeRandomFile(t, filepath.Join(src, "sub", "big.bin"), 2_000_000, 42)
	if err := os.WriteFile(filepath.Join(src, "small.txt"), []byte("small\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	initRepo(t, repo)
	snap = parseBackup(t, mustHS(t, "backup", "--repo", repo, "--json", src))
	return repo, src, snap
}

func wantCode(t testing.TB, r result, code int, msgs ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("want exit %d: %s", code, r)
		return
	}
	for _, m := range msgs {
		if !strings.Contains(r.stderr, m) {
			t.Errorf("stderr should contain %q: %s", m, r)
		}
	}
}

func TestWrongPassword(t *testing.T) {
	repo, src, _ := smallRepo(t)
	target := filepath.Join(t.TempDir(), "target")
	before := damage.State(t, repo)
	env := hsEnv("not-the-password")
	for _, args := range [][]string{
		{"snapshots"}, {"ls", "latest"}, {"backup", src}, {"check"}, {"check", "--read-data"},
		{"restore", "latest", "--target", target}, {"stats"}, {"index", "rebuild"}, {"key", "list"},
	} {
		r := hsWith(t, env, append(args, "--repo", repo)...)
		wantCode(t, r, 11, "wrong password")
	}
	// Not a lock object, not an index file, not a scratch directory.
	if after := damage.State(t, repo); !slices.Equal(before, after) {
		t.Errorf("a wrong password changed the repository:\nbefore %q\nafter  %q", before, after)
	}
	if exists(target) {
		t.Errorf("restore with a wrong password created its target %s", target)
	}
}

func TestNotARepository(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	other := filepath.Join(dir, "other")
	file := filepath.Join(dir, "file")
	for _, d := range []string{empty, other} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{filepath.Join(other, "data.txt"), file} {
		if err := os.WriteFile(f, []byte("not a repository\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	missing := filepath.Join(dir, "missing")
	for _, c := range []struct{ name, loc string }{
		{"missing", missing}, {"empty-dir", empty}, {"other-dir", other},
		// README: 10 is "no repository at that location"; a file is none.
		{"regular-file", file},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, args := range [][]string{{"snapshots"}, {"backup", dir}, {"check"}} {
				r := hs(t, append(args, "--repo", c.loc)...)
				wantCode(t, r, 10, c.loc)
			}
		})
	}
	if exists(missing) {
		t.Errorf("a command other than init created the repository directory %s", missing)
	}
	if got := filesIn(t, empty); len(got) != 0 {
		t.Errorf("commands wrote into a directory that is no repository: %v", got)
	}
}

func TestBackupMissingSource(t *testing.T) {
	repo, _, _ := smallRepo(t)
	missing := filepath.Join(t.TempDir(), "no", "such", "dir")
	r := hs(t, "backup", "--repo", repo, missing)
	wantCode(t, r, 1, missing)
	if n := len(listSnapshots(t, repo)); n != 1 {
		t.Errorf("%d snapshots after a backup of a missing path, want the 1 that was there", n)
	}
}

func TestRestoreMissingSnapshot(t *testing.T) {
	repo, _, snap := smallRepo(t)
	// An ID that differs from the real one in its first digit cannot be a
	// prefix of it.
	bogus := "0000"
	if strings.HasPrefix(snap.Snapshot, bogus) {
		bogus = "ffff"
	}
	target := filepath.Join(t.TempDir(), "target")
	r := hs(t, "restore", "--repo", repo, bogus, "--target", target)
	if r.code == 0 {
		t.Fatalf("restore of a snapshot that does not exist: %s", r)
	}
	if !strings.Contains(r.stderr, "no such snapshot") || !strings.Contains(r.stderr, bogus) {
		t.Errorf("the message should say that snapshot %s does not exist: %s", bogus, r)
	}
	if exists(target) {
		t.Errorf("a failed restore created its target %s", target)
	}

	// latest of a repository without snapshots.
	empty := filepath.Join(t.TempDir(), "repo")
	initRepo(t, empty)
	r = hs(t, "restore", "--repo", empty, "latest", "--target", target)
	if r.code == 0 || !strings.Contains(r.stderr, "snapshot") {
		t.Errorf("restore of latest from an empty repository should fail and say there is no snapshot: %s", r)
	}
}

// checkLine is one line of `check --json`.
type checkLine struct {
	Level    string `json:"level"`
	Area     string `json:"area"`
	Snapshot string `json:"snapshot"`
	Pack     string `json:"pack"`
	Blob     string `json:"blob"`
	Path     string `json:"path"`
	Message  string `json:"message"`
}

func checkJSON(t testing.TB, repo string, args ...string) (int, []checkLine) {
	t.Helper()
	r := hs(t, append([]string{"check", "--repo", repo, "--json"}, args...)...)
	var out []checkLine
	for line := range strings.SplitSeq(strings.TrimSpace(r.stdout), "\n") {
		if line == "" {
			continue
		}
		var c checkLine
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			t.Fatalf("check --json printed %q: %v\n%s", line, err, r)
		}
		out = append(out, c)
	}
	return r.code, out
}

func packID(p string) string { return filepath.Base(p) }

func TestCheckMissingPack(t *testing.T) {
	repo, _, snap := smallRepo(t)
	// The biggest pack holds the file data; the trees are in a small one.
	data := packFiles(t, repo)[0]
	if err := os.Remove(data); err != nil {
		t.Fatal(err)
	}
	r := hs(t, "check", "--repo", repo)
	if r.code != 4 {
		t.Fatalf("check with a pack missing: want exit 4: %s", r)
	}
	for _, want := range []string{packID(data), snap.Snapshot[:8], "sub/big.bin"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("check output should name %q: %s", want, r)
		}
	}
	code, lines := checkJSON(t, repo)
	if code != 4 || !slices.ContainsFunc(lines, func(c checkLine) bool {
		return c.Level == "damage" && c.Pack == packID(data)
	}) || !slices.ContainsFunc(lines, func(c checkLine) bool {
		return c.Level == "damage" && c.Snapshot == snap.Snapshot && c.Path == "sub/big.bin"
	}) {
		t.Errorf("check --json (exit %d) should report pack %s and snapshot %s's sub/big.bin: %+v", code, packID(data), snap.Snapshot, lines)
	}
}

func TestCheckCorruptPack(t *testing.T) {
	repo, _, snap := smallRepo(t)
	data := packFiles(t, repo)[0]
	flipBytes(t, data, 0.5, 4)

	r := hs(t, "check", "--repo", repo, "--read-data")
	if r.code != 4 {
		t.Fatalf("check --read-data of a corrupt pack: want exit 4: %s", r)
	}
	code, lines := checkJSON(t, repo, "--read-data")
	if code != 4 {
		t.Errorf("check --read-data --json: exit %d, want 4", code)
	}
	var blobs []string
	for _, c := range lines {
		if c.Level == "damage" && c.Pack == packID(data) && c.Blob != "" {
			blobs = append(blobs, c.Blob)
		}
	}
	if len(blobs) == 0 {
		t.Fatalf("check --read-data --json names no damaged blob in pack %s: %+v", packID(data), lines)
	}
	for _, want := range append([]string{packID(data), snap.Snapshot[:8], "sub/big.bin"}, blobs...) {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("check --read-data output should name %q: %s", want, r)
		}
	}

	target := filepath.Join(t.TempDir(), "target")
	r = hs(t, "restore", "--repo", repo, "latest", "--target", target)
	if r.code == 0 {
		t.Fatalf("restore from a corrupt pack succeeded: %s", r)
	}
	for _, want := range []string{packID(data), "sub/big.bin"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("restore's error should name %q: %s", want, r)
		}
	}
}

// flipBytes inverts n bytes at the fraction at of the file: in the middle
// of a pack that is inside some blob, far from the header and trailer.
func flipBytes(t testing.TB, path string, at float64, n int) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	damage.Flip(t, path, int64(float64(fi.Size())*at), n)
}
