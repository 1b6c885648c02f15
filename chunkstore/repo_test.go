package chunkstore

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/crypto"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
	"github.com/hindsight-backup/hindsight/remote"
	"github.com/hindsight-backup/hindsight/remote/local"
)

func randomData(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

// saveBlobs stores n blobs of random data and returns them by ID.
func saveBlobs(t *testing.T, r *Repository, n, size int) map[blob.ID][]byte {
	t.Helper()
	ctx := context.Background()
	out := make(map[blob.ID][]byte)
	for i := 0; i < n; i++ {
		data := randomData(int64(i), size)
		id := r.BlobID(data)
		known, err := r.SaveBlob(ctx, blob.Data, id, data)
		if err != nil || known {
			t.Fatalf("SaveBlob %d: known=%v err=%v", i, known, err)
		}
		out[id] = data
	}
	return out
}

func reopen(t *testing.T, r *Repository, dir string) *Repository {
	t.Helper()
	r.Close()
	be, err := local.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := Open(context.Background(), be, LocalOptions(dir, []byte(TestPassword)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r2.Close() })
	return r2
}

func checkBlobs(t *testing.T, r *Repository, blobs map[blob.ID][]byte) {
	t.Helper()
	for id, want := range blobs {
		got, err := r.LoadBlob(context.Background(), blob.Data, id, nil)
		if err != nil {
			t.Fatalf("LoadBlob %s: %v", id.Short(), err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("LoadBlob %s: wrong content", id.Short())
		}
	}
}

func TestSaveLoadDedup(t *testing.T) {
	for _, enc := range crypto.SealerNames() {
		t.Run("encryption="+enc, func(t *testing.T) {
			r, dir := TestRepository(t, InitOptions{Encryption: enc, PackSize: 1 << 20})
			ctx := context.Background()
			blobs := saveBlobs(t, r, 20, 200<<10) // several packs
			for id, data := range blobs {
				if known, err := r.SaveBlob(ctx, blob.Data, id, data); !known || err != nil {
					t.Fatalf("second SaveBlob: known=%v err=%v", known, err)
				}
			}
			if err := r.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			checkBlobs(t, r, blobs)
			r = reopen(t, r, dir)
			checkBlobs(t, r, blobs)
			if known, _ := r.SaveBlob(ctx, blob.Data, r.BlobID([]byte("x")), []byte("x")); known {
				t.Fatal("a new blob was reported known")
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	r, dir := TestRepository(t, InitOptions{})
	r.Close()
	be, _ := local.OpenDir(dir)

	_, err := Open(ctx, be, LocalOptions(dir, []byte("wrong")))
	if !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := Init(ctx, be, []byte("x"), InitOptions{KDF: TestKDF()}); err == nil {
		t.Fatal("Init over an existing repository succeeded")
	}

	empty := t.TempDir()
	ebe, _ := local.OpenDir(empty)
	if _, err := Open(ctx, ebe, LocalOptions(empty, []byte("x"))); !errors.Is(err, ErrNotRepository) {
		t.Fatalf("empty dir: %v", err)
	}

	// A config from a future version is refused before the password matters.
	cfg, _ := os.ReadFile(filepath.Join(dir, "config"))
	newer := bytes.Replace(cfg, []byte(`"version": 1`), []byte(`"version": 99`), 1)
	os.WriteFile(filepath.Join(dir, "config"), newer, 0o600)
	var nf *NewerFormatError
	if _, err := Open(ctx, be, LocalOptions(dir, []byte("wrong"))); !errors.As(err, &nf) || nf.Have != 99 {
		t.Fatalf("newer format: %v", err)
	}
}

func dumpIndex(t *testing.T, idx index.Store) ([]index.BlobEntry, []index.PackInfo) {
	t.Helper()
	var bs []index.BlobEntry
	var ps []index.PackInfo
	if err := idx.Blobs(func(e index.BlobEntry) error { bs = append(bs, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := idx.Packs(func(p index.PackInfo) error { ps = append(ps, p); return nil }); err != nil {
		t.Fatal(err)
	}
	return bs, ps
}

func TestIndexIsACache(t *testing.T) {
	ctx := context.Background()
	r, dir := TestRepository(t, InitOptions{PackSize: 1 << 20})
	blobs := saveBlobs(t, r, 12, 300<<10)
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	wantB, wantP := dumpIndex(t, r.Index())

	// Rebuilding from segments gives the same answers.
	st, err := r.RebuildIndex(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.TrailerPacks != 0 || st.Segments == 0 {
		t.Fatalf("rebuild from segments read trailers: %+v", st)
	}
	gotB, gotP := dumpIndex(t, r.Index())
	if !reflect.DeepEqual(gotB, wantB) || !reflect.DeepEqual(gotP, wantP) {
		t.Fatal("index rebuilt from segments differs")
	}

	// Without segments, the trailers give the same answers.
	os.RemoveAll(filepath.Join(dir, "index-segments"))
	if st, err = r.RebuildIndex(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if st.TrailerPacks != len(wantP) {
		t.Fatalf("rebuild from trailers: %+v", st)
	}
	gotB, gotP = dumpIndex(t, r.Index())
	if !reflect.DeepEqual(gotB, wantB) || !reflect.DeepEqual(gotP, wantP) {
		t.Fatal("index rebuilt from trailers differs")
	}
	// The next flush lists the trailer-only packs in a new segment.
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	// Deleting index/ loses nothing.
	r.Close()
	if err := os.RemoveAll(filepath.Join(dir, "index")); err != nil {
		t.Fatal(err)
	}
	r = reopen(t, r, dir)
	checkBlobs(t, r, blobs)
	gotB, gotP = dumpIndex(t, r.Index())
	if !reflect.DeepEqual(gotB, wantB) || !reflect.DeepEqual(gotP, wantP) {
		t.Fatal("index rebuilt on open differs")
	}
}

func TestCrashBeforeFlush(t *testing.T) {
	ctx := context.Background()
	r, dir := TestRepository(t, InitOptions{PackSize: 1 << 20})
	blobs := saveBlobs(t, r, 13, 300<<10) // three full packs of four, one open
	// Finished packs are indexed but unlisted; Close without Flush is the
	// crash. The next Flush must list them in a segment.
	r.Close()
	r = reopen(t, r, dir)
	var unlisted int
	r.Index().UnlistedPacks(func(blob.ID) error { unlisted++; return nil })
	if unlisted == 0 {
		t.Fatal("no unlisted packs after a run without Flush")
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	unlisted = 0
	r.Index().UnlistedPacks(func(blob.ID) error { unlisted++; return nil })
	if unlisted != 0 {
		t.Fatalf("%d packs still unlisted after Flush", unlisted)
	}
	// Blobs of finished packs survive; those of the open pack are gone.
	var found int
	for id := range blobs {
		if ok, _ := r.HasBlob(blob.Data, id); ok {
			found++
		}
	}
	if found == 0 || found == len(blobs) {
		t.Fatalf("%d of %d blobs survived; want some but not all", found, len(blobs))
	}
	if entries, err := os.ReadDir(filepath.Join(dir, "tmp")); err == nil && len(entries) != 0 {
		t.Fatalf("scratch files left behind: %v", entries)
	}
}

func TestCorruptPack(t *testing.T) {
	ctx := context.Background()
	r, dir := TestRepository(t, InitOptions{PackSize: 1 << 20})
	blobs := saveBlobs(t, r, 3, 100<<10)
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var victim blob.ID
	var loc index.Location
	for id := range blobs {
		victim = id
		loc, _, _ = r.Index().Lookup(blob.Data, id)
		break
	}
	p := filepath.Join(dir, packName(loc.Pack))
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{0xff, 0xee}, int64(loc.Offset)+40)
	f.Close()

	_, err = r.LoadBlob(ctx, blob.Data, victim, nil)
	var cp *CorruptPackError
	if !errors.As(err, &cp) || cp.Pack != loc.Pack || cp.Blob != victim {
		t.Fatalf("LoadBlob of a damaged blob: %v", err)
	}
	var problems []Problem
	if err := r.CheckPacks(ctx, CheckOptions{ReadData: Subset{All: true}}, func(p Problem) { problems = append(problems, p) }); err != nil {
		t.Fatal(err)
	}
	if len(problems) != 1 || problems[0].Blob != victim || problems[0].Pack != loc.Pack {
		t.Fatalf("check --read-data problems: %v", problems)
	}
	problems = nil
	r.CheckPacks(ctx, CheckOptions{}, func(p Problem) { problems = append(problems, p) })
	if len(problems) != 0 {
		t.Fatalf("structural check flagged an intact trailer: %v", problems)
	}

	os.Remove(p)
	_, err = r.LoadBlob(ctx, blob.Data, victim, nil)
	var bm *BlobMissingError
	if !errors.As(err, &bm) || bm.Pack != loc.Pack {
		t.Fatalf("LoadBlob from a deleted pack: %v", err)
	}
}

func TestKeys(t *testing.T) {
	ctx := context.Background()
	r, dir := TestRepository(t, InitOptions{})
	if _, err := r.AddKey(ctx, []byte("second"), "h", "u"); err != nil {
		t.Fatal(err)
	}
	keys, err := r.Keys(ctx)
	if err != nil || len(keys) != 2 {
		t.Fatalf("Keys = %v, %v", keys, err)
	}
	for _, k := range keys {
		if k.Current {
			if err := r.RemoveKey(ctx, k.ID); err == nil {
				t.Fatal("removed the current key")
			}
		}
	}
	r.Close()
	be, _ := local.OpenDir(dir)
	r2, err := Open(ctx, be, Options{Password: []byte("second"), NoIndex: true})
	if err != nil {
		t.Fatalf("open with the added key: %v", err)
	}
	if err := r2.ChangePassword(ctx, []byte("third"), "h", "u"); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, be, Options{Password: []byte("second"), NoIndex: true}); !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("old password still works after passwd: %v", err)
	}
	if _, err := Open(ctx, be, Options{Password: []byte("third"), NoIndex: true}); err != nil {
		t.Fatalf("new password: %v", err)
	}
}

// failingPacks refuses to store packs while fail is set; hiding the local
// backend's SaveFile makes every pack go through Save.
type failingPacks struct {
	remote.Backend
	fail atomic.Bool
}

func (b *failingPacks) Save(ctx context.Context, name string, rd io.ReaderAt, size int64) error {
	if b.fail.Load() && strings.HasPrefix(name, packsPrefix) {
		return errors.New("injected: disk full")
	}
	return b.Backend.Save(ctx, name, rd, size)
}

// A pack that cannot be stored must not leave its blobs looking stored:
// otherwise a later save skips them and a snapshot references lost data.
func TestFailedPackReleasesBlobs(t *testing.T) {
	ctx := context.Background()
	_, dir := TestRepository(t, InitOptions{PackSize: 1 << 20})
	lb, err := local.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	be := &failingPacks{Backend: lb}
	be.fail.Store(true)
	r, err := Open(ctx, be, LocalOptions(dir, []byte(TestPassword)))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var ids []blob.ID
	var saveErr error
	for i := 0; i < 8 && saveErr == nil; i++ {
		data := randomData(int64(i), 300<<10)
		id := r.BlobID(data)
		_, saveErr = r.SaveBlob(ctx, blob.Data, id, data)
		ids = append(ids, id)
	}
	if err := r.Flush(ctx); err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("Flush after a failed pack = %v, want the injected error", err)
	}
	for _, id := range ids {
		if ok, _ := r.HasBlob(blob.Data, id); ok {
			t.Fatalf("blob %s of a lost pack still counts as stored", id.Short())
		}
	}
	if entries, err := os.ReadDir(filepath.Join(dir, "tmp")); err == nil && len(entries) != 0 {
		t.Fatalf("scratch files left behind: %v", entries)
	}

	// Once space is back, the same open repository stores the blobs anew
	// (saveBlobs fails if one counts as known), and they survive reopening.
	be.fail.Store(false)
	blobs := saveBlobs(t, r, 8, 300<<10)
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	checkBlobs(t, r, blobs)
	r2 := reopen(t, r, dir)
	checkBlobs(t, r2, blobs)
}
