package security

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
	"github.com/hindsight-backup/hindsight/chunkstore/pack"
	"github.com/hindsight-backup/hindsight/integration/hsrun"
	"github.com/hindsight-backup/hindsight/integration/treecmp"
	"github.com/hindsight-backup/hindsight/remote/local"
	"github.com/hindsight-backup/hindsight/snapshot"
)

const testPassword = "security-test-password"

// Exit codes the tests expect (cmd/hindsight/main.go documents them).
const (
	exitFailure       = 1
	exitDamage        = 4
	exitWrongPassword = 11
)

// fixture is a repository with one snapshot of a small tree, and where
// its objects are.
type fixture struct {
	repo, src string
	snapshot  blob.ID
	data      index.Location // a.bin's first chunk
	tree      index.Location // the root tree
	segment   string         // an index segment, relative to repo
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	tmp := t.TempDir()
	f := fixture{repo: filepath.Join(tmp, "repo"), src: filepath.Join(tmp, "src")}
	for name, size := range map[string]int{"a.bin": 300 << 10, "sub/b.txt": 5000, "sub/deeper/c.txt": 100} {
		p := filepath.Join(f.src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, p, bytes.Repeat([]byte(name+" "), size/len(name)))
	}
	hs := runner(t, f.repo, testPassword)
	hs.Must(t, "init")
	hs.Must(t, "backup", f.src)

	ctx := context.Background()
	be, err := local.OpenDir(f.repo)
	if err != nil {
		t.Fatal(err)
	}
	r, err := chunkstore.Open(ctx, be, chunkstore.LocalOptions(f.repo, []byte(testPassword)))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	snap, err := snapshot.Resolve(ctx, r, "latest", snapshot.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	f.snapshot = snap.ID
	n, err := snapshot.Lookup(ctx, r, snap.Record, "a.bin")
	if err != nil {
		t.Fatal(err)
	}
	var ok bool
	if f.data, ok, err = r.Index().Lookup(blob.Data, n.Content[0].ID); !ok || err != nil {
		t.Fatalf("a.bin's chunk is not in the index: %v", err)
	}
	if f.tree, ok, err = r.Index().Lookup(blob.Tree, snap.Record.Tree); !ok || err != nil {
		t.Fatalf("the root tree is not in the index: %v", err)
	}
	segs := objects(t, f.repo, "index-segments")
	if len(segs) == 0 {
		t.Fatal("the backup wrote no index segment")
	}
	f.segment = segs[0]
	return f
}

func runner(t testing.TB, repo, password string) hsrun.Runner {
	return hsrun.New(t, bin, "HINDSIGHT_REPOSITORY="+repo, "HINDSIGHT_PASSWORD="+password)
}

// objects lists the files below repo/dir, relative to repo.
func objects(t testing.TB, repo, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(filepath.Join(repo, dir), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(repo, p)
			out = append(out, rel)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// copyRepo copies the repository's objects, not its index: the copy is
// what a fresh machine restoring from a remote starts with, so that
// nothing is answered from a cache filled before the tampering.
func copyRepo(t testing.TB, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		switch {
		case rel == "index" || rel == "locks" || rel == "tmp":
			return filepath.SkipDir
		case d.IsDir():
			return os.MkdirAll(filepath.Join(to, rel), 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func packFile(repo string, id blob.ID) string {
	s := id.String()
	return filepath.Join(repo, "packs", s[:2], s)
}

// flip inverts the byte at off (from the end when negative).
func flip(t testing.TB, p string, off int64) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if off < 0 {
		off += int64(len(b))
	}
	b[off] ^= 0xff
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// editJSON rewrites one top-level field of a JSON object file.
func editJSON(t testing.TB, p, field string, edit func(json.RawMessage) any) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	if m[field], err = json.Marshal(edit(m[field])); err != nil {
		t.Fatal(err)
	}
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// flipBase64 inverts one byte in the middle of a base64 string field,
// keeping the file valid JSON: the damage must be caught by
// authentication, not by a parser.
func flipBase64(t testing.TB) func(json.RawMessage) any {
	return func(v json.RawMessage) any {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			t.Fatal(err)
		}
		raw, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		raw[len(raw)/2] ^= 0xff
		return base64.StdEncoding.EncodeToString(raw)
	}
}

// TestTamperedObjectsRejected changes one object of a repository copy, as
// someone with write access to a remote could, and runs restore and
// check on it. Each must fail with an error that names what is damaged,
// or (where the damaged object is not needed) give an exact result; never
// exit 0 with wrong data.
func TestTamperedObjectsRejected(t *testing.T) {
	f := newFixture(t)
	keys := objects(t, f.repo, "keys")
	if len(keys) != 1 {
		t.Fatalf("%d key files, want 1", len(keys))
	}
	snapName := filepath.Join("snapshots", f.snapshot.String())
	tests := []struct {
		name   string
		tamper func(t *testing.T, repo string)
		// restoreOK: the damaged object is not read by a restore, which
		// must then be exact; otherwise it must fail with code and msg.
		restoreOK bool
		code      int
		checkCode int // 0: any failure
		msg       []string
		// recover, when set, is the command after which a restore must
		// be exact again: the damaged object was redundant.
		recover []string
	}{
		{name: "data blob", tamper: func(t *testing.T, repo string) {
			flip(t, packFile(repo, f.data.Pack), int64(f.data.Offset+f.data.Length/2))
		}, code: exitFailure, checkCode: exitDamage, msg: []string{f.data.Pack.String(), "a.bin"}},
		{name: "tree blob", tamper: func(t *testing.T, repo string) {
			flip(t, packFile(repo, f.tree.Pack), int64(f.tree.Offset+f.tree.Length/2))
		}, code: exitFailure, checkCode: exitDamage, msg: []string{f.tree.Pack.String()}},
		{name: "pack trailer", tamper: func(t *testing.T, repo string) {
			flip(t, packFile(repo, f.data.Pack), int64(-pack.FooterSize-3))
		}, restoreOK: true, checkCode: exitDamage, msg: []string{f.data.Pack.String()}},
		{name: "pack footer", tamper: func(t *testing.T, repo string) {
			flip(t, packFile(repo, f.data.Pack), -1)
		}, restoreOK: true, checkCode: exitDamage, msg: []string{f.data.Pack.String()}},
		{name: "snapshot record", tamper: func(t *testing.T, repo string) {
			flip(t, filepath.Join(repo, snapName), -20)
		}, code: exitFailure, checkCode: exitDamage, msg: []string{f.snapshot.Short()}},
		{name: "index segment", tamper: func(t *testing.T, repo string) {
			flip(t, filepath.Join(repo, f.segment), -20)
		}, code: exitFailure, msg: []string{filepath.Base(f.segment), "index rebuild"}, recover: []string{"index", "rebuild"}},
		{name: "config data", tamper: func(t *testing.T, repo string) {
			editJSON(t, filepath.Join(repo, "config"), "data", flipBase64(t))
		}, code: exitFailure, checkCode: exitFailure, msg: []string{"config", "authentication"}},
		{name: "config envelope", tamper: func(t *testing.T, repo string) {
			editJSON(t, filepath.Join(repo, "config"), "id", func(json.RawMessage) any { return strings.Repeat("0", 64) })
		}, code: exitFailure, checkCode: exitFailure, msg: []string{"config"}},
		{name: "key file data", tamper: func(t *testing.T, repo string) {
			editJSON(t, filepath.Join(repo, keys[0]), "data", flipBase64(t))
		}, code: exitWrongPassword, checkCode: exitWrongPassword, msg: []string{"password"}},
		{name: "key file salt", tamper: func(t *testing.T, repo string) {
			editJSON(t, filepath.Join(repo, keys[0]), "params", func(v json.RawMessage) any {
				var p map[string]any
				if err := json.Unmarshal(v, &p); err != nil {
					t.Fatal(err)
				}
				p["salt"] = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 16))
				return p
			})
		}, code: exitWrongPassword, checkCode: exitWrongPassword, msg: []string{"password"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := filepath.Join(t.TempDir(), "repo")
			copyRepo(t, f.repo, repo)
			tt.tamper(t, repo)
			hs := runner(t, repo, testPassword)
			target := filepath.Join(t.TempDir(), "target")
			r := hs.Run(t, "restore", "latest", "--target", target)
			if tt.restoreOK {
				if r.Code != 0 {
					t.Fatalf("restore needs nothing damaged, yet failed: %s", r)
				}
				sameTree(t, f.src, target)
			} else {
				wantFailure(t, r, tt.code, tt.msg)
			}
			wantFailure(t, hs.Run(t, "check", "--read-data"), tt.checkCode, tt.msg)
			if tt.recover != nil {
				hs.Must(t, tt.recover...)
				target := filepath.Join(t.TempDir(), "again")
				hs.Must(t, "restore", "latest", "--target", target)
				sameTree(t, f.src, target)
			}
		})
	}
}

func wantFailure(t *testing.T, r hsrun.Result, code int, msgs []string) {
	t.Helper()
	if r.Code == 0 || code != 0 && r.Code != code {
		t.Errorf("want exit %d: %s", code, r)
		return
	}
	for _, m := range msgs {
		if !strings.Contains(r.Stderr+r.Stdout, m) {
			t.Errorf("the output does not mention %q: %s", m, r)
		}
	}
}

func sameTree(t *testing.T, want, got string) {
	t.Helper()
	diffs, err := treecmp.Compare(want, got, treecmp.Options{SkipRootMeta: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diffs {
		t.Errorf("restore differs: %s", d)
	}
}
