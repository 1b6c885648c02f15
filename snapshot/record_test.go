package snapshot

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func fullRecord() *Record {
	return &Record{
		Time:     time.Date(2026, 3, 1, 2, 3, 4, 5, time.FixedZone("", 3600)),
		Host:     "db1",
		Source:   "lvm:vg0/data",
		Paths:    []string{"/", "/srv/\xff\xfeold"},
		Kind:     KindFiles,
		Tags:     []string{"daily", "pg"},
		Parent:   testID(1),
		Tree:     testID(2),
		User:     "root",
		Program:  "hindsight 0.1.0",
		Excludes: []string{"/tmp", "*.swp"},
		Stats: Stats{Files: 1, Dirs: 2, Others: 3, Bytes: 1 << 40, NewBytes: 5, StoredBytes: 4,
			NewBlobs: 1<<64 - 1, Duration: 90*time.Minute + 1},
		Incomplete:     []string{"/var/log/syslog"},
		IncompleteMore: 7,
		Skipped:        []string{"/run/x.sock", "bad\x80name"},
	}
}

func recordsEqual(a, b *Record) bool {
	_, oa := a.Time.Zone()
	_, ob := b.Time.Zone()
	if !a.Time.Equal(b.Time) || oa != ob {
		return false
	}
	ac, bc := *a, *b
	ac.Time, bc.Time = time.Time{}, time.Time{}
	return reflect.DeepEqual(ac, bc)
}

func TestRecordRoundTrip(t *testing.T) {
	minimal := &Record{Time: time.Unix(1, 0).UTC(), Kind: KindImage, Tree: testID(3)}
	tests := []struct {
		name string
		rec  *Record
	}{
		{"full", fullRecord()},
		{"minimal", minimal},
		{"volume", &Record{Time: time.Unix(1, 0).UTC(), Kind: KindImage, Tree: testID(3), Source: "lvm:vg0/win10",
			Volume: &Volume{Size: 1 << 34, FSType: "ext4", FSUUID: "1b4e28ba-2fa1-11d2-883f-0016d3cca427", FSLabel: "r\xffoot", Clone: "131:1700000000.000000001:4096"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := EncodeRecord(tt.rec)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeRecord(b)
			if err != nil {
				t.Fatalf("%v\n%s", err, b)
			}
			if !recordsEqual(got, tt.rec) {
				t.Errorf("round trip:\ngot  %+v\nwant %+v", got, tt.rec)
			}
		})
	}
}

// The stored form is read by people (after decryption) and by every later
// hindsight, so its field names are pinned here.
func TestRecordJSONForm(t *testing.T) {
	b, err := EncodeRecord(fullRecord())
	if err != nil {
		t.Fatal(err)
	}
	want := `{"version":1,"time":"2026-03-01T02:03:04.000000005+01:00","host":"db1","source":"lvm:vg0/data",` +
		`"paths":["/",{"base64":"L3Nydi///m9sZA=="}],"kind":"files","tags":["daily","pg"],` +
		`"parent":"` + testID(1).String() + `","tree":"` + testID(2).String() + `",` +
		`"user":"root","program":"hindsight 0.1.0","excludes":["/tmp","*.swp"],` +
		`"stats":{"files":1,"dirs":2,"others":3,"bytes":1099511627776,"new_bytes":5,"stored_bytes":4,` +
		`"new_blobs":18446744073709551615,"duration_ns":5400000000001},` +
		`"incomplete":["/var/log/syslog"],"incomplete_more":7,` +
		`"skipped":["/run/x.sock",{"base64":"YmFkgG5hbWU="}]}`
	if string(b) != want {
		t.Errorf("got\n%s\nwant\n%s", b, want)
	}
}

// A volume's fields are pinned like the rest; a record without one has
// no "volume" key at all (TestRecordJSONForm).
func TestRecordVolumeJSONForm(t *testing.T) {
	r := &Record{Time: time.Unix(1, 0).UTC(), Kind: KindImage, Tree: testID(3),
		Volume: &Volume{Size: 4096, FSType: "xfs", FSUUID: "u", FSLabel: "data", Clone: "c"}}
	b, err := EncodeRecord(r)
	if err != nil {
		t.Fatal(err)
	}
	if want := `"volume":{"size":4096,"fs_type":"xfs","fs_uuid":"u","fs_label":"data","clone":"c"}`; !strings.Contains(string(b), want) {
		t.Errorf("got\n%s\nwant it to contain\n%s", b, want)
	}
}

func TestRecordCapsLists(t *testing.T) {
	r := fullRecord()
	r.Incomplete = nil
	r.IncompleteMore = 0
	for i := range MaxListedPaths + 5 {
		r.AddIncomplete(fmt.Sprint("/f", i))
	}
	if len(r.Incomplete) != MaxListedPaths || r.IncompleteMore != 5 {
		t.Fatalf("AddIncomplete kept %d, counted %d", len(r.Incomplete), r.IncompleteMore)
	}
	// A caller that appended directly still gets a record within the cap.
	r.Skipped = make([]string, MaxListedPaths+10)
	r.SkippedMore = 1
	b, err := EncodeRecord(r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Skipped) != MaxListedPaths || got.SkippedMore != 11 {
		t.Errorf("decoded %d skipped + %d more, want %d + 11", len(got.Skipped), got.SkippedMore, MaxListedPaths)
	}
	if len(r.Skipped) != MaxListedPaths+10 {
		t.Errorf("EncodeRecord modified its argument")
	}
}

func TestEncodeRecordRejects(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Record)
		msg    string
	}{
		{"zero time", func(r *Record) { r.Time = time.Time{} }, "no time"},
		{"year 10000", func(r *Record) { r.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, "years"},
		{"unknown kind", func(r *Record) { r.Kind = "vm" }, `kind "vm"`},
		{"no tree", func(r *Record) { r.Tree = [32]byte{} }, "no root tree"},
		{"negative duration", func(r *Record) { r.Stats.Duration = -1 }, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := fullRecord()
			tt.change(r)
			_, err := EncodeRecord(r)
			if !errors.Is(err, ErrInvalidRecord) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %v: want ErrInvalidRecord mentioning %q", err, tt.msg)
			}
		})
	}
}

