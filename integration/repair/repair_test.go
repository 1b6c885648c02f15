package repair

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
	"github.com/hindsight-backup/hindsight/integration/damage"
	"github.com/hindsight-backup/hindsight/integration/treecmp"
)

// TestDamageAndRepair runs every kind of damage against copies of one
// repository, and heals each from the one replica.
func TestDamageAndRepair(t *testing.T) {
	f := setup(t)
	t.Run("flipped bytes in a pack", f.flippedPack)
	t.Run("truncated pack", f.truncatedPack)
	t.Run("deleted pack", f.deletedPack)
	t.Run("deleted index", f.deletedIndex)
	t.Run("deleted index segments", f.deletedSegments)
	t.Run("corrupt snapshot record", f.corruptRecord)
	t.Run("read-data subsets", f.subsets)
	// These two change the replica, so they come last.
	t.Run("damaged replica", f.damagedReplica)
	t.Run("lost for good", f.lostForGood)
}

func inPack(p blob.ID) func(blob.ID, index.Location) bool {
	return func(_ blob.ID, loc index.Location) bool { return loc.Pack == p }
}

func packLine(p blob.ID) string {
	return line{Level: "damage", Area: "pack", Pack: p.String()}.key()
}

// heal repairs the packs from the replica and demands a clean check and an
// exact restore.
func (f *fixture) heal(t *testing.T, env []string, wantOut string) {
	t.Helper()
	r := want(t, 0, env, "repair", "packs", "--from", "offsite")
	if !strings.Contains(r.stdout, wantOut) {
		t.Errorf("repair packs should say %q: %s", wantOut, r)
	}
	clean(t, env)
	f.restoreExact(t, env)
}

func (f *fixture) flippedPack(t *testing.T) {
	repo, env := f.copyRepo(t)
	id, loc := f.victimBlob(t, repo)
	damage.Flip(t, packPath(repo, loc.Pack), int64(loc.Offset+loc.Length/2), 4)
	named := hurt(users(t, repo, func(b blob.ID, _ index.Location) bool { return b == id }))

	// The trailers are intact: only reading the data finds the damage.
	wantFindings(t, env, 0, nil)
	bad := line{Level: "damage", Area: "pack", Pack: loc.Pack.String(), Blob: id.String()}.key()
	wantFindings(t, env, 4, append(named, bad), "--read-data")
	f.heal(t, env, "0 missing, 1 damaged; fetched 1 from offsite")
}

func (f *fixture) truncatedPack(t *testing.T) {
	repo, env := f.copyRepo(t)
	_, loc := f.victimBlob(t, repo)
	p := packPath(repo, loc.Pack)
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	wantFindings(t, env, 4, append(hurt(users(t, repo, inPack(loc.Pack))), packLine(loc.Pack)))
	f.heal(t, env, "1 missing, 0 damaged; fetched 1 from offsite")
}

func (f *fixture) deletedPack(t *testing.T) {
	repo, env := f.copyRepo(t)
	_, loc := f.victimBlob(t, repo)
	named := hurt(users(t, repo, inPack(loc.Pack)))
	if err := os.Remove(packPath(repo, loc.Pack)); err != nil {
		t.Fatal(err)
	}
	wantFindings(t, env, 4, append(named, packLine(loc.Pack)))
	want(t, 0, env, "repair", "packs", "--from", "offsite", "--dry-run")
	wantFindings(t, env, 4, append(named, packLine(loc.Pack)))
	// Rebuilding the index first leaves the lost pack out of it (so that
	// backups would store its data anew): the files are still named, and
	// repair packs still finds the pack through the index segments.
	if r := want(t, 4, env, "repair", "index"); !strings.Contains(r.stderr, loc.Pack.String()) {
		t.Errorf("repair index should name the missing pack: %s", r)
	}
	wantFindings(t, env, 4, named)
	f.heal(t, env, "1 missing, 0 damaged; fetched 1 from offsite")
}

