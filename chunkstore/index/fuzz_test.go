package index

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
)

// FuzzValues decodes arbitrary bytes as each Pebble value kind. The
// encodings are fixed width, so a value that decodes must encode back to
// exactly its bytes.
func FuzzValues(f *testing.F) {
	f.Add(Location{Pack: id(3), Offset: 1, Length: 2, RawLength: 3, Compression: 1}.encode())
	f.Add((&HistoryRow{Kind: KindFile, Size: 5, Mtime: -1, Content: id(4)}).appendValue(nil))
	f.Add(make([]byte, 12))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, v []byte) {
		if l, err := decodeLocation(v); err == nil && !bytes.Equal(l.encode(), v) {
			t.Errorf("location %+v encodes as %x, decoded from %x", l, l.encode(), v)
		}
		if p, err := decodePackInfo(id(1), v); err == nil {
			// The schema's "p" value: size(8) blobCount(4).
			again := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(nil, uint64(p.Size)), p.Count)
			if p.ID != id(1) || !bytes.Equal(again, v) {
				t.Errorf("pack record %+v encodes as %x, decoded from %x", p, again, v)
			}
		}
		var r HistoryRow
		if err := r.decodeValue(v); err == nil && !bytes.Equal(r.appendValue(nil), v) {
			t.Errorf("history value %+v encodes as %x, decoded from %x", r, r.appendValue(nil), v)
		}
	})
}

// FuzzServerRequest hands the index holder arbitrary requests, as a client
// of another version or a garbled connection would send them. The holder
// must answer each with a value or an error, never panic; requests are
// decoded whole before they touch the DB, which the fuzzer exercises by
// sending valid prefixes with junk after them.
func FuzzServerRequest(f *testing.F) {
	var e encoder
	e.packInfo(PackInfo{ID: id(9), Size: 170, Count: 1})
	e.blobEntries([]BlobEntry{{Type: blob.Data, ID: id(1), Location: Location{Pack: id(9), Length: 100, RawLength: 200}}})
	f.Add(byte(opAddPack), e.b)
	e = encoder{}
	e.bool(true)
	e.u32(1)
	e.historyRow(&HistoryRow{Source: "src", Path: "a/b", Time: 5, Snapshot: id(2), Kind: KindFile, Content: id(3)})
	f.Add(byte(opPutHistory), e.b)
	e = encoder{}
	e.str("src")
	e.str("a")
	f.Add(byte(opHistory), e.b)
	f.Add(byte(opHistoryChildren), e.b)
	e = encoder{}
	e.u8(uint8(blob.Data))
	e.id(id(1))
	f.Add(byte(opLookup), e.b)
	f.Add(byte(opAddSegment), []byte{0xff, 0xff, 0xff, 0xff})
	f.Add(byte(opBlobs), []byte{})
	f.Add(byte(0), []byte{})

	db, err := Open(vfs.NewMem(), "idx", Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	s := &server{db: db}
	f.Fuzz(func(t *testing.T, op byte, req []byte) {
		d := &decoder{b: req}
		switch op {
		case opPacks, opUnlistedPacks, opSegments, opBlobs, opSnapshots, opHistory, opHistoryChildren, opHistorySources:
			items := 0
			_ = s.runScan(op, d, func(fill func(*encoder)) error {
				var e encoder
				fill(&e)
				if items++; items > 1000 {
					return errStopping // the DB grows with the fuzzing; a sample will do
				}
				return nil
			})
			return
		}
		var e encoder
		if err := s.read(op, d, &e); err == errNotRead {
			_ = s.write(op, d)
		}
	})
}

// FuzzDecoder reads arbitrary bytes as the composite protocol values. Each
// has one encoding, so whatever decodes must encode back to the bytes read.
func FuzzDecoder(f *testing.F) {
	var e encoder
	e.blobEntries([]BlobEntry{{Type: blob.Tree, ID: id(1), Location: Location{Pack: id(2), Offset: 7}}})
	e.historyRow(&HistoryRow{Source: "s", Path: "p", Time: -3, Snapshot: id(5), Kind: KindDir})
	e.packInfo(PackInfo{ID: id(6), Size: 1 << 40, Count: 3})
	f.Add(e.b)
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		d := &decoder{b: in}
		entries := d.blobEntries()
		row := d.historyRow()
		p := d.packInfo()
		if d.err != nil {
			return
		}
		var e encoder
		e.blobEntries(entries)
		e.historyRow(row)
		e.packInfo(p)
		if read := in[:len(in)-len(d.b)]; !bytes.Equal(e.b, read) {
			t.Fatalf("decoded %x, encodes as %x", read, e.b)
		}
	})
}

// FuzzHistoryKey: a history key decodes to the row it was made from (its
// path with empty components dropped, as keys keep none), and no bytes
// make the decoder panic.
func FuzzHistoryKey(f *testing.F) {
	for _, p := range []string{"", "a", "a/b", "a-b/c d", "a//b/", "/x"} {
		f.Add(p, int64(-5), []byte{1, 2, 3})
	}
	f.Fuzz(func(t *testing.T, path string, tm int64, raw []byte) {
		decodeHistoryKey(&HistoryRow{Path: "x/y"}, raw) // any bytes: an error, never a panic
		if strings.ContainsRune(path, 0) {
			return
		}
		var snap blob.ID
		copy(snap[:], raw)
		k := appendHistoryKey(nil, "src", path, tm, snap)
		// Decoded over a row that holds another path, then over itself:
		// the path must come out the same either way.
		r := &HistoryRow{Path: "x/y"}
		err := decodeHistoryKey(r, k[len(historySourcePrefix("src")):])
		if err == nil {
			err = decodeHistoryKey(r, k[len(historySourcePrefix("src")):])
		}
		var comps []string
		for _, c := range strings.Split(path, "/") {
			if c != "" {
				comps = append(comps, c)
			}
		}
		if err != nil || r.Path != strings.Join(comps, "/") || r.Time != tm || r.Snapshot != snap {
			t.Fatalf("%q %d %x: decoded %+v, %v", path, tm, snap, r, err)
		}
	})
}
