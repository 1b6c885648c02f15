package chunkstore

import (
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/hindsight-backup/hindsight/remote"
)

func TestRemotesFile(t *testing.T) {
	r, _ := pushRepo(t)
	if _, err := r.Remote(t.Context(), "offsite"); !errors.Is(err, ErrNoRemote) {
		t.Fatalf("Remote before any add = %v; want ErrNoRemote", err)
	}
	for _, bad := range []string{"", "-x", "a/b", "a b", strings.Repeat("x", 65)} {
		if err := r.SaveRemote(t.Context(), bad, "s3:https://h/b"); err == nil {
			t.Errorf("SaveRemote(%q) accepted the name", bad)
		}
	}
	if err := r.SaveRemote(t.Context(), "offsite", "s3:https://h/b/old"); err != nil {
		t.Fatal(err)
	}
	if err := r.SaveRemote(t.Context(), "offsite", "s3:https://h/b/new"); err != nil {
		t.Fatal(err)
	}
	if err := r.SaveRemote(t.Context(), "second", "/mnt/usb"); err != nil {
		t.Fatal(err)
	}
	got, err := r.Remotes(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"offsite": "s3:https://h/b/new", "second": "/mnt/usb"}; !maps.Equal(got, want) {
		t.Errorf("Remotes = %v; want %v", got, want)
	}
	// The remotes file is this repository's own: a push must not copy it.
	dst := newRecorder(t)
	push(t, r, dst)
	if _, err := dst.Stat(t.Context(), remotesName); !remote.IsNotExist(err) {
		t.Errorf("pushed the remotes file (Stat = %v)", err)
	}
}

func TestRemoteStatus(t *testing.T) {
	r, _ := pushRepo(t)
	dst := newRecorder(t)
	st, err := r.RemoteStatus(t.Context(), "offsite", dst)
	if err != nil {
		t.Fatal(err)
	}
	packs := countPacks(t, r)
	if st.Packs != packs || st.PacksOnRemote != 0 || st.Snapshots != 2 || len(st.SnapshotsPending) != 2 {
		t.Errorf("status before push = %+v; want %d packs, none on the remote, 2 snapshots pending", st, packs)
	}
	push(t, r, dst)
	st, err = r.RemoteStatus(t.Context(), "offsite", dst)
	if err != nil {
		t.Fatal(err)
	}
	if st.PacksOnRemote != packs || st.BytesOnRemote != st.Bytes || len(st.SnapshotsPending) != 0 {
		t.Errorf("status after push = %+v; want everything on the remote", st)
	}
	if st, err := r.RemoteStatus(t.Context(), "elsewhere", nil); err != nil || st.PacksOnRemote != 0 || st.SnapshotsPending != nil {
		t.Errorf("offline status of another remote = %+v, %v; want nothing recorded, snapshots not compared", st, err)
	}
}

func TestImmutable(t *testing.T) {
	for name, want := range map[string]bool{
		"packs/ab/ab12":     true,
		"index-segments/x":  true,
		"snapshots/x":       false,
		"config":            false,
		"keys/k":            false,
		"locks/l":           false,
		remotesName:         false,
		"packsx/not-a-pack": false,
	} {
		if got := Immutable(name); got != want {
			t.Errorf("Immutable(%q) = %v; want %v", name, got, want)
		}
	}
}

// FuzzRemotesFile decodes arbitrary remotes.json content: the file is
// plain JSON that people edit by hand. A decoded list must come back from
// SaveRemote's encoding unchanged.
func FuzzRemotesFile(f *testing.F) {
	good, err := encodeRemotes(map[string]string{"offsite": "s3:https://h/b", "usb": "/mnt/usb"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"version":1,"remotes":null}`))
	f.Add([]byte(`{"version":2,"remotes":{"a":"x","a":"y"}}`))
	f.Add([]byte(`{"remotes":{"\xff":"\u0000"}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		all, err := decodeRemotes(b)
		if err != nil {
			if all != nil {
				t.Fatalf("error %v with remotes %v", err, all)
			}
			return
		}
		if all == nil {
			t.Fatal("decoded a nil map: SaveRemote would panic adding to it")
		}
		again, err := encodeRemotes(all)
		if err != nil {
			t.Fatal(err)
		}
		back, err := decodeRemotes(again)
		if err != nil || !maps.Equal(back, all) {
			t.Fatalf("round trip: %v, %v; want %v", back, err, all)
		}
	})
}
