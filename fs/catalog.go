package fs

import (
	"sort"
	"strconv"
	"time"
)

// catalog is one listing of the repository's snapshots, named for the
// mount. A refresh replaces it whole, so a node reads one consistent list.
type catalog struct {
	sources []*source // sorted by name
	byName  map[string]*source
	newest  time.Time
	ids     []string // of every snapshot, as listed
}

// source is one source's snapshots, oldest first, with their names.
type source struct {
	name   string
	src    Source
	snaps  []Snapshot
	names  []string // names[i] names snaps[i]
	byName map[string]int
	byID   map[string]int
}

func newCatalog(snaps []Snapshot) *catalog {
	bySrc := make(map[Source]*source)
	var list []*source
	ids := make([]string, len(snaps))
	for i, s := range snaps {
		ids[i] = s.ID
		src := bySrc[s.Source]
		if src == nil {
			src = &source{src: s.Source}
			bySrc[s.Source] = src
			list = append(list, src)
		}
		src.snaps = append(src.snaps, s)
	}
	sort.Slice(list, func(i, j int) bool {
		a, b := list[i].src, list[j].src
		return a.Host < b.Host || a.Host == b.Host && a.Path < b.Path
	})
	base := make([]string, len(list))
	for i, s := range list {
		base[i] = sourceName(s.src)
	}
	c := &catalog{byName: make(map[string]*source, len(list)), ids: ids}
	for i, name := range uniqueNames(base, func(i int) string { return strconv.Itoa(i + 1) }) {
		s := list[i]
		s.name = name
		s.index()
		c.byName[name] = s
		if t := s.snaps[len(s.snaps)-1].Time; t.After(c.newest) {
			c.newest = t
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].name < list[j].name })
	c.sources = list
	return c
}

// index names the snapshots by time. Two in the same second of one source
// are told apart by the later one's ID.
func (s *source) index() {
	base := make([]string, len(s.snaps))
	for i, sn := range s.snaps {
		base[i] = timeName(sn.Time)
	}
	s.names = uniqueNames(base, func(i int) string { return shortID(s.snaps[i].ID) })
	s.byName = make(map[string]int, len(s.names))
	s.byID = make(map[string]int, len(s.names))
	for i, n := range s.names {
		s.byName[n] = i
		s.byID[s.snaps[i].ID] = i
	}
}

func shortID(id string) string { return id[:min(8, len(id))] }

// latest is the newest snapshot's index.
func (s *source) latest() int { return len(s.snaps) - 1 }