func TestDecodeRecordRejects(t *testing.T) {
	tree := `"tree":"` + testID(2).String() + `"`
	valid := `"version":1,"time":"2026-03-01T02:03:04Z","kind":"files",` + tree
	tests := []struct {
		name    string
		in      string
		version bool
		msg     string
	}{
		{"empty", ``, false, "unexpected end"},
		{"not an object", `[1]`, false, "cannot unmarshal"},
		{"null", `null`, false, "no version"},
		{"no version", `{"kind":"files"}`, false, "no version"},
		{"version 2", `{"version":2}`, true, "version 2"},
		{"version 0", `{"version":0,` + valid[12:] + `}`, true, "version 0"},
		{"version string", `{"version":"1"}`, false, "cannot unmarshal"},
		{"trailing garbage", `{` + valid + `}x`, false, "invalid character"},
		{"no tree", `{"version":1,"time":"2026-03-01T02:03:04Z","kind":"files"}`, false, "tree"},
		{"short tree", `{"version":1,"time":"2026-03-01T02:03:04Z","kind":"files","tree":"abcd"}`, false, "tree"},
		{"bad parent", `{` + valid + `,"parent":"zz"}`, false, "parent"},
		{"zero parent", `{` + valid + `,"parent":"` + strings.Repeat("0", 64) + `"}`, false, "zero parent"},
		{"no time", `{"version":1,"kind":"files",` + tree + `}`, false, "no time"},
		{"bad time", `{"version":1,"time":"yesterday","kind":"files",` + tree + `}`, false, "parsing time"},
		{"unknown kind", `{"version":1,"time":"2026-03-01T02:03:04Z","kind":"vm",` + tree + `}`, false, "kind"},
		{"bad base64", `{` + valid + `,"host":{"base64":"!!"}}`, false, "illegal base64"},
		{"object without base64", `{` + valid + `,"host":{"b64":"AA=="}}`, false, "base64"},
		{"negative duration", `{` + valid + `,"stats":{"duration_ns":-5}}`, false, "negative"},
		{"too many incomplete", `{` + valid + `,"incomplete":[` + strings.Repeat(`"a",`, MaxListedPaths) + `"a"]}`, false, "more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := DecodeRecord([]byte(tt.in))
			if err == nil {
				t.Fatalf("decoded %+v, want error", r)
			}
			want := ErrInvalidRecord
			if tt.version {
				want = ErrFormatVersion
			}
			if !errors.Is(err, want) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q: want %v mentioning %q", err, want, tt.msg)
			}
		})
	}
}

func FuzzRecordRoundTrip(f *testing.F) {
	b, err := EncodeRecord(fullRecord())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"version":1,"time":"2026-03-01T02:03:04Z","kind":"image","tree":"` + testID(2).String() + `"}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`{"version":1,"host":{"base64":"/w=="}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := DecodeRecord(in)
		if err != nil {
			if !errors.Is(err, ErrInvalidRecord) && !errors.Is(err, ErrFormatVersion) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		b, err := EncodeRecord(r)
		if err != nil {
			t.Fatalf("decoded record does not encode: %v\n%+v", err, r)
		}
		again, err := DecodeRecord(b)
		if err != nil {
			t.Fatalf("re-encoded record does not decode: %v\n%s", err, b)
		}
		if !recordsEqual(again, r) {
			t.Fatalf("round trip:\nfirst  %+v\nsecond %+v", r, again)
		}
	})
}
