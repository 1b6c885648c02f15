package chunkstore

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/hindsight-backup/hindsight/chunkstore/blob"
)

// Subset chooses the packs a check reads whole. The zero Subset reads
// none.
type Subset struct {
	All bool
	// Part of Of (1 ≤ Part ≤ Of): the packs whose ID, its first 8 bytes
	// read as a big-endian number, is Part-1 modulo Of. The parts 1/Of to
	// Of/Of cover every pack exactly once, so that a weekly cron job can
	// read a seventh of the repository each day and all of it each week.
	Part, Of int
	// Percent > 0 reads a random sample of that share of the packs, at
	// least one: a spot check whose cost does not grow with the repository
	// as a partition's does.
	Percent float64
}

// ParseSubset reads "n/m" (a part) or "p%" (a random sample).
func ParseSubset(s string) (Subset, error) {
	if p, ok := strings.CutSuffix(s, "%"); ok {
		f, err := strconv.ParseFloat(p, 64)
		if err != nil || math.IsNaN(f) || f <= 0 || f > 100 {
			return Subset{}, fmt.Errorf("subset %q: a percentage must be above 0 and at most 100", s)
		}
		return Subset{Percent: f}, nil
	}
	ns, ms, ok := strings.Cut(s, "/")
	n, err1 := strconv.Atoi(ns)
	m, err2 := strconv.Atoi(ms)
	if !ok || err1 != nil || err2 != nil || m < 1 || n < 1 || n > m {
		return Subset{}, fmt.Errorf("subset %q: want n/m with 1 ≤ n ≤ m (1/7 is the first seventh), or p%% (5%% is a random 5 percent)", s)
	}
	return Subset{Part: n, Of: m}, nil
}

func (s Subset) String() string {
	switch {
	case s.All:
		return "all"
	case s.Of > 0:
		return fmt.Sprintf("%d/%d", s.Part, s.Of)
	case s.Percent > 0:
		return strconv.FormatFloat(s.Percent, 'f', -1, 64) + "%"
	}
	return "none"
}

// pick returns the chosen packs among ids.
func (s Subset) pick(ids []blob.ID) map[blob.ID]bool {
	out := make(map[blob.ID]bool)
	switch {
	case s.All:
		for _, id := range ids {
			out[id] = true
		}
	case s.Of > 0:
		for _, id := range ids {
			if binary.BigEndian.Uint64(id[:8])%uint64(s.Of) == uint64(s.Part-1) {
				out[id] = true
			}
		}
	case s.Percent > 0 && len(ids) > 0:
		n := max(1, int(math.Ceil(float64(len(ids))*s.Percent/100)))
		for _, i := range rand.Perm(len(ids))[:min(n, len(ids))] {
			out[ids[i]] = true
		}
	}
	return out
}
