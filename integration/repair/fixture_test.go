package repair

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
	"github.com/hindsight-backup/hindsight/integration/testtree"
	"github.com/hindsight-backup/hindsight/integration/treecmp"
	"github.com/hindsight-backup/hindsight/remote/local"
	"github.com/hindsight-backup/hindsight/remote/s3/s3test"
	"github.com/hindsight-backup/hindsight/snapshot"
)

// fixture is a repository with two snapshots of a testtree (the second
// after a Mutate), pushed to the remote "offsite" on MinIO. Each damage
// test works on a copy of it; the replica is shared, so only the last
// tests touch it.
type fixture struct {
	srv    *s3test.Server
	src    string // as the latest snapshot holds it
	base   string
	url    string
	victim string // a file of several chunks, relative to src
	xdg    string
}

func setup(t *testing.T) *fixture {
	t.Helper()
	srv := s3test.Start(t)
	srv.MakeBucket(t, "replica")
	dir := t.TempDir()
	f := &fixture{srv: srv, src: filepath.Join(dir, "src"), base: filepath.Join(dir, "repo"),
		url: srv.URL("replica", "host1"), xdg: filepath.Join(dir, "xdg")}
	if err := os.Mkdir(f.xdg, 0o755); err != nil {
		t.Fatal(err)
	}
	m := testtree.Build(t, f.src)
	// Packs of 1 MiB, so that a damaged pack hurts a few files, not all.
	be, err := local.Create(vfs.Default, f.base)
	if err != nil {
		t.Fatal(err)
	}
	_, err = chunkstore.Init(context.Background(), be, []byte(chunkstore.TestPassword),
		chunkstore.InitOptions{PackSize: 1 << 20, KDF: chunkstore.TestKDF()})
	if err != nil {
		t.Fatal(err)
	}
	env := f.env(t, f.base)
	want(t, 0, env, "backup", f.src)
	testtree.Mutate(t, f.src, 7)
	want(t, 0, env, "backup", f.src)
	want(t, 0, env, "remote", "add", "offsite", f.url)
	want(t, 0, env, "push", "offsite")
	f.victim = pickVictim(t, f.base, m)
	return f
}

// pickVictim returns a big file of the latest snapshot.
func pickVictim(t *testing.T, repo string, m *testtree.Manifest) string {
	t.Helper()
	var victim string
	inspect(t, repo, func(r *chunkstore.Repository, snaps []snapshot.Snapshot) {
		for _, e := range m.WithTag(testtree.TagBig) {
			n, err := snapshot.Lookup(context.Background(), r, snaps[len(snaps)-1].Record, e.Path)
			if err == nil && n.Type == snapshot.TypeFile && len(n.Content) > 1 && !n.Content[0].IsHole() {
				victim = e.Path
				return
			}
		}
	})
	if victim == "" {
		t.Fatal("the latest snapshot has no big file of several chunks")
	}
	return victim
}

// env is the environment of a hindsight run on repo: the test password,
// MinIO's credentials, and a configuration and cache of the test's own.
func (f *fixture) env(t *testing.T, repo string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HINDSIGHT_") && !strings.HasPrefix(kv, "XDG_") {
			env = append(env, kv)
		}
	}
	env = append(env, "HINDSIGHT_PASSWORD="+chunkstore.TestPassword, "HINDSIGHT_REPOSITORY="+repo,
		"XDG_CONFIG_HOME="+f.xdg, "XDG_CACHE_HOME="+t.TempDir())
	return append(env, f.srv.Env()...)
}

// copyRepo is a copy of the fixture's repository for one test to damage.
func (f *fixture) copyRepo(t *testing.T) (repo string, env []string) {
	t.Helper()
	repo = filepath.Join(t.TempDir(), "repo")
	if out, err := exec.Command("cp", "-a", f.base, repo).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	return repo, f.env(t, repo)
}

// inspect opens repo with the library to learn what a test must know of
// it, and closes it again before any hindsight process runs.
func inspect(t *testing.T, repo string, fn func(*chunkstore.Repository, []snapshot.Snapshot)) {
	t.Helper()
	ctx := context.Background()
	be, err := local.OpenDir(repo)
	if err != nil {
		t.Fatal(err)
	}
	r, err := chunkstore.Open(ctx, be, chunkstore.LocalOptions(repo, []byte(chunkstore.TestPassword)))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	snaps, err := snapshot.List(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	fn(r, snaps)
}

// victimBlob is the first data blob of the victim file, and where it is.
func (f *fixture) victimBlob(t *testing.T, repo string) (id blob.ID, loc index.Location) {
	t.Helper()
	inspect(t, repo, func(r *chunkstore.Repository, snaps []snapshot.Snapshot) {
		n, err := snapshot.Lookup(context.Background(), r, snaps[len(snaps)-1].Record, f.victim)
		if err != nil {
			t.Fatal(err)
		}
		id = n.Content[0].ID
		var ok bool
		if loc, ok, err = r.Index().Lookup(blob.Data, id); !ok || err != nil {
			t.Fatalf("lookup of %s: %v %v", id.Short(), ok, err)
		}
	})
	return id, loc
}

func packPath(repo string, id blob.ID) string {
	s := id.String()
	return filepath.Join(repo, "packs", s[:2], s)
}

// use is a file of a snapshot.
type use struct{ snap, path string }

// users are the files of every snapshot whose content uses a blob that
// lost says is lost.
func users(t *testing.T, repo string, lost func(blob.ID, index.Location) bool) []use {
	t.Helper()
	var out []use
	inspect(t, repo, func(r *chunkstore.Repository, snaps []snapshot.Snapshot) {
		for _, s := range snaps {
			walk(t, r, s.Record.Tree, "", true, func(p string, n *snapshot.Node) {
				for _, c := range n.Content {
					loc, ok, _ := r.Index().Lookup(blob.Data, c.ID)
					if !c.IsHole() && ok && lost(c.ID, loc) {
						out = append(out, use{s.ID.String(), p})
						return
					}
				}
			})
		}
	})
	if len(out) == 0 {
		t.Fatal("the damage hurts no file: the test would prove nothing")
	}
	return out
}

// hurt is what check must report of the files in us: a damage line for
// each.
func hurt(us []use) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = line{Level: "damage", Area: "snapshot", Snapshot: u.snap, Path: jsonName(u.path)}.key()
	}
	return out
}

