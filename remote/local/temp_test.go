package local

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/hindsight-backup/hindsight/remote"
)

// RemoveTemp, reached through the wrappers a repository opens the backend
// with, removes the temporary files of Saves last written before the time
// given, at any depth, and nothing else.
func TestRemoveTemp(t *testing.T) {
	root := t.TempDir()
	b, err := OpenDir(root)
	if err != nil {
		t.Fatal(err)
	}
	save(t, b, "packs/ab/ab01", data(1, 10))
	save(t, b, "config", data(2, 10))
	now := time.Now()
	files := map[string]time.Time{
		"packs/ab/.tmp-OLD": now.Add(-2 * time.Hour),
		".tmp-OLDROOT":      now.Add(-2 * time.Hour),
		"packs/ab/.tmp-NEW": now,                     // a Save in progress
		"packs/ab/ab02":     now.Add(-2 * time.Hour), // an object, however old
		"packs/.other":      now.Add(-2 * time.Hour), // not a Save's file
	}
	for name, mtime := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	wrapped := remote.Wrap(b, remote.WrapOptions{Retry: &remote.RetryOptions{}, Connections: 2})
	n, err := remote.RemoveTemp(t.Context(), wrapped, now.Add(-time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("RemoveTemp = %d, %v; want 2 removed", n, err)
	}
	var left []string
	err = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			left = append(left, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(left)
	want := []string{"config", "packs/.other", "packs/ab/.tmp-NEW", "packs/ab/ab01", "packs/ab/ab02"}
	if !slices.Equal(left, want) {
		t.Errorf("left %q, want %q", left, want)
	}
}
