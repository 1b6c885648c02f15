package lvm

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseThinDelta(t *testing.T) {
	const head = `<superblock uuid="" time="1" transaction="2" data_block_size="128" nr_data_blocks="0">` + "\n"
	const block = 128 * 512
	tests := []struct {
		name, xml string
		size      int64
		want      []Range
		wantErr   string
	}{
		{"all same", head + `<diff left="1" right="2"><same begin="0" length="16"/></diff></superblock>`, 16 * block,
			[]Range{{0, 16 * block}}, ""},
		{"changes of every kind", head + `<diff left="1" right="2">
  <same begin="0" length="2"/>
  <different begin="2" length="1"/>
  <same begin="3" length="4"/>
  <left_only begin="7" length="1"/>
  <right_only begin="10" length="2"/>
</diff></superblock>`, 16 * block, []Range{{0, 2 * block}, {3 * block, 4 * block}, {8 * block, 2 * block}, {12 * block, 4 * block}}, ""},
		{"unmapped in both", head + `<diff left="1" right="2"></diff></superblock>`, 3 * block, []Range{{0, 3 * block}}, ""},
		{"changed to the end", head + `<diff left="1" right="2"><different begin="1" length="9"/></diff></superblock>`, 4 * block,
			[]Range{{0, block}}, ""},
		{"unknown element", head + `<diff left="1" right="2"><moved begin="1" length="1"/></diff></superblock>`, block, nil, "<moved>"},
		{"no block size", `<superblock><diff/></superblock>`, block, nil, "data_block_size"},
		{"out of order", head + `<diff><different begin="5" length="1"/><different begin="2" length="1"/></diff></superblock>`, 8 * block, nil, "order"},
		{"not XML", "thin_delta: bad", block, nil, "unreadable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseThinDelta([]byte(tt.xml), tt.size)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, %v; want an error about %s", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func thinLV(name, id string) *LV {
	return &LV{VG: "vg-a", Name: name, Attr: "Vwi-a-tz--", Pool: "data-pool", ThinID: id, Size: 4 * 128 * 512}
}

// TestThinUnchanged pins the commands: a metadata snapshot of the pool,
// released again even when thin_delta fails, and errors that name the
// volume and the command.
func TestThinUnchanged(t *testing.T) {
	const reserve = "dmsetup message vg--a-data--pool-tpool 0 reserve_metadata_snap"
	const release = "dmsetup message vg--a-data--pool-tpool 0 release_metadata_snap"
	const delta = "thin_delta -m --thin1 7 --thin2 9 /dev/mapper/vg--a-data--pool_tmeta"
	out := `<superblock data_block_size="128"><diff left="7" right="9"><different begin="1" length="1"/></diff></superblock>`
	r := (&recorder{}).on("dmsetup", "", nil).on("thin_delta", out, nil)
	m := newTestManager(t, r)
	got, err := m.ThinUnchanged(context.Background(), thinLV("hindsight-base-vm", "7"), thinLV("hindsight-snap-vm-x", "9"))
	if want := []Range{{0, 65536}, {131072, 131072}}; err != nil || !slices.Equal(got, want) {
		t.Errorf("got %v, %v; want %v", got, err, want)
	}
	if want := []string{reserve, delta, release}; !slices.Equal(r.calls, want) {
		t.Errorf("ran %q, want %q", r.calls, want)
	}

	r = (&recorder{}).on("dmsetup", "", nil).
		on("thin_delta", "", &CommandError{Stderr: "bad checksum in superblock", Err: errors.New("exit status 1")})
	m = newTestManager(t, r)
	_, err = m.ThinUnchanged(context.Background(), thinLV("hindsight-base-vm", "7"), thinLV("hindsight-snap-vm-x", "9"))
	if err == nil || !strings.Contains(err.Error(), "vg-a/hindsight-snap-vm-x") || !strings.Contains(err.Error(), "bad checksum") {
		t.Errorf("got %v, want the volume and thin_delta's complaint named", err)
	}
	if r.calls[len(r.calls)-1] != release {
		t.Errorf("ran %q: the metadata snapshot was not released", r.calls)
	}

	r = &recorder{}
	m = newTestManager(t, r)
	classic := &LV{VG: "vg-a", Name: "old", Attr: "swi-a-s---"}
	if _, err := m.ThinUnchanged(context.Background(), classic, thinLV("hindsight-snap-vm-x", "9")); err == nil || len(r.calls) > 0 {
		t.Errorf("a classic base: got %v after %q, want an error and no command", err, r.calls)
	}
}

func TestKeepAsBase(t *testing.T) {
	for _, tt := range []struct {
		name, lvs string
		want      []string
	}{
		{"first", lvsJSON(lvRow("vg0", "vm", "Vwi-aotz--", "", 1<<30, "")),
			[]string{"lvrename vg0 hindsight-snap-vm-x hindsight-base-vm", "lvchange -an -ky vg0/hindsight-base-vm"}},
		{"replacing", lvsJSON(lvRow("vg0", "vm", "Vwi-aotz--", "", 1<<30, ""), lvRow("vg0", "hindsight-base-vm", "Vwi---tz-k", "vm", 1<<30, "")),
			[]string{"lvremove -y vg0/hindsight-base-vm", "lvrename vg0 hindsight-snap-vm-x hindsight-base-vm", "lvchange -an -ky vg0/hindsight-base-vm"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := (&recorder{}).on("lvs", tt.lvs, nil).on("lvremove", "", nil).on("lvrename", "", nil).on("lvchange", "", nil)
			m := newTestManager(t, r)
			lock, err := m.takeLock("hindsight-snap-vm-x")
			if err != nil {
				t.Fatal(err)
			}
			s := &Snapshot{LV: LV{VG: "vg0", Name: "hindsight-snap-vm-x"}, Origin: &LV{VG: "vg0", Name: "vm"}, m: m, lock: lock}
			if err := s.KeepAsBase(context.Background()); err != nil {
				t.Fatal(err)
			}
			var changes []string
			for _, c := range r.calls {
				if !strings.HasPrefix(c, "lvs ") {
					changes = append(changes, c)
				}
			}
			if !slices.Equal(changes, tt.want) {
				t.Errorf("ran %q, want %q", changes, tt.want)
			}
			if err := s.Remove(context.Background()); err != nil || r.count("lvremove") != len(tt.want)-2 {
				t.Errorf("Remove after KeepAsBase: %v, calls %q; want the base left alone", err, r.calls)
			}
			if m.held("hindsight-snap-vm-x") {
				t.Error("the snapshot's lock is still held")
			}
		})
	}
}
