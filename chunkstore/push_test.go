package chunkstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
	"github.com/hindsight-backup/hindsight/chunkstore/index"
	"github.com/hindsight-backup/hindsight/remote"
	"github.com/hindsight-backup/hindsight/remote/local"
)

// recorder is a destination that remembers every completed Save, in
// order, and lets a test act before (fault, check) and after each one.
type recorder struct {
	remote.Backend
	mu     sync.Mutex
	saved  []string
	before func(ctx context.Context, name string) error
	// after runs once the object is stored; an error from it reports a
	// failure although the object is there, as a process killed between
	// the upload and its bookkeeping leaves it.
	after func(name string) error
}

func newRecorder(t *testing.T) *recorder {
	be, err := local.Create(vfs.NewMem(), "/dst")
	if err != nil {
		t.Fatal(err)
	}
	return &recorder{Backend: be}
}

func (r *recorder) Save(ctx context.Context, name string, rd io.ReaderAt, size int64) error {
	if r.before != nil {
		if err := r.before(ctx, name); err != nil {
			return err
		}
	}
	if err := r.Backend.Save(ctx, name, rd, size); err != nil {
		return err
	}
	r.mu.Lock()
	r.saved = append(r.saved, name)
	r.mu.Unlock()
	if r.after != nil {
		return r.after(name)
	}
	return nil
}

func (r *recorder) savedNames() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.saved)
}

// pushRepo is a repository with several packs, two index segments and two
// snapshots.
func pushRepo(t *testing.T) (*Repository, map[blob.ID][]byte) {
	r, _ := TestRepository(t, InitOptions{PackSize: 1 << 20})
	blobs := map[blob.ID][]byte{}
	for round := range 2 {
		for i := range 12 {
			data := randomData(int64(round*100+i), 150<<10)
			id := r.BlobID(data)
			if _, err := r.SaveBlob(t.Context(), blob.Data, id, data); err != nil {
				t.Fatal(err)
			}
			blobs[id] = data
		}
		snap, _ := NewSnapshotID()
		if err := r.SaveSnapshot(t.Context(), snap, []byte(fmt.Sprint("record ", round))); err != nil {
			t.Fatal(err)
		}
	}
	return r, blobs
}

func push(t *testing.T, r *Repository, dst remote.Backend) PushStats {
	t.Helper()
	st, err := r.Push(t.Context(), dst, PushOptions{Remote: "offsite", Jobs: 3})
	if err != nil {
		t.Fatalf("Push: %v", err)
	}
	return st
}

// openCopy opens dst as a repository of its own, as a new machine would,
// and checks that every blob and snapshot of the original reads back.
func openCopy(t *testing.T, orig *Repository, dst remote.Backend, blobs map[blob.ID][]byte) {
	t.Helper()
	fs := vfs.NewMem()
	c, err := Open(t.Context(), dst, Options{Password: []byte(TestPassword), FS: fs, IndexDir: "/index", ScratchDir: "/tmp"})
	if err != nil {
		t.Fatalf("opening the pushed copy: %v", err)
	}
	defer c.Close()
	checkBlobs(t, c, blobs)
	want, got := snapshotIDs(t, orig), snapshotIDs(t, c)
	if !slices.Equal(got, want) {
		t.Errorf("copy has snapshots %v; want %v", got, want)
	}
}