// walk calls fn for every file below tree id, with its path as check
// names it: relative to the backed-up directory.
func walk(t *testing.T, r *chunkstore.Repository, id blob.ID, rel string, top bool, fn func(string, *snapshot.Node)) {
	tree, err := snapshot.LoadTree(context.Background(), r, id)
	if err != nil {
		t.Fatal(err)
	}
	for i := range tree.Nodes {
		n := &tree.Nodes[i]
		p := path.Join(rel, n.Name)
		if top {
			p = rel
		}
		switch n.Type {
		case snapshot.TypeDir:
			walk(t, r, n.Subtree, p, false, fn)
		case snapshot.TypeFile:
			fn(p, n)
		}
	}
}

// line is one line of 'check --json'.
type line struct {
	Level    string   `json:"level"`
	Area     string   `json:"area"`
	Snapshot string   `json:"snapshot"`
	Pack     string   `json:"pack"`
	Blob     string   `json:"blob"`
	Segment  string   `json:"segment"`
	Path     jsonName `json:"path"`
	Message  string   `json:"message"`
}

// jsonName is a name as hindsight's JSON writes it: a string when it is
// valid UTF-8, else {"base64": "..."} (the test trees hold names of every
// byte, and a damaged pack may hold any file's data).
type jsonName string

func (n *jsonName) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*n = jsonName(s)
		return nil
	}
	var raw struct {
		Base64 []byte `json:"base64"` // encoding/json decodes base64 into []byte
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*n = jsonName(raw.Base64)
	return nil
}

// key is what a test compares: which thing a line names, not its wording.
func (l line) key() string {
	return fmt.Sprintf("%s %s snap=%s pack=%s blob=%s segment=%s path=%q", l.Level, l.Area, l.Snapshot, l.Pack, l.Blob, l.Segment, l.Path)
}

// check runs 'check --json' with args, and returns its exit code and the
// distinct findings.
func check(t *testing.T, env []string, args ...string) (int, []string, result) {
	t.Helper()
	r := hs(t, env, append([]string{"check", "--json"}, args...)...)
	if r.code != 0 && r.code != 4 {
		t.Fatalf("check could not run: %s", r)
	}
	var keys []string
	for _, s := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if s == "" {
			continue
		}
		var l line
		if err := json.Unmarshal([]byte(s), &l); err != nil {
			t.Fatalf("check --json printed %q: %v", s, err)
		}
		keys = append(keys, l.key())
	}
	slices.Sort(keys)
	return r.code, slices.Compact(keys), r
}

// wantFindings fails unless check with args exits with code and reports
// exactly the findings want, each once or more, and nothing else.
func wantFindings(t *testing.T, env []string, code int, want []string, args ...string) {
	t.Helper()
	got, keys, r := check(t, env, args...)
	want = slices.Compact(slices.Sorted(slices.Values(want)))
	if got != code || !slices.Equal(keys, want) {
		t.Fatalf("check %v: exit %d, findings\n  %s\nwant exit %d, findings\n  %s\n%s", args, got,
			strings.Join(keys, "\n  "), code, strings.Join(want, "\n  "), r)
	}
}

// clean demands a check that reads every pack and finds nothing at all.
func clean(t *testing.T, env []string) {
	t.Helper()
	wantFindings(t, env, 0, nil, "--read-data")
}

// restoreExact restores the latest snapshot and compares it with the
// source, which it must equal in every byte and every piece of metadata.
func (f *fixture) restoreExact(t *testing.T, env []string) {
	t.Helper()
	target := filepath.Join(t.TempDir(), "restored")
	want(t, 0, env, "restore", "latest", "--target", target, "--verify")
	diffs, err := treecmp.Compare(f.src, target, treecmp.Options{Holes: true, Exclude: treecmp.SkipSockets})
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range diffs {
		if i == 20 {
			t.Errorf("... and %d more differences", len(diffs)-i)
			break
		}
		t.Errorf("restore differs: %s", d)
	}
}

// TestJSONName reads both forms check --json writes a path in.
func TestJSONName(t *testing.T) {
	for in, want := range map[string]string{`{"path":"a/b"}`: "a/b", `{"path":{"base64":"YS+A"}}`: "a/\x80"} {
		var l line
		if err := json.Unmarshal([]byte(in), &l); err != nil || string(l.Path) != want {
			t.Errorf("%s: path %q, %v; want %q", in, l.Path, err, want)
		}
	}
}
