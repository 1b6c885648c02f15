package snapshot_test

import (
	"bytes"
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/hindsight-backup/hindsight/chunkstore"
	"github.com/hindsight-backup/hindsight/snapshot"
	"github.com/hindsight-backup/hindsight/snapshot/fsmeta"
)

// blockOracle is changed-block tracking as a hypervisor keeps it: the
// blocks of 4 KiB that differ between the base and the image now.
type blockOracle struct {
	base      string
	unchanged fsmeta.Ranges
}

func (o blockOracle) Base() string                { return o.base }
func (o blockOracle) Unchanged(off, n int64) bool { return o.unchanged.Contain(off, n) }

func compareBlocks(base string, old, cur []byte) blockOracle {
	o := blockOracle{base: base}
	const block = 4096
	for off := 0; off < min(len(old), len(cur)); off += block {
		end := min(off+block, len(old), len(cur))
		if bytes.Equal(old[off:end], cur[off:end]) {
			if k := len(o.unchanged) - 1; k >= 0 && o.unchanged[k].Off+o.unchanged[k].Len == int64(off) {
				o.unchanged[k].Len += int64(end - off)
			} else {
				o.unchanged = append(o.unchanged, fsmeta.Extent{Off: int64(off), Len: int64(end - off)})
			}
		}
	}
	return o
}

// everything is an oracle that calls every byte unchanged.
type everything string

func (o everything) Base() string              { return string(o) }
func (everything) Unchanged(off, n int64) bool { return true }

// imageWith backs up path as host's image of vg0/disk, recording clone as
// the copy read, and returns its chunks.
func imageWith(t *testing.T, repo snapshot.Repo, path, host, clone string, changes snapshot.ChangeOracle, prog *snapshot.Progress) []snapshot.Chunk {
	t.Helper()
	ctx := context.Background()
	o := snapshot.ImageOptions{Host: host, Source: "lvm:vg0/disk", Volume: &snapshot.Volume{Clone: clone}, Changes: changes}
	res, err := snapshot.BackupImage(ctx, repo, path, o, prog)
	if err != nil {
		t.Fatal(err)
	}
	if res.Record.Volume.Clone != clone {
		t.Fatalf("record names clone %q, want %q", res.Record.Volume.Clone, clone)
	}
	n, err := snapshot.ImageNode(ctx, repo, res.Record)
	if err != nil {
		t.Fatal(err)
	}
	return n.Content
}

// TestChangeOracleSkipsUnchanged changes an image the ways a guest does
// and backs it up with an oracle that knows which blocks changed: the
// chunks must be those of a backup without a parent, and what the oracle
// vouched for must not have been read.
func TestChangeOracleSkipsUnchanged(t *testing.T) {
	tests := []struct {
		name   string
		change func([]byte) []byte
	}{
		{"unchanged", func(b []byte) []byte { return b }},
		{"overwritten in place", func(b []byte) []byte { copy(b[9*mib+333:], bytes.Repeat([]byte{7}, 5000)); return b }},
		{"zeroed", func(b []byte) []byte { clear(b[3*mib : 4*mib]); return b }},
		{"written where it was zero", func(b []byte) []byte { copy(b[15*mib+100:], random(3, 70000)); return b }},
		{"scattered blocks", func(b []byte) []byte {
			for off := 512 * 1024; off < len(b); off += 5 * mib {
				copy(b[off:], random(int64(off), 4096))
			}
			return b
		}},
		{"appended", func(b []byte) []byte { return append(b, random(9, 3*mib)...) }},
		{"truncated", func(b []byte) []byte { return b[:20*mib+17] }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			repo, _ := chunkstore.TestRepository(t, chunkstore.InitOptions{})
			path := filepath.Join(t.TempDir(), "disk")
			data := random(8, 24*mib)
			clear(data[15*mib : 17*mib])
			writeFile(t, path, data)
			imageWith(t, repo, path, "a", "base-1", nil, nil)
			old := slices.Clone(data)
			data = tc.change(data)
			writeFile(t, path, data)
			var prog snapshot.Progress
			got := imageWith(t, repo, path, "a", "base-2", compareBlocks("base-1", old, data), &prog)
			if want := imageWith(t, repo, path, "b", "", nil, nil); !slices.Equal(got, want) {
				t.Fatalf("with the oracle: %d chunks; the chunker alone: %d, or their IDs differ", len(got), len(want))
			}
			read, unread := prog.ReadBytes.Load(), prog.UnreadBytes.Load()
			t.Logf("%d bytes read, %d not", read, unread)
			// What changed lies in at most three chunks of at most 8 MiB
			// (scattered: one per 5 MiB, so fewer than all).
			if unread == 0 || read > uint64(len(data))*3/4 || tc.name == "unchanged" && read != 0 {
				t.Errorf("%d bytes read, %d not, of %d", read, unread, len(data))
			}
		})
	}
}

// TestChangeOracleTrustedOnlyForItsBase: an oracle is believed without
// being checked, so it is used only when the parent was made from the
// copy it compares with. One that lies about that copy records the
// parent's bytes — the reason the identity is checked.
func TestChangeOracleTrustedOnlyForItsBase(t *testing.T) {
	tests := []struct {
		name        string
		parentClone string
		oracleBase  string
		believed    bool
	}{
		{"parent made from the base", "base-1", "base-1", true},
		{"another base", "base-1", "base-0", false},
		{"parent from no clone", "", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			repo, _ := chunkstore.TestRepository(t, chunkstore.InitOptions{})
			path := filepath.Join(t.TempDir(), "disk")
			data := random(8, 24*mib)
			writeFile(t, path, data)
			first := imageWith(t, repo, path, "a", tc.parentClone, nil, nil)
			copy(data[9*mib:], random(4, mib))
			writeFile(t, path, data)
			var prog snapshot.Progress
			got := imageWith(t, repo, path, "a", "base-2", everything(tc.oracleBase), &prog)
			fresh := imageWith(t, repo, path, "b", "", nil, nil)
			if tc.believed {
				if !slices.Equal(got, first) || prog.ReadBytes.Load() != 0 {
					t.Fatalf("a trusted oracle's word was not taken: %d bytes read", prog.ReadBytes.Load())
				}
				return
			}
			if !slices.Equal(got, fresh) || prog.UnreadBytes.Load() != 0 {
				t.Fatalf("an oracle for another base was used: %d bytes not read", prog.UnreadBytes.Load())
			}
		})
	}
}
