package index

import (
	"reflect"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
)

// TestCondemnStores runs the condemnation methods on each way of holding
// the index.
func TestCondemnStores(t *testing.T) {
	t.Run("DB", func(t *testing.T) {
		d, err := Open(vfs.Default, indexDir(t), Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		exerciseCondemn(t, d)
	})
	t.Run("holder", func(t *testing.T) { exerciseCondemn(t, openSharedT(t, indexDir(t))) })
	t.Run("client", func(t *testing.T) {
		dir := indexDir(t)
		openSharedT(t, dir)
		exerciseCondemn(t, openSharedT(t, dir))
	})
}

func lookups(t *testing.T, st Store, e BlobEntry) (found, live bool) {
	t.Helper()
	_, found, err := st.Lookup(e.Type, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	_, live, err = st.LookupLive(e.Type, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	return found, live
}

func exerciseCondemn(t *testing.T, st Store) {
	rec1, rec2 := RecordID{1}, RecordID{2}
	p1, e1 := testPack(1, 3)
	p2, e2 := testPack(2, 2)
	for _, p := range []struct {
		PackInfo
		e []BlobEntry
	}{{p1, e1}, {p2, e2}} {
		if err := st.AddPack(p.PackInfo, p.e); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Condemn(rec1, []blob.ID{p1.ID}); err != nil {
		t.Fatal(err)
	}
	if found, live := lookups(t, st, e1[0]); !found || live {
		t.Fatalf("blob of a condemned pack: found %v, live %v; want readable, not live", found, live)
	}
	if found, live := lookups(t, st, e2[0]); !found || !live {
		t.Fatalf("blob of a live pack: found %v, live %v", found, live)
	}
	if got := collect(t, st.UnlistedPacks); !reflect.DeepEqual(got, []blob.ID{p2.ID}) {
		t.Fatalf("unlisted = %v, want only the live pack", got)
	}
	if got := collect(t, st.Condemned); !reflect.DeepEqual(got, []Condemnation{{Pack: p1.ID, Record: rec1}}) {
		t.Fatalf("Condemned = %+v", got)
	}

	// A condemned pack added later fills in only blobs the index lacks.
	p4, e4 := testPack(4, 2)
	e4[1].ID = e2[1].ID
	if err := st.Condemn(rec1, []blob.ID{p4.ID}); err != nil {
		t.Fatal(err)
	}
	if err := st.AddSegment(nid('g', 4), []PackBlobs{{p4, e4}}); err != nil {
		t.Fatal(err)
	}
	if l, _, _ := st.Lookup(blob.Data, e2[1].ID); l.Pack != p2.ID {
		t.Fatalf("a condemned pack displaced a live location: %+v", l)
	}
	if l, _, _ := st.Lookup(blob.Data, e4[0].ID); l.Pack != p4.ID {
		t.Fatalf("a condemned pack's own blob is not indexed: %+v", l)
	}

	// Only the record that condemned a pack lifts the condemnation.
	if err := st.Uncondemn(rec2, p1.ID); err != nil {
		t.Fatal(err)
	}
	if _, live := lookups(t, st, e1[0]); live {
		t.Fatal("another record's Uncondemn lifted the condemnation")
	}
	if err := st.Uncondemn(rec1, p4.ID); err != nil {
		t.Fatal(err)
	}
	if _, live := lookups(t, st, e4[0]); !live {
		t.Fatal("Uncondemn left the pack condemned")
	}

	// Dropping a pack forgets it, and points a moved blob at its other copy.
	if err := st.SetRemote("s3", p1.ID); err != nil {
		t.Fatal(err)
	}
	moved := e1[1]
	moved.Location.Pack = p2.ID
	refs := []BlobRef{{e1[0].Type, e1[0].ID}, {e1[1].Type, e1[1].ID}, {e1[2].Type, e1[2].ID}}
	if err := st.DropPack(p1.ID, refs, []BlobEntry{moved}, []string{"s3"}); err != nil {
		t.Fatal(err)
	}
	if found, _ := lookups(t, st, e1[0]); found {
		t.Fatal("a dropped pack's blob is still indexed")
	}
	if l, _, _ := st.Lookup(blob.Data, e1[1].ID); l != moved.Location {
		t.Fatalf("moved blob at %+v, want %+v", l, moved.Location)
	}
	if ok, _ := st.HasPack(p1.ID); ok {
		t.Fatal("dropped pack still known")
	}
	if ok, _ := st.OnRemote("s3", p1.ID); ok {
		t.Fatal("dropped pack still recorded on a remote")
	}

	// A buried pack is forgotten, stays a tombstone, and is not re-added.
	if err := st.Condemn(rec2, []blob.ID{p2.ID}); err != nil {
		t.Fatal(err)
	}
	if err := st.Bury(rec2, p2.ID); err != nil {
		t.Fatal(err)
	}
	if err := st.AddSegment(nid('g', 5), []PackBlobs{{p2, e2}}); err != nil {
		t.Fatal(err)
	}
	if ok, _ := st.HasPack(p2.ID); ok {
		t.Fatal("a buried pack was added again")
	}
	if _, live := lookups(t, st, e2[0]); live {
		t.Fatal("a buried pack's blob counts for writers")
	}
	want := []Condemnation{{Pack: p2.ID, Record: rec2, Gone: true}}
	if got := collect(t, st.Condemned); !reflect.DeepEqual(got, want) {
		t.Fatalf("Condemned = %+v, want %+v", got, want)
	}
}