// The local index is a cache: without it nothing is lost. check says it
// built it again, and repair index does the same on purpose.
func (f *fixture) deletedIndex(t *testing.T) {
	repo, env := f.copyRepo(t)
	if err := os.RemoveAll(filepath.Join(repo, "index")); err != nil {
		t.Fatal(err)
	}
	wantFindings(t, env, 0, []string{line{Level: "notice", Area: "index"}.key()})
	if err := os.RemoveAll(filepath.Join(repo, "index")); err != nil {
		t.Fatal(err)
	}
	want(t, 0, env, "repair", "index")
	clean(t, env)
	f.restoreExact(t, env)
	r := want(t, 0, env, "history", "--source", f.src, f.victim, "--json")
	if strings.Count(r.stdout, "\n") == 0 {
		t.Errorf("no history after the index was rebuilt: %s", r)
	}
}

// Index segments are the durable copy of the index: check names each lost
// one, and repair index writes a segment that lists their packs again.
func (f *fixture) deletedSegments(t *testing.T) {
	repo, env := f.copyRepo(t)
	dir := filepath.Join(repo, "index-segments")
	segs, err := os.ReadDir(dir)
	if err != nil || len(segs) == 0 {
		t.Fatalf("index segments: %v (%d)", err, len(segs))
	}
	var lost []string
	for _, s := range segs {
		lost = append(lost, line{Level: "damage", Area: "index", Segment: s.Name()}.key())
		if err := os.Remove(filepath.Join(dir, s.Name())); err != nil {
			t.Fatal(err)
		}
	}
	wantFindings(t, env, 4, lost)
	want(t, 0, env, "repair", "index")
	clean(t, env)
	f.restoreExact(t, env)
}

