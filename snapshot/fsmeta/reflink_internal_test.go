package fsmeta

import (
	"slices"
	"testing"
)

// TestSameMapping pins what counts as unchanged between two extent maps:
// the same physical bytes at the same offset, or a hole in both; never an
// extent whose place the filesystem does not vouch for.
func TestSameMapping(t *testing.T) {
	tests := []struct {
		name string
		a, b []mapping
		size int64
		want Ranges
	}{
		{"identical", []mapping{{0, 100, 1000}}, []mapping{{0, 100, 1000}}, 100, Ranges{{0, 100}}},
		{"one block moved", []mapping{{0, 100, 1000}}, []mapping{{0, 40, 1000}, {40, 10, 5000}, {50, 50, 1050}}, 100,
			Ranges{{0, 40}, {50, 50}}},
		{"holes in both, data in one", []mapping{{20, 10, 1000}}, []mapping{{20, 10, 1000}, {60, 10, 3000}}, 100,
			Ranges{{0, 60}, {70, 30}}},
		{"same physical, other offset", []mapping{{0, 50, 1000}}, []mapping{{10, 50, 1000}}, 60, nil},
		{"untrusted in both", []mapping{{0, 50, untrusted}}, []mapping{{0, 50, untrusted}}, 50, nil},
		{"cut at the smaller size", []mapping{{0, 4096, 1000}}, []mapping{{0, 4096, 1000}}, 100, Ranges{{0, 100}}},
		{"empty", nil, nil, 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := sameMapping(tc.a, tc.b, tc.size); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRangesContain(t *testing.T) {
	r := Ranges{{0, 100}, {200, 50}}
	for _, tc := range []struct {
		off, n int64
		want   bool
	}{{0, 100, true}, {50, 51, false}, {100, 1, false}, {200, 50, true}, {199, 2, false}, {249, 1, true}, {250, 1, false}} {
		if got := r.Contain(tc.off, tc.n); got != tc.want {
			t.Errorf("Contain(%d, %d) = %v, want %v", tc.off, tc.n, got, tc.want)
		}
	}
}
