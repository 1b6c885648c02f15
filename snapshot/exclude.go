package snapshot

import (
	"fmt"
	"path"
	"strings"
)

// Excluder decides which entries a backup leaves out. A pattern without a
// slash matches an entry's name at any depth ("*.tmp", "node_modules"); a
// pattern with a slash matches the entry's path, relative to the backed-up
// directory ("var/cache/*") or absolute when it starts with one
// ("/home/*/.cache"). Patterns use path.Match syntax. Excluding a directory
// excludes everything below it.
type Excluder struct {
	root     string // absolute backed-up path
	names    []string
	relPaths []string
	absPaths []string
}

// NewExcluder validates patterns.
func NewExcluder(patterns []string) (*Excluder, error) {
	e := &Excluder{}
	for _, p := range patterns {
		p = strings.TrimSuffix(p, "/")
		if p == "" {
			continue
		}
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("exclude pattern %q: %w", p, err)
		}
		switch {
		case strings.HasPrefix(p, "/"):
			e.absPaths = append(e.absPaths, p)
		case strings.Contains(p, "/"):
			e.relPaths = append(e.relPaths, p)
		default:
			e.names = append(e.names, p)
		}
	}
	return e, nil
}

// SetRoot tells the excluder where relative paths start.
func (e *Excluder) SetRoot(abs string) { e.root = abs }

// Excluded reports whether the entry at rel (relative to the root) with the
// given name is left out.
func (e *Excluder) Excluded(rel, name string) bool {
	for _, p := range e.names {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	for _, p := range e.relPaths {
		if ok, _ := path.Match(p, rel); ok {
			return true
		}
	}
	if len(e.absPaths) > 0 {
		abs := path.Join(e.root, rel)
		for _, p := range e.absPaths {
			if ok, _ := path.Match(p, abs); ok {
				return true
			}
		}
	}
	return false
}