// A record that does not open is named, and nothing else; repair
// snapshots writes it again from the replica.
func (f *fixture) corruptRecord(t *testing.T) {
	repo, env := f.copyRepo(t)
	dir := filepath.Join(repo, "snapshots")
	snaps, err := os.ReadDir(dir)
	if err != nil || len(snaps) != 2 {
		t.Fatalf("snapshot records: %v (%d)", err, len(snaps))
	}
	victim := snaps[0].Name()
	p := filepath.Join(dir, victim)
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	damage.Flip(t, p, fi.Size()/2, 1)
	wantFindings(t, env, 4, []string{line{Level: "damage", Area: "snapshot", Snapshot: victim}.key()})

	want(t, 0, env, "repair", "snapshots", "--dry-run", "--from", "offsite")
	wantFindings(t, env, 4, []string{line{Level: "damage", Area: "snapshot", Snapshot: victim}.key()})
	r := want(t, 0, env, "repair", "snapshots", "--from", "offsite")
	if !strings.Contains(r.stdout, "remote offsite") || !strings.Contains(r.stdout, "restored: 1") {
		t.Errorf("repair snapshots should restore the record from offsite: %s", r)
	}
	// The replica's bytes, not the same record sealed anew.
	obj, err := f.srv.Client(t).GetObject(context.Background(), "replica", "host1/snapshots/"+victim, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	there, err := io.ReadAll(obj)
	obj.Close()
	here, err2 := os.ReadFile(p)
	if err != nil || err2 != nil || !bytes.Equal(here, there) {
		t.Errorf("the restored record differs from the replica's (%v, %v)", err, err2)
	}
	clean(t, env)
	f.restoreExact(t, env)
	want(t, 0, env, "restore", victim, "--target", filepath.Join(t.TempDir(), "first"), "--verify")
}

// The parts 1/3 to 3/3 read every pack once: exactly one finds a flipped
// byte. A sample of 100% finds it too.
func (f *fixture) subsets(t *testing.T) {
	repo, env := f.copyRepo(t)
	_, loc := f.victimBlob(t, repo)
	damage.Flip(t, packPath(repo, loc.Pack), int64(loc.Offset+loc.Length/2), 1)
	found := 0
	for _, part := range []string{"1/3", "2/3", "3/3"} {
		code, _, r := check(t, env, "--read-data-subset", part)
		if code == 4 {
			found++
			if !strings.Contains(r.stdout, loc.Pack.String()) {
				t.Errorf("subset %s: %s", part, r)
			}
		}
	}
	if found != 1 {
		t.Errorf("%d of the parts 1/3..3/3 found the damaged pack; want exactly one", found)
	}
	if code, _, r := check(t, env, "--read-data-subset", "100%"); code != 4 {
		t.Errorf("a 100%% sample did not find the damaged pack: %s", r)
	}
	want(t, 2, env, "check", "--read-data-subset", "0/3")
	want(t, 2, env, "check", "--read-data", "--read-data-subset", "1/3")
}

// check --remote opens the replica as a repository of its own: sound, then
// missing a pack, which it names with the files that need it.
func (f *fixture) damagedReplica(t *testing.T) {
	repo, env := f.copyRepo(t)
	r := want(t, 0, env, "check", "--remote", "offsite", "--read-data")
	if !strings.Contains(r.stdout, " 0 problems, 0 notices") {
		t.Errorf("check of a sound replica: %s", r)
	}
	_, loc := f.victimBlob(t, repo)
	named := hurt(users(t, repo, inPack(loc.Pack)))
	s := loc.Pack.String()
	c := f.srv.Client(t)
	if err := c.RemoveObject(context.Background(), "replica", "host1/packs/"+s[:2]+"/"+s, minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	wantFindings(t, env, 4, append(named, packLine(loc.Pack)), "--remote", "offsite")
	// The local repository still has it: a push puts it back.
	want(t, 0, env, "push", "offsite")
	wantFindings(t, env, 0, nil, "--remote", "offsite", "--read-data")
}

// A pack lost here and on the replica cannot be fetched: repair packs says
// so, repair snapshots gives up the lost chunks (zeros, listed), and check
// is clean again. Everything else restores exactly.
func (f *fixture) lostForGood(t *testing.T) {
	repo, env := f.copyRepo(t)
	_, loc := f.victimBlob(t, repo)
	lost := map[string]bool{}
	for _, u := range users(t, repo, inPack(loc.Pack)) {
		lost[u.path] = true
	}
	s := loc.Pack.String()
	if err := f.srv.Client(t).RemoveObject(context.Background(), "replica", "host1/packs/"+s[:2]+"/"+s, minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(packPath(repo, loc.Pack)); err != nil {
		t.Fatal(err)
	}
	if r := want(t, 4, env, "repair", "packs", "--from", "offsite"); !strings.Contains(r.stdout, s) {
		t.Errorf("repair packs should name the lost pack: %s", r)
	}
	if r := want(t, 1, env, "repair", "snapshots"); !strings.Contains(r.stderr, "repair packs") {
		t.Errorf("repair snapshots should not give up what a remote may hold: %s", r)
	}
	r := want(t, 0, env, "repair", "snapshots", "--force")
	if !strings.Contains(r.stdout, "rewritten: 2") || !strings.Contains(r.stdout, f.victim) {
		t.Errorf("repair snapshots: %s", r)
	}
	// The lost pack is still in the index, but nothing uses it.
	notice := line{Level: "notice", Area: "pack", Pack: s}.key()
	wantFindings(t, env, 0, []string{notice}, "--read-data")

	target := filepath.Join(t.TempDir(), "restored")
	want(t, 0, env, "restore", "latest", "--target", target, "--verify")
	diffs, err := treecmp.Compare(f.src, target, treecmp.Options{Holes: true, Exclude: treecmp.SkipSockets})
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) == 0 {
		t.Error("the restore equals the source, though a pack of it is lost")
	}
	for _, d := range diffs {
		if !lost[d.Path] || (d.Field != treecmp.FieldContent && d.Field != treecmp.FieldHoles) {
			t.Errorf("restore differs beyond the files that lost data: %s", d)
		}
	}
}
