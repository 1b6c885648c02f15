package chunkstore

import (
	"crypto/rand"
	"testing"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
)

func TestParseSubset(t *testing.T) {
	tests := []struct {
		in   string
		want Subset
		ok   bool
	}{
		{"1/7", Subset{Part: 1, Of: 7}, true},
		{"7/7", Subset{Part: 7, Of: 7}, true},
		{"1/1", Subset{Part: 1, Of: 1}, true},
		{"5%", Subset{Percent: 5}, true},
		{"0.5%", Subset{Percent: 0.5}, true},
		{"100%", Subset{Percent: 100}, true},
		{"0/7", Subset{}, false},
		{"8/7", Subset{}, false},
		{"1/0", Subset{}, false},
		{"-1/7", Subset{}, false},
		{"1/7/2", Subset{}, false},
		{"7", Subset{}, false},
		{"0%", Subset{}, false},
		{"101%", Subset{}, false},
		{"NaN%", Subset{}, false},
		{"", Subset{}, false},
	}
	for _, tt := range tests {
		got, err := ParseSubset(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseSubset(%q) = %+v, %v", tt.in, got, err)
		}
	}
}

func randomIDs(t *testing.T, n int) []blob.ID {
	ids := make([]blob.ID, n)
	for i := range ids {
		rand.Read(ids[i][:])
	}
	return ids
}

// The parts 1/m to m/m read every pack exactly once, and a part is the
// same whenever it is asked for.
func TestSubsetPartsCoverAll(t *testing.T) {
	ids := randomIDs(t, 500)
	const m = 7
	seen := map[blob.ID]int{}
	for n := 1; n <= m; n++ {
		s := Subset{Part: n, Of: m}
		part := s.pick(ids)
		if len(part) == 0 || len(part) > 2*len(ids)/m {
			t.Errorf("part %s holds %d of %d packs", s, len(part), len(ids))
		}
		again := s.pick(ids)
		for id := range part {
			seen[id]++
			if !again[id] {
				t.Errorf("part %s is not deterministic", s)
			}
		}
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Fatalf("pack %s is in %d parts", id.Short(), seen[id])
		}
	}
}

func TestSubsetPercent(t *testing.T) {
	ids := randomIDs(t, 200)
	for _, tt := range []struct {
		pct  float64
		want int
	}{{5, 10}, {0.1, 1}, {100, 200}, {33.3, 67}} {
		if got := len(Subset{Percent: tt.pct}.pick(ids)); got != tt.want {
			t.Errorf("%v%% of %d packs picks %d, want %d", tt.pct, len(ids), got, tt.want)
		}
	}
	if got := len(Subset{All: true}.pick(ids)); got != len(ids) {
		t.Errorf("all picks %d of %d", got, len(ids))
	}
	if got := len(Subset{}.pick(ids)); got != 0 {
		t.Errorf("the zero subset picks %d", got)
	}
}