func snapshotIDs(t *testing.T, r *Repository) []string {
	t.Helper()
	var ids []string
	if err := r.ListSnapshots(t.Context(), func(id blob.ID, _ []byte) error {
		ids = append(ids, id.String())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	return ids
}

func countPacks(t *testing.T, r *Repository) int {
	n := 0
	if err := r.idx.Packs(func(index.PackInfo) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestPushCopiesAndSecondPushSendsNothing(t *testing.T) {
	r, blobs := pushRepo(t)
	dst := newRecorder(t)
	st := push(t, r, dst)
	packs := countPacks(t, r)
	if packs < 3 || st.PacksSent != packs || st.PacksPresent != 0 || st.SegmentsSent < 2 || st.SnapshotsSent != 2 {
		t.Errorf("first push %+v; want all %d packs, >= 2 segments, 2 snapshots sent", st, packs)
	}
	openCopy(t, r, dst, blobs)
	before := len(dst.savedNames())
	st = push(t, r, dst)
	if st.PacksSent+st.SegmentsSent+st.SnapshotsSent != 0 || st.PacksPresent != packs {
		t.Errorf("second push %+v; want nothing sent, %d packs present", st, packs)
	}
	if after := dst.savedNames(); len(after) != before {
		t.Errorf("second push saved %q", after[before:])
	}
}

// objectClass orders object kinds as Push must send them.
func objectClass(name string) int {
	for i, prefix := range []string{keysPrefix, configName, packsPrefix, segmentsPrefix, snapshotsPrefix} {
		if strings.HasPrefix(name, prefix) {
			return i
		}
	}
	return -1
}

func TestPushOrder(t *testing.T) {
	r, _ := pushRepo(t)
	dst := newRecorder(t)
	// A segment may only arrive once every pack it lists is there.
	dst.before = func(ctx context.Context, name string) error {
		if !strings.HasPrefix(name, segmentsPrefix) {
			return nil
		}
		id, err := idFromName(name)
		if err != nil {
			return err
		}
		packs, err := r.LoadSegment(ctx, id)
		if err != nil {
			return err
		}
		for _, p := range packs {
			if _, err := dst.Backend.Stat(ctx, packName(p.ID)); err != nil {
				t.Errorf("segment %s sent before its pack %s: %v", id.Short(), p.ID.Short(), err)
			}
		}
		return nil
	}
	push(t, r, dst)
	saved := dst.savedNames()
	for i := 1; i < len(saved); i++ {
		if objectClass(saved[i]) < objectClass(saved[i-1]) {
			t.Errorf("%s sent after %s", saved[i], saved[i-1])
		}
	}
}

var errKilled = errors.New("killed")

// TestPushResume stops a push at many points, in the two ways a kill can
// land: during an upload (nothing stored) and after an upload, before the
// index records it. The next push must send only what is missing: no
// object is stored twice.
func TestPushResume(t *testing.T) {
	r, blobs := pushRepo(t)
	total := countPacks(t, r)
	for stopAt := range total + 4 {
		for _, afterUpload := range []bool{false, true} {
			t.Run(fmt.Sprintf("save %d after upload %v", stopAt, afterUpload), func(t *testing.T) {
				dst := newRecorder(t)
				var mu sync.Mutex
				saves := 0
				kill := func() error {
					mu.Lock()
					defer mu.Unlock()
					saves++
					if saves == stopAt+1 {
						return errKilled
					}
					return nil
				}
				if afterUpload {
					dst.after = func(string) error { return kill() }
				} else {
					dst.before = func(context.Context, string) error { return kill() }
				}
				if _, err := r.Push(t.Context(), dst, PushOptions{Remote: "offsite", Jobs: 1}); !errors.Is(err, errKilled) {
					t.Fatalf("interrupted Push = %v; want the injected kill", err)
				}
				first := len(dst.savedNames())
				dst.before, dst.after = nil, nil
				st := push(t, r, dst)
				saved := dst.savedNames()
				seen := map[string]bool{}
				for _, name := range saved {
					if seen[name] {
						t.Errorf("%s stored twice", name)
					}
					seen[name] = true
				}
				if st.PacksPresent+st.PacksSent != total || st.PacksPresent < min(first-2, total) {
					t.Errorf("resumed push %+v after %d objects stored; want the stored packs found present", st, first)
				}
				openCopy(t, r, dst, blobs)
			})
		}
	}
}

func TestPushResendsLostPack(t *testing.T) {
	r, blobs := pushRepo(t)
	dst := newRecorder(t)
	push(t, r, dst)
	var victim string
	dst.List(t.Context(), packsPrefix, func(fi remote.FileInfo) error {
		victim = fi.Name
		return nil
	})
	if err := dst.Remove(t.Context(), victim); err != nil {
		t.Fatal(err)
	}
	st := push(t, r, dst)
	if st.Lost != 1 || st.PacksSent != 1 {
		t.Errorf("push after losing %s: %+v; want Lost 1, PacksSent 1", victim, st)
	}
	openCopy(t, r, dst, blobs)
}

func TestPushRefusesAnotherRepository(t *testing.T) {
	r, _ := pushRepo(t)
	other, _ := TestRepository(t, InitOptions{})
	dst := newRecorder(t)
	push(t, other, dst)
	before := len(dst.savedNames())
	_, err := r.Push(t.Context(), dst, PushOptions{Remote: "offsite"})
	var mismatch *RemoteMismatchError
	if !errors.As(err, &mismatch) || mismatch.ID != other.Config().ID {
		t.Fatalf("Push into another repository's remote = %v; want RemoteMismatchError naming %s", err, other.Config().ID)
	}
	if after := dst.savedNames(); len(after) != before {
		t.Errorf("refused push still stored %q", after[before:])
	}
}

func TestPushProgress(t *testing.T) {
	r, _ := pushRepo(t)
	var last PushProgress
	calls := 0
	st, err := r.Push(t.Context(), newRecorder(t), PushOptions{Remote: "offsite", Progress: func(p PushProgress) {
		calls++
		if p.Phase < last.Phase || p.BytesSent < last.BytesSent {
			t.Errorf("progress went backwards: %+v after %+v", p, last)
		}
		last = p
	}})
	if err != nil {
		t.Fatal(err)
	}
	if calls < int(PushDone) || last.Phase != PushDone {
		t.Errorf("%d progress calls, last %+v; want one per phase, ending done", calls, last)
	}
	if last.BytesSent != last.BytesToSend || last.BytesSent != st.BytesSent || last.PacksSent != st.PacksSent {
		t.Errorf("final progress %+v disagrees with stats %+v", last, st)
	}
}

func TestPushETA(t *testing.T) {
	tests := []struct {
		p    PushProgress
		want string
	}{
		{PushProgress{Phase: PushPacks, BytesToSend: 300, BytesSent: 100, SendElapsed: 1e9}, "2s"},
		{PushProgress{Phase: PushPacks, BytesToSend: 300}, "unknown"},
		{PushProgress{Phase: PushSegments, BytesToSend: 300, BytesSent: 300, SendElapsed: 1e9}, "unknown"},
	}
	for _, tt := range tests {
		got := "unknown"
		if eta, ok := tt.p.ETA(); ok {
			got = eta.String()
		}
		if got != tt.want {
			t.Errorf("ETA(%+v) = %s; want %s", tt.p, got, tt.want)
		}
	}
}

// TestPushDuringBackup pushes again and again while a backup writes
// packs, segments and snapshots: every snapshot must reach the remote only
// after every segment (and so every pack) it depends on.
func TestPushDuringBackup(t *testing.T) {
	r, blobs := pushRepo(t)
	dst := newRecorder(t)
	var mu sync.Mutex
	needs := map[string][]string{} // snapshot object → segments present when it was written
	dst.before = func(ctx context.Context, name string) error {
		if !strings.HasPrefix(name, snapshotsPrefix) {
			return nil
		}
		mu.Lock()
		segs := needs[name]
		mu.Unlock()
		for _, seg := range segs {
			if _, err := dst.Backend.Stat(ctx, seg); err != nil {
				t.Errorf("%s pushed before %s: %v", name, seg, err)
			}
		}
		return nil
	}
	for _, fi := range listNames(t, r.be, snapshotsPrefix) {
		needs[fi] = listNames(t, r.be, segmentsPrefix)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for round := range 4 {
			for i := range 8 {
				data := randomData(int64(1000+round*100+i), 150<<10)
				if _, err := r.SaveBlob(t.Context(), blob.Data, r.BlobID(data), data); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				blobs[r.BlobID(data)] = data
				mu.Unlock()
			}
			snap, _ := NewSnapshotID()
			if err := r.SaveSnapshot(t.Context(), snap, []byte("during push")); err != nil {
				t.Error(err)
				return
			}
			segs := listNames(t, r.be, segmentsPrefix)
			mu.Lock()
			needs[snapshotsPrefix+snap.String()] = segs
			mu.Unlock()
		}
	}()
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		push(t, r, dst)
	}
	openCopy(t, r, dst, blobs)
}

func listNames(t *testing.T, be remote.Backend, prefix string) []string {
	t.Helper()
	fis, err := listObjects(t.Context(), be, prefix)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, fi := range fis {
		names = append(names, fi.Name)
	}
	return names
}
