package fs

import (
	"strings"
	"time"
)

// timeLayout names snapshots and versions: ISO 8601 in UTC without colons,
// which Samba and Windows clients cannot show and scp misreads as a host
// separator. Fixed width and largest unit first, so names sort
// chronologically as plain strings (in ls, in shell globs, in rsync).
const timeLayout = "2006-01-02T150405Z"

// timeName is the directory or file name of something made at t.
func timeName(t time.Time) string { return t.UTC().Format(timeLayout) }

// sourceName names a source's directory from its host and path:
// web01 + /home is "web01-home", web01 + lvm:vg0/data is
// "web01-lvm-vg0-data", and web01 + / is "web01".
func sourceName(s Source) string {
	p := strings.Trim(s.Path, "/")
	p = strings.NewReplacer("/", "-", ":", "-").Replace(p)
	name := s.Host
	if name != "" && p != "" {
		name += "-"
	}
	return safeName(name + p)
}

// safeName replaces what cp, rsync and scp accept but Samba clients do
// not, and what would make a name empty or special.
func safeName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < ' ' || c == 0x7f || strings.IndexByte(`\/:*?"<>|`, c) >= 0 {
			b[i] = '_'
		}
	}
	s = string(b)
	if s == "" || s == "." || s == ".." {
		return "_" + s
	}
	return s
}

// uniqueNames makes names distinct by appending "_" and suffix(i) to a
// name that an earlier one already took. The first holder keeps the plain
// name, so adding a later snapshot never renames an earlier one.
func uniqueNames(names []string, suffix func(i int) string) []string {
	seen := make(map[string]bool, len(names))
	out := make([]string, len(names))
	for i, n := range names {
		for seen[n] {
			n += "_" + suffix(i)
		}
		seen[n] = true
		out[i] = n
	}
	return out
}
