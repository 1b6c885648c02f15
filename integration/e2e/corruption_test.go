package e2e

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
	"github.com/hindsight-backup/hindsight/integration/damage"
	"github.com/hindsight-backup/hindsight/snapshot"
)

// packPath is where the local backend keeps a pack.
func packPath(repoDir string, id blob.ID) string {
	s := id.String()
	return filepath.Join(repoDir, "packs", s[:2], s)
}

// locate returns where the index says the first data blob of file rel is.
func locate(t testing.TB, repo *chunkstore.Repository, rec *snapshot.Record, rel string) (blob.ID, index.Location) {
	t.Helper()
	n, ok := fileNodes(t, repo, rec)[rel]
	if !ok || len(n.Content) == 0 || n.Content[0].IsHole() {
		t.Fatalf("%s has no data blob in the snapshot", rel)
	}
	id := n.Content[0].ID
	loc, ok, err := repo.Index().Lookup(blob.Data, id)
	if err != nil || !ok {
		t.Fatalf("index lookup of %s: %v %v", id.Short(), ok, err)
	}
	return id, loc
}

// TestCorruptPack damages one blob inside one pack and follows the damage
// through every layer: the pack check names pack and blob, the snapshot
// check names snapshot and file, and a restore stops with an error that
// names the pack instead of writing wrong bytes.
func TestCorruptPack(t *testing.T) {
	ctx := context.Background()
	repo, repoDir := chunkstore.TestRepository(t, chunkstore.InitOptions{PackSize: 1 << 20})
	src := filepath.Join(t.TempDir(), "src")
	randomTree(t, src, 4, repeat(8, 700<<10)...)
	res := backup(t, repo, src, nil)
	requireClean(t, repo)

	const victim = "d1/f001"
	bad, loc := locate(t, repo, res.Record, victim)
	damage.Flip(t, packPath(repoDir, loc.Pack), int64(loc.Offset)+int64(loc.Length)/2, 4)

	// Without reading data, only the trailers are checked: they are intact.
	var problems []chunkstore.Problem
	if err := repo.CheckPacks(ctx, chunkstore.CheckOptions{}, func(p chunkstore.Problem) { problems = append(problems, p) }); err != nil {
		t.Fatal(err)
	}
	if len(problems) != 0 {
		t.Errorf("structural check reports damage it cannot see: %v", problems)
	}
	problems = nil
	if err := repo.CheckPacks(ctx, chunkstore.CheckOptions{ReadData: chunkstore.Subset{All: true}}, func(p chunkstore.Problem) { problems = append(problems, p) }); err != nil {
		t.Fatal(err)
	}
	if len(problems) != 1 || problems[0].Pack != loc.Pack || problems[0].Blob != bad || problems[0].Type != blob.Data {
		t.Errorf("check packs found %v, want exactly data blob %s in pack %s", problems, bad.Short(), loc.Pack.Short())
	}

	snaps := listSnapshots(t, repo)
	for _, dmg := range []snapshot.Damage{
		{Blobs: map[blob.ID]bool{bad: true}},
		{Packs: map[blob.ID]bool{loc.Pack: true}},
	} {
		var sp []snapshot.Problem
		if err := snapshot.Check(ctx, repo, snaps, dmg, func(p snapshot.Problem) { sp = append(sp, p) }); err != nil {
			t.Fatal(err)
		}
		named := slices.ContainsFunc(sp, func(p snapshot.Problem) bool { return p.Snapshot == res.ID && p.Path == victim })
		if !named {
			t.Errorf("snapshot check with damage %+v reported %v; want snapshot %s, path %s", dmg, sp, res.ID.Short(), victim)
		}
		if len(dmg.Blobs) > 0 && len(sp) != 1 {
			t.Errorf("one damaged blob, yet %d problems: %v", len(sp), sp)
		}
	}

	dst := filepath.Join(t.TempDir(), "dst")
	_, err := snapshot.Restore(ctx, repo, res.Record, "", dst, snapshot.RestoreOptions{Verify: true}, nil)
	var ce *chunkstore.CorruptPackError
	switch {
	case err == nil:
		t.Fatal("restore from a damaged pack succeeded")
	case !errors.As(err, &ce) || ce.Pack != loc.Pack:
		t.Errorf("restore error %q (%T) does not carry CorruptPackError for pack %s", err, err, loc.Pack.Short())
	case !errors.Is(err, chunkstore.ErrCorrupt):
		t.Errorf("restore error %q does not match ErrCorrupt", err)
	}
	if err != nil && (!strings.Contains(err.Error(), loc.Pack.String()) || !strings.Contains(err.Error(), victim)) {
		t.Errorf("restore error %q names neither pack %s nor file %s", err, loc.Pack, victim)
	}
}

// TestCorruptTrailer damages the sealed trailer of a pack: even the check
// that does not read blob data must name the pack.
func TestCorruptTrailer(t *testing.T) {
	ctx := context.Background()
	repo, repoDir := chunkstore.TestRepository(t, chunkstore.InitOptions{PackSize: 1 << 20})
	src := filepath.Join(t.TempDir(), "src")
	randomTree(t, src, 5, repeat(4, 700<<10)...)
	res := backup(t, repo, src, nil)
	_, loc := locate(t, repo, res.Record, "d0/f000")
	p := packPath(repoDir, loc.Pack)
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	// The footer is 8 bytes (trailer length, magic); the trailer ends there.
	damage.Flip(t, p, fi.Size()-8-20, 2)
	var problems []chunkstore.Problem
	if err := repo.CheckPacks(ctx, chunkstore.CheckOptions{}, func(p chunkstore.Problem) { problems = append(problems, p) }); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(problems, func(p chunkstore.Problem) bool { return p.Pack == loc.Pack }) {
		t.Errorf("check packs did not name pack %s with a damaged trailer: %v", loc.Pack.Short(), problems)
	}
}

// TestCheckNamesEverySnapshot damages a blob that two snapshots share
// through an unchanged subtree. The check must name both snapshots: an
// operator decides from its report which snapshots to forget or restore
// elsewhere, and a snapshot it leaves out looks safe when it is not.
func TestCheckNamesEverySnapshot(t *testing.T) {
	ctx := context.Background()
	repo, repoDir := chunkstore.TestRepository(t, chunkstore.InitOptions{PackSize: 1 << 20})
	src := filepath.Join(t.TempDir(), "src")
	randomTree(t, src, 6, repeat(4, 300<<10)...)
	first := backup(t, repo, src, nil)
	second := backup(t, repo, src, nil)
	if first.Record.Tree != second.Record.Tree {
		t.Fatalf("precondition: unchanged plain tree got a new tree ID")
	}
	bad, loc := locate(t, repo, first.Record, "d0/f000")
	damage.Flip(t, packPath(repoDir, loc.Pack), int64(loc.Offset)+int64(loc.Length)/2, 4)

	named := map[blob.ID]bool{}
	err := snapshot.Check(ctx, repo, listSnapshots(t, repo), snapshot.Damage{Blobs: map[blob.ID]bool{bad: true}},
		func(p snapshot.Problem) { named[p.Snapshot] = true })
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*snapshot.Result{first, second} {
		if !named[s.ID] {
			t.Errorf("check does not name snapshot %s, which references damaged blob %s", s.ID.Short(), bad.Short())
		}
	}
}
